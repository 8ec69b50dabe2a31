"""Encoded keys: base64/base64url, percent-encoding, string escapes, UTF-16, chains of them.

Every key is generated at run time (keyscan.keygen); a decoded finding must point at the
encoded text (offset, line, column) and name its decoders; a key found plainly is never
reported a second time through a decoder; --no-decode turns all of it off.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from keyscan.content import ContentOptions, scan_buffer, scan_stream
from keyscan.detector import Detector
from keyscan.findings import Hit
from keyscan.formats import decoders
from keyscan.keygen import MARKER, generate, key
from keyscan.models import Location, ScanError
from keyscan.rules import load_rules

DET = Detector(load_rules())


def scan(data: bytes, path: str = "f.txt", **opts: object) -> list[Hit]:
    errors: list[ScanError] = []
    hits = scan_buffer(
        DET,
        data,
        Location(path, 0, 0, 0),
        ContentOptions(**opts),
        errors=errors,  # type: ignore[arg-type]
    )
    assert not errors
    return hits


def line_col(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset) + 1
    start = data.rfind(b"\n", 0, offset) + 1
    return line, len(data[start:offset].decode()) + 1


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def test_needles_are_the_stable_base64_of_the_marker() -> None:
    """Derive, for the marker at each of the 3 byte alignments, the base64 characters that do
    not depend on the neighbouring bytes: each alignment has its needle, at the shift that
    tells where its 4-character group starts."""

    def stable(s: bytes, align: int) -> bytes:
        out = None
        for pre in (b"\x00" * align, b"\xff" * align):
            for post in (b"\x00\x00\x00", b"\xff\xff\xff"):
                e = base64.b64encode(pre + s + post)
                out = (
                    e
                    if out is None
                    else bytes(a if a == b else 63 for a, b in zip(out, e, strict=True))
                )
        assert out is not None
        return out

    # The marker is base64 of "OpenAI": its base64 is "OpenAI" encoded twice.
    assert base64.b64encode(base64.b64encode(b"OpenAI")).startswith(b"VDNCbGJrRk")
    assert len(decoders.BASE64_NEEDLES) == 3
    for align, (needle, shift) in enumerate(decoders.BASE64_NEEDLES):
        s = stable(MARKER.encode(), align)
        # The needle is the whole stable run, after `shift` unknown characters.
        assert s[:shift] == b"?" * shift and s[shift:].rstrip(b"?=") == needle


@pytest.mark.parametrize("family", ["project", "svcacct", "admin", "user-none", "legacy"])
@pytest.mark.parametrize("align", [0, 1, 2])
def test_base64_key_in_kubernetes_secret(family: str, align: int) -> None:
    k = key(family, seed=align)
    blob = b64("x" * align + k)
    doc = f"apiVersion: v1\nkind: Secret\ndata:\n  OPENAI_API_KEY: {blob}\n".encode()
    hits = scan(doc, "secret.yaml")
    assert [h.secret.decode() for h in hits] == [k]
    loc = hits[0].location
    assert loc.decoded == "base64"
    # The location is the encoded text of the key: the 4-character group holding its "s".
    encoded_start = doc.index(blob.encode()) + (align * 4) // 3
    assert loc.offset == encoded_start
    assert (loc.line, loc.column) == line_col(doc, encoded_start) == (4, 19 + (align * 4) // 3)


def test_base64_after_alphabet_text_is_decoded_at_the_right_alignment() -> None:
    """Text of the base64 alphabet glued before the blob (key=..., a data: URL) must not
    shift the 4-character groups: the needle fixes the alignment."""
    k = key("project", seed=3)
    for glue in ("key=", "data:text/plain;base64,", "abc", "ab", "a"):
        doc = f"{glue}{b64(k)}\n".encode()
        hits = scan(doc)
        assert [h.secret.decode() for h in hits] == [k], glue
        assert hits[0].location.offset == len(glue)


def test_base64url_and_wrapped_base64() -> None:
    k = key("svcacct", seed=4)
    # Bytes before the key make '+' and '/' appear; urlsafe turns them into '-' and '_'.
    raw = b"\xfb\xff\xfe" * 5 + k.encode()
    url = base64.urlsafe_b64encode(raw).decode()
    assert "-" in url or "_" in url
    hits = scan(f"token: {url}\n".encode())
    assert [h.secret.decode() for h in hits] == [k]
    # `base64` wraps at 76 columns: the key spans lines.
    wrapped = base64.encodebytes(b"OPENAI_API_KEY=" + k.encode() + b"\n")
    assert wrapped.count(b"\n") >= 3
    doc = b"-----\n" + wrapped
    hits = scan(doc)
    assert [h.secret.decode() for h in hits] == [k]
    assert hits[0].location.line == 2 and hits[0].location.decoded == "base64"


def test_percent_encoded_key_in_url() -> None:
    k = key("admin", seed=5)
    full = "".join(f"%{b:02X}" for b in k.encode())
    doc = f"GET /cb?state=1&token={full}&x=2 HTTP/1.1\n".encode()
    hits = scan(doc)
    assert [h.secret.decode() for h in hits] == [k]
    assert hits[0].location.decoded == "percent"
    assert hits[0].location.offset == doc.index(b"%73%6B")
    partial = k.replace("-", "%2D")
    doc2 = f"https://x.example/?k={partial}\n".encode()
    hits = scan(doc2)
    assert [h.secret.decode() for h in hits] == [k]
    assert hits[0].location.column == doc2.index(b"sk%2D") + 1


def test_percent_encoded_assignment_context() -> None:
    """An Azure-style key (32 hex) is found by its variable name, which is encoded too."""
    value = generate("{hex:31}7", seed=6)
    doc = f"q=AZURE_OPENAI_API_KEY%3D{value}%26next%3D1\n".encode()
    hits = scan(doc)
    assert [h.secret.decode() for h in hits] == [value]
    assert hits[0].location.decoded == "percent"
    assert scan(doc, decode=False) == []


def test_json_and_js_escapes() -> None:
    k = key("legacy", seed=7)
    doc = ('{"k": "' + k.replace("-", "\\u002d") + '"}\n').encode()
    hits = scan(doc, "x.json")
    assert [h.secret.decode() for h in hits] == [k]
    assert hits[0].location.decoded == "escape" and hits[0].location.offset == 7
    js = ("const k = '" + k.replace("-", "\\x2d") + "';\n").encode()
    assert [h.secret.decode() for h in scan(js, "a.js")] == [k]
    # A std-base64 value with escaped slashes, found by its name.
    value = generate("{b64:20}/{b64:20}9", seed=8)
    doc = ('{"openai_api_key": "' + value.replace("/", "\\/") + '"}\n').encode()
    hits = scan(doc)
    assert [h.secret.decode() for h in hits] == [value]
    assert hits[0].location.decoded == "escape"


@pytest.mark.parametrize(
    "encoding,bom",
    [
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("utf-16-le", b""),
        ("utf-16-be", b""),
    ],
)
def test_utf16_files(encoding: str, bom: bytes) -> None:
    k = key("user-none", seed=9)
    text = f"# réglages\r\nnom = 'é'\r\nOPENAI_API_KEY={k}\r\n"
    data = bom + text.encode(encoding)
    hits = scan(data, "settings.ini")
    assert [h.secret.decode() for h in hits] == [k]
    loc = hits[0].location
    assert loc.decoded == encoding.replace("-le", "le").replace("-be", "be")
    assert (loc.line, loc.column) == (3, 16)
    assert loc.binary is False
    assert data[loc.offset :].decode(encoding).startswith(k)


def test_chains_of_decoders() -> None:
    k = key("project", seed=10)
    # Partly percent-encoded: the marker stays plain, so its base64 is a needle.
    pct = k.replace("-", "%2d")
    doc = f"blob: {b64('url=' + pct)}\n".encode()
    hits = scan(doc)
    assert [(h.secret.decode(), h.location.decoded) for h in hits] == [(k, "base64>percent")]
    doc = f"cfg: {b64(json.dumps({'k': k}).replace('-', chr(92) + 'u002d'))}\n".encode()
    hits = scan(doc)
    assert [(h.secret.decode(), h.location.decoded) for h in hits] == [(k, "base64>escape")]
    # Documented limit: base64 of base64 shows no needle (README, "not detected").
    assert scan(f"double: {b64(b64('k=' + k))}\n".encode()) == []
    # UTF-16 text holding base64.
    data = f"line one\nv: {b64(k)}\n".encode("utf-16")
    hits = scan(data)
    assert [(h.secret.decode(), h.location.decoded) for h in hits] == [(k, "utf-16le>base64")]
    assert hits[0].location.line == 2


def test_plain_key_is_not_reported_twice() -> None:
    k = key("project", seed=11)
    # Escapes around a plain key make its line a decoding candidate: still one hit, plain.
    doc = ('{"a": "caf\\u00e9 \\/", "k": "' + k + '", "b": "\\u00e9"}\n').encode()
    hits = scan(doc)
    assert [(h.secret.decode(), h.location.decoded) for h in hits] == [(k, None)]
    # The same key plainly and base64-encoded elsewhere: two locations, one of each.
    doc = f"a={k}\nb={b64(k)}\n".encode()
    hits = scan(doc)
    assert sorted((h.location.line, h.location.decoded or "") for h in hits) == [
        (1, ""),
        (2, "base64"),
    ]


def test_no_decode_turns_decoding_off() -> None:
    k = key("svcacct", seed=12)
    doc = f"a: {b64(k)}\nb: {k.replace('-', '%2D')}\n".encode()
    assert len(scan(doc)) == 2
    assert scan(doc, decode=False) == []
    assert scan(f"x={k}\n".encode("utf-16"), decode=False) == []


def test_encoded_key_across_a_chunk_boundary_is_found_once() -> None:
    """A chunked reader (files, stdin) sees a key in the overlap twice: reported once."""
    k = key("project", seed=13)
    enc = b64(k).encode()
    chunk = 16384
    for pos in range(chunk - 4096 - 400, chunk - 4096 + 400, 37):
        data = b"x" * pos + b" " + enc + b"\n" + b"y" * 9000
        template = Location("big.txt", 0, 0, 0)
        hits, _ = scan_stream(
            DET, io.BytesIO(data), template, ContentOptions(), chunk=chunk, errors=[]
        )
        assert [h.location.offset for h in hits] == [pos + 1], pos


def test_clean_text_decodes_nothing() -> None:
    """The prefilter: ordinary source code, JSON with escapes and URLs yield no region to
    decode (so clean scans pay only for a few substring searches)."""
    source = Path(decoders.__file__).read_bytes() + Path(json.__file__).read_bytes()
    sample = source + b'{"a": "caf\\u00e9"}\nhttps://x/?q=%20a\n'
    found = list(decoders.candidates(sample * 20))
    assert all(not d.data or DET.scan(d.data) == [] for d in found)
    assert len(found) <= 40 * 2  # only the escape lines, not the whole text


def test_decoding_work_is_bounded() -> None:
    """Many needles: regions are capped, and the buffer is still scanned to its end."""
    k = key("admin", seed=14)
    data = b"c2st" * 200_000 + b"\n" + b64(k).encode() + b"\n"
    regions = list(decoders.candidates(data))
    assert len(regions) <= decoders.MAX_REGIONS
    assert sum(len(d.data) for d in regions) <= decoders.MAX_DECODED_FACTOR * len(data) + (1 << 20)


def test_cli_reports_decoded_locations_and_no_decode(tmp_path: Path) -> None:
    k = key("project", seed=15)
    (tmp_path / "secret.yaml").write_text(f"data:\n  key: {b64(k)}\n")
    run = [sys.executable, "-m", "keyscan", "scan", "-f", "json", str(tmp_path)]
    proc = subprocess.run(run, capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stderr
    assert k not in proc.stdout
    doc = json.loads(proc.stdout)
    (loc,) = doc["findings"][0]["locations"]
    assert (loc["line"], loc["column"], loc["decoded"]) == (2, 8, "base64")
    proc = subprocess.run([*run, "--no-decode"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_many_keys_in_one_long_base64_blob() -> None:
    """An .env file base64-encoded whole: every key in it is found, wherever it falls
    relative to the decoding windows (2,048 characters after a needle): the second key is
    moved across the end of the first needle's window."""
    k1, k2 = key("project", seed=100), key("svcacct", seed=101)
    for gap in range(1380, 1600, 5):
        env = f"A={k1}\n" + "#" * gap + f"\nB={k2}\n"
        hits = scan(f"data: {b64(env)}\n".encode())
        assert sorted(h.secret.decode() for h in hits) == sorted([k1, k2]), gap


def test_options_travel_to_worker_processes(tmp_path: Path) -> None:
    """ContentOptions is pickled into worker processes with each batch: the workers honour
    --no-decode and --archive-depth."""
    import pickle

    from keyscan.sources import files

    k = key("admin", seed=16)
    (tmp_path / "s.yaml").write_text(f"v: {b64(k)}\n")
    tasks, _, _ = files.walk([str(tmp_path)])
    rules = load_rules()
    for decode, expected in ((True, [k]), (False, [])):
        job = pickle.loads(pickle.dumps((rules, ContentOptions(decode=decode), tasks)))
        out = files._worker(job)
        assert [h.secret.decode() for h in out.hits] == expected


def test_git_history_honours_no_decode(tmp_path: Path) -> None:
    k = key("project", seed=17)
    repo = tmp_path / "r"
    repo.mkdir()
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    (repo / "secret.yaml").write_text(f"data:\n  key: {b64(k)}\n")
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-qm", "k8s secret"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, env=env)
    base = [sys.executable, "-m", "keyscan", "git", "-f", "json", str(repo)]
    proc = subprocess.run(base, capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stderr
    (loc,) = json.loads(proc.stdout)["findings"][0]["locations"]
    assert (loc["path"], loc["line"], loc["decoded"]) == ("secret.yaml", 2, "base64")
    proc = subprocess.run([*base, "--no-decode"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("after", [b"\na+", b"\r\na+", b"\nab\n", b"\nQQ==\n"])
def test_base64_key_followed_by_a_short_token_on_the_next_line(after: bytes) -> None:
    """Found by the property test: a base64 run that goes on over a line break glued ``a+``
    onto the key's encoding, its decoding ended in a junk letter that the key's right half
    swallowed, and the key was reported as a malformed value that is not in the input."""
    import base64

    from keyscan.api import Scanner

    k = key("legacy", seed=0)
    found = Scanner().scan_text(b" " + base64.b64encode(k.encode()) + after).findings
    assert [(f.secret, f.rule_id) for f in found] == [(k, "openai-legacy-key")]
