"""Container images (issue 15, containers II): docker save tarballs and OCI image layouts
(as a tar and as a folder), gzip layers, whiteouts, the image config; every image is built
at run time with tarfile, every key generated."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from keyscan.content import ContentOptions, scan_buffer
from keyscan.detector import Detector
from keyscan.findings import Hit
from keyscan.formats.images import DELETED, REPLACED
from keyscan.keygen import key
from keyscan.models import Location, ScanError
from keyscan.rules import load_rules

DET = Detector(load_rules())

Layer = dict[str, bytes | None]  # path -> content; None: a folder


def make_tar(members: dict[str, bytes | None], fmt: int = tarfile.DEFAULT_FORMAT) -> bytes:
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=fmt) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
                continue
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return bio.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_json(env: list[str] | None = None, history: list[str] | None = None, **more: Any) -> bytes:
    doc: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": env or ["PATH=/usr/bin"], **more},
        "history": [{"created_by": h} for h in history or ["/bin/sh -c #(nop) ADD file:abc in /"]],
        "rootfs": {"type": "layers", "diff_ids": []},
    }
    return json.dumps(doc, indent=2).encode()


def docker_save(layers: list[Layer], config: bytes | None = None, gz: bool = False) -> bytes:
    """A legacy ``docker save`` tarball: <id>/layer.tar, <config>.json, manifest.json."""
    members: dict[str, bytes | None] = {}
    paths = []
    diff_ids = []
    for i, layer in enumerate(layers):
        tar = make_tar(layer)
        diff_ids.append(sha(tar))
        blob = gzip.compress(tar) if gz else tar
        lid = hashlib.sha256(b"layer%d" % i).hexdigest()
        members[f"{lid}/"] = None
        members[f"{lid}/VERSION"] = b"1.0"
        members[f"{lid}/layer.tar"] = blob
        paths.append(f"{lid}/layer.tar")
    cfg = json.loads(config or config_json())
    cfg["rootfs"]["diff_ids"] = diff_ids
    cfg_bytes = json.dumps(cfg, indent=2).encode()
    cfg_name = hashlib.sha256(cfg_bytes).hexdigest() + ".json"
    members[cfg_name] = cfg_bytes
    manifest = [{"Config": cfg_name, "RepoTags": ["app:latest"], "Layers": paths}]
    members["manifest.json"] = json.dumps(manifest).encode()
    members["repositories"] = b"{}"
    return make_tar(members)


def oci_layout(
    images: list[tuple[list[Layer], bytes | None]], gz: bool = True, zstd_layer: bool = False
) -> dict[str, bytes]:
    """The files of an OCI image layout holding these images (layers shared by content)."""
    files: dict[str, bytes] = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}'}
    manifests = []

    def blob(data: bytes) -> str:
        d = sha(data)
        files["blobs/sha256/" + d.split(":")[1]] = data
        return d

    for layers, config in images:
        descs = []
        for layer in layers:
            tar = make_tar(layer)
            data = gzip.compress(tar, mtime=0) if gz else tar
            media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gz else "")
            if zstd_layer:
                data = b"\x28\xb5\x2f\xfd" + b"\0" * 40
                media = "application/vnd.oci.image.layer.v1.tar+zstd"
            descs.append({"mediaType": media, "digest": blob(data), "size": len(data)})
        cfg = config or config_json()
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": blob(cfg), "size": len(cfg)},
            "layers": descs,
        }
        mdata = json.dumps(manifest).encode()
        manifests.append({"mediaType": manifest["mediaType"], "digest": blob(mdata),
                          "size": len(mdata)})
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": manifests}).encode()
    return files


def scan(data: bytes, path: str = "image.tar", **opts: Any) -> tuple[list[Hit], list[ScanError]]:
    errors: list[ScanError] = []
    hits = scan_buffer(DET, data, Location(path, 0, 0, 0), ContentOptions(**opts), errors=errors)
    return hits, errors


def by_secret(hits: list[Hit]) -> dict[str, list[Hit]]:
    out: dict[str, list[Hit]] = {}
    for h in hits:
        out.setdefault(h.secret.decode(), []).append(h)
    return out


def env(k: str) -> bytes:
    return f"OPENAI_API_KEY={k}\n".encode()


# --- docker save ------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_docker_save_every_layer_with_whiteout_note(gz: bool) -> None:
    deleted, kept, replaced = key("project", seed=41), key("svcacct", seed=42), key("project", seed=43)
    layers: list[Layer] = [
        {"app/": None, "app/.env": env(deleted), "app/settings.py": env(replaced)},
        {"srv/config.txt": env(kept), "app/settings.py": b"KEY = os.environ['OPENAI_API_KEY']\n"},
        {"app/.wh..env": b""},
    ]
    hits, errors = scan(docker_save(layers, gz=gz))
    assert not errors
    found = by_secret(hits)
    assert set(found) == {deleted, kept, replaced}
    (d,) = found[deleted]
    assert d.location.member[-1] == "app/.env"
    assert d.location.member[0].startswith("sha256:") and len(d.location.member[0]) == 19
    assert d.location.extra["layer"] == 1
    assert d.location.extra["layer_digest"].startswith("sha256:")
    assert d.location.extra["note"] == DELETED
    (k,) = found[kept]
    assert k.location.extra["layer"] == 2 and "note" not in k.location.extra
    (r,) = found[replaced]
    assert r.location.extra["note"] == REPLACED
    assert d.location.line == 1 and d.location.column == 16


def test_opaque_whiteout_hides_the_lower_folder_but_not_its_own_layer() -> None:
    lower, upper = key("project", seed=44), key("project", seed=45)
    layers: list[Layer] = [
        {"etc/app/secret.txt": env(lower)},
        {"etc/app/.wh..wh..opq": b"", "etc/app/new.txt": env(upper)},
    ]
    hits, errors = scan(docker_save(layers))
    assert not errors
    found = by_secret(hits)
    assert found[lower][0].location.extra["note"] == DELETED
    assert "note" not in found[upper][0].location.extra


def test_whiteout_of_a_folder_marks_its_files() -> None:
    k = key("project", seed=46)
    layers: list[Layer] = [{"opt/tool/conf/key.txt": env(k)}, {"opt/.wh.tool": b""}]
    hits, _ = scan(docker_save(layers))
    (h,) = hits
    assert h.location.extra["note"] == DELETED


def test_image_config_env_and_history_say_where() -> None:
    k1, k2 = key("project", seed=47), key("svcacct", seed=48)
    cfg = config_json(
        env=["PATH=/usr/bin", f"OPENAI_API_KEY={k1}"],
        history=["/bin/sh -c #(nop) ADD file:abc in /", f"/bin/sh -c #(nop)  ENV OPENAI_API_KEY={k2}"],
    )
    hits, errors = scan(docker_save([{"a.txt": b"hello"}], config=cfg))
    assert not errors
    found = by_secret(hits)
    assert found[k1][0].location.extra["image_config"] == "config.Env[1]"
    # the key is both in history and, after the build, nowhere else: said once per place
    assert {h.location.extra["image_config"] for h in found[k2]} == {"history[1].created_by"}


def test_image_negatives_placeholders_and_plain_tar() -> None:
    layers: list[Layer] = [{"app/.env": b"OPENAI_API_KEY=sk-proj-YOURKEYHERE\n"}, {"app/.wh..env": b""}]
    hits, errors = scan(docker_save(layers))
    assert hits == [] and not errors
    # A plain tar (no manifest.json) is an ordinary archive: no image fields.
    k = key("project", seed=49)
    hits, errors = scan(make_tar({"a/.wh.b": b"", "a/c.txt": env(k)}), "plain.tar")
    (h,) = hits
    assert h.location.member == ("a/c.txt",) and "layer" not in h.location.extra


def test_image_fits_the_default_depth_and_nested_archive_in_layer() -> None:
    import zipfile

    k = key("project", seed=50)
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as z:
        z.writestr("conf/app.properties", f"openai.key={k}\n")
    layers: list[Layer] = [{"opt/app.jar": bio.getvalue()}]
    hits, errors = scan(docker_save(layers, gz=True))  # default options
    assert not errors
    (h,) = hits
    assert h.location.member[1:] == ("opt/app.jar", "conf/app.properties")


def test_layer_bomb_refused_and_other_layers_read() -> None:
    k = key("project", seed=51)
    layers: list[Layer] = [{"zero.bin": b"\0" * (4 * 1024 * 1024)}, {"k.txt": env(k)}]
    hits, errors = scan(docker_save(layers, gz=True), archive_ratio_floor=1024)
    assert {h.secret.decode() for h in hits} == {k}
    assert errors and any("zip bomb" in e.message for e in errors)


def test_truncated_image_never_raises_and_a_damaged_layer_is_an_error() -> None:
    k = key("project", seed=52)
    data = docker_save([{"a.txt": env(k)}, {"b.txt": b"x" * 5000}], gz=True)
    for cut in (600, 1100, 2000, len(data) // 2, len(data) - 700):
        hits, _errors = scan(data[:cut])
        assert isinstance(hits, list)
    files = oci_layout([([{"a.txt": env(k)}, {"b.txt": b"y" * 5000}], None)])
    index = json.loads(files["index.json"])
    manifest = json.loads(files["blobs/sha256/" + index["manifests"][0]["digest"][7:]])
    top = "blobs/sha256/" + manifest["layers"][1]["digest"][7:]
    files[top] = files[top][: len(files[top]) // 2]
    hits, errors = scan(make_tar(dict(files.items())), "oci.tar")
    assert {h.secret.decode() for h in hits} == {k}
    assert any("layer 2 damaged" in e.message for e in errors), errors


# --- OCI layout -------------------------------------------------------------------------


def test_oci_layout_tar_shared_layer_scanned_once() -> None:
    k1, k2 = key("project", seed=53), key("project", seed=54)
    base: Layer = {"etc/base.env": env(k1)}
    files = oci_layout([([base, {"app/a.txt": b"a"}], None), ([base, {"app/b.env": env(k2)}], None)])
    hits, errors = scan(make_tar(dict(files.items())), "oci.tar")
    assert not errors
    found = by_secret(hits)
    assert len(found[k1]) == 1  # one blob, two manifests: scanned once
    assert found[k1][0].location.extra["layer"] == 1
    assert found[k2][0].location.extra["layer"] == 2
    assert found[k2][0].location.member[1] == "app/b.env"


def test_oci_layout_whiteout_and_config_env() -> None:
    k1, k2 = key("project", seed=55), key("admin", seed=56)
    cfg = config_json(env=[f"OPENAI_ADMIN_KEY={k2}"])
    files = oci_layout([([{"root/.env": env(k1)}, {"root/.wh..env": b""}], cfg)])
    hits, errors = scan(make_tar(dict(files.items())), "oci.tar")
    assert not errors
    found = by_secret(hits)
    assert found[k1][0].location.extra["note"] == DELETED
    assert found[k2][0].location.extra["image_config"] == "config.Env[0]"


def test_oci_zstd_layer_said_not_opened() -> None:
    files = oci_layout([([{"a.txt": b"a"}], None)], zstd_layer=True)
    hits, errors = scan(make_tar(dict(files.items())), "oci.tar")
    assert hits == []
    assert any("zstd" in e.message and "not opened" in e.message for e in errors)


def test_hostile_digest_never_opened(tmp_path: Path) -> None:
    files = oci_layout([([{"a.txt": b"a"}], None)])
    index = json.loads(files["index.json"])
    index["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "digest": "sha256:../../../etc/passwd", "size": 1})
    files["index.json"] = json.dumps(index).encode()
    hits, errors = scan(make_tar(dict(files.items())), "oci.tar")
    assert hits == [] and not errors


def write_layout(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args], capture_output=True, text=True, check=False
    )


def test_cli_oci_layout_folder_reports_layers_and_note(tmp_path: Path) -> None:
    k1, k2 = key("project", seed=57), key("svcacct", seed=58)
    files = oci_layout([([{"app/.env": env(k1)}, {"app/.wh..env": b"", "srv/k": env(k2)}], None)])
    write_layout(tmp_path / "layout", files)
    out = run("scan", "--format", "json", str(tmp_path))
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    locs = {f["redacted"][-4:]: f["locations"] for f in doc["findings"]}
    (l1,) = locs[k1[-4:]]
    assert l1["extra"]["note"] == DELETED
    assert l1["extra"]["layer"] == 1
    assert "layout" in l1["path"] and "app/.env" in json.dumps(l1)
    assert len(doc["findings"]) == 2  # each key once: the blobs are not scanned again as files
    text = run("scan", str(tmp_path))
    assert DELETED in text.stdout
    assert k1 not in text.stdout


def test_cli_docker_save_text_json_sarif_show_the_note(tmp_path: Path) -> None:
    k = key("project", seed=59)
    (tmp_path / "img.tar").write_bytes(docker_save([{"app/.env": env(k)}, {"app/.wh..env": b""}], gz=True))
    text = run("scan", str(tmp_path))
    assert text.returncode == 1
    assert DELETED in text.stdout and "image layer 1" in text.stdout
    sarif = json.loads(run("scan", "--format", "sarif", str(tmp_path)).stdout)
    (result,) = sarif["runs"][0]["results"]
    assert DELETED in result["message"]["text"]
    assert result["properties"]["note"] == DELETED
    assert k not in json.dumps(sarif)


def test_docker_25_save_format_read_once_through_manifest_json() -> None:
    """Docker 25+ writes an OCI layout and a manifest.json naming the same blobs."""
    k = key("project", seed=60)
    files = oci_layout([([{"app/.env": env(k)}, {"app/.wh..env": b""}], None)])
    index = json.loads(files["index.json"])
    manifest = json.loads(files["blobs/sha256/" + index["manifests"][0]["digest"][7:]])
    files["manifest.json"] = json.dumps(
        [
            {
                "Config": "blobs/sha256/" + manifest["config"]["digest"][7:],
                "RepoTags": ["app:1"],
                "Layers": ["blobs/sha256/" + d["digest"][7:] for d in manifest["layers"]],
            }
        ]
    ).encode()
    hits, errors = scan(make_tar(dict(files.items())))
    assert not errors
    (h,) = hits
    assert h.location.extra["note"] == DELETED
    assert h.location.extra["layer_digest"] == manifest["layers"][0]["digest"]
    assert h.location.member[0] == manifest["layers"][0]["digest"][:19]


def test_oci_folder_symlinked_blob_not_followed(tmp_path: Path) -> None:
    k = key("project", seed=61)
    outside = tmp_path / "outside.env"
    outside.write_bytes(env(k))
    files = oci_layout([([{"a.txt": b"a"}], None)])
    write_layout(tmp_path / "layout", files)
    index = json.loads(files["index.json"])
    manifest = json.loads(files["blobs/sha256/" + index["manifests"][0]["digest"][7:]])
    layer = tmp_path / "layout" / "blobs" / "sha256" / manifest["layers"][0]["digest"][7:]
    layer.unlink()
    layer.symlink_to(outside)
    out = run("scan", "--format", "json", str(tmp_path / "layout"))
    assert json.loads(out.stdout)["findings"] == []
    assert out.returncode == 2  # the missing layer is said
    assert "missing" in out.stderr


def test_image_layers_open_at_archive_depth_1_and_not_at_0() -> None:
    k = key("project", seed=62)
    data = docker_save([{"app/.env": env(k)}], gz=True)
    hits, errors = scan(data, archive_depth=1)
    assert [h.location.member[-1] for h in hits] == ["app/.env"] and not errors
    hits, errors = scan(data, archive_depth=0)
    assert hits == [] and errors == []  # no archive opened, by the user's choice


def test_build_arg_in_history_run_line_and_legacy_v1_json() -> None:
    k1, k2 = key("svcacct", seed=63), key("project", seed=64)
    cfg = config_json(
        history=[
            "/bin/sh -c #(nop) ARG OPENAI_API_KEY",
            f"|1 OPENAI_API_KEY={k1} /bin/sh -c pip install -r requirements.txt",
        ]
    )
    data = docker_save([{"a.txt": b"a"}], config=cfg)
    # a legacy v1 layer json beside layer.tar carries the container config too
    members: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for info in tar.getmembers():
            f = tar.extractfile(info)
            members[info.name] = None if f is None else f.read()
            if info.name.endswith("/VERSION"):
                members[info.name[: -len("VERSION")] + "json"] = json.dumps(
                    {"container_config": {"Env": [f"OPENAI_API_KEY={k2}"]}}
                ).encode()
    hits, errors = scan(make_tar(members))
    assert not errors
    found = by_secret(hits)
    assert found[k1][0].location.extra["image_config"] == "history[1].created_by"
    assert found[k2][0].location.member[-1].endswith("/json")


# --- compressed image tarballs (docker save img | gzip) -----------------------------------


def compress(data: bytes, how: str) -> bytes:
    import bz2
    import lzma

    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "bzip2":
        return bz2.compress(data)
    return lzma.compress(data)


@pytest.mark.parametrize("how", ["gzip", "bzip2", "xz"])
def test_compressed_docker_save_is_an_image_at_default_options(how: str) -> None:
    deleted, kept, in_env = key("project", seed=70), key("svcacct", seed=71), key("project", seed=72)
    cfg = config_json(env=["PATH=/usr/bin", f"OPENAI_API_KEY={in_env}"])
    layers: list[Layer] = [
        {"app/": None, "app/.env": env(deleted)},
        {"srv/config.txt": env(kept)},
        {"app/.wh..env": b""},
    ]
    plain = docker_save(layers, config=cfg, gz=True)
    want, errs = scan(plain)
    assert not errs
    hits, errors = scan(compress(plain, how), "img.tar.gz")
    assert not errors
    found = by_secret(hits)
    assert set(found) == {deleted, kept, in_env}
    assert all(len(v) == 1 for v in found.values())  # each blob once
    (d,) = found[deleted]
    assert d.location.extra["note"] == DELETED and d.location.extra["layer"] == 1
    assert d.location.member[0].startswith("sha256:") and d.location.member[-1] == "app/.env"
    assert "note" not in found[kept][0].location.extra
    assert found[in_env][0].location.extra["image_config"] == "config.Env[1]"
    # the same locations as the uncompressed image
    assert sorted((h.location.member, h.location.extra.get("note")) for h in hits) == sorted(
        (h.location.member, h.location.extra.get("note")) for h in want
    )


def test_gzipped_oci_layout_tar_whiteouts_config_and_shared_layer() -> None:
    k1, k2, k3 = key("project", seed=73), key("admin", seed=74), key("project", seed=75)
    cfg = config_json(env=[f"OPENAI_ADMIN_KEY={k2}"])
    base: Layer = {"etc/base.env": env(k3)}
    files = oci_layout(
        [([base, {"root/.env": env(k1)}, {"root/.wh..env": b""}], cfg), ([base, {"x": b"x"}], None)]
    )
    tar = make_tar(dict(files.items()))
    hits, errors = scan(gzip.compress(tar), "oci.tar.gz")
    assert not errors
    found = by_secret(hits)
    assert found[k1][0].location.extra["note"] == DELETED
    assert found[k1][0].location.extra["layer"] == 2
    assert found[k2][0].location.extra["image_config"] == "config.Env[0]"
    assert len(found[k3]) == 1 and found[k3][0].location.extra["layer"] == 1


def test_compressed_image_at_archive_depth_1_and_nested_in_a_zip() -> None:
    import zipfile

    k = key("project", seed=76)
    data = gzip.compress(docker_save([{"app/.env": env(k)}, {"app/.wh..env": b""}], gz=True))
    hits, errors = scan(data, "img.tar.gz", archive_depth=1)
    (h,) = hits
    assert h.location.extra["note"] == DELETED and not errors
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as z:
        z.writestr("dist/img.tar.gz", data)
    hits, errors = scan(bio.getvalue(), "bundle.zip", archive_depth=2)
    (h,) = hits
    assert h.location.member[0] == "dist/img.tar.gz" and h.location.extra["note"] == DELETED
    assert not errors


def test_compressed_image_bomb_refused() -> None:
    k = key("project", seed=77)
    # 16 MiB of zeros in an uncompressed layer: the gzip'd image is about 16 KiB (1000:1).
    layers: list[Layer] = [{"k.txt": env(k)}, {"zero.bin": b"\0" * (16 * 1024 * 1024)}]
    data = gzip.compress(docker_save(layers))
    _hits, errors = scan(data, "img.tar.gz")  # default options
    assert any("image refused" in e.message and "zip bomb" in e.message for e in errors), errors
    assert all(e.where == "img.tar.gz" for e in errors if "image refused" in e.message)
    # the whole inflated image counts against archive_max_bytes
    small = gzip.compress(docker_save([{"k.txt": env(k)}, {"b.bin": bytes(range(256)) * 4096}]))
    _hits, errors = scan(small, "img.tar.gz", archive_max_bytes=512 * 1024)
    assert any("inflates to more than 524288 bytes" in e.message for e in errors), errors


def test_plain_tgz_is_not_listed_as_an_image() -> None:
    k = key("project", seed=78)
    data = gzip.compress(make_tar({"package/index.js": env(k), "package/manifest.json": b"{}"}))
    hits, errors = scan(data, "pkg.tgz")
    (h,) = hits
    assert h.location.member == ("package/index.js",) and not errors


def test_cli_gzipped_docker_save_text_and_json_show_the_note(tmp_path: Path) -> None:
    k = key("project", seed=79)
    data = gzip.compress(docker_save([{"app/.env": env(k)}, {"app/.wh..env": b""}], gz=True))
    (tmp_path / "img.tar.gz").write_bytes(data)
    text = run("scan", str(tmp_path))
    assert text.returncode == 1, text.stderr
    assert DELETED in text.stdout and "image layer 1" in text.stdout
    assert k not in text.stdout
    out = run("scan", "--format", "json", str(tmp_path))
    assert out.returncode == 1
    (finding,) = json.loads(out.stdout)["findings"]
    (loc,) = finding["locations"]
    assert loc["extra"]["note"] == DELETED and loc["extra"]["layer"] == 1
    assert loc["member"][-1] == "app/.env"
    assert k not in out.stdout


def test_compressed_image_read_forward_not_once_per_layer() -> None:
    """Blobs are read in their order in the tar: a compressed image of six layers is
    decompressed about twice (listing, reading), not once per layer; the work of seeking is
    bounded to four times archive_max_bytes, so reading it layer by layer from the top down
    would be refused here."""
    import random

    rng = random.Random(5)
    keys = [key("project", seed=80 + i) for i in range(6)]
    layers: list[Layer] = [
        {f"l{i}/k.txt": env(k), f"l{i}/noise.bin": rng.randbytes(1_200_000)} for i, k in enumerate(keys)
    ]
    tar = docker_save(layers)
    hits, errors = scan(gzip.compress(tar), "img.tar.gz", archive_max_bytes=len(tar) + 4096)
    assert not errors
    assert {h.secret.decode() for h in hits} == set(keys)
