"""Property tests (hypothesis): a planted key of any family, in arbitrary surroundings and
any supported encoding, is found exactly once at the right place; random bytes never crash
the engine; chunked reading finds what a whole-buffer scan finds."""

from __future__ import annotations

import base64
import io
import random
from typing import Any

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from keyscan.content import OVERLAP, ContentOptions, scan_buffer, scan_stream
from keyscan.detector import Detector
from keyscan.findings import Hit
from keyscan.keygen import EXPECTED_FAMILY, FAMILY_TEMPLATES, key
from keyscan.models import Location, ScanError
from keyscan.rules import load_rules

DET = Detector(load_rules())
FAMILIES = sorted(FAMILY_TEMPLATES)
DELIMS = [b" ", b"\n", b'"', b"'", b",", b";", b"\t", b"(", b")", b"<", b">", b"\r\n", b"`"]
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def scan(data: bytes, path: str = "f.txt", **opts: Any) -> tuple[list[Hit], list[ScanError]]:
    errors: list[ScanError] = []
    hits = scan_buffer(DET, data, Location(path, 0, 0, 0), ContentOptions(**opts), errors=errors)
    return hits, errors


def no_accidental_key(*parts: bytes) -> bool:
    """Random surroundings must not themselves hold key material (they would not: this only
    keeps hypothesis from building the marker by chance)."""
    return not any(b"T3BlbkFJ" in p or b"sk-" in p or b"%" in p or b"\\" in p for p in parts)


keys = st.builds(
    lambda fam, seed: (fam, key(fam, seed=seed)),
    st.sampled_from(FAMILIES),
    st.integers(0, 2**32),
)
surround = st.binary(max_size=400)
delims = st.sampled_from(DELIMS)


@SETTINGS
@given(keys, surround, surround, delims, delims)
def test_plain_key_found_once_at_its_offset(
    fam_key: tuple[str, str], before: bytes, after: bytes, d1: bytes, d2: bytes
) -> None:
    fam, k = fam_key
    assume(no_accidental_key(before, after))
    data = before + d1 + k.encode() + d2 + after
    hits, _ = scan(data)
    found = [h for h in hits if h.secret == k.encode()]
    assert len(found) == 1, [h.location for h in found]
    assert found[0].location.offset == len(before) + len(d1)
    assert found[0].location.line == data.count(b"\n", 0, len(before) + len(d1)) + 1
    assert found[0].family == EXPECTED_FAMILY[fam]
    assert all(h.secret == k.encode() for h in hits)


def encode(k: str, how: str, pre: bytes) -> tuple[bytes, int]:
    """The encoded text holding ``pre + key``, and the offset in it where the key's encoded
    text starts (what the finding must point at)."""
    raw = pre + k.encode()
    if how == "base64":
        return base64.b64encode(raw), len(pre) * 4 // 3
    if how == "base64url":
        return base64.urlsafe_b64encode(raw).rstrip(b"="), len(pre) * 4 // 3
    if how == "base64-wrapped":
        enc = base64.encodebytes(raw)
        start = len(pre) * 4 // 3
        return enc, start + start // 76  # one newline per 76 characters before it
    if how == "base64-indented":
        # A YAML block scalar wrapped at any column from 9 (CRLF, indented lines).
        width = 9 + len(pre) * 7 % 90
        flat = base64.b64encode(raw)
        lines = [flat[i : i + width] for i in range(0, len(flat), width)]
        start = len(pre) * 4 // 3
        return b"|\r\n" + b"\r\n".join(b"  " + line for line in lines), 3 + start + (
            start // width
        ) * 4 + 2
    if how == "hex":
        return raw.hex().encode(), len(pre) * 2
    if how == "hex-upper":
        return raw.hex().upper().encode(), len(pre) * 2
    if how == "continuation":
        # The key broken by a backslash-newline (and indentation) at a point set by pre.
        cut = 1 + len(pre) * 13 % (len(k) - 1)
        marker = k.index("T3BlbkFJ")
        if not k.startswith(("sk-proj-", "sk-svcacct-", "sk-admin-", "sk-None-")):
            # Documented limit (README, "Not detected"): a legacy or named key broken inside
            # its marker is found only after an OpenAI name.
            cut = marker if marker < cut < marker + 8 else cut
        brk = [b"\\\n", b"\\\r\n    ", b"\n  "][len(pre) % 3]
        return k[:cut].encode() + brk + k[cut:].encode(), 0
    if how == "concatenated":
        # The key split at a point set by pre into two string literals joined by an operator
        # (or blanks), in parentheses: nothing around can join on or glue a piece.
        cut = 1 + len(pre) * 17 % (len(k) - 1)
        marker = k.index("T3BlbkFJ")
        if not k.startswith(("sk-proj-", "sk-svcacct-", "sk-admin-", "sk-None-")):
            cut = marker if marker < cut < marker + 8 else cut  # as for continuations
        op = [b" + ", b"\n    ", b" . ", b" .. "][len(pre) % 4]
        q = b"\"'`"[len(pre) % 3 : len(pre) % 3 + 1]
        return b"(" + q + k[:cut].encode() + q + op + q + k[cut:].encode() + q + b")", 2
    if how == "percent":
        return pre.hex().encode() + b"=" + "".join(f"%{b:02X}" for b in k.encode()).encode(), len(
            pre
        ) * 2 + 1
    if how == "escape":
        return pre.hex().encode() + b":" + k.replace("-", "\\u002d").encode(), len(pre) * 2 + 1
    raise AssertionError(how)


@SETTINGS
@given(
    keys,
    st.sampled_from(
        [
            "base64",
            "base64url",
            "base64-wrapped",
            "base64-indented",
            "hex",
            "hex-upper",
            "continuation",
            "concatenated",
            "percent",
            "escape",
        ]
    ),
    st.binary(max_size=60),
    surround,
    surround,
    delims,
    delims,
)
def test_encoded_key_found_once_at_the_encoded_text(
    fam_key: tuple[str, str],
    how: str,
    inner: bytes,
    before: bytes,
    after: bytes,
    d1: bytes,
    d2: bytes,
) -> None:
    _, k = fam_key
    assume(no_accidental_key(before, after))
    enc, rel = encode(k, how, inner)
    data = before + d1 + enc + d2 + after
    hits, _ = scan(data)
    found = [h for h in hits if h.secret == k.encode()]
    assert len(found) == 1, (how, [h.location for h in found])
    loc = found[0].location
    assert loc.decoded == ("base64" if how.startswith("base64") else how.split("-")[0])
    assert loc.offset == len(before) + len(d1) + rel
    # And nothing when decoding is off.
    assert [h for h in scan(data, decode=False)[0] if h.secret == k.encode()] == []


_WIDE_BOMS = {
    "utf-16-le": b"\xff\xfe",
    "utf-16-be": b"\xfe\xff",
    "utf-32-le": b"\xff\xfe\x00\x00",
    "utf-32-be": b"\x00\x00\xfe\xff",
}


@settings(SETTINGS, max_examples=2 * 150)  # as many examples as the two tests it replaces
@given(
    keys,
    st.sampled_from(sorted(_WIDE_BOMS)),
    st.booleans(),
    st.text(max_size=200),
    st.text(alphabet=st.characters(max_codepoint=126, min_codepoint=32), max_size=200),
)
def test_wide_key_found_once(
    fam_key: tuple[str, str], enc: str, bom: bool, before: str, ascii_before: str
) -> None:
    """A key in UTF-16 or UTF-32 text (with or without a byte-order mark) is found once, at
    its offset and line."""
    _, k = fam_key
    text_before = before if bom else ascii_before
    assume("sk-" not in text_before and "T3BlbkFJ" not in text_before)
    head = _WIDE_BOMS[enc] if bom else b""
    prefix = text_before + " "
    data = head + (prefix + k + "\n").encode(enc, "surrogatepass")
    hits, _ = scan(data)
    found = [h for h in hits if h.secret == k.encode()]
    assert len(found) == 1
    assert found[0].location.offset == len(head) + len(prefix.encode(enc, "surrogatepass"))
    assert found[0].location.line == prefix.count("\n") + 1


MAGICS = [
    b"",
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"\x1f\x8b\x08",
    b"BZh91AY&SY",
    b"\xfd7zXZ\x00",
    b"\xff\xfe",
    b"\xfe\xff",
    b'{"cells": [',
    b"c2stcHJvai0",
    b"VDNCbGJrRk",
    b"%73%6B%2D",
    b"sk\\u002dproj\\u002d",
    b"Cr24",  # a zip behind a Chrome extension header
    b"!<arch>\n",  # ar: .deb, static libraries
    b'\x04\x00\x00\x00\x10\x00\x00\x00\x0c\x00\x00\x00\x09\x00\x00\x00{"files":',  # asar
    b"\xed\xab\xee\xdb",  # rpm
    b"%PDF-1.7\n1 0 obj\n<< /Length 9 /Filter /FlateDecode >>\nstream\n",
    b"%PDF-1.4\n3 0 obj << /Type /ObjStm /N 2 /First 8 >> stream\nBT (a) Tj [(",
    b"\xff\xfe\x00\x00",
    b"\x00\x00\xfe\xff",
    b"736b2d70726f6a2d",
    b"0x73, 0x6b, 0x2d, openai",
    b"QzQmx\n  ia0ZK",
    b"sk-proj-T3Bl\\\n  bkFJ",
    b"key: >\n  sk-proj-a\n  T3BlbkFJ",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(MAGICS),
    st.binary(max_size=3000),
    st.sampled_from(["f.txt", "nb.ipynb", "a.zip", "b.tar.gz"]),
    st.booleans(),
    st.integers(0, 3),
)
def test_random_bytes_never_crash(
    magic: bytes, body: bytes, path: str, decode: bool, depth: int
) -> None:
    data = magic + body
    if magic == b"\xfd7zXZ\x00" or magic.startswith(b"BZh"):
        data = data[:512] if len(data) > 512 else data
    if len(data) > 300 and magic == b"":
        data = data[:257] + b"ustar" + data[262:]  # looks like a tar
    hits, errors = scan(data, path, decode=decode, archive_depth=depth)
    for h in hits:
        assert h.location.offset >= 0
        assert h.location.line >= 1 and h.location.column >= 1
    assert all(isinstance(e, ScanError) for e in errors)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32), st.lists(st.integers(0, 40000), min_size=1, max_size=6))
# Found by Hypothesis: a base64 key written over the tail of a plain key, starting right at a
# chunk's limit; the chunked reader reported the plain token the whole scan drops.
@example(seed=166, spots=[0, 1, 3919, 4096])
def test_chunked_reading_finds_what_a_whole_scan_finds(seed: int, spots: list[int]) -> None:
    rng = random.Random(seed)
    filler = bytearray(rng.choice(b"abcdefghij \n=:{}") for _ in range(45000))
    planted = []
    for i, at in enumerate(sorted(set(spots))):
        k = key(rng.choice(FAMILIES), rng=rng).encode()
        payload = k if i % 2 == 0 else base64.b64encode(k)
        filler[at : at + len(payload)] = payload
        planted.append(payload)
    data = bytes(filler)
    whole, _ = scan(data)
    chunked, _ = scan_stream(
        DET, io.BytesIO(data), Location("f.txt", 0, 0, 0), ContentOptions(), chunk=OVERLAP * 2,
        errors=[],
    )

    def key_of(h: Hit) -> tuple[int, int, int, bytes, str | None]:
        return (h.location.offset, h.location.line, h.location.column, h.secret, h.location.decoded)

    assert sorted(map(key_of, chunked)) == sorted(map(key_of, whole))


def _office_seeds() -> list[tuple[str, bytes]]:
    """Valid containers of the formats issue 15 opens (Office, asar, ar, crx, rpm), each
    holding a generated key, for the mutation test below (built once: keys generated)."""
    from tests.test_detection_v2_disguise import CASES
    from tests.test_detection_v2_office import docx, odf, pptx, split, xlsx

    k = key("project", seed=77)
    seeds = [
        ("a.docx", docx([["x"], split(k, 3)])),
        ("b.xlsx", xlsx([split(k, 2)], [("B2", "0")], {"C3": split(k, 3)})),
        ("c.pptx", pptx({1: [split(k, 2)]})),
        ("d.ods", odf("ods", f"<table:table><table:table-row><table:table-cell><text:p>{k}"
                      "</text:p></table:table-cell></table:table-row></table:table>")),
    ]
    seeds += [(f"x.{kind}", CASES[kind][0]()) for kind in ("asar", "deb", "rpm-gz", "crx3")]
    return seeds


OFFICE_SEEDS = _office_seeds()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(OFFICE_SEEDS))),
    st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=6),
    st.one_of(st.none(), st.integers(0, 1 << 20)),
)
def test_mutated_containers_never_crash(
    which: int, flips: list[tuple[int, int]], cut: int | None
) -> None:
    name, seed = OFFICE_SEEDS[which]
    data = bytearray(seed)
    for at, value in flips:
        data[at % len(data)] = value
    if cut is not None:
        del data[cut % len(data) :]
    hits, errors = scan(bytes(data), name)
    for h in hits:
        assert h.location.offset >= 0
        assert h.location.line >= 1 and h.location.column >= 1
    assert all(isinstance(e, ScanError) for e in errors)


_XML_PIECES = st.sampled_from(
    [
        "<w:p>", "</w:p>", "<w:t>", "</w:t>", "<w:r>", "</w:r>", "<w:br/>", "<si>", "</si>",
        "<t>", "</t>", '<c r="A1" t="s">', '<c t="inlineStr">', "</c>", "<v>", "</v>",
        "<is>", "</is>", "<row>", "</row>", "&amp;", "&#115;", "<!DOCTYPE x>", "<![CDATA[",
        "]]>", "sk-proj-", "T3BlbkFJ", "<a:p>", "<a:t>", "</a:t>", "</a:p>", "\n",
    ]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_XML_PIECES, st.text(max_size=20)), max_size=40), st.integers(0, 2))
def test_hostile_office_xml_never_crashes(pieces: list[str], kind: int) -> None:
    from tests.test_detection_v2_office import CONTENT_TYPES, S_NS, W_NS

    body = "".join(pieces)
    bio = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(bio, "w") as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        if kind == 0:
            z.writestr("word/document.xml", f'<w:document xmlns:w="{W_NS}">{body}</w:document>')
        elif kind == 1:
            z.writestr("xl/workbook.xml", "<workbook/>")
            z.writestr("xl/sharedStrings.xml", f'<sst xmlns="{S_NS}">{body}</sst>')
            z.writestr("xl/worksheets/sheet1.xml", f'<worksheet xmlns="{S_NS}">{body}</worksheet>')
        else:
            z.writestr("ppt/presentation.xml", "<p/>")
            z.writestr("ppt/slides/slide1.xml", body)
    hits, errors = scan(bio.getvalue(), "f.docx")
    for h in hits:
        assert h.location.line >= 1 and h.location.column >= 1
    assert all(isinstance(e, ScanError) for e in errors)


# --- PDFs and container images (issue 15): hostile variants of valid documents ----------


def _container_seeds() -> dict[str, bytes]:
    import gzip
    import lzma

    from tests.test_detection_v2_images import docker_save, make_tar, oci_layout
    from tests.test_detection_v2_pdf import make_pdf, page, split, tj_array

    k = key("project", seed=7)
    layers: list[dict[str, bytes | None]] = [
        {"app/": None, "app/.env": f"K={k}".encode()},
        {"app/.wh..env": b"", "etc/.wh..wh..opq": b""},
    ]
    pdf = make_pdf(
        [page(tj_array(split(k, 4)))], flate=True, info={"Title": k.encode()},
        annots=[b"<< /Subtype /Link /A << /URI (" + k.encode() + b") >> >>"],
    )
    return {
        "pdf": pdf,
        "pdf-plain": make_pdf([page(b"(" + k.encode() + b") Tj")]),
        "docker": docker_save(layers),
        "docker-gz": docker_save(layers, gz=True),
        "oci": make_tar(dict(oci_layout([(layers, None)]).items())),
        "docker-tgz": gzip.compress(docker_save(layers, gz=True)),
        "oci-xz": lzma.compress(make_tar(dict(oci_layout([(layers, None)]).items()))),
    }


CONTAINER_SEEDS = _container_seeds()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(CONTAINER_SEEDS)),
    st.lists(st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=8)), max_size=6),
    st.floats(0.05, 1.0),
    st.integers(0, 3),
)
def test_mutated_pdfs_and_images_never_crash(
    kind: str, edits: list[tuple[float, bytes]], keep: float, depth: int
) -> None:
    data = bytearray(CONTAINER_SEEDS[kind])
    for where, junk in edits:
        at = int(where * (len(data) - 1))
        data[at : at + len(junk)] = junk
    data = data[: max(1, int(len(data) * keep))]
    hits, errors = scan(bytes(data), "x.bin", archive_depth=depth)
    for h in hits:
        assert h.location.offset >= 0
        assert h.location.line >= 1 and h.location.column >= 1
    assert all(isinstance(e, ScanError) for e in errors)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    keys,
    st.lists(st.integers(1, 40), min_size=1, max_size=6),
    st.integers(-250, 250),
    st.booleans(),
    st.booleans(),
)
def test_pdf_key_split_anywhere_found_once_whole(
    fam_key: tuple[str, str], cuts: list[int], kern: int, flate: bool, operators: bool
) -> None:
    from tests.test_detection_v2_pdf import make_pdf, page, pdf_literal

    _, k = fam_key
    pieces, rest = [], k
    for c in cuts:
        if len(rest) > c:
            pieces.append(rest[:c])
            rest = rest[c:]
    pieces.append(rest)
    if operators:  # one Tj per piece, on one line
        ops = b" ".join(pdf_literal(p.encode()) + b" Tj" for p in pieces)
    else:  # one TJ array, kerned between pieces
        ops = b"[" + (b" %d " % kern).join(pdf_literal(p.encode()) for p in pieces) + b"] TJ"
    hits, errors = scan(make_pdf([page(b"(Intro) Tj"), page(ops)], flate=flate), "d.pdf")
    assert not errors
    found = [h for h in hits if h.secret == k.encode()]
    assert len(found) == 1, [h.location for h in hits]
    assert found[0].location.extra["pdf_page"] == 2
    assert all(h.secret == k.encode() for h in hits), [h.secret for h in hits]
