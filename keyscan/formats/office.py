"""Office documents: the text a person sees in OOXML (docx, xlsx, pptx and their macro forms)
and ODF (odt, ods, odp) files.

An Office document is a zip of XML parts. Its members are scanned as raw bytes like those of
any zip (``keyscan.formats.archives``: a key in a custom XML part, a comment, docProps or an
embedded file), but an editor splits text into runs (``<w:r><w:t>``), shared strings and
spans, so a key typed in one paragraph may sit in the XML in pieces. This module rebuilds
the visible text of the parts that hold it, one *unit* per paragraph (docx, pptx, odt, odp)
or cell (xlsx, ods), units separated by a blank line so that a key split by a paragraph or
cell boundary is not joined, and says where each unit came from:

* docx/odt: ``{"paragraph": 3}`` (1-based, in the part's order);
* xlsx/ods: ``{"sheet": "Config", "cell": "B2"}``;
* pptx/odp: ``{"slide": 2, "paragraph": 1}`` (pptx: the slide's number in its part name).

Recognised by content, not by name: a zip with a ``[Content_Types].xml`` member (OOXML) or
a ``mimetype`` member naming an OpenDocument type (ODF).

XML is parsed with expat and a guard: a part with a document type declaration (``<!DOCTYPE``,
the only place entities can be declared) is refused (billion laughs, external entities), as
is one that is not well-formed: ``Malformed``, which the archive code reports as a ScanError
while the raw member scan of the part stands. Extracted text is bounded (``MAX_TEXT``).

This module never imports the scanner: it turns bytes into text and offsets only.
"""

from __future__ import annotations

import bisect
import re
import xml.parsers.expat
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from keyscan.errors import KeyscanError

# Text extracted from one part, at most (a shared string referenced by a million cells must
# not become a terabyte of text).
MAX_TEXT = 32 * 1024 * 1024
MAX_SPACES = 1024  # ODF <text:s text:c="N"/>: N spaces, bounded
SEPARATOR = b"\n\n"  # between units: a key never spans a paragraph or cell boundary

_ODF_TYPES = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.text-template": "odt",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/vnd.oasis.opendocument.spreadsheet-template": "ods",
    b"application/vnd.oasis.opendocument.presentation": "odp",
    b"application/vnd.oasis.opendocument.presentation-template": "odp",
}
_DOCX_PART = re.compile(r"word/(document|header\d*|footer\d*|footnotes|endnotes|comments)\.xml")
_PPTX_SLIDE = re.compile(r"ppt/slides/slide(\d+)\.xml")
_PPTX_NOTES = re.compile(r"ppt/notesSlides/notesSlide\d+\.xml")
_XLSX_SHEET = re.compile(r"xl/worksheets/[^/]+\.xml")
_XLSX_SHARED = "xl/sharedStrings.xml"
_XLSX_WORKBOOK = "xl/workbook.xml"
_XLSX_RELS = "xl/_rels/workbook.xml.rels"


class Malformed(KeyscanError):
    """A part that cannot be read as XML (or is refused: a DTD, too much text)."""


@dataclass
class PartText:
    """The visible text of one part: units separated by ``SEPARATOR``."""

    part: str
    text: bytes = b""
    # (text offset where a unit starts, what locates it), in order
    units: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    # (text offset, XML byte offset, exact) where each piece of text came from, in order;
    # not exact: the piece is not spelled out there (a shared string: the cell's offset)
    spans: list[tuple[int, int, bool]] = field(default_factory=list)

    def unit_at(self, offset: int) -> dict[str, Any]:
        i = bisect.bisect_right(self.units, offset, key=lambda u: u[0]) - 1
        return dict(self.units[i][1]) if i >= 0 else {}

    def xml_offset(self, offset: int) -> int:
        i = bisect.bisect_right(self.spans, offset, key=lambda s: s[0]) - 1
        if i < 0:
            return 0
        start, at, exact = self.spans[i]
        return at + (offset - start) if exact else at


def office_kind(names: Collection[str], read: Callable[[str], bytes]) -> str | None:
    """ "docx", "xlsx", "pptx" (any OOXML package: by its main part), "odt", "ods", "odp",
    or None. ``read(name)`` returns the first bytes of a member (the ODF ``mimetype``)."""
    if "[Content_Types].xml" in names:
        if "word/document.xml" in names:
            return "docx"
        if _XLSX_WORKBOOK in names:
            return "xlsx"
        if "ppt/presentation.xml" in names:
            return "pptx"
        return None
    if "mimetype" in names and "content.xml" in names:
        return _ODF_TYPES.get(read("mimetype").strip())
    return None


def parts_needed(kind: str, names: Collection[str]) -> list[str]:
    """The parts whose XML ``extract`` reads, in a stable order."""
    if kind == "docx":
        return sorted(n for n in names if _DOCX_PART.fullmatch(n))
    if kind == "pptx":
        return sorted(n for n in names if _PPTX_SLIDE.fullmatch(n) or _PPTX_NOTES.fullmatch(n))
    if kind == "xlsx":
        helpers = [n for n in (_XLSX_SHARED, _XLSX_WORKBOOK, _XLSX_RELS) if n in names]
        return helpers + sorted(n for n in names if _XLSX_SHEET.fullmatch(n))
    return ["content.xml"]  # ODF


def extract(kind: str, parts: Mapping[str, bytes]) -> tuple[list[PartText], list[tuple[str, str]]]:
    """(visible text of each part, problems as (part, why)). A part that is malformed is a
    problem; the others are still extracted."""
    texts: list[PartText] = []
    problems: list[tuple[str, str]] = []
    shared: list[str] = []
    names: dict[str, str] = {}
    if kind == "xlsx":
        if _XLSX_SHARED in parts:
            try:
                shared = _shared_strings(parts[_XLSX_SHARED])
            except Malformed as exc:
                problems.append((_XLSX_SHARED, str(exc)))
        try:
            names = _sheet_names(parts.get(_XLSX_WORKBOOK, b""), parts.get(_XLSX_RELS, b""))
        except Malformed as exc:
            problems.append((_XLSX_WORKBOOK, str(exc)))
    for part, data in parts.items():
        try:
            if kind == "xlsx":
                if not _XLSX_SHEET.fullmatch(part):
                    continue
                sheet = names.get(part, part.rsplit("/", 1)[-1][: -len(".xml")])
                texts.append(_sheet_text(part, data, sheet, shared))
            elif kind == "docx":
                texts.append(_paragraphs(part, data, _OOXML_W, {}))
            elif kind == "pptx":
                m = _PPTX_SLIDE.fullmatch(part)
                extra = {"slide": int(m.group(1))} if m else {}
                texts.append(_paragraphs(part, data, _OOXML_A, extra))
            else:
                texts.append(_odf_text(part, data, kind))
        except Malformed as exc:
            problems.append((part, str(exc)))
    return texts, problems


# --- XML ---------------------------------------------------------------------------------


def _local(name: str) -> str:
    return name.rpartition(" ")[2]


def _attr(attrs: dict[str, str], local: str) -> str | None:
    for k, v in attrs.items():
        if _local(k) == local:
            return v
    return None


class _Parser:
    """expat with namespaces split off ("uri local"), no DTD, handlers given by name."""

    def __init__(
        self,
        start: Callable[[str, dict[str, str], int], None],
        end: Callable[[str], None],
        chars: Callable[[str, int], None],
    ) -> None:
        self.p = xml.parsers.expat.ParserCreate(namespace_separator=" ")
        self.p.buffer_text = False
        self.p.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.p.StartDoctypeDeclHandler = self._refuse
        self.p.EntityDeclHandler = self._refuse
        self.p.ExternalEntityRefHandler = self._refuse
        self.p.StartElementHandler = lambda n, a: start(_local(n), a, self.p.CurrentByteIndex)
        self.p.EndElementHandler = lambda n: end(_local(n))
        self.p.CharacterDataHandler = lambda s: chars(s, self.p.CurrentByteIndex)

    def _refuse(self, *_: object) -> Any:
        raise Malformed("document type declaration refused (entities are not expanded)")

    def parse(self, data: bytes) -> None:
        if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
            raise Malformed("document type declaration refused (entities are not expanded)")
        try:
            self.p.Parse(data, True)
        except xml.parsers.expat.ExpatError as exc:
            raise Malformed(f"not well-formed XML: {exc}") from None
        except RecursionError:  # pragma: no cover - expat does not recurse
            raise Malformed("nested too deeply") from None


class _Builder:
    """Collects the text of units, remembering where each piece was in the XML."""

    def __init__(self, part: str) -> None:
        self.out = PartText(part)
        self.chunks: list[bytes] = []
        self.pos = 0

    def unit(self, extra: dict[str, Any]) -> None:
        if self.pos:
            self.chunks.append(SEPARATOR)
            self.pos += len(SEPARATOR)
        self.out.units.append((self.pos, extra))

    def add(self, text: str, at: int, exact: bool = True) -> None:
        data = text.encode("utf-8", "surrogatepass")
        if not data:
            return
        if self.pos + len(data) > MAX_TEXT:
            raise Malformed(f"more than {MAX_TEXT} bytes of text")
        self.out.spans.append((self.pos, at, exact))
        self.chunks.append(data)
        self.pos += len(data)

    def done(self) -> PartText:
        self.out.text = b"".join(self.chunks)
        return self.out


# --- docx, pptx ----------------------------------------------------------------------------

# (paragraph element, text element, {element: the text it stands for})
_OOXML_W = ("p", "t", {"tab": "\t", "br": "\n", "cr": "\n"})
_OOXML_A = ("p", "t", {"br": "\n", "tab": "\t"})


def _paragraphs(
    part: str, data: bytes, spec: tuple[str, str, dict[str, str]], extra: dict[str, Any]
) -> PartText:
    para, text, specials = spec
    b = _Builder(part)
    count = 0
    in_text = 0

    def start(name: str, attrs: dict[str, str], at: int) -> None:
        nonlocal count, in_text
        if name == para:
            count += 1
            b.unit({**extra, "paragraph": count})
        elif name == text:
            in_text += 1
        elif name in specials and count:
            b.add(specials[name], at, exact=False)

    def end(name: str) -> None:
        nonlocal in_text
        if name == text:
            in_text -= 1

    def chars(s: str, at: int) -> None:
        if in_text > 0 and count:
            b.add(s, at)

    _Parser(start, end, chars).parse(data)
    return b.done()


# --- xlsx ----------------------------------------------------------------------------------


def _strings(data: bytes, item: str) -> list[str]:
    """The text of each ``item`` element (``si``), its ``t`` descendants joined (phonetic
    runs ``rPh`` left out)."""
    out: list[str] = []
    cur: list[str] = []
    depth = {"item": 0, "t": 0, "rPh": 0}
    size = 0

    def start(name: str, attrs: dict[str, str], at: int) -> None:
        if name == item:
            depth["item"] += 1
            cur.clear()
        elif name in ("t", "rPh"):
            depth[name] += 1

    def end(name: str) -> None:
        if name == item:
            depth["item"] -= 1
            out.append("".join(cur))
        elif name in ("t", "rPh"):
            depth[name] -= 1

    def chars(s: str, at: int) -> None:
        nonlocal size
        if depth["item"] and depth["t"] and not depth["rPh"]:
            size += len(s)
            if size > MAX_TEXT:
                raise Malformed(f"more than {MAX_TEXT} bytes of text")
            cur.append(s)

    _Parser(start, end, chars).parse(data)
    return out


def _shared_strings(data: bytes) -> list[str]:
    return _strings(data, "si")


def _sheet_names(workbook: bytes, rels: bytes) -> dict[str, str]:
    """Worksheet part name -> the sheet's name shown on its tab."""
    if not workbook or not rels:
        return {}
    ids: dict[str, str] = {}
    targets: dict[str, str] = {}

    def wb_start(name: str, attrs: dict[str, str], at: int) -> None:
        if name == "sheet":
            rid, label = _attr(attrs, "id"), _attr(attrs, "name")
            if rid and label is not None:
                ids[rid] = label

    def rel_start(name: str, attrs: dict[str, str], at: int) -> None:
        if name == "Relationship":
            rid, target = attrs.get("Id"), attrs.get("Target")
            if rid and target:
                target = target.lstrip("/") if target.startswith("/") else "xl/" + target
                targets[rid] = target

    _Parser(wb_start, lambda n: None, lambda s, a: None).parse(workbook)
    _Parser(rel_start, lambda n: None, lambda s, a: None).parse(rels)
    return {targets[rid]: label for rid, label in ids.items() if rid in targets}


def column_name(index: int) -> str:
    """1 -> A, 27 -> AA."""
    out = ""
    while index > 0:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


_REF = re.compile(r"([A-Z]{1,3})(\d+)")


def _column_index(letters: str) -> int:
    n = 0
    for c in letters:
        n = n * 26 + ord(c) - 64
    return n


def _sheet_text(part: str, data: bytes, sheet: str, shared: list[str]) -> PartText:
    b = _Builder(part)
    row = 0
    col = 0
    cell: dict[str, Any] | None = None  # {"t": type, "at": offset of <c>}
    where = {"v": 0, "t": 0, "is": 0, "rPh": 0}
    value: list[str] = []

    def start(name: str, attrs: dict[str, str], at: int) -> None:
        nonlocal row, col, cell
        if name == "row":
            r = attrs.get("r")
            row = int(r) if r and r.isdigit() else row + 1
            col = 0
        elif name == "c":
            ref = attrs.get("r") or ""
            m = _REF.fullmatch(ref)
            if m:
                col = _column_index(m.group(1))
                ref = m.group(0)
            else:
                col += 1
                ref = f"{column_name(col)}{row}"
            cell = {"t": attrs.get("t", "n"), "at": at, "ref": ref, "unit": False}
            value.clear()
        elif name in where:
            where[name] += 1

    def end(name: str) -> None:
        nonlocal cell
        if name in where:
            where[name] -= 1
        elif name == "c" and cell is not None:
            if cell["t"] == "s":
                raw = "".join(value).strip()
                if raw.isdigit() and int(raw) < len(shared) and shared[int(raw)]:
                    b.unit({"sheet": sheet, "cell": cell["ref"]})
                    b.add(shared[int(raw)], cell["at"], exact=False)
            cell = None

    def chars(s: str, at: int) -> None:
        if cell is None:
            return
        if cell["t"] == "s":
            if where["v"]:
                value.append(s)
            return
        if (where["v"] or (where["is"] and where["t"] and not where["rPh"])) and s:
            if not cell["unit"]:
                cell["unit"] = True
                b.unit({"sheet": sheet, "cell": cell["ref"]})
            b.add(s, at)

    _Parser(start, end, chars).parse(data)
    return b.done()


# --- ODF -----------------------------------------------------------------------------------


def _odf_text(part: str, data: bytes, kind: str) -> PartText:
    b = _Builder(part)
    para = 0  # paragraphs counted (odt, odp: per slide)
    slide = 0
    in_para = 0
    sheet = ""
    row = 0
    col = 0
    row_repeat = 1
    cell: dict[str, Any] | None = None  # ods: the cell being read

    def start(name: str, attrs: dict[str, str], at: int) -> None:
        nonlocal para, slide, in_para, sheet, row, col, row_repeat, cell
        if name == "page" and kind == "odp":
            slide += 1
            para = 0
        elif name == "table" and kind == "ods":
            sheet = _attr(attrs, "name") or ""
            row = 0
            row_repeat = 1
        elif name == "table-row" and kind == "ods":
            row += row_repeat
            row_repeat = _repeat(_attr(attrs, "number-rows-repeated"))
            col = 0
        elif name in ("table-cell", "covered-table-cell") and kind == "ods":
            col += 1
            cell = {"ref": f"{column_name(col)}{max(row, 1)}", "unit": False, "paras": 0}
            col += _repeat(_attr(attrs, "number-columns-repeated")) - 1
        elif name in ("p", "h"):
            in_para += 1
            if cell is not None:
                cell["paras"] += 1
                if cell["unit"] and cell["paras"] > 1:
                    b.add("\n", at, exact=False)
            else:
                para += 1
                extra: dict[str, Any] = {"paragraph": para}
                if kind == "odp" and slide:
                    extra = {"slide": slide, "paragraph": para}
                b.unit(extra)
        elif in_para:
            if name == "s":
                b.add(" " * min(_repeat(_attr(attrs, "c")), MAX_SPACES), at, exact=False)
            elif name == "tab":
                b.add("\t", at, exact=False)
            elif name == "line-break":
                b.add("\n", at, exact=False)

    def end(name: str) -> None:
        nonlocal in_para, cell
        if name in ("p", "h"):
            in_para -= 1
        elif name in ("table-cell", "covered-table-cell") and kind == "ods":
            cell = None

    def chars(s: str, at: int) -> None:
        if not in_para:
            return
        if cell is not None and not cell["unit"]:
            cell["unit"] = True
            b.unit({"sheet": sheet, "cell": cell["ref"]})
        b.add(s, at)

    _Parser(start, end, chars).parse(data)
    return b.done()


def _repeat(value: str | None) -> int:
    return int(value) if value and value.isdigit() and 0 < int(value) < 1 << 20 else 1
