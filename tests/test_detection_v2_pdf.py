"""PDF (issue 15, containers II): page text (Tj, TJ pieces, ', "), FlateDecode, ASCIIHex and
ASCII85 streams, object streams, document strings (/Title, /URI, form fields), limits and
errors. Every PDF is written by hand at run time; every key is generated."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from keyscan.content import ContentOptions, scan_buffer
from keyscan.detector import Detector
from keyscan.findings import Hit, is_binary
from keyscan.formats.pdf import content_text, dict_strings
from keyscan.keygen import key
from keyscan.models import Location, ScanError
from keyscan.rules import load_rules

DET = Detector(load_rules())


def pdf_literal(text: bytes) -> bytes:
    """A PDF literal string with the escapes a writer uses."""
    return b"(" + text.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def make_pdf(
    pages: list[bytes],
    *,
    flate: bool = False,
    info: dict[str, bytes] | None = None,
    extra_objects: list[bytes] | None = None,
    annots: list[bytes] | None = None,
    trailer_extra: bytes = b"",
    font: bytes = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    font_objects: list[bytes] | None = None,
) -> bytes:
    """A small, valid PDF: one content stream per page (optionally FlateDecode), an Info
    dictionary of literal strings, annotation dictionaries on page 1, extra raw objects."""
    objs: list[bytes] = []  # object i+1

    def add(body: bytes) -> int:
        objs.append(body)
        return len(objs)

    catalog = add(b"")  # filled below
    pages_obj = add(b"")
    font_obj = add(font)  # object 3; font_objects are 4, 5...
    for o in font_objects or []:
        add(o)
    annot_refs = [add(a) for a in annots or []]
    kids = []
    for i, content in enumerate(pages):
        data = zlib.compress(content) if flate else content
        filt = b" /Filter /FlateDecode" if flate else b""
        stream = add(b"<< /Length %d%s >>\nstream\n" % (len(data), filt) + data + b"\nendstream")
        annot = b""
        if i == 0 and annot_refs:
            annot = b" /Annots [" + b" ".join(b"%d 0 R" % a for a in annot_refs) + b"]"
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font "
                b"<< /F1 %d 0 R >> >> /Contents %d 0 R%s >>" % (pages_obj, font_obj, stream, annot)
            )
        )
    objs[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % pages_obj
    objs[pages_obj - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    info_ref = None
    if info:
        info_ref = add(
            b"<< "
            + b" ".join(b"/" + k.encode() + b" " + pdf_literal(v) for k, v in info.items())
            + b" >>"
        )
    for o in extra_objects or []:
        add(o)
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root %d 0 R" % (len(objs) + 1, catalog)
    if info_ref:
        out += b" /Info %d 0 R" % info_ref
    out += trailer_extra + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def scan(data: bytes, path: str = "doc.pdf", **opts: object) -> tuple[list[Hit], list[ScanError]]:
    errors: list[ScanError] = []
    hits = scan_buffer(
        DET,
        data,
        Location(path, 0, 0, 0, binary=is_binary(data)),  # as every source sets it
        ContentOptions(**opts),  # type: ignore[arg-type]
        errors=errors,
    )
    return hits, errors


def secrets(hits: list[Hit]) -> set[str]:
    return {h.secret.decode() for h in hits}


def split(k: str, n: int) -> list[str]:
    step = -(-len(k) // n)
    return [k[i : i + step] for i in range(0, len(k), step)]


def tj_array(pieces: list[str], kern: int = -12) -> bytes:
    parts = []
    for i, p in enumerate(pieces):
        parts.append(pdf_literal(p.encode()))
        if i + 1 < len(pieces):
            parts.append(b"%d" % kern)
    return b"[" + b" ".join(parts) + b"] TJ"


def page(*ops: bytes) -> bytes:
    return b"BT /F1 12 Tf 72 700 Td " + b" ".join(ops) + b" ET"


# --- text extraction ---------------------------------------------------------------------


@pytest.mark.parametrize("flate", [False, True])
def test_key_split_across_tj_pieces_found_whole_with_page_and_object(flate: bool) -> None:
    k = key("project", seed=11)
    pdf = make_pdf([page(b"(Page one) Tj"), page(tj_array(split(k, 5)))], flate=flate)
    hits, errors = scan(pdf)
    assert not errors
    (hit,) = [h for h in hits if h.secret.decode() == k]
    assert hit.location.extra["pdf_page"] == 2
    assert hit.location.extra["pdf_part"] == "page text"
    assert isinstance(hit.location.extra["pdf_object"], int)
    assert hit.location.decoded == "pdf"
    # No fragment (one TJ piece) is reported as anything.
    assert secrets(hits) == {k}


def test_key_split_across_tj_operators_on_one_line() -> None:
    k = key("svcacct", seed=12)
    a, b, c = split(k, 3)
    ops = b"%s Tj %s Tj 0 0 Td %s Tj" % (
        pdf_literal(a.encode()),
        pdf_literal(b.encode()),
        pdf_literal(c.encode()),
    )
    hits, errors = scan(make_pdf([page(ops)], flate=True))
    assert not errors
    assert secrets(hits) == {k}


def test_literal_escapes_octal_continuation_and_hex_strings() -> None:
    k = key("project", seed=13)
    head, tail = k[:30], k[30:]
    # octal escape for the first character, a line continuation inside, a hex string after
    lit = b"(\\%03o%s\\\n%s)" % (ord(head[0]), head[1:15].encode(), head[15:].encode())
    ops = b"%s Tj <%s> Tj" % (lit, tail.encode().hex().encode())
    text = content_text(ops.join([b"BT ", b" ET"]) if False else b"BT " + ops + b" ET")
    assert text == k.encode()
    hits, errors = scan(make_pdf([page(ops)], flate=True))
    assert not errors
    assert secrets(hits) == {k}


def test_quote_operators_start_a_new_line() -> None:
    text = content_text(b"BT (one) Tj (two) ' 1 2 (three) \" ET")
    assert text == b"one\ntwo\nthree"
    # A vertical move ends a line; a horizontal one does not; a wide kerning gap is a space.
    assert content_text(b"BT (a) Tj 0 -14 Td (b) Tj 30 0 Td (c) Tj [(d) -500 (e)] TJ ET") == (
        b"a\nbcd e"
    )


def test_ascii_hex_and_ascii85_streams() -> None:
    import base64

    k1, k2 = key("project", seed=14), key("admin", seed=15)
    c1 = page(pdf_literal(k1.encode()) + b" Tj").hex().encode() + b">"
    c2 = b"<~" + base64.a85encode(page(pdf_literal(k2.encode()) + b" Tj")) + b"~>"
    objs = [
        b"<< /Length %d /Filter /ASCIIHexDecode >>\nstream\n" % len(c1) + c1 + b"\nendstream",
        b"<< /Length %d /Filter [/ASCII85Decode] >>\nstream\n" % len(c2) + c2 + b"\nendstream",
    ]
    hits, errors = scan(make_pdf([page(b"(x) Tj")], extra_objects=objs))
    assert not errors
    assert secrets(hits) == {k1, k2}


def test_embedded_file_stream_scanned_as_bytes() -> None:
    k = key("project", seed=16)
    body = zlib.compress(f"OPENAI_API_KEY={k}\n".encode())
    obj = (
        b"<< /Type /EmbeddedFile /Length %d /Filter /FlateDecode >>\nstream\n" % len(body)
        + body
        + b"\nendstream"
    )
    hits, errors = scan(make_pdf([page(b"(x) Tj")], extra_objects=[obj]))
    assert not errors
    (hit,) = hits
    assert hit.secret.decode() == k
    assert hit.location.extra["pdf_part"] == "stream"


def test_object_stream_strings() -> None:
    k = key("project", seed=17)
    inner = b"<< /Title " + pdf_literal(k.encode()) + b" >>"
    header = b"40 0 "
    data = zlib.compress(header + inner)
    obj = (
        b"<< /Type /ObjStm /N 1 /First %d /Length %d /Filter /FlateDecode >>\nstream\n"
        % (len(header), len(data))
        + data
        + b"\nendstream"
    )
    hits, errors = scan(make_pdf([page(b"(x) Tj")], extra_objects=[obj]))
    assert not errors
    (hit,) = hits
    assert hit.secret.decode() == k
    assert hit.location.extra["pdf_object"] == 40
    assert hit.location.extra["pdf_part"] == "/Title"


# --- document strings --------------------------------------------------------------------


def test_key_in_annotation_uri_info_title_and_form_field() -> None:
    k1, k2, k3 = key("project", seed=18), key("svcacct", seed=19), key("project", seed=20)
    uri = f"https://example.com/cb?api_key={k1}".encode()
    annot = b"<< /Type /Annot /Subtype /Link /A << /S /URI /URI " + pdf_literal(uri) + b" >> >>"
    # the form field value as a UTF-16BE hex string
    field = b"<< /FT /Tx /T (apikey) /V <feff" + k3.encode("utf-16-be").hex().encode() + b"> >>"
    pdf = make_pdf(
        [page(b"(x) Tj")],
        flate=True,
        info={"Title": k2.encode()},
        annots=[annot],
        extra_objects=[field],
    )
    hits, errors = scan(pdf)
    assert not errors
    by = {h.secret.decode(): h.location.extra.get("pdf_part") for h in hits}
    assert by == {k1: "/URI", k2: "/Title", k3: "/V"}


def test_plain_key_in_uncompressed_stream_reported_once_with_its_page() -> None:
    k = key("project", seed=21)
    hits, errors = scan(make_pdf([page(pdf_literal(k.encode()) + b" Tj")]))
    assert not errors
    (hit,) = hits
    assert hit.location.decoded is None  # the raw place, found plainly...
    assert hit.location.extra["pdf_page"] == 1  # ...with its page


def test_placeholder_and_split_placeholder_not_reported() -> None:
    pieces = ["sk-proj-YOURKEYHERE", "YOURKEYHERE", "YOURKEYHERE"]
    hits, errors = scan(make_pdf([page(tj_array(pieces))], flate=True))
    assert not errors
    assert hits == []
    hits, _ = scan(make_pdf([page(b"(OPENAI_API_KEY=sk-...) Tj")], flate=True))
    assert hits == []


def test_dict_strings_names_the_key() -> None:
    assert dict_strings(b"<< /Title (a\\)b) /URI <6869> >>") == [
        ("/Title", b"a)b"),
        ("/URI", b"hi"),
    ]


# --- limits and errors -------------------------------------------------------------------


def test_truncated_pdf_is_an_error_and_raw_bytes_still_scanned() -> None:
    k1, k2 = key("project", seed=22), key("project", seed=23)
    pdf = make_pdf([page(tj_array(split(k1, 3)))], flate=True)
    # append an object whose stream never ends, holding a plain key
    pdf += b"99 0 obj\n<< /Length 5000 >>\nstream\nBT (" + k2.encode() + b") Tj ET"
    hits, errors = scan(pdf)
    assert k1 in secrets(hits) and k2 in secrets(hits)
    assert any("PDF object 99" in e.where and "truncated" in e.message for e in errors)


def test_damaged_flate_stream_is_an_error_and_scanning_goes_on() -> None:
    k = key("project", seed=24)
    good = make_pdf([page(tj_array(split(k, 4)))], flate=True)
    bad = (
        b"<< /Length 20 /Filter /FlateDecode >>\nstream\n"
        + b"x\x9c"
        + b"\xff" * 18
        + b"\nendstream"
    )
    pdf = good.replace(b"trailer", b"50 0 obj\n" + bad + b"\nendobj\ntrailer", 1)
    hits, errors = scan(pdf)
    assert secrets(hits) == {k}
    assert [e for e in errors if "PDF object 50" in e.where and "FlateDecode" in e.message]


def test_bomb_like_stream_refused_by_ratio_and_others_read() -> None:
    k = key("project", seed=25)
    bomb = zlib.compress(b"\0" * (8 * 1024 * 1024), 9)
    obj = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(bomb) + bomb + b"\nendstream"
    pdf = make_pdf([page(tj_array(split(k, 3)))], flate=True, extra_objects=[obj])
    hits, errors = scan(pdf)
    assert secrets(hits) == {k}
    (err,) = errors
    assert "refused" in err.message and "bomb" in err.message


def test_total_inflated_bytes_bounded_by_archive_max_bytes() -> None:
    k = key("project", seed=26)
    filler = page(b"(" + b"x" * 50_000 + b") Tj")
    pdf = make_pdf([filler, page(tj_array(split(k, 3)))], flate=True)
    hits, errors = scan(pdf, archive_max_bytes=20_000)
    assert errors and "refused" in errors[0].message
    hits, errors = scan(pdf)
    assert secrets(hits) == {k} and not errors


def test_encrypted_pdf_is_an_error_raw_bytes_still_scanned() -> None:
    k = key("project", seed=27)
    pdf = make_pdf(
        [page(b"(" + k.encode() + b") Tj")], trailer_extra=b" /Encrypt << /Filter /Standard >>"
    )
    hits, errors = scan(pdf)
    assert secrets(hits) == {k}  # raw bytes
    (err,) = errors
    assert "encrypted PDF" in err.message


def test_not_a_pdf_without_the_marker_in_the_first_kilobyte() -> None:
    k = key("project", seed=28)
    pdf = make_pdf([page(tj_array(split(k, 3)))], flate=True)
    hits, _ = scan(b" " * 1100 + pdf)
    assert k not in secrets(hits)


@pytest.mark.parametrize("cut", [20, 200, 400, -40])
def test_hostile_prefixes_never_raise(cut: int) -> None:
    k = key("project", seed=29)
    pdf = make_pdf([page(tj_array(split(k, 3)))], flate=True, info={"Title": b"(x"})
    scan(pdf[:cut])
    scan(pdf.replace(b"endobj", b"", 3))
    scan(pdf.replace(b"stream\n", b"stream\n(", 2))


def test_pdf_inside_a_zip_is_read() -> None:
    import io
    import zipfile

    k = key("project", seed=30)
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("docs/guide.pdf", make_pdf([page(tj_array(split(k, 4)))], flate=True))
    hits, errors = scan(bio.getvalue(), "docs.zip")
    assert not errors
    (hit,) = hits
    assert hit.location.display_path == "docs.zip!docs/guide.pdf"
    assert hit.location.extra["pdf_page"] == 1


# --- the command line --------------------------------------------------------------------


def test_cli_text_and_json_reports_show_page_and_object(tmp_path: Path) -> None:
    k = key("project", seed=31)
    (tmp_path / "guide.pdf").write_bytes(
        make_pdf([page(b"(intro) Tj"), page(tj_array(split(k, 6)))], flate=True)
    )
    out = subprocess.run(
        [sys.executable, "-m", "keyscan", "scan", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 1, out.stderr
    assert k not in out.stdout + out.stderr
    assert "PDF page 2, object" in out.stdout
    js = subprocess.run(
        [sys.executable, "-m", "keyscan", "scan", "--format", "json", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    doc = json.loads(js.stdout)
    (finding,) = doc["findings"]
    assert finding["locations"][0]["extra"]["pdf_page"] == 2


def test_cli_truncated_pdf_exits_2(tmp_path: Path) -> None:
    pdf = make_pdf([page(b"(hello) Tj")], flate=True)
    (tmp_path / "cut.pdf").write_bytes(pdf + b"7 0 obj\n<< /Length 99 >>\nstream\nBT (x")
    out = subprocess.run(
        [sys.executable, "-m", "keyscan", "scan", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert "truncated" in out.stderr + out.stdout


def test_many_objects_without_endobj_read_in_linear_time() -> None:
    import time

    k = key("project", seed=32)
    body = b"%PDF-1.4\n" + b"".join(b"%d 0 obj << /A (x) >>\n" % i for i in range(60_000))
    pdf = body + b"9 0 obj << /Title (" + k.encode() + b") >>\n"
    t = time.perf_counter()
    hits, errors = scan(pdf)
    assert time.perf_counter() - t < 20
    assert k in secrets(hits)
    assert any("truncated" in e.message for e in errors)


def test_marker_after_junk_within_the_first_kilobyte() -> None:
    k = key("project", seed=33)
    pdf = make_pdf([page(tj_array(split(k, 3)))], flate=True)  # binary: compressed stream
    junk = b"HTTP/1.1 200 OK\r\nContent-Type: application/pdf\r\n\r\n"
    assert k in secrets(scan(junk + pdf, "download.bin")[0])
    # Text (no binary byte) is read as a PDF only when it starts with the marker.
    text_pdf = make_pdf([page(tj_array(split(k, 3)))]).replace(b"\xe2\xe3\xcf\xd3", b"text")
    assert k in secrets(scan(text_pdf, "notes.txt")[0])
    assert k not in secrets(scan(junk + text_pdf, "doc.pdf")[0])


def test_cid_font_text_decoded_through_its_tounicode_map() -> None:
    """A composite font (Identity-H, 2-byte glyph ids, as Word or Chrome write): the codes
    mean nothing without the font's ToUnicode CMap; with bfchar and bfrange maps the key
    split across TJ pieces is read whole."""
    k = key("project", seed=34)
    chars = sorted(set(k))
    gid = {c: 0x0100 + i for i, c in enumerate(chars)}
    half = len(chars) // 2
    bfchar = b"".join(b"<%04X> <%04X>\n" % (gid[c], ord(c)) for c in chars[:half])
    # one bfrange per remaining char, alternating the two destination forms
    bfrange = b"".join(
        (b"<%04X> <%04X> <%04X>\n" if i % 2 else b"<%04X> <%04X> [<%04X>]\n")
        % (gid[c], gid[c], ord(c))
        for i, c in enumerate(chars[half:])
    )
    cmap = (
        b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        b"1 begincodespacerange <0000> <FFFF> endcodespacerange\n"
        b"%d beginbfchar\n" % half + bfchar + b"endbfchar\n"
        b"%d beginbfrange\n" % (len(chars) - half) + bfrange + b"endbfrange\n"
        b"endcmap CMapName currentdict /CMap defineresource pop end end"
    )
    data = zlib.compress(cmap)
    tounicode = (
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream"
    )
    font = (
        b"<< /Type /Font /Subtype /Type0 /BaseFont /ABCDEF+Calibri /Encoding /Identity-H "
        b"/ToUnicode 4 0 R >>"
    )
    pieces = split(k, 4)
    arr = b" -8 ".join(
        b"<" + b"".join(b"%04X" % gid[c] for c in p) + b">" for p in pieces
    )
    content = page(b"[" + arr + b"] TJ")
    pdf = make_pdf([content], flate=True, font=font, font_objects=[tounicode])
    hits, errors = scan(pdf)
    assert not errors
    assert secrets(hits) == {k}
    assert hits[0].location.extra["pdf_page"] == 1
    # Without the map the codes are not text: nothing found (documented, "Not detected").
    plain_font = font.replace(b" /ToUnicode 4 0 R", b"")
    hits, _ = scan(make_pdf([content], flate=True, font=plain_font, font_objects=[tounicode]))
    assert k not in secrets(hits)
