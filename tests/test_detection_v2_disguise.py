"""Issue 15, containers: "a zip or tar in disguise". Every kind of package a repository or a
build output carries is built here at run time with a generated key inside and must be
opened by its content (magic bytes), whatever its name: zip-based packages (apk, aab, jar,
war, ear, aar, whl, egg, nupkg, vsix, xpi, ipa, epub), crx (a zip behind a header), npm
tgz, sdist, gem (a tar holding data.tar.gz), deb (ar), rpm (cpio in a compressed payload),
Electron asar."""

from __future__ import annotations

import gzip
import json
import lzma
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from keyscan.content import ContentOptions, scan_buffer
from keyscan.detector import Detector
from keyscan.formats import archive_kind
from keyscan.keygen import key
from keyscan.models import Location, ScanError
from keyscan.rules import load_rules
from tests.test_archives import make_tar, make_zip

DET = Detector(load_rules())


def make_ar(members: list[tuple[str, bytes]], style: str = "gnu") -> bytes:
    """A Unix ar archive; names longer than 15 characters go to the GNU ``//`` table or,
    BSD style, after the header (``#1/<length>``)."""
    out = [b"!<arch>\n"]
    table = b""
    entries: list[tuple[bytes, bytes]] = []
    for name, data in members:
        raw = name.encode()
        if len(raw) <= 15:
            entries.append(((name + "/").encode() if style == "gnu" else raw, data))
        elif style == "gnu":
            entries.append((f"/{len(table)}".encode(), data))
            table += raw + b"/\n"
        else:
            entries.append((f"#1/{len(raw)}".encode(), raw + data))
    if table:
        entries.insert(0, (b"//", table))
    for field, data in entries:
        header = field.ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6)
        header += b"100644".ljust(8) + str(len(data)).encode().ljust(10) + b"`\n"
        assert len(header) == 60
        out.append(header + data + (b"\n" if len(data) % 2 else b""))
    return b"".join(out)


def make_asar(files: dict[str, bytes], unpacked: dict[str, bytes] | None = None) -> bytes:
    """An Electron asar: pickle(uint32 header size), pickle(JSON index), files."""
    index: dict[str, object] = {"files": {}}
    blobs = b""
    for path, data in {**files, **(unpacked or {})}.items():
        node = index
        *folders, leaf = path.split("/")
        for folder in folders:
            node = node["files"].setdefault(folder, {"files": {}})  # type: ignore[index]
        if path in (unpacked or {}):
            node["files"][leaf] = {"size": len(data), "unpacked": True}  # type: ignore[index]
        else:
            node["files"][leaf] = {"size": len(data), "offset": str(len(blobs))}  # type: ignore[index]
            blobs += data
    text = json.dumps(index, separators=(",", ":")).encode()
    payload = struct.pack("<I", len(text)) + text + b"\0" * (-len(text) % 4)
    header = struct.pack("<I", len(payload)) + payload
    return struct.pack("<II", 4, len(header)) + header + blobs


def make_cpio(files: dict[str, bytes]) -> bytes:
    """A newc cpio archive, as in an rpm payload (a folder entry first)."""
    out = b""
    entries = [("./usr", 0o040755, b""), *((n, 0o100644, d) for n, d in files.items())]
    for i, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")]):
        raw = name.encode() + b"\0"
        fields = [i + 1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0]
        header = b"070701" + b"".join(f"{v:08X}".encode() for v in fields)
        out += header + raw + b"\0" * (-(len(header) + len(raw)) % 4)
        out += data + b"\0" * (-len(data) % 4)
    return out


def rpm_header(entries: int, data: int) -> bytes:
    return b"\x8e\xad\xe8\x01\0\0\0\0" + struct.pack(">II", entries, data)


def make_rpm(files: dict[str, bytes], compress: Callable[[bytes], bytes]) -> bytes:
    lead = b"\xed\xab\xee\xdb\x03\x00" + b"\0" * 90
    sig = rpm_header(1, 5) + b"\0" * 16 + b"sig!!"
    sig += b"\0" * (-len(sig) % 8)
    header = rpm_header(2, 7) + b"\0" * 32 + b"header!"
    return lead + sig + header + compress(make_cpio(files))


def crx(version: int, archive: bytes) -> bytes:
    if version == 3:
        proto = b"\x12\x08fake-proof-of-signature"
        return b"Cr24" + struct.pack("<II", 3, len(proto)) + proto + archive
    pub, sig = b"P" * 162, b"S" * 128
    return b"Cr24" + struct.pack("<III", 2, len(pub), len(sig)) + pub + sig + archive


def scan(data: bytes, path: str) -> tuple[list[tuple[str, str]], list[ScanError]]:
    errors: list[ScanError] = []
    hits = scan_buffer(DET, data, Location(path, 0, 0, 0), ContentOptions(), errors=errors)
    return sorted((h.location.display_path, h.secret.decode()) for h in hits), errors


K = key("project", seed=1601)
ENV = f"OPENAI_API_KEY={K}\n".encode()
CLASS = b"\xca\xfe\xba\xbe\0\0\0\x34\0\x10\x01\0" + bytes([len(K)]) + K.encode() + b"\0\x07"

# kind: (container bytes, member chain where the key is)
CASES: dict[str, tuple[Callable[[], bytes], str]] = {
    "apk": (
        lambda: make_zip({"AndroidManifest.xml": b"\3\0\x08\0", "res/raw/app.env": ENV}),
        "res/raw/app.env",
    ),
    "aab": (
        lambda: make_zip({"base/manifest/AndroidManifest.xml": b"x", "base/assets/app.env": ENV}),
        "base/assets/app.env",
    ),
    "jar": (
        lambda: make_zip(
            {"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n", "com/x/Config.class": CLASS}
        ),
        "com/x/Config.class",
    ),
    "war": (
        lambda: make_zip({"WEB-INF/web.xml": b"<web-app/>", "WEB-INF/classes/app.properties": ENV}),
        "WEB-INF/classes/app.properties",
    ),
    "ear": (
        lambda: make_zip(
            {
                "META-INF/application.xml": b"<application/>",
                "web.war": make_zip({"WEB-INF/app.env": ENV}),
            }
        ),
        "web.war!WEB-INF/app.env",
    ),
    "aar": (
        lambda: make_zip(
            {
                "AndroidManifest.xml": b"<manifest/>",
                "classes.jar": make_zip({"com/x/Config.class": CLASS}),
            }
        ),
        "classes.jar!com/x/Config.class",
    ),
    "whl": (lambda: make_zip({"pkg/__init__.py": b"", "pkg/settings.py": ENV}), "pkg/settings.py"),
    "egg": (
        lambda: make_zip({"EGG-INFO/PKG-INFO": b"Name: x\n", "pkg/settings.py": ENV}),
        "pkg/settings.py",
    ),
    "nupkg": (
        lambda: make_zip({"x.nuspec": b"<package/>", "content/appsettings.json": ENV}),
        "content/appsettings.json",
    ),
    "vsix": (
        lambda: make_zip({"extension.vsixmanifest": b"<x/>", "extension/dist/extension.js": ENV}),
        "extension/dist/extension.js",
    ),
    "xpi": (lambda: make_zip({"manifest.json": b"{}", "background.js": ENV}), "background.js"),
    "ipa": (
        lambda: make_zip(
            {"Payload/App.app/Info.plist": b"<plist/>", "Payload/App.app/config.env": ENV}
        ),
        "Payload/App.app/config.env",
    ),
    "epub": (
        lambda: make_zip(
            {"mimetype": b"application/epub+zip", "OEBPS/ch1.xhtml": b"<p>" + ENV + b"</p>"}
        ),
        "OEBPS/ch1.xhtml",
    ),
    "crx2": (
        lambda: crx(2, make_zip({"manifest.json": b"{}", "background.js": ENV})),
        "background.js",
    ),
    "crx3": (
        lambda: crx(3, make_zip({"manifest.json": b"{}", "background.js": ENV})),
        "background.js",
    ),
    "npm-tgz": (
        lambda: make_tar({"package/package.json": b"{}", "package/lib/config.js": ENV}, "w:gz"),
        "package/lib/config.js",
    ),
    "sdist": (
        lambda: make_tar(
            {"pkg-1.0/PKG-INFO": b"Name: pkg\n", "pkg-1.0/pkg/settings.py": ENV}, "w:gz"
        ),
        "pkg-1.0/pkg/settings.py",
    ),
    "gem": (
        lambda: make_tar(
            {
                "metadata.gz": gzip.compress(b"--- !ruby/object:Gem::Specification\n"),
                "data.tar.gz": make_tar({"lib/app/config.rb": ENV}, "w:gz"),
                "checksums.yaml.gz": gzip.compress(b"---\n"),
            }
        ),
        "data.tar.gz!lib/app/config.rb",
    ),
    "deb": (
        lambda: make_ar(
            [
                ("debian-binary", b"2.0\n"),
                ("control.tar.xz", make_tar({"./control": b"Package: x\n"}, "w:xz")),
                ("data.tar.xz", make_tar({"./etc/app/app.env": ENV}, "w:xz")),
            ]
        ),
        "data.tar.xz!./etc/app/app.env",
    ),
    "deb-gz": (
        lambda: make_ar(
            [("debian-binary", b"2.0\n"), ("data.tar.gz", make_tar({"./opt/app.env": ENV}, "w:gz"))]
        ),
        "data.tar.gz!./opt/app.env",
    ),
    "ar-gnu-long-names": (
        lambda: make_ar([("short.o", b"\0" * 7), ("a_very_long_object_name.o", ENV)]),
        "a_very_long_object_name.o",
    ),
    "ar-bsd-long-names": (
        lambda: make_ar([("short.o", b"\0" * 7), ("a_very_long_object_name.o", ENV)], "bsd"),
        "a_very_long_object_name.o",
    ),
    "rpm-gz": (
        lambda: make_rpm({"./usr/share/app/app.env": ENV}, gzip.compress),
        "usr/share/app/app.env",
    ),
    "rpm-xz": (lambda: make_rpm({"./etc/app.env": b"x" * 5 + ENV}, lzma.compress), "etc/app.env"),
    "asar": (
        lambda: make_asar(
            {"package.json": b"{}", "dist/main.js": b"x;" * 10 + ENV, "dist/z.js": b"y"}
        ),
        "dist/main.js",
    ),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_package_opened_by_content_whatever_its_name(kind: str) -> None:
    build, member = CASES[kind]
    data = build()
    for name in (f"build/out.{kind.split('-')[0]}", "blob"):
        found, errors = scan(data, name)
        assert errors == [], (kind, errors)
        assert found == [(f"{name}!{member}", K)], (kind, found)


def test_every_container_kind_is_recognised_by_magic() -> None:
    kinds = {kind: archive_kind(build()[:512]) for kind, (build, _) in CASES.items()}
    assert kinds["crx2"] == kinds["crx3"] == "crx"
    assert kinds["deb"] == kinds["ar-bsd-long-names"] == "ar"
    assert kinds["rpm-gz"] == kinds["rpm-xz"] == "rpm"
    assert kinds["asar"] == "asar"
    assert kinds["gem"] == "tar" and kinds["npm-tgz"] == "gzip"


def test_asar_unpacked_files_are_not_read_from_the_archive() -> None:
    k2 = key("svcacct", seed=1602)
    data = make_asar({"a.js": ENV}, unpacked={"native/x.node": f"K={k2}".encode()})
    found, errors = scan(data, "app.asar")
    assert found == [("app.asar!a.js", K)] and errors == []


@pytest.mark.parametrize(
    "kind,cut",
    [("deb", 100), ("asar", 40), ("rpm-gz", 200), ("ar-gnu-long-names", 75), ("crx3", 60)],
)
def test_truncated_containers_are_errors_not_crashes(kind: str, cut: int) -> None:
    data = CASES[kind][0]()[:cut]
    _found, errors = scan(data, f"x.{kind}")
    assert errors, kind
    assert all(isinstance(e, ScanError) for e in errors)


def test_hostile_asar_index_is_an_error() -> None:
    bad = make_asar({"a.js": ENV})
    text = json.dumps(
        {"files": {"a.js": {"offset": ["x"], "size": 3}, "b": {"offset": "999999", "size": 9}}}
    )
    raw = text.encode()
    payload = struct.pack("<I", len(raw)) + raw + b"\0" * (-len(raw) % 4)
    bad = (
        struct.pack("<II", 4, len(payload) + 4)
        + struct.pack("<I", len(payload))
        + payload
        + b"tail"
    )
    found, errors = scan(bad, "evil.asar")
    assert found == [] and errors
    assert all("evil.asar" in e.where for e in errors)


def test_hostile_asar_offset_never_quotes_a_key_in_the_error() -> None:
    raw = json.dumps({"files": {"a.js": {"offset": K, "size": 3}}}).encode()
    payload = struct.pack("<I", len(raw)) + raw + b"\0" * (-len(raw) % 4)
    data = struct.pack("<II", 4, len(payload) + 4) + struct.pack("<I", len(payload)) + payload
    _, errors = scan(data, "evil.asar")
    assert errors and all(K not in e.message and K not in e.where for e in errors)


def test_rpm_with_an_unknown_payload_compression_is_scanned_raw() -> None:
    lead = b"\xed\xab\xee\xdb" + b"\0" * 92
    data = lead + rpm_header(0, 0) + rpm_header(0, 0) + b"\x28\xb5\x2f\xfd" + ENV
    found, errors = scan(data, "x.rpm")
    assert found == [("x.rpm!payload", K)] and errors == []


def test_deb_on_disk_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "app_1.0_amd64.deb"
    path.write_bytes(CASES["deb"][0]())
    proc = subprocess.run(
        [sys.executable, "-m", "keyscan", "scan", "-f", "json", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert K not in proc.stdout
    (finding,) = json.loads(proc.stdout)["findings"]
    (loc,) = finding["locations"]
    assert loc["member"] == ["data.tar.xz", "./etc/app/app.env"]


def test_fuzz_seeds_reach_the_new_parsers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The atheris target's seed corpus holds the new containers, and each seed is opened
    (its key found inside a member) by the target's own entry point (atheris stubbed out)."""
    import contextlib
    import types

    stub = types.ModuleType("atheris")
    stub.instrument_imports = contextlib.nullcontext  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "atheris", stub)
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "fuzz"))
    import fuzz_scan  # type: ignore[import-not-found]

    fuzz_scan.write_seeds(str(tmp_path))
    for kind in ("docx", "xlsx", "pptx", "odt", "ods", "asar", "deb", "crx3", "rpm-gz"):
        data = (tmp_path / f"seed-{kind}").read_bytes()
        fuzz_scan.test_one_input(data)
        ctl, body = data[0], data[1:]
        options = ContentOptions(decode=bool(ctl & 1), archive_depth=(ctl >> 1) & 3)
        errors: list[ScanError] = []
        hits = scan_buffer(DET, body, Location("seed", 0, 0, 0), options, errors=errors)
        assert errors == [] and hits and all(h.location.member for h in hits), kind
