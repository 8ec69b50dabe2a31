"""Hostile input must not hurt the user: names and content with terminal escapes, symlink
loops, FIFOs, devices, unreadable files and folders, files that vanish or change during the
scan, a 50 MB single-line file, megabytes of ``sk-``.

Reported and skipped, the scan goes on; exit 2 when something could not be read."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyscan.content import CHUNK, OVERLAP, ContentOptions
from keyscan.detector import Detector
from keyscan.keygen import MARKER, key
from keyscan.models import Location, Match
from keyscan.rules import load_rules
from keyscan.sources import files
from keyscan.terminal import safe

RULES = load_rules()
# A hang guard for FIFO tests (not a timing assertion: it only turns a hang into a failure).
HANG_GUARD = 120


def run(
    *args: str, cwd: Path | None = None, user: str | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "keyscan", *args]
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(
        cmd, capture_output=True, text=True, check=False, cwd=cwd, timeout=HANG_GUARD,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )  # fmt: skip


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("keyscan: error:")]


# -- names and content that try to drive the terminal --------------------------------------

HOSTILE_NAMES = [
    "evil\x1b[2J\x1b[31mred.txt",
    "new\nkeyscan: no OpenAI keys found (0 files).txt",
    "cr\rforged.txt",
    "bidi\u202etxt.exe",
    "bell\x07\x08.txt",
]


def test_hostile_file_names_are_printed_safely(tmp_path: Path) -> None:
    k = key("project", seed=1)
    for name in HOSTILE_NAMES:
        (tmp_path / name).write_text(f"x = 1\nK = '{k}'\n")
    proc = run("scan", "--color", "always", str(tmp_path))
    assert proc.returncode == 1
    out = proc.stdout
    # Only keyscan's own colour codes remain: ESC followed by our SGR sequences.
    stripped = out
    for code in ("\x1b[31m", "\x1b[33m", "\x1b[36m", "\x1b[2m", "\x1b[1m", "\x1b[32m", "\x1b[0m"):
        stripped = stripped.replace(code, "")
    assert not any(c in stripped for c in "\x1b\r\x07\x08\u202e")
    assert "\\x1b[2J" in out and "\\u202e" in out and "\\x0akeyscan: no OpenAI" in out
    # One line per location: 5 hostile names, none forges a line of its own.
    assert sum(1 for line in out.splitlines() if ":2:6" in line) == len(HOSTILE_NAMES)
    assert not any(line.startswith("keyscan: no OpenAI") for line in out.splitlines())
    # JSON escapes them and round-trips the exact names.
    doc = json.loads(run("scan", "-f", "json", str(tmp_path)).stdout)
    paths = {loc["path"] for f in doc["findings"] for loc in f["locations"]}
    assert paths == {str(tmp_path / n) for n in HOSTILE_NAMES}
    # jsonl: one record per line whatever the names.
    lines = run("scan", "-f", "jsonl", str(tmp_path)).stdout.splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["finding", "summary"]


def test_hostile_names_in_errors_and_show_secrets(tmp_path: Path) -> None:
    proc = run("scan", str(tmp_path / "gone\x1b[31m\nkeyscan: fake"))
    assert proc.returncode == 2
    (line,) = error_lines(proc.stderr)
    assert "\x1b" not in proc.stderr and "\\x1b[31m\\x0akeyscan: fake" in line
    assert safe("a\x1b]0;title\x07b\u2066") == "a\\x1b]0;title\\x07b\\u2066"


def test_escape_sequences_in_content_never_reach_the_terminal(tmp_path: Path) -> None:
    k = key("admin", seed=2)
    (tmp_path / "a.txt").write_bytes(
        b"\x1b]52;c;AAAA\x07\x1b[2J OPENAI_API_KEY=" + k.encode() + b"\x1b[0m\n"
    )
    proc = run("scan", "--show-secrets", str(tmp_path))
    assert proc.returncode == 1 and k in proc.stdout
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout


# -- special files ---------------------------------------------------------------------------


def test_symlink_loops_and_dangling_links(tmp_path: Path) -> None:
    k = key("svcacct", seed=3)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text(f"k={k}\n")
    (tmp_path / "d" / "loop").symlink_to(tmp_path / "d")
    (tmp_path / "d" / "self").symlink_to(tmp_path / "d" / "self")
    (tmp_path / "d" / "dangling").symlink_to(tmp_path / "nowhere")
    proc = run("scan", str(tmp_path / "d"))
    assert proc.returncode == 1, proc.stderr  # links in a tree are not followed
    assert proc.stdout.count("a.txt:1:3") == 1
    # A loop named on the command line: an error, the rest is scanned.
    proc = run("scan", str(tmp_path / "d" / "self"), str(tmp_path / "d"))
    assert proc.returncode == 2
    (line,) = error_lines(proc.stderr)
    assert "self" in line and "symbolic links" in line.lower()
    assert "a.txt:1:3" in proc.stdout


def test_fifos_and_devices_are_never_opened(tmp_path: Path) -> None:
    """A walk never opens FIFOs or devices. Named on the command line, a path is read or is
    an error (issue 11, item 11: a FIFO named explicitly is read, see
    tests/security/test_named_inputs.py); a device that never ends is an error, exit 2."""
    k = key("project", seed=4)
    (tmp_path / "t").mkdir()
    os.mkfifo(tmp_path / "t" / "pipe")
    (tmp_path / "t" / "a.txt").write_text(f"k={k}\n")
    proc = run("scan", str(tmp_path / "t"))
    assert proc.returncode == 1, proc.stderr
    assert "a.txt:1:3" in proc.stdout
    assert "pipe: skipped, not a regular file" in proc.stderr
    proc = run("scan", str(tmp_path / "t"), "/dev/zero")
    assert proc.returncode == 2, proc.stderr
    assert "a.txt:1:3" in proc.stdout
    assert "keyscan: error: /dev/zero: cannot scan a device that never ends" in proc.stderr


def test_file_swapped_for_a_fifo_after_the_walk(tmp_path: Path) -> None:
    """The walk saw a file; by read time it is a FIFO with no writer: opening it for reading
    would block forever. The scan reports it and goes on."""
    path = tmp_path / "swap"
    path.write_text("x")
    tasks, errors, _ = files.walk([str(tmp_path)])
    assert [t.display for t in tasks] == [str(path)] and not errors
    path.unlink()
    os.mkfifo(path)
    out = files.scan_tasks(Detector(RULES), tasks)
    assert [e.where for e in out.errors] == [str(path)]
    assert "not a regular file" in out.errors[0].message


def test_file_vanishing_between_walk_and_read(tmp_path: Path) -> None:
    k = key("user-none", seed=5)
    (tmp_path / "gone.txt").write_text("x")
    (tmp_path / "kept.txt").write_text(f"k={k}\n")
    tasks, _, _ = files.walk([str(tmp_path)])
    (tmp_path / "gone.txt").unlink()
    out = files.scan_files(RULES, tasks, jobs=1)
    assert [e.where for e in out.errors] == [str(tmp_path / "gone.txt")]
    assert "No such file" in out.errors[0].message
    assert [h.secret.decode() for h in out.hits] == [k]


class AppendingDetector(Detector):
    """Appends to the file being scanned the first time it scans: a file that changes while
    keyscan reads it, deterministically."""

    def __init__(self, path: Path) -> None:
        super().__init__(RULES)
        self.path = path
        self.done = False

    def scan_keyed(self, data: bytes) -> tuple[list[Match], bool]:
        if not self.done:
            self.done = True
            with open(self.path, "ab") as fh:
                fh.write(b"appended while scanning\n" * 100)
        return super().scan_keyed(data)


def test_file_changing_during_the_scan_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text("line\n" * 10)
    tasks, _, _ = files.walk([str(path)])
    out = files.scan_tasks(AppendingDetector(path), tasks)
    assert [e.where for e in out.errors] == [str(path)]
    assert "changed while being scanned" in out.errors[0].message


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder another user can enter (pytest's tmp_path is private to root)."""
    d = Path(tempfile.mkdtemp(prefix="keyscan-perm-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    for p in d.rglob("*"):
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)
    shutil.rmtree(d)


def test_permission_denied_files_and_folders(shared_dir: Path) -> None:
    """Root reads everything, so as root the scan runs as `nobody` (setpriv): then mode 000
    really denies. Unreadable things are errors (exit 2); the rest is still scanned."""
    k = key("project", seed=6)
    (shared_dir / "ok.txt").write_text(f"k={k}\n")
    (shared_dir / "ok.txt").chmod(0o644)
    secret = shared_dir / "secret.txt"
    secret.write_text("x")
    secret.chmod(0)
    locked = shared_dir / "locked"
    locked.mkdir()
    (locked / "inner.txt").write_text("x")
    locked.chmod(0)
    user = None
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot drop privileges")
        user = "65534"
        probe = subprocess.run(
            ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups",
             sys.executable, "-c", "pass"],
            capture_output=True, text=True,
        )  # fmt: skip
        if probe.returncode != 0:  # e.g. a pyenv build whose libpython only root can read
            pytest.skip(f"this interpreter cannot run as nobody: {probe.stderr.strip()[:200]}")
    proc = run("scan", str(shared_dir), user=user)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "ok.txt:1:3" in proc.stdout
    errors = error_lines(proc.stderr)
    assert any("secret.txt: cannot read: Permission denied" in e for e in errors), errors
    assert any("locked: cannot list directory: Permission denied" in e for e in errors), errors
    assert "scan incomplete" in proc.stdout


# -- big and pathological content -------------------------------------------------------------


def test_fifty_megabyte_single_line(tmp_path: Path) -> None:
    """A 50 MB minified file with no newline: read in chunks, keys at the start, across a
    chunk boundary and at the end are found once each, with the right column."""
    keys = [key("project", seed=10 + i) for i in range(3)]
    size = 50 * 1024 * 1024
    filler = b'{"a":1,"b":[true,false,null],"c":"xyz"},'
    body = bytearray(filler * (size // len(filler)))
    spots = [10, CHUNK - OVERLAP - 50, len(body) - 400]
    for k, at in zip(keys, spots, strict=True):
        body[at : at + len(k)] = k.encode()
    path = tmp_path / "bundle.min.js"
    path.write_bytes(bytes(body))
    tasks, _, _ = files.walk([str(path)])
    out = files.scan_files(RULES, tasks, jobs=1)
    assert not out.errors
    found = sorted((h.location.offset, h.location.line, h.location.column) for h in out.hits)
    assert found == [(at, 1, at + 1) for at in spots]


def test_megabytes_of_sk_repetitions_and_markers() -> None:
    """8 MB of "sk-" with a marker every 4 KB: nothing found, and it completes (the regex
    work is linear: see test_hard_regex_linear.py for the counted proof)."""
    unit = b"sk-" * 1365 + MARKER.encode()
    data = unit * (8 * 1024 * 1024 // len(unit))
    det = Detector(RULES)
    assert det.scan(data) == []
    from keyscan.content import scan_buffer

    assert scan_buffer(det, data, Location("x", 0, 0, 0), ContentOptions(), errors=[]) == []


def test_binary_garbage_with_nuls_and_invalid_utf8() -> None:
    from keyscan.content import scan_buffer

    k = key("legacy", seed=7)
    data = bytes(range(256)) * 1000 + b"\xff\xfe\x00" + k.encode() + b"\x00\xc3\x28" * 100
    hits = scan_buffer(
        Detector(RULES), data, Location("b.bin", 0, 0, 0, binary=True), errors=[]
    )
    assert [h.secret.decode() for h in hits] == [k]
    assert hits[0].location.offset == data.index(k.encode())


def test_key_in_file_named_with_newline_is_located(tmp_path: Path) -> None:
    k = key("admin", seed=8)
    name = "a\nb.txt"
    (tmp_path / name).write_text(f"k={k}\n")
    tasks, errors, _ = files.walk([str(tmp_path)])
    out = files.scan_files(RULES, tasks, jobs=1)
    assert not errors and [h.location.path for h in out.hits] == [str(tmp_path / name)]


def test_mode_bits_do_not_matter_for_root_readable_files(tmp_path: Path) -> None:
    """A file without read bits but readable (root): scanned, no error."""
    k = key("project", seed=9)
    p = tmp_path / "noperm.txt"
    p.write_text(f"k={k}\n")
    p.chmod(0)
    if os.geteuid() != 0:
        p.chmod(stat.S_IRUSR)
    tasks, _, _ = files.walk([str(p)])
    out = files.scan_files(RULES, tasks, jobs=1)
    assert not out.errors and len(out.hits) == 1


class CountingBytes(bytes):
    """bytes that add up how many bytes each search or slice may look at."""

    examined: int

    def _add(self, start: int | None, end: int | None) -> None:
        s = 0 if start is None else start
        e = len(self) if end is None else end
        self.examined = getattr(self, "examined", 0) + max(0, e - s)

    def rfind(self, sub, start=None, end=None):  # type: ignore[no-untyped-def,override]
        self._add(start, end)
        return super().rfind(sub, start, end)

    def find(self, sub, start=None, end=None):  # type: ignore[no-untyped-def,override]
        at = super().find(sub, start, end)
        self._add(start, at + 1 if at >= 0 else end)
        return at

    def count(self, sub, start=None, end=None):  # type: ignore[no-untyped-def,override]
        self._add(start, end)
        return super().count(sub, start, end)

    def __getitem__(self, item):  # type: ignore[no-untyped-def,override]
        if isinstance(item, slice):
            self._add(item.start, item.stop)
        return super().__getitem__(item)


def test_locating_many_keys_on_one_line_is_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of keys on one minified line: locating them (line, column, allow comment)
    looks at each byte a bounded number of times, counted, not timed. (It was quadratic:
    every key decoded its line from the start.)"""
    from keyscan import findings

    searched: list[int] = []
    real = findings.ALLOW_COMMENT

    class CountingPattern:
        def search(self, data: bytes, pos: int = 0, endpos: int | None = None) -> object:
            end = len(data) if endpos is None else endpos
            searched.append(end - pos)
            return real.search(data, pos, end)

    pattern = CountingPattern()
    for n in (500, 2000):
        keys = [key("project", seed=i) for i in range(n)]
        data = CountingBytes(" ".join(keys).encode() + b"\nnext line\n")
        matches = Detector(RULES).scan(bytes(data))
        assert len(matches) == n
        searched.clear()
        with monkeypatch.context() as m:
            m.setattr(findings, "ALLOW_COMMENT", pattern)
            hits = findings.hits_from_matches(data, matches, Location("min.js", 0, 0, 0))
        assert [h.location.column for h in hits] == [data.index(k.encode()) + 1 for k in keys]
        work = data.examined + sum(searched)
        assert work <= 4 * len(data), (n, work, len(data))
