"""Issue 11, item 12: every archive problem reaches the report and the exit code, on stdin as
on files: refused bombs, too many members, truncated gz/tar/bz2/xz, archives nested deeper
than --archive-depth (not opened: the scan is incomplete). Stdin used to exit 0 on all."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from keyscan.cli import cli
from keyscan.content import ContentOptions, scan_buffer
from keyscan.detector import Detector
from keyscan.formats import archives
from keyscan.keygen import key
from keyscan.models import Location, ScanError
from keyscan.rules import load_rules
from keyscan.sources import files

K = key("project", seed=201)
TEXT = (f"k={K}\n" + "filler line of text\n" * 2000).encode()


def make_zip(members: dict[str, bytes]) -> bytes:
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return bio.getvalue()


def make_tar(members: dict[str, bytes], mode: str = "w") -> bytes:
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode=mode) as t:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return bio.getvalue()


CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "bomb": (lambda: make_zip({"z": b"\0" * (8 << 20)}), "!z: not scanned: compression ratio"),
    "truncated-gz": (lambda: gzip.compress(TEXT)[:-200], ": unreadable archive"),
    "truncated-tgz": (lambda: make_tar({"a.txt": TEXT}, "w:gz")[:-300], ": unreadable archive"),
    "truncated-bz2": (lambda: bz2.compress(TEXT)[:-100], ": unreadable archive"),
    "truncated-xz": (lambda: lzma.compress(TEXT)[:-100], ": unreadable archive"),
    "truncated-tar": (lambda: make_tar({"a.txt": TEXT, "b.txt": TEXT})[:3000], ": unreadable"),
    "nested-too-deep": (
        lambda: make_zip(
            {"a.zip": make_zip({"b.zip": make_zip({"c.zip": make_zip({"d.txt": TEXT})})})}
        ),
        "!a.zip!b.zip!c.zip: archive nested deeper than --archive-depth 3: not opened",
    ),
}


def keyscan(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        input=input,
        capture_output=True,
        timeout=120,
        check=False,
    )


def error_lines(stderr: bytes) -> list[str]:
    return [ln for ln in stderr.decode().splitlines() if ln.startswith("keyscan: error:")]


@pytest.mark.parametrize("case", sorted(CASES))
def test_archive_errors_on_stdin_exit_2(case: str) -> None:
    build, expected = CASES[case]
    proc = keyscan("scan", "-", input=build())
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    (line,) = error_lines(proc.stderr)
    assert line.startswith("keyscan: error: <stdin>") and expected in line, line
    assert b"no OpenAI keys found" not in proc.stdout
    assert K.encode() not in proc.stdout + proc.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_archive_errors_on_files_exit_2(case: str, tmp_path: Path) -> None:
    build, expected = CASES[case]
    path = tmp_path / "blob.bin"
    path.write_bytes(build())
    proc = keyscan("scan", str(path))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    (line,) = error_lines(proc.stderr)
    assert line.startswith(f"keyscan: error: {path}") and expected in line, line


def test_too_many_members_on_stdin_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archives, "MAX_MEMBERS", 5)
    data = make_zip({f"m{i}.txt": b"x" for i in range(8)})
    result = CliRunner().invoke(cli, ["scan", "-"], input=data)
    assert result.exit_code == 2, result.output
    assert "keyscan: error: <stdin>: archive refused: more than 5 members" in result.output
    assert "no OpenAI keys found" not in result.output


def test_nested_too_deep_on_stdin_and_file_alike(tmp_path: Path) -> None:
    """The member that was not opened is named; a deeper --archive-depth opens it."""
    data = CASES["nested-too-deep"][0]()
    path = tmp_path / "app.zip"
    path.write_bytes(data)
    for target, where, stdin in ((str(path), str(path), None), ("-", "<stdin>", data)):
        proc = keyscan("scan", target, input=stdin)
        assert proc.returncode == 2
        assert error_lines(proc.stderr) == [
            f"keyscan: error: {where}!a.zip!b.zip!c.zip: archive nested deeper than "
            "--archive-depth 3: not opened, scanned as raw bytes"
        ]
        deeper = keyscan("scan", "--archive-depth", "4", target, input=stdin)
        assert deeper.returncode == 1, deeper.stderr
        assert f"{where}!a.zip!b.zip!c.zip!d.txt:1:3".encode() in deeper.stdout
    # --archive-depth 0 opens no archive, by the user's choice: nothing to report.
    assert keyscan("scan", "--archive-depth", "0", str(path)).returncode == 0


def test_big_member_that_is_an_archive_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """A member too big to hold in memory is streamed as raw bytes: if it is an archive, its
    members were not opened, and the scan says so."""
    monkeypatch.setattr(archives, "IN_MEMORY", 4096)
    inner = make_tar({"a.txt": os.urandom(6000)})
    outer = make_zip({"big.tar": inner})
    errors: list[ScanError] = []
    scan_buffer(
        Detector(load_rules()), outer, Location("o.zip", 0, 0, 0), ContentOptions(), errors=errors
    )
    assert [str(e) for e in errors] == [
        "o.zip!big.tar: archive larger than 4096 bytes (too big to open in memory): not opened, "
        "scanned as raw bytes"
    ]


def test_archive_bigger_than_a_chunk_on_a_stream_is_reported() -> None:
    """Stdin is not seekable: an archive bigger than a chunk is scanned as raw bytes only."""
    data = make_tar({"a.bin": os.urandom(files.CHUNK + 4096)})
    out = files.scan_stdin(load_rules(), io.BytesIO(data))
    assert [e.where for e in out.errors] == ["<stdin>"]
    assert "on a stream: scanned as raw bytes, members not opened" in out.errors[0].message
