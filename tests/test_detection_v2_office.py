"""Issue 15, containers: nested archives to depth 3 by default, Office documents (OOXML and
ODF: the text a person sees, located by part and paragraph, cell or slide). Every document
is built here at run time with zipfile and hand-written minimal XML; every key is generated."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from keyscan.content import ContentOptions, scan_buffer
from keyscan.keygen import key
from keyscan.models import Location, ScanError
from tests.test_archives import DET, make_zip, scan


def keyscan(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=120,
    )


# --- nested archives: depth 3 by default -------------------------------------------------


def nested(levels: int, payload: bytes) -> bytes:
    """A zip holding a zip ... ``levels`` archives deep, the innermost holding conf.env."""
    data = make_zip({"conf.env": payload})
    for i in range(levels - 1, 0, -1):
        data = make_zip({f"l{i}.zip": data})
    return data


def test_key_three_archives_deep_is_found_by_default() -> None:
    k = key("project", seed=1501)
    found, errors = scan(nested(3, f"OPENAI_API_KEY={k}\n".encode()), "app.zip")
    assert found == [("app.zip!l1.zip!l2.zip!conf.env", k)]
    assert errors == []


def test_key_four_archives_deep_is_an_error_by_default(tmp_path: Path) -> None:
    k = key("project", seed=1502)
    data = nested(4, f"OPENAI_API_KEY={k}\n".encode())
    found, errors = scan(data, "app.zip")
    assert found == []
    assert [str(e) for e in errors] == [
        "app.zip!l1.zip!l2.zip!l3.zip: archive nested deeper than --archive-depth 3: "
        "not opened, scanned as raw bytes"
    ]
    path = tmp_path / "app.zip"
    path.write_bytes(data)
    proc = keyscan("scan", str(path))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "nested deeper than --archive-depth 3" in proc.stderr
    assert k not in proc.stdout + proc.stderr
    deeper = keyscan("scan", "--archive-depth", "4", "-f", "json", str(path))
    assert deeper.returncode == 1, deeper.stderr


def test_default_depth_is_three_everywhere() -> None:
    from keyscan.api import ScanOptions

    assert ContentOptions().archive_depth == 3
    assert ScanOptions().archive_depth == 3
    proc = keyscan("scan", "--help")
    assert "--archive-depth" in proc.stdout
    assert "[default: 3;" in " ".join(proc.stdout.split())


# --- Office documents ----------------------------------------------------------------------

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
P_NS = "http://schemas.openxmlformats.org/presentationml/2006/main"
S_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
CONTENT_TYPES = (
    XML_HEAD + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="xml" ContentType="application/xml"/></Types>'
)


def split(k: str, n: int) -> list[str]:
    """``k`` in ``n`` pieces, the cuts inside the halves and the marker."""
    step = len(k) // n
    return [k[i * step : (i + 1) * step if i < n - 1 else len(k)] for i in range(n)]


def docx(paragraphs: list[list[str]], extra: dict[str, bytes | str] | None = None) -> bytes:
    body = "".join(
        "<w:p><w:pPr/>"
        + "".join(
            f'<w:r><w:rPr><w:b/></w:rPr><w:t xml:space="preserve">{r}</w:t></w:r>' for r in runs
        )
        + "</w:p>"
        for runs in paragraphs
    )
    doc = f'{XML_HEAD}<w:document xmlns:w="{W_NS}"><w:body>{body}</w:body></w:document>'
    return make_zip(
        {"[Content_Types].xml": CONTENT_TYPES, "word/document.xml": doc, **(extra or {})}
    )


def xlsx(
    shared: list[list[str]], cells: list[tuple[str, str]], inline: dict[str, list[str]]
) -> bytes:
    """Sheet "Config": ``cells`` (ref, shared string index) and inline rich strings."""
    sst = "".join(
        "<si>" + "".join(f"<r><rPr><b/></rPr><t>{piece}</t></r>" for piece in runs) + "</si>"
        for runs in shared
    )
    row_cells = "".join(f'<c r="{ref}" t="s"><v>{idx}</v></c>' for ref, idx in cells)
    row_cells += "".join(
        f'<c r="{ref}" t="inlineStr"><is>'
        + "".join(f"<r><t>{p}</t></r>" for p in runs)
        + "</is></c>"
        for ref, runs in inline.items()
    )
    return make_zip(
        {
            "[Content_Types].xml": CONTENT_TYPES,
            "xl/workbook.xml": f'{XML_HEAD}<workbook xmlns="{S_NS}" xmlns:r="{R_NS}"><sheets>'
            '<sheet name="Other" sheetId="1" r:id="rId7"/>'
            '<sheet name="Config" sheetId="2" r:id="rId9"/></sheets></workbook>',
            "xl/_rels/workbook.xml.rels": XML_HEAD
            + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId7" Type="ws" Target="worksheets/sheet1.xml"/>'
            '<Relationship Id="rId9" Type="ws" Target="/xl/worksheets/sheet2.xml"/>'
            "</Relationships>",
            "xl/sharedStrings.xml": f'{XML_HEAD}<sst xmlns="{S_NS}">{sst}</sst>',
            "xl/worksheets/sheet1.xml": f'{XML_HEAD}<worksheet xmlns="{S_NS}"><sheetData/></worksheet>',
            "xl/worksheets/sheet2.xml": f'{XML_HEAD}<worksheet xmlns="{S_NS}"><sheetData>'
            f'<row r="2">{row_cells}</row></sheetData></worksheet>',
        }
    )


def pptx(slides: dict[int, list[list[str]]]) -> bytes:
    members: dict[str, bytes | str] = {
        "[Content_Types].xml": CONTENT_TYPES,
        "ppt/presentation.xml": f'{XML_HEAD}<p:presentation xmlns:p="{P_NS}"/>',
    }
    for n, paragraphs in slides.items():
        paras = "".join(
            "<a:p>" + "".join(f"<a:r><a:rPr/><a:t>{r}</a:t></a:r>" for r in runs) + "</a:p>"
            for runs in paragraphs
        )
        members[f"ppt/slides/slide{n}.xml"] = (
            f'{XML_HEAD}<p:sld xmlns:p="{P_NS}" xmlns:a="{A_NS}"><p:cSld><p:spTree><p:sp>'
            f"<p:txBody>{paras}</p:txBody></p:sp></p:spTree></p:cSld></p:sld>"
        )
    return make_zip(members)


ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"'
)


def odf(kind: str, body: str) -> bytes:
    mime = {"odt": "text", "ods": "spreadsheet", "odp": "presentation"}[kind]
    tag = {"odt": "text", "ods": "spreadsheet", "odp": "presentation"}[kind]
    content = (
        f"{XML_HEAD}<office:document-content {ODF_NS}><office:body><office:{tag}>{body}"
        f"</office:{tag}></office:body></office:document-content>"
    )
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as z:
        z.writestr("mimetype", f"application/vnd.oasis.opendocument.{mime}", zipfile.ZIP_STORED)
        z.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
        z.writestr("META-INF/manifest.xml", "<manifest/>", zipfile.ZIP_DEFLATED)
    return bio.getvalue()


def spans(pieces: list[str]) -> str:
    return "".join(
        f'<text:span text:style-name="T{i}">{p}</text:span>' for i, p in enumerate(pieces)
    )


def hits_of(data: bytes, path: str) -> tuple[list[Any], list[ScanError]]:
    errors: list[ScanError] = []
    hits = scan_buffer(DET, data, Location(path, 0, 0, 0), ContentOptions(), errors=errors)
    return hits, errors


def test_docx_key_split_across_runs_is_found_whole_at_its_paragraph() -> None:
    k = key("project", seed=1510)
    data = docx([["Config notes"], ["OPENAI_API_KEY = ", *split(k, 3)], ["end"]])
    # the XML holds the key in pieces only
    assert k.encode() not in zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml")
    hits, errors = hits_of(data, "docs/setup.bin")  # recognised by content, not by name
    assert errors == []
    (hit,) = hits
    assert hit.secret == k.encode()
    assert hit.location.member == ("word/document.xml",)
    assert hit.location.extra == {"paragraph": 2}
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml")
    assert xml[hit.location.offset :].startswith(split(k, 3)[0].encode())


def test_docx_unsplit_key_is_reported_once_at_its_paragraph() -> None:
    k = key("svcacct", seed=1511)
    hits, errors = hits_of(docx([[f"key {k}"]]), "a.docx")
    assert errors == []
    assert [(h.location.member, h.location.extra) for h in hits] == [
        (("word/document.xml",), {"paragraph": 1})
    ]


def same_as_plain_lines(hits: list[Any], left: str, right: str) -> None:
    """Two units are two lines of text: what is reported is what two plain lines give (at
    most the marker-less rule's low-confidence fragment), never the joined key."""
    plain, _ = hits_of(f"{left}\n\n{right}\n".encode(), "plain.txt")
    assert left + right not in [h.secret.decode() for h in hits]
    assert sorted((h.secret, h.rule_id) for h in hits) == sorted(
        (h.secret, h.rule_id) for h in plain
    )
    assert all(str(h.confidence) == "low" for h in hits)


def test_docx_key_split_by_a_paragraph_boundary_is_not_joined() -> None:
    k = key("project", seed=1512)
    left, right = k[: len(k) // 2], k[len(k) // 2 :]
    hits, errors = hits_of(docx([[left], [right]]), "a.docx")
    assert errors == []
    same_as_plain_lines(hits, left, right)


def test_docx_placeholder_is_not_reported() -> None:
    from keyscan.openai_facts import MARKER

    fake = "sk-proj-" + "YOURKEYHERE" * 7 + "Y" + MARKER + "YOURKEYHERE" * 7 + "Y"
    hits, errors = hits_of(docx([["OPENAI_API_KEY=", *split(fake, 3)]]), "a.docx")
    assert hits == [] and errors == []


def test_docx_raw_members_are_still_scanned() -> None:
    k1, k2 = key("project", seed=1513), key("admin", seed=1514)
    data = docx(
        [["nothing here"]],
        {
            "docProps/custom.xml": f"<Properties><p>{k1}</p></Properties>",
            "customXml/item1.xml": f"<x>{k2}</x>",
        },
    )
    hits, errors = hits_of(data, "a.docx")
    assert errors == []
    assert sorted((h.location.display_path, h.secret.decode()) for h in hits) == sorted(
        [("a.docx!docProps/custom.xml", k1), ("a.docx!customXml/item1.xml", k2)]
    )


def test_xlsx_shared_string_runs_and_inline_strings_by_sheet_and_cell() -> None:
    k1, k2 = key("project", seed=1515), key("svcacct", seed=1516)
    data = xlsx([["unrelated"], split(k1, 3)], [("A2", "0"), ("B2", "1")], {"C2": split(k2, 2)})
    hits, errors = hits_of(data, "book.xlsx")
    assert errors == []
    got = sorted((h.secret.decode(), h.location.member, h.location.extra) for h in hits)
    assert got == sorted(
        [
            (k1, ("xl/worksheets/sheet2.xml",), {"sheet": "Config", "cell": "B2"}),
            (k2, ("xl/worksheets/sheet2.xml",), {"sheet": "Config", "cell": "C2"}),
        ]
    )


def test_xlsx_key_split_across_two_cells_is_not_joined() -> None:
    k = key("project", seed=1517)
    left, right = k[: len(k) // 2], k[len(k) // 2 :]
    hits, errors = hits_of(xlsx([[left], [right]], [("A2", "0"), ("B2", "1")], {}), "b.xlsx")
    assert errors == []
    same_as_plain_lines(hits, left, right)


def test_pptx_key_split_across_runs_on_its_slide() -> None:
    k = key("user-none", seed=1518)
    data = pptx({1: [["Title"]], 2: [["Demo"], ["export OPENAI_API_KEY=", *split(k, 3)]]})
    hits, errors = hits_of(data, "talk.pptx")
    assert errors == []
    (hit,) = hits
    assert hit.secret == k.encode()
    assert hit.location.member == ("ppt/slides/slide2.xml",)
    assert hit.location.extra == {"slide": 2, "paragraph": 2}


def test_odt_key_split_across_spans() -> None:
    k = key("project", seed=1519)
    body = f"<text:h>Setup</text:h><text:p>key:<text:s/>{spans(split(k, 3))}</text:p>"
    hits, errors = hits_of(odf("odt", body), "notes.odt")
    assert errors == []
    (hit,) = hits
    assert hit.secret == k.encode()
    assert (hit.location.member, hit.location.extra) == (("content.xml",), {"paragraph": 2})
    # two paragraphs are two units
    left, right = k[: len(k) // 2], k[len(k) // 2 :]
    body = f"<text:p>{left}</text:p><text:p>{right}</text:p>"
    hits, errors = hits_of(odf("odt", body), "notes.odt")
    assert errors == []
    same_as_plain_lines(hits, left, right)


def test_ods_key_split_across_spans_in_a_cell() -> None:
    k = key("svcacct", seed=1520)
    body = (
        '<table:table table:name="Secrets">'
        "<table:table-row><table:table-cell/></table:table-row>"
        '<table:table-row><table:table-cell table:number-columns-repeated="2"/>'
        f"<table:table-cell><text:p>{spans(split(k, 2))}</text:p></table:table-cell>"
        "</table:table-row></table:table>"
    )
    hits, errors = hits_of(odf("ods", body), "sheet.ods")
    assert errors == []
    (hit,) = hits
    assert hit.secret == k.encode()
    assert hit.location.extra == {"sheet": "Secrets", "cell": "C2"}


def test_odp_key_on_its_slide() -> None:
    k = key("project", seed=1521)
    body = (
        '<draw:page draw:name="p1"><draw:frame><draw:text-box><text:p>hello</text:p>'
        "</draw:text-box></draw:frame></draw:page>"
        f'<draw:page draw:name="p2"><draw:frame><draw:text-box><text:p>{spans(split(k, 3))}'
        "</text:p></draw:text-box></draw:frame></draw:page>"
    )
    hits, errors = hits_of(odf("odp", body), "deck.odp")
    assert errors == []
    (hit,) = hits
    assert hit.location.extra == {"slide": 2, "paragraph": 1}


def test_malformed_part_is_an_error_and_raw_members_are_still_scanned(tmp_path: Path) -> None:
    k = key("project", seed=1522)
    data = make_zip(
        {
            "[Content_Types].xml": CONTENT_TYPES,
            "word/document.xml": f'<w:document xmlns:w="{W_NS}"><w:body><w:p><w:t>{k}</w:t>',
            "docProps/app.xml": "<Properties/>",
        }
    )
    hits, errors = hits_of(data, "broken.docx")
    assert [h.location.display_path for h in hits] == ["broken.docx!word/document.xml"]
    (err,) = errors
    assert err.where == "broken.docx!word/document.xml"
    assert "not well-formed" in err.message
    path = tmp_path / "broken.docx"
    path.write_bytes(data)
    proc = keyscan("scan", str(path))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert k not in proc.stdout + proc.stderr


def test_entity_expansion_is_refused() -> None:
    k = key("project", seed=1523)
    entities = "".join(
        f'<!ENTITY {c} "{("&" + p + ";") * 10}">'
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY a "aaaaaaaaaa">'
        + entities
        + "]>"
        + f'<w:document xmlns:w="{W_NS}"><w:body><w:p><w:t>&i;</w:t></w:p></w:body></w:document>'
    )
    data = docx([[*split(k, 2)]], {"word/footer1.xml": laughs})
    hits, errors = hits_of(data, "laughs.docx")
    assert [h.secret.decode() for h in hits] == [k]
    (err,) = errors
    assert err.where == "laughs.docx!word/footer1.xml"
    assert "document type declaration refused" in err.message


def test_office_location_in_json_and_text_reports(tmp_path: Path) -> None:
    k = key("project", seed=1524)
    (tmp_path / "plan.docx").write_bytes(docx([["intro"], ["key: ", *split(k, 3)]]))
    (tmp_path / "book.xlsx").write_bytes(xlsx([split(k, 2)], [("D2", "0")], {}))
    proc = keyscan("scan", "-f", "json", str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    assert k not in proc.stdout
    doc = json.loads(proc.stdout)
    locs = [loc for f in doc["findings"] for loc in f["locations"]]
    where = sorted(
        (Path(loc["path"].split("!")[0]).name, tuple(loc["member"]), loc["extra"]) for loc in locs
    )
    assert where == [
        ("book.xlsx", ("xl/worksheets/sheet2.xml",), {"sheet": "Config", "cell": "D2"}),
        ("plan.docx", ("word/document.xml",), {"paragraph": 2}),
    ]
    text = keyscan("scan", str(tmp_path / "plan.docx"))
    assert text.returncode == 1
    assert "plan.docx!word/document.xml:" in text.stdout
    assert "(paragraph 2)" in text.stdout
    text = keyscan("scan", str(tmp_path / "book.xlsx"))
    assert "book.xlsx!xl/worksheets/sheet2.xml:" in text.stdout
    assert "(sheet Config, cell D2)" in text.stdout
    assert k not in text.stdout


def test_office_part_obeys_the_bomb_limits_and_is_reported_once() -> None:
    k = key("project", seed=1525)
    bomb = f'<w:document xmlns:w="{W_NS}"><w:body>' + " " * (8 << 20) + "</w:body></w:document>"
    data = docx([["x"]], {"word/footer1.xml": bomb, "word/header1.xml": f"<x>{k}</x>"})
    assert len(data) < 200_000
    hits, errors = hits_of(data, "bomb.docx")
    assert [h.location.display_path for h in hits] == ["bomb.docx!word/header1.xml"]
    (err,) = errors
    assert err.where == "bomb.docx!word/footer1.xml"
    assert "compression ratio above 200:1" in err.message


def test_office_document_deleted_from_git_history_is_found_by_paragraph(tmp_path: Path) -> None:
    from tests.git_helpers import Repo

    k = key("svcacct", seed=1526)
    repo = Repo(tmp_path / "repo")
    repo.commit("spec", ("docs/spec.docx", docx([["Intro"], ["Use ", *split(k, 3)]])))
    repo.git("rm", "-q", "docs/spec.docx")
    repo.git("commit", "-qm", "remove the spec")
    proc = keyscan("git", "-f", "json", str(tmp_path / "repo"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert k not in proc.stdout
    (finding,) = json.loads(proc.stdout)["findings"]
    (loc,) = finding["locations"]
    assert loc["member"] == ["word/document.xml"]
    assert loc["extra"]["paragraph"] == 2
    assert loc["path"].startswith("docs/spec.docx")


def test_macro_forms_and_embedded_documents() -> None:
    """docm/xlsm/pptm are the same packages (recognised by content); a macro project and an
    embedded workbook are members like any other: scanned raw, the workbook as Office too."""
    k1, k2 = key("project", seed=1527), key("admin", seed=1528)
    book = xlsx([split(k2, 3)], [("A2", "0")], {})
    data = docx(
        [["see the sheet"]],
        {
            "word/vbaProject.bin": b"\xd0\xcf\x11\xe0" + f"Const K = \"{k1}\"".encode(),
            "word/embeddings/Microsoft_Excel_Worksheet1.xlsx": book,
        },
    )
    for name in ("report.docm", "report"):
        hits, errors = hits_of(data, name)
        assert errors == []
        got = sorted((h.location.display_path, h.secret.decode(), h.location.extra) for h in hits)
        assert got == sorted(
            [
                (f"{name}!word/vbaProject.bin", k1, {}),
                (
                    f"{name}!word/embeddings/Microsoft_Excel_Worksheet1.xlsx"
                    "!xl/worksheets/sheet2.xml",
                    k2,
                    {"sheet": "Config", "cell": "A2"},
                ),
            ]
        )
