"""Containers II follow-ups (issue 15): truncated tars are never read as complete.

tarfile ends its listing without an error at a header cut short (or damaged): a tar cut at
such a point used to report nothing and no error, so a scan could exit 0 with members never
read. Decision: a tar cut exactly at a member boundary (a 512-byte block boundary after a
member's padded data) is valid, because it cannot be told apart from a tar written without
its end-of-archive blocks, which POSIX readers (GNU tar, tarfile) accept; a tar cut anywhere
else (in a header, in a member's data or its padding) is an error naming the archive, and
its raw bytes are scanned too. A compressed tar (tar.gz, .bz2, .xz) whose stream is cut
anywhere is an error (its end marker and checksum are missing). Keys are generated."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from keyscan.content import ContentOptions, scan_buffer
from keyscan.detector import Detector
from keyscan.findings import Hit
from keyscan.keygen import key
from keyscan.models import Location, ScanError
from keyscan.rules import load_rules
from tests.test_detection_v2_images import docker_save, env
from tests.test_detection_v2_images import make_tar as images_make_tar

DET = Detector(load_rules())


def make_tar(members: dict[str, bytes | None]) -> bytes:
    """A ustar tar (fixed 512-byte headers: the cut points below are predictable)."""
    return images_make_tar(members, tarfile.USTAR_FORMAT)


def scan(data: bytes, path: str, **opts: Any) -> tuple[list[Hit], list[ScanError]]:
    errors: list[ScanError] = []
    hits = scan_buffer(DET, data, Location(path, 0, 0, 0), ContentOptions(**opts), errors=errors)
    return hits, errors


def boundaries(data: bytes) -> tuple[set[int], int]:
    """Member boundaries (where a header starts, and the end of the last member) and where
    the end-of-archive blocks start."""
    out = set()
    end = 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        for info in tf:
            out.add(info.offset)
            end = info.offset_data + -(-info.size // 512) * 512
    out.add(end)
    return out, end


def test_every_cut_of_a_tar_is_an_error_unless_at_a_member_boundary() -> None:
    k = key("project", seed=90)
    data = make_tar({"app/": None, "app/.env": env(k), "b.txt": b"hello world\n" * 90})
    valid, end = boundaries(data)
    at = data.index(k.encode())
    for cut in range(262, len(data) + 1):  # below 262 bytes there is no ustar magic: not a tar
        hits, errors = scan(data[:cut], "t.tar")
        if cut in valid or cut >= end:
            assert not errors, (cut, errors)  # a member boundary, or the end-of-archive zeros
        else:
            assert errors, f"cut at {cut}: no error"
            assert all(e.where.startswith("t.tar") for e in errors), errors
        if cut >= at + len(k):
            # the key's bytes are there: found (in its member, or in the raw bytes), once
            assert [h.secret.decode() for h in hits] == [k], (cut, hits)


@pytest.mark.parametrize("how", ["gzip", "bzip2", "xz"])
def test_every_cut_of_a_compressed_tar_is_an_error(how: str) -> None:
    k = key("project", seed=91)
    tar = make_tar({"app/.env": env(k), "b.txt": bytes(range(256)) * 20})
    data = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}[how](tar)
    assert not scan(data, "t.tar.x")[1]
    step = 1 if len(data) < 2000 else 7
    for cut in range(12, len(data), step):  # below that the magic is not whole
        _hits, errors = scan(data[:cut], "t.tar.x")
        assert errors, f"{how} cut at {cut}: no error"
        assert all(e.where.startswith("t.tar.x") for e in errors), errors


def test_docker_save_cut_is_an_error_never_silent() -> None:
    k = key("project", seed=92)
    data = docker_save([{"app/.env": env(k)}, {"b.txt": b"x" * 5000}])
    valid, end = boundaries(data)
    for cut in (600, 1100, 2000, 3000, len(data) // 2, end - 100):
        assert cut not in valid
        _hits, errors = scan(data[:cut], "img.tar")
        assert errors and all(e.where.startswith("img.tar") for e in errors), (cut, errors)


def test_member_data_cut_after_the_key_reports_the_key_and_an_error() -> None:
    k = key("svcacct", seed=93)
    data = make_tar({"a.txt": b"x" * 700, "conf/.env": env(k) + b"#" * 3000})
    cut = data.index(k.encode()) + len(k) + 10
    hits, errors = scan(data[:cut], "t.tar")
    assert [h.secret.decode() for h in hits] == [k]
    assert errors and errors[0].where.startswith("t.tar")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args], capture_output=True, text=True, check=False
    )


def test_cli_cut_tar_exits_2_naming_the_archive(tmp_path: Path) -> None:
    data = docker_save([{"app/.env": b"hello\n"}, {"b.txt": b"x" * 5000}])
    for cut in (600, 2000):
        p = tmp_path / f"img{cut}.tar"
        p.write_bytes(data[:cut])
        out = run("scan", str(p))
        assert out.returncode == 2, (cut, out.stdout, out.stderr)
        assert f"img{cut}.tar" in out.stderr


@pytest.mark.parametrize("gz", [False, True])
def test_a_layer_cut_inside_a_whole_image_is_an_error(gz: bool) -> None:
    import json

    from tests.test_detection_v2_images import Layer, oci_layout
    from tests.test_detection_v2_images import make_tar as image_tar

    k = key("project", seed=94)
    files = oci_layout([([{"a.txt": env(k)}, {"b.txt": b"y" * 700, "c.txt": b"z"}], None)], gz=gz)
    index = json.loads(files["index.json"])
    manifest = json.loads(files["blobs/sha256/" + index["manifests"][0]["digest"][7:]])
    top = "blobs/sha256/" + manifest["layers"][1]["digest"][7:]
    layer: Layer = {"b.txt": b"y" * 700, "c.txt": b"z"}
    whole = image_tar(layer)
    cut = whole[: 1536 + 100]  # in the header of c.txt
    files[top] = gzip.compress(cut) if gz else cut
    hits, errors = scan(image_tar(dict(files.items())), "oci.tar")
    assert [h.secret.decode() for h in hits] == [k]
    assert any("layer 2 damaged" in e.message for e in errors), errors


def test_images_committed_to_git(tmp_path: Path) -> None:
    """A docker save tarball (gzip'd too) committed as one file is one blob: read as an image
    in history, note included. An OCI layout committed as a folder is many blobs, each
    scanned on its own (by object id, in parallel chunks): each layer blob is read as an
    archive, so every file of every layer is found (a deleted one too), located at the
    layer's path in the layout, but without the layer index or the whiteout note (README,
    Not detected)."""
    from tests.git_helpers import Repo, cli_json
    from tests.test_detection_v2_images import DELETED, oci_layout

    k_img, k_oci, k_cfg = key("project", seed=95), key("svcacct", seed=96), key("project", seed=97)
    repo = Repo(tmp_path / "repo")
    img = gzip.compress(docker_save([{"app/.env": env(k_img)}, {"app/.wh..env": b""}], gz=True))
    files = oci_layout(
        [([{"root/.env": env(k_oci)}, {"root/.wh..env": b""}], None)],
    )
    cfg_name = next(n for n, d in files.items() if b'"Env"' in d)
    files[cfg_name] = files[cfg_name].replace(b'"PATH=/usr/bin"', f'"OPENAI_API_KEY={k_cfg}"'.encode())
    repo.commit("images", ("dist/img.tar.gz", img), *((f"layout/{n}", d) for n, d in files.items()))
    repo.rm("dist/img.tar.gz")
    repo.git("rm", "-rq", "layout")
    repo.commit("rm")
    code, doc, err = cli_json("git", str(repo.path))
    assert code == 1, err
    locs = {f["redacted"][-4:]: f["locations"] for f in doc["findings"]}
    (li,) = locs[k_img[-4:]]
    assert li["path"].startswith("dist/img.tar.gz") and li["extra"]["note"] == DELETED
    (lo,) = locs[k_oci[-4:]]
    assert lo["path"].startswith("layout/blobs/sha256/") and lo["member"][-1] == "root/.env"
    assert "note" not in lo["extra"] and "layer" not in lo["extra"]
    (lc,) = locs[k_cfg[-4:]]
    assert lc["path"].startswith("layout/blobs/sha256/") and "image_config" not in lc["extra"]


def test_gzipped_image_cut_anywhere_is_an_error_never_silent() -> None:
    k = key("project", seed=98)
    data = gzip.compress(docker_save([{"app/.env": env(k)}, {"app/.wh..env": b""}], gz=True))
    assert not scan(data, "img.tar.gz")[1]
    for cut in range(12, len(data), 13):
        _hits, errors = scan(data[:cut], "img.tar.gz")
        assert errors and all(e.where.startswith("img.tar.gz") for e in errors), cut


def test_corrupt_xz_image_is_an_error_never_an_exception() -> None:
    """Found by the property test: a byte flipped in an xz'd OCI layout raised LZMAError out
    of the engine. Every single-byte corruption of its head is now an error."""
    import lzma

    from tests.test_detection_v2_images import make_tar, oci_layout
    from tests.test_fuzz_properties import scan

    k = key("project", seed=11)
    layers: list[dict[str, bytes | None]] = [{"app/": None, "app/.env": f"K={k}".encode()}]
    seed = lzma.compress(make_tar(dict(oci_layout([(layers, None)]).items())))
    hits, errors = scan(seed, "image.tar.xz")
    assert not errors and [h.secret for h in hits] == [k.encode()]
    for at in range(12, min(len(seed), 200)):
        data = bytearray(seed)
        data[at] ^= 0xFF
        hits, errors = scan(bytes(data), "image.tar.xz")  # never raises
        assert errors, at  # xz checks its data: a damaged image is never read as clean
