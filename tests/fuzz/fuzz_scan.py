"""Atheris fuzz target for keyscan's content engine (not run in CI, not a pytest module).

    pip install atheris            # into the venv; not a project dependency
    python tests/fuzz/fuzz_scan.py --seed-corpus DIR    # write seed inputs (keys generated)
    python tests/fuzz/fuzz_scan.py -max_total_time=600 -rss_limit_mb=2048 DIR

Each input is split by its first byte into options (decode on/off, archive depth, path kind:
text, notebook, archive name) and content; ``keyscan.content.scan_buffer`` must return hits
whose locations are sane (offsets inside the buffer, or inside an archive member; lines and
columns >= 1) and never raise. A planted-key mode (first byte's top bit) plants a generated
key in the fuzzed bytes, plainly, base64-encoded (also wrapped in an indented block), in hex,
broken by a line continuation or split into adjacent string literals, and checks it is found exactly (nothing glued to it).
"""

from __future__ import annotations

import base64
import sys

import atheris

with atheris.instrument_imports():
    import keyscan.formats.archives
    import keyscan.formats.images
    import keyscan.formats.notebooks
    import keyscan.formats.office
    import keyscan.formats.pdf
    import keyscan.sources.files  # noqa: F401  (imported lazily by content: instrument them)
    from keyscan.content import ContentOptions, scan_buffer
    from keyscan.detector import Detector
    from keyscan.formats import archive_kind
    from keyscan.keygen import jwt, key
    from keyscan.models import Location, ScanError
    from keyscan.rules import load_rules

DET = Detector(load_rules())
KEY = key("project", seed=1).encode()
PATHS = ["f.txt", "nb.ipynb", "dist/app.whl", "data.bin"]  # Office, asar...: by content


def test_one_input(data: bytes) -> None:
    if not data:
        return
    ctl, body = data[0], data[1:]
    options = ContentOptions(decode=bool(ctl & 1), archive_depth=(ctl >> 1) & 3)
    path = PATHS[(ctl >> 3) & 3]
    planted = None
    if ctl & 0x80:
        mid = len(body) // 2
        planted = KEY if ctl & 0x40 else _encoded(KEY, len(body))
        body = body[:mid] + b" " + planted + b" " + body[mid:]
    errors: list[ScanError] = []
    hits = scan_buffer(DET, body, Location(path, 0, 0, 0), options, errors=errors)
    for h in hits:
        loc = h.location
        assert loc.line >= 1 and loc.column >= 1, loc
        if not loc.member:
            assert 0 <= loc.offset < len(body), loc
    if planted is None or (planted != KEY and not options.decode):
        return
    # The planted key sits between spaces: it must be found, unless the first bytes make the
    # buffer an archive, or UTF-16 text (a BOM, or NULs in its first 4 KB).
    if archive_kind(body[:512]) and options.archive_depth > 0:
        return
    if body[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\0" in body[:4096]:
        return
    assert any(h.secret == KEY for h in hits), "planted key missed"
    # The decoded key never carries a scrap of its encoding or of the bytes around it.
    assert all(h.secret == KEY for h in hits if h.secret.startswith(KEY[:24])), "key + junk"


def _encoded(k: bytes, n: int) -> bytes:
    """The key encoded one of the ways the decoders undo, chosen by n: base64, base64 wrapped
    at a column from 9 in an indented block, hex, broken by a line continuation, split into
    two string literals joined by ``+``."""
    form = n % 5
    if form == 0:
        return base64.b64encode(k)
    if form == 1:
        flat = base64.b64encode(b"x" * (n % 3) + k)
        width = 9 + n % 80
        return b"|\n" + b"\n".join(b"  " + flat[i : i + width] for i in range(0, len(flat), width))
    if form == 2:
        return k.hex().encode()
    cut = 1 + n % (len(k) - 1)
    if form == 4:  # adjacent string literals, concatenated (nothing can join on outside)
        return b'("' + k[:cut] + b'" + "' + k[cut:] + b'")'
    return k[:cut] + b"\\\n    " + k[cut:]


def write_seeds(folder: str) -> None:
    """Seed inputs: a zip, a tar.gz, a gz, a notebook, base64, percent, escapes, UTF-16,
    quoted-printable, string literals concatenated, an Azure key by its endpoint, character references, \\x escapes, a Codex
    CLI auth.json (ChatGPT login JWTs and refresh token); Office documents (docx, xlsx, pptx,
    odt, ods: a key split across runs), an Electron asar, a .deb (ar), a crx, an rpm (cpio);
    PDFs (a key split across TJ pieces in a FlateDecode stream, in /URI and /Title), container
    images (docker save with gzip layers and a whiteout, an OCI layout tar, a config Env key);
    the builders are the tests' own (tests/test_detection_v2_*.py)."""
    import gzip
    import io
    import json
    import os
    import tarfile
    import zipfile

    k = key("svcacct", seed=2)
    seeds: dict[str, bytes] = {}
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("pkg/config.py", f"K='{k}'\n")
    seeds["zip"] = bytes([0b00010110]) + bio.getvalue()
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w:gz") as t:
        raw = f"k={k}".encode()
        info = tarfile.TarInfo("a.env")
        info.size = len(raw)
        t.addfile(info, io.BytesIO(raw))
    seeds["tgz"] = bytes([0b00010110]) + bio.getvalue()
    seeds["gz"] = bytes([0b00000111]) + gzip.compress(f"k={k}".encode())
    nb = {"cells": [{"cell_type": "code", "source": [f"k = '{k}'\n"], "outputs": []}]}
    seeds["ipynb"] = bytes([0b00001001]) + json.dumps(nb).encode()
    seeds["b64"] = bytes([1]) + b"data: " + base64.b64encode(k.encode())
    seeds["pct"] = bytes([1]) + "".join(f"%{b:02X}" for b in k.encode()).encode()
    seeds["esc"] = bytes([1]) + k.replace("-", "\\u002d").encode()
    seeds["u16"] = bytes([1]) + f"k = {k}\n".encode("utf-16")
    seeds["ref"] = bytes([1]) + "".join(f"&#{ord(c)};" for c in k).encode()
    seeds["ux"] = bytes([1]) + "".join(f"\\x{ord(c):02x}" for c in k).encode()
    wrapped = base64.b64encode(k.encode())
    seeds["b64-block"] = bytes([1]) + b"data: |\r\n" + b"\r\n".join(
        b"    " + wrapped[i : i + 37] for i in range(0, len(wrapped), 37)
    )
    seeds["hex"] = bytes([1]) + k.encode().hex().encode()
    seeds["hex-c"] = bytes([1]) + b"char openai[] = {" + ", ".join(
        f"0x{b:02x}" for b in k.encode()
    ).encode() + b"};"
    seeds["u32"] = bytes([1]) + f"k = {k}\n".encode("utf-32")
    seeds["u32be"] = bytes([1]) + f"k = {k}\n".encode("utf-32-be")
    seeds["cont"] = bytes([1]) + f"ENV OPENAI_API_KEY={k[:50]}\\\n    {k[50:]}\n".encode()
    seeds["yaml-folded"] = bytes([1]) + f"key: >\n  {k[:70]}\n  {k[70:]}\n".encode()
    seeds["concat"] = bytes([1]) + f'k = ("{k[:60]}" +\n  \'{k[60:]}\')\n'.encode()
    seeds["concat-php"] = bytes([1]) + f"$k = '{k[:9]}' . '{k[9:90]}' . '{k[90:]}';".encode()
    seeds["planted"] = bytes([0x81]) + b"abc" * 11
    seeds["qp"] = bytes([1]) + f"OPENAI_API_KEY=3D{k[:40]}=\n{k[40:]}\n".encode()
    seeds["azure"] = bytes([1]) + b"base: https://x.openai.azure.com/\nsecret: " + os.urandom(
        16
    ).hex().encode()
    auth = {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {"id_token": jwt("id", seed=3), "access_token": jwt("access", seed=4),
                   "refresh_token": os.urandom(30).hex()},
        "last_refresh": "2025-09-01T10:00:00Z",
    }
    seeds["codex"] = bytes([1]) + json.dumps(auth).encode()
    pat = {"auth_mode": "personalAccessToken", "personal_access_token": key("codex-pat", seed=5)}
    seeds["codex-pat"] = bytes([1]) + json.dumps(pat).encode()
    seeds["azure-host"] = bytes([1]) + (
        b"base: https://xx.openai.azure.com.evil.io@yy.openai.azure.com:8443/\nsecret: "
        + os.urandom(16).hex().encode()
    )
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
    from tests.test_detection_v2_disguise import CASES
    from tests.test_detection_v2_office import docx, odf, pptx, split, xlsx

    seeds["docx"] = bytes([0b00000110]) + docx([["intro"], ["key: ", *split(k, 3)]])
    seeds["xlsx"] = bytes([0b00000110]) + xlsx([split(k, 2)], [("B2", "0")], {"C2": split(k, 3)})
    seeds["pptx"] = bytes([0b00000110]) + pptx({2: [split(k, 2)]})
    span = "".join(f"<text:span>{p}</text:span>" for p in split(k, 3))
    seeds["odt"] = bytes([0b00000110]) + odf("odt", f"<text:p>{span}</text:p>")
    seeds["ods"] = bytes([0b00000110]) + odf(
        "ods",
        '<table:table table:name="S"><table:table-row><table:table-cell>'
        f"<text:p>{span}</text:p></table:table-cell></table:table-row></table:table>",
    )
    for kind in ("asar", "deb", "crx3", "rpm-gz", "rpm-xz", "ar-bsd-long-names", "gem"):
        seeds[kind] = bytes([0b00011110]) + CASES[kind][0]()
    seeds.update(_container_seeds(k))
    os.makedirs(folder, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(folder, f"seed-{name}"), "wb") as fh:
            fh.write(data)


def _container_seeds(k: str) -> dict[str, bytes]:
    """PDFs and image tarballs, built by the test suite's generators (decode on, depth 2)."""
    import gzip
    import os

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from tests.test_detection_v2_images import config_json, docker_save, make_tar, oci_layout
    from tests.test_detection_v2_pdf import make_pdf, page, split, tj_array

    ctl = bytes([0b00000101])
    env = f"OPENAI_API_KEY={k}\n".encode()
    layers: list[dict[str, bytes | None]] = [
        {"app/": None, "app/.env": env},
        {"app/.wh..env": b"", "srv/.wh..wh..opq": b"", "srv/x": b"x"},
    ]
    uri = b"<< /Subtype /Link /A << /S /URI /URI (https://x.test/?k=" + k.encode() + b") >> >>"
    return {
        "pdf": ctl
        + make_pdf([page(tj_array(split(k, 5)))], flate=True, info={"Title": k.encode()},
                   annots=[uri]),
        "pdf-plain": ctl + make_pdf([page(b"(" + k.encode() + b") Tj")]),
        "docker": ctl + docker_save(layers, config=config_json(env=[f"K={k}"]), gz=True),
        "oci": ctl + make_tar(dict(oci_layout([(layers, None)]).items())),
        # docker save img | gzip: read as an image too (issue 15, containers follow-ups)
        "docker-tgz": ctl
        + gzip.compress(docker_save(layers, config=config_json(env=[f"K={k}"]), gz=True)),
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--seed-corpus":
        write_seeds(sys.argv[2])
        return
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
