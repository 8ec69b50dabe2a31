"""Jupyter notebooks: keys in code cells, outputs and embedded JSON, located by cell.

A notebook is JSON: its text is split into string literals (one per source line, as
nbformat writes it, or one per cell) with quotes and newlines escaped (``\\"``, ``\\n``).
Scanning the file as text finds most keys but cannot say which cell holds them, and misses
keys whose context is escaped (``{\\"openai_api_key\\": \\"...\\"}``). So every string of
every cell is JSON-decoded and scanned on its own (with the decoders, when enabled), and each
hit is located twice: by file line/column/offset of the key's first character in the file,
and by cell in ``Location.extra``:

* ``{"cell": 3, "cell_line": 2}``: in the source of the third cell (both 1-based);
* ``{"cell": 3, "output": 1, "output_line": 4}``: in the first output of that cell;
* ``{"cell": 3, "field": "metadata"}``: elsewhere in the cell (metadata, attachments).

A file that is not valid JSON returns None: the caller's plain scan stands alone (nothing is
lost: every byte of it was scanned as text).

This module never imports the scanner: the content layer passes ``find``, which returns the
keys in one decoded string value.
"""

from __future__ import annotations

import json.decoder
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from keyscan.findings import ALLOW_COMMENT, Hit, LineCounter
from keyscan.formats.decoders import decode_escapes
from keyscan.models import Location, Match

# Keys in one string value: (start in the value, match, how it was decoded: "" when plain).
Find = Callable[[bytes], list[tuple[int, Match, str]]]

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_scanstring: Any = getattr(json.decoder, "scanstring")  # noqa: B009
MAX_NESTING = 200


@dataclass
class Str:
    """A JSON string literal: its value and the span of the literal (quotes included)."""

    value: str
    start: int  # character index of the opening quote
    end: int  # character index after the closing quote


class _Parser:
    """A small JSON parser that keeps where each string literal is."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.strings: list[Str] = []

    def value(self, i: int, depth: int) -> tuple[Any, int]:
        if depth > MAX_NESTING:
            raise ValueError("nested too deeply")
        s = self.text
        i = _WS.match(s, i).end()  # type: ignore[union-attr]
        c = s[i : i + 1]
        if c == '"':
            val, end = _scanstring(s, i + 1, True)
            lit = Str(val, i, end)
            self.strings.append(lit)
            return lit, end
        if c == "{":
            obj: dict[str, Any] = {}
            i = _WS.match(s, i + 1).end()  # type: ignore[union-attr]
            if s[i : i + 1] == "}":
                return obj, i + 1
            while True:
                i = _WS.match(s, i).end()  # type: ignore[union-attr]
                if s[i : i + 1] != '"':
                    raise ValueError("expected a key")
                key, i = _scanstring(s, i + 1, True)
                i = _WS.match(s, i).end()  # type: ignore[union-attr]
                if s[i : i + 1] != ":":
                    raise ValueError("expected ':'")
                obj[key], i = self.value(i + 1, depth + 1)
                i = _WS.match(s, i).end()  # type: ignore[union-attr]
                if s[i : i + 1] == ",":
                    i += 1
                elif s[i : i + 1] == "}":
                    return obj, i + 1
                else:
                    raise ValueError("expected ',' or '}'")
        if c == "[":
            arr: list[Any] = []
            i = _WS.match(s, i + 1).end()  # type: ignore[union-attr]
            if s[i : i + 1] == "]":
                return arr, i + 1
            while True:
                item, i = self.value(i, depth + 1)
                arr.append(item)
                i = _WS.match(s, i).end()  # type: ignore[union-attr]
                if s[i : i + 1] == ",":
                    i += 1
                elif s[i : i + 1] == "]":
                    return arr, i + 1
                else:
                    raise ValueError("expected ',' or ']'")
        for word, val in (("true", True), ("false", False), ("null", None)):
            if s.startswith(word, i):
                return val, i + len(word)
        m = _NUMBER.match(s, i)
        if m:
            return float(m.group()), m.end()
        raise ValueError(f"unexpected {c!r} at {i}")


def parse(data: bytes) -> tuple[Any, list[Str]] | None:
    """(document, string literals in order) or None if data is not a JSON notebook."""
    try:
        text = data.decode("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8")
        parser = _Parser(text)
        doc, end = parser.value(0, 0)
        if text[end:].strip():
            return None
    except (ValueError, UnicodeDecodeError, IndexError, RecursionError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list):
        return None
    if not text.isascii() or data.startswith(b"\xef\xbb\xbf"):
        _to_byte_offsets(text, parser.strings, 3 if data.startswith(b"\xef\xbb\xbf") else 0)
    return doc, parser.strings


def _to_byte_offsets(text: str, strings: list[Str], skip: int) -> None:
    """Character indexes → UTF-8 byte offsets, in one pass (literals are in order)."""
    pos_char = 0
    pos_byte = skip
    for lit in strings:
        pos_byte += len(text[pos_char : lit.start].encode("utf-8", "surrogatepass"))
        pos_char = lit.start
        start = pos_byte
        pos_byte += len(text[pos_char : lit.end].encode("utf-8", "surrogatepass"))
        pos_char = lit.end
        lit.start, lit.end = start, pos_byte


def _lines(value: Any) -> Iterator[tuple[Str, int]]:
    """String literals of a source/text field with the lines that precede each one."""
    if isinstance(value, Str):
        yield value, 0
    elif isinstance(value, list):
        before = 0
        for item in value:
            if isinstance(item, Str):
                yield item, before
                before += item.value.count("\n")
            else:
                yield from _walk(item)
    elif isinstance(value, dict):
        yield from _walk(value)


def _walk(value: Any) -> Iterator[tuple[Str, int]]:
    """Every string literal in a JSON value (dictionary keys aside), with the lines before
    it in its list of lines (0 outside such lists)."""
    if isinstance(value, Str):
        yield value, 0
    elif isinstance(value, list):
        yield from _lines(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)


def _cell_strings(doc: dict[str, Any]) -> Iterator[tuple[Str, dict[str, Any], int]]:
    """(literal, extra, lines before it in its field) for every string of every cell."""
    for index, cell in enumerate(doc["cells"], start=1):
        if not isinstance(cell, dict):
            continue
        for name, value in cell.items():
            if name == "source":
                for lit, before in _lines(value):
                    yield lit, {"cell": index, "line_key": "cell_line"}, before
            elif name == "outputs" and isinstance(value, list):
                for k, output in enumerate(value, start=1):
                    items = output.values() if isinstance(output, dict) else [output]
                    for item in items:
                        for lit, before in _lines(item):
                            extra = {"cell": index, "output": k, "line_key": "output_line"}
                            yield lit, extra, before
            else:
                for lit, _ in _walk(value):
                    yield lit, {"cell": index, "field": name}, 0


def scan_notebook(
    data: bytes,
    template: Location,
    find: Find,
    base_line: int = 1,
) -> list[Hit] | None:
    """Hits in the cells of a notebook, or None if data is not a notebook."""
    parsed = parse(data)
    if parsed is None:
        return None
    doc, _ = parsed
    found: list[tuple[int, int, bytes, Hit]] = []  # (file offset, secret) -> hit, unsorted
    for lit, extra, before in _cell_strings(doc):
        raw_start, raw_end = lit.start + 1, lit.end - 1
        escaped = (
            decode_escapes(data, raw_start, raw_end) if b"\\" in data[raw_start:raw_end] else None
        )
        value = escaped.data if escaped is not None else data[raw_start:raw_end]
        if not value:
            continue
        for start, m, how in find(value):
            offset = escaped.to_parent(start) if escaped is not None else raw_start + start
            if not how and data[offset : offset + len(m.secret)] != m.secret:
                how = "escape"  # the key itself holds escapes (\u002d, ...)
            line_in_value = value.count(b"\n", 0, start)
            ls = value.rfind(b"\n", 0, start) + 1
            le = value.find(b"\n", start)
            line_text = value[ls : le if le >= 0 else len(value)]
            cell_extra = {k: v for k, v in extra.items() if k != "line_key"}
            if "line_key" in extra:
                cell_extra[extra["line_key"]] = before + line_in_value + 1
            loc = Location(
                path=template.path,
                line=0,
                column=0,
                offset=offset,
                binary=False,
                source=template.source,
                commit=template.commit,
                blob=template.blob,
                decoded=how or template.decoded,
                extra={**template.extra, **cell_extra},
                inline_allowed=bool(ALLOW_COMMENT.search(line_text)),
                member=template.member,
            )
            found.append(
                (
                    offset,
                    len(found),
                    m.secret,
                    Hit(m.rule.id, m.rule.description, m.family, m.rule.confidence, m.secret, loc),
                )
            )
    found.sort(key=lambda item: (item[0], item[1]))
    counter = LineCounter(data, base_line)
    hits: list[Hit] = []
    seen: set[tuple[int, bytes]] = set()
    for offset, _, secret, hit in found:
        if (offset, secret) in seen:
            continue
        seen.add((offset, secret))
        hit.location.line, hit.location.column, _ = counter.locate(offset)
        hits.append(hit)
    return hits
