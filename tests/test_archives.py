"""Archives: zip/wheel/jar, tar, tar.gz/bz2/xz, single .gz/.bz2/.xz; nesting to
--archive-depth; zip bombs refused; nothing written to disk; git blobs too."""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from keyscan.content import ContentOptions, scan_buffer
from keyscan.detector import Detector
from keyscan.formats import archives
from keyscan.inflate import ZLIB, Inflate, inflate_functions
from keyscan.keygen import key
from keyscan.models import Location, ScanError
from keyscan.rules import load_rules

DET = Detector(load_rules())


def make_zip(members: dict[str, bytes] | dict[str, bytes | str], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", method) as z:
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


def scan(data: bytes, path: str, **opts: object) -> tuple[list[tuple[str, str]], list[ScanError]]:
    errors: list[ScanError] = []
    hits = scan_buffer(
        DET,
        data,
        Location(path, 0, 0, 0),
        ContentOptions(**opts),
        errors=errors,  # type: ignore[arg-type]
    )
    return sorted((h.location.display_path, h.secret.decode()) for h in hits), errors


def keyscan(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


def test_wheel_member_path_and_location() -> None:
    k = key("project", seed=1)
    whl = make_zip({"pkg/__init__.py": b"", "pkg/config.py": f"\n\nKEY = '{k}'\n".encode()})
    errors: list[ScanError] = []
    hits = scan_buffer(DET, whl, Location("dist/app.whl", 0, 0, 0), errors=errors)
    assert not errors
    (hit,) = hits
    assert hit.location.path == "dist/app.whl"
    assert hit.location.member == ("pkg/config.py",)
    assert hit.location.display_path == "dist/app.whl!pkg/config.py"
    assert (hit.location.line, hit.location.column, hit.location.offset) == (3, 8, 9)


@pytest.mark.parametrize(
    "kind,build",
    [
        ("tar", lambda m: make_tar(m, "w")),
        ("tar.gz", lambda m: make_tar(m, "w:gz")),
        ("tar.bz2", lambda m: make_tar(m, "w:bz2")),
        ("tar.xz", lambda m: make_tar(m, "w:xz")),
        ("jar", lambda m: make_zip(m)),
        ("zip-stored", lambda m: make_zip(m, zipfile.ZIP_STORED)),
    ],
)
def test_archive_kinds_found_by_magic_whatever_the_name(kind: str, build: object) -> None:
    k = key("svcacct", seed=2)
    data = build({"etc/app.env": f"OPENAI_API_KEY={k}\n".encode(), "README": b"hi"})  # type: ignore[operator]
    for name in (f"bundle.{kind}", "bundle.txt", "no_extension"):
        found, errors = scan(data, name)
        assert found == [(f"{name}!etc/app.env", k)] and not errors, (kind, name)


@pytest.mark.parametrize(
    "compress,suffix",
    [(gzip.compress, ".gz"), (bz2.compress, ".bz2"), (lzma.compress, ".xz")],
)
def test_single_compressed_files(compress: object, suffix: str) -> None:
    k = key("admin", seed=3)
    data = compress(f"line\nkey={k}\n".encode())  # type: ignore[operator]
    found, errors = scan(data, f"logs/app.log{suffix}")
    assert found == [("logs/app.log" + suffix + "!app.log", k)] and not errors
    found, _ = scan(data, "blob")
    assert found == [("blob!blob.data", k)]


def test_nesting_to_archive_depth() -> None:
    k = key("user-none", seed=4)
    inner = make_zip({"pkg/config.py": f"K='{k}'\n".encode()})
    middle = make_tar({"lib/inner.jar": inner}, "w:gz")
    outer = make_zip({"deps/middle.tgz": middle})
    assert scan(outer, "app.zip", archive_depth=3)[0] == [
        ("app.zip!deps/middle.tgz!lib/inner.jar!pkg/config.py", k)
    ]
    # Depth 2: the jar inside the tgz is not opened (its deflated bytes hide the key), and
    # the scan says so: it is incomplete (issue 11, item 12).
    found, errors = scan(outer, "app.zip", archive_depth=2)
    assert found == []
    assert [str(e) for e in errors] == [
        "app.zip!deps/middle.tgz!lib/inner.jar: archive nested deeper than --archive-depth 2: "
        "not opened, scanned as raw bytes"
    ]
    assert scan(outer, "app.zip", archive_depth=0) == ([], [])
    # A stored (uncompressed) zip not opened still shows its key as plain bytes.
    stored = make_zip({"a.txt": f"K='{k}'\n".encode()}, zipfile.ZIP_STORED)
    assert scan(stored, "s.zip", archive_depth=0)[0] == [("s.zip", k)]


def test_zip_bomb_refused_by_ratio_and_the_rest_is_scanned() -> None:
    k = key("project", seed=5)
    bomb = make_zip(
        {
            "zeros.bin": b"\0" * (8 * 1024 * 1024),
            "ok.py": f"K='{k}'\n".encode(),
        }
    )
    assert len(bomb) < 64 * 1024
    found, errors = scan(bomb, "dist/bomb.zip")
    assert found == [("dist/bomb.zip!ok.py", k)]
    (err,) = errors
    assert err.where == "dist/bomb.zip!zeros.bin"
    assert "compression ratio above 200:1" in err.message


def test_total_inflated_bytes_are_capped() -> None:
    members = {f"f{i}.txt": os.urandom(300_000) for i in range(8)}
    data = make_tar(members, "w:gz")
    _, errors = scan(data, "big.tar.gz", archive_max_bytes=1_000_000)
    (err,) = errors
    assert err.where == "big.tar.gz"
    assert "archive refused: inflates to more than 1000000 bytes" in err.message
    # Nested archives share the budget of the archive on disk.
    inner = make_zip({f"x{i}": os.urandom(200_000) for i in range(4)}, zipfile.ZIP_STORED)
    outer = make_zip({f"in{i}.zip": inner for i in range(4)}, zipfile.ZIP_STORED)
    _, errors = scan(outer, "o.zip", archive_max_bytes=2_000_000)
    assert errors and all("inflates to more than" in e.message for e in errors)


def test_gzip_bomb_single_stream() -> None:
    bomb = gzip.compress(b"\0" * (16 * 1024 * 1024))
    found, errors = scan(bomb, "x.gz")
    assert found == []
    assert [e.where for e in errors] == ["x.gz"] and "ratio" in errors[0].message


def test_hostile_member_names_never_touch_the_disk(tmp_path: Path) -> None:
    k = key("project", seed=6)
    evil = make_zip(
        {
            "../../escape.py": f"K='{k}'\n".encode(),
            "/etc/cron.d/x": b"x",
            "dir/\x1b[31mred\nforged.txt": f"K='{k}'\n".encode(),
        }
    )
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "evil.zip").write_bytes(evil)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    proc = keyscan("scan", "sub", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert not (tmp_path.parent / "escape.py").exists()
    assert "\x1b" not in proc.stdout
    assert "sub/evil.zip!../../escape.py:1:4" in proc.stdout
    assert "sub/evil.zip!dir/\\x1b[31mred\\x0aforged.txt:1:4" in proc.stdout


def test_tar_links_and_devices_are_not_followed() -> None:
    k = key("admin", seed=7)
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w") as t:
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(link)
        dev = tarfile.TarInfo("dev")
        dev.type = tarfile.CHRTYPE
        t.addfile(dev)
        data = f"k={k}".encode()
        info = tarfile.TarInfo("real.txt")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    assert scan(bio.getvalue(), "t.tar") == ([("t.tar!real.txt", k)], [])


def test_damaged_and_fake_archives() -> None:
    k = key("legacy", seed=8)
    good = make_zip({"a.txt": f"k={k}".encode(), "b.txt": b"x" * 1000})
    # Looks like an archive, is not one: scanned as raw bytes, with an error (members of a
    # broken archive may be missed: the scan is not complete).
    found, errors = scan(b"PK\x03\x04 not a zip " + f"k={k}".encode(), "notes.txt")
    assert found == [("notes.txt", k)]
    assert [e.where for e in errors] == ["notes.txt"]
    assert "unreadable archive, scanned as raw bytes" in errors[0].message
    found, errors = scan(b"BZh91AY&SY garbage " + f"k={k}".encode(), "x.bz2")
    assert found == [("x.bz2", k)] and [e.where for e in errors] == ["x.bz2"]
    # Truncated zip (no central directory): an error naming it.
    found, errors = scan(good[: len(good) // 2], "half.zip")
    assert found == [] and [e.where for e in errors] == ["half.zip"]
    corrupt = make_tar({"a.txt": f"k={k}".encode()}, "w:gz")
    found, errors = scan(corrupt[:-20], "c.tgz")
    assert ("c.tgz!a.txt", k) in found or errors


def test_encrypted_member_is_an_error() -> None:
    data = bytearray(make_zip({"secret.txt": b"ciphertext"}, zipfile.ZIP_STORED))
    # zipfile cannot write encrypted members: set the "encrypted" flag bit in the local and
    # central headers.
    data[data.index(b"PK\x03\x04") + 6] |= 1
    data[data.index(b"PK\x01\x02") + 8] |= 1
    found, errors = scan(bytes(data), "e.zip")
    assert found == [] and [str(e) for e in errors] == ["e.zip!secret.txt: not scanned: encrypted"]


def test_big_archive_on_disk_is_streamed(tmp_path: Path) -> None:
    """An archive above the reader's chunk size goes through scan_special_file (seekable
    file, members streamed), with keys found in a member bigger than IN_MEMORY."""
    k1, k2 = key("project", seed=9), key("svcacct", seed=10)
    filler = os.urandom(6 * 1024 * 1024)
    noise = base64.encodebytes(os.urandom(archives.IN_MEMORY * 3 // 4 + 1000))  # no bomb
    big_member = noise + f"\nk={k2}\n".encode()
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("filler.bin", filler + filler)
        z.writestr("conf/k.txt", f"k={k1}\n")
        z.writestr("huge.txt", big_member)
    assert path.stat().st_size > 8 * 1024 * 1024
    proc = keyscan("scan", "-f", "json", str(path), "--archive-depth", "1")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    paths = sorted(loc["path"] for f in doc["findings"] for loc in f["locations"])
    assert paths == [f"{path}!conf/k.txt", f"{path}!huge.txt"]
    huge = next(
        loc for f in doc["findings"] for loc in f["locations"] if loc["path"].endswith("huge.txt")
    )
    assert huge["line"] == noise.count(b"\n") + 2


def test_cli_bomb_is_exit_2_with_one_line_naming_the_archive(tmp_path: Path) -> None:
    k = key("project", seed=11)
    (tmp_path / "bomb.zip").write_bytes(make_zip({"z": b"\0" * (8 * 1024 * 1024)}))
    (tmp_path / "app.py").write_text(f"K = '{k}'\n")
    proc = keyscan("scan", str(tmp_path))
    assert proc.returncode == 2
    assert "app.py:1:6" in proc.stdout  # the scan went on
    errors = [line for line in proc.stderr.splitlines() if line.startswith("keyscan: error:")]
    assert len(errors) == 1 and "bomb.zip!z: not scanned: compression ratio" in errors[0]


def test_archive_in_git_history(tmp_path: Path) -> None:
    """The git source hands blobs to scan_buffer: a committed wheel is scanned inside."""
    k = key("project", seed=12)
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
    }
    (repo / "dist").mkdir()
    (repo / "dist" / "app.whl").write_bytes(make_zip({"pkg/config.py": f"K='{k}'\n".encode()}))
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-qm", "wheel"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, env=env)
    (repo / "dist" / "app.whl").unlink()
    subprocess.run(["git", "commit", "-qam", "rm"], cwd=repo, check=True, env=env)
    if "git" not in keyscan("--help").stdout:
        pytest.skip("keyscan git not available")
    proc = keyscan("git", "-f", "json", str(repo))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    paths = {loc["path"] for f in doc["findings"] for loc in f["locations"]}
    assert paths == {"dist/app.whl!pkg/config.py"}


def test_empty_member_name_found_by_fuzzing() -> None:
    """atheris found zipfile.ZipInfo.is_dir() raising IndexError on an empty member name."""
    k = key("project", seed=13)
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as z:
        z.writestr(zipfile.ZipInfo(""), f"K='{k}'\n".encode())
        z.writestr("ok.txt", f"K='{k}'\n".encode())
    found, errors = scan(bio.getvalue(), "e.zip")
    assert found == [("e.zip!", k), ("e.zip!ok.txt", k)] and not errors


# Every inflater zip members can be read with here: zlib's always, ISA-L's where installed.
INFLATERS = [ZLIB] + ([inflate_functions()] if inflate_functions() != ZLIB else [])


@pytest.mark.parametrize("inflater", INFLATERS, ids=lambda i: i.decompress.__module__)
def test_zip_members_read_the_same_with_each_inflater(
    monkeypatch: pytest.MonkeyPatch, inflater: Inflate
) -> None:
    """Members of every kind (text with a key, random bytes, empty; every compression level)
    read whole and block by block give zlib's bytes, and the same findings; a member whose
    deflate stream is damaged, or whose CRC-32 is wrong, is an error naming it while the
    others are still scanned."""
    import random
    import zlib

    monkeypatch.setattr(archives, "_INFLATE", inflater)
    rng = random.Random(16)
    keys = {f"k{i}.txt": key("project", seed=100 + i) for i in range(4)}
    members: dict[str, bytes] = {}
    for name, k in keys.items():
        pad = "".join(rng.choice("abc xyz\n0123") for _ in range(rng.randint(0, 90_000)))
        members[name] = f"{pad}\nOPENAI_API_KEY={k}\n{pad[:500]}".encode()
    members["random.bin"] = rng.randbytes(200_000)
    members["empty.txt"] = b""
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as z:
        for level, (name, data) in enumerate(members.items()):
            z.writestr(zipfile.ZipInfo(name), data, zipfile.ZIP_DEFLATED, level % 10)
    data = bio.getvalue()
    zf = zipfile.ZipFile(io.BytesIO(data))
    for info in zf.infolist():
        for block in (1 << 20, 4096, 7):
            with zf.open(info) as stream:
                archives._inflater(stream, info)
                if inflater is not ZLIB and info.compress_size:
                    assert type(stream._decompressor).__module__ != "zlib"  # type: ignore[attr-defined]
                parts = iter(lambda: stream.read(block), b"")  # noqa: B023
                assert b"".join(parts) == members[info.filename], (info.filename, block)
    found, errors = scan(data, "w.zip")
    assert found == sorted((f"w.zip!{name}", k) for name, k in keys.items()) and errors == []
    # A damaged deflate stream in k3.txt: that member is an error, the others are found.
    first = zf.getinfo("k3.txt")
    start = first.header_offset + 30 + len(first.filename)
    broken = bytearray(data)
    for at in range(start + 10, start + first.compress_size - 10, 97):
        broken[at] ^= 0x5A
    found, errors = scan(bytes(broken), "w.zip")
    assert found == sorted((f"w.zip!{n}", k) for n, k in keys.items() if n != "k3.txt")
    assert [e.where for e in errors] == ["w.zip!k3.txt"], errors
    assert "cannot read member" in errors[0].message
    # A wrong CRC-32 (central directory) for k1.txt: the same.
    central = data.index(b"PK\x01\x02")
    second = zf.getinfo("k1.txt")
    crc = second.CRC.to_bytes(4, "little")
    at = data.index(crc, central)
    wrong = data[:at] + ((second.CRC ^ 1).to_bytes(4, "little")) + data[at + 4 :]
    found, errors = scan(wrong, "w.zip")
    assert ("w.zip!k1.txt", keys["k1.txt"]) not in found
    assert [e.where for e in errors] == ["w.zip!k1.txt"] and "CRC" in errors[0].message
    assert zlib.crc32(members["k1.txt"]) == second.CRC


def test_zip_members_are_inflated_by_isal_where_it_is_installed() -> None:
    try:
        from isal import isal_zlib
    except ImportError:
        assert archives._INFLATE is ZLIB
        return
    assert archives._INFLATE.decompress is isal_zlib.decompress
    assert isal_zlib.error in archives._READ_ERRORS
