"""PDF: the text a reader sees and the strings a document carries, with limits.

A PDF (``%PDF-`` in its first 1024 bytes) is scanned twice: as raw bytes, like any file (by
the content layer), and here, by a small bounded reader that needs no dependency:

* objects (``N G obj ... endobj``) are read in file order, at most ``MAX_OBJECTS``; a broken
  cross-reference table does not matter, it is never read;
* streams are decoded through FlateDecode (zlib), ASCIIHexDecode and ASCII85Decode; other
  filters (images: DCT, JPX, CCITT, JBIG2; LZW, RunLength) are left alone;
* content streams (a page's ``/Contents``, form XObjects) are read as text: the strings shown
  by ``Tj``, ``TJ`` (the pieces of an array joined, so a key split by kerning is whole),
  ``'`` and ``"``, with literal-string escapes and hex strings; a line ends where the text
  moves to another line (``Td``/``TD`` with a vertical move, ``T*``, ``Tm``, ``ET``);
* other decoded streams (embedded files, JavaScript, XMP metadata) are scanned as bytes;
* the strings of every object's dictionary (Info ``/Title``, annotation ``/URI``, form field
  ``/V``...), object streams (``/Type /ObjStm``) included, one string a line.

Hits are located at the object: ``Location.extra`` holds ``pdf_object`` (its number),
``pdf_page`` (for page contents) and ``pdf_part`` (``"page text"``, ``"stream"`` or the
dictionary key holding the string, e.g. ``"/URI"``); ``Location.offset`` is the object's
byte offset in the file, ``Location.decoded`` starts with ``pdf``.

Limits: the bytes inflated from one PDF count against ``archive_max_bytes``, a stream may not
inflate beyond ``archive_max_ratio`` times its size (above ``archive_ratio_floor``). What
cannot be read (an encrypted PDF, a truncated stream, a damaged or refused one) is a
ScanError naming the object; the rest is read on.

Fonts: the glyph codes of a page's fonts that have a ``/ToUnicode`` CMap (``bfchar`` and
``bfrange``; composite Identity-H fonts) are mapped to text. Not decoded: fonts without one
(or with ``usecmap``, mixed code widths, the predefined CJK CMaps), ``/Differences``
encodings: their codes are read as they are, which is the text only for ASCII codes.
"""

from __future__ import annotations

import base64
import bisect
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from keyscan.errors import KeyscanError
from keyscan.findings import Hit
from keyscan.models import Location, ScanError

MAX_OBJECTS = 100_000
MAX_PAGES = 100_000
# Object streams: inner objects read from one.
MAX_INNER = 100_000

_OBJ = re.compile(
    rb"(?<![0-9])(\d{1,10})[\x00\t\n\x0c\r ]+(\d{1,5})[\x00\t\n\x0c\r ]+obj(?![A-Za-z])"
)
_ENDOBJ = re.compile(rb"endobj")
# Both led by their literal, so that re looks for it at C speed (a pattern that starts with
# a lookbehind or an optional group is tried at every byte: 20 and 60 ms a 2 MB PDF).
_STREAM = re.compile(rb"stream(?<!endstream)(?:\r\n|\n|\r)")
_ENDSTREAM = re.compile(rb"endstream")
_LENGTH = re.compile(
    rb"/Length[\x00\t\n\x0c\r ]*(\d{1,12})(?![\x00\t\n\x0c\r ]*\d+[\x00\t\n\x0c\r ]*\d*[\x00\t\n\x0c\r ]*R)"
)
_FILTER = re.compile(
    rb"/Filter[\x00\t\n\x0c\r ]*(\[[^\]]{0,500}\]|/[^\x00\t\n\x0c\r /\[\]()<>{}%]+)"
)
_NAME = re.compile(rb"/([^\x00\t\n\x0c\r /\[\]()<>{}%]+)")
_ENCRYPT = re.compile(
    rb"/Encrypt[\x00\t\n\x0c\r ]*(?:\d+[\x00\t\n\x0c\r ]+\d+[\x00\t\n\x0c\r ]+R|<<)"
)
_TYPE = re.compile(rb"/Type[\x00\t\n\x0c\r ]*/([A-Za-z]+)")
_SUBTYPE = re.compile(rb"/Subtype[\x00\t\n\x0c\r ]*/([A-Za-z0-9]+)")
_REF = re.compile(rb"(\d{1,10})[\x00\t\n\x0c\r ]+\d{1,5}[\x00\t\n\x0c\r ]+R(?![A-Za-z])")
_PAGES_REF = re.compile(
    rb"/Pages[\x00\t\n\x0c\r ]*(\d{1,10})[\x00\t\n\x0c\r ]+\d{1,5}[\x00\t\n\x0c\r ]+R"
)
_KIDS = re.compile(rb"/Kids[\x00\t\n\x0c\r ]*\[([^\]]{0,10000000})\]")
_CONTENTS = re.compile(
    rb"/Contents[\x00\t\n\x0c\r ]*(\[[^\]]{0,1000000}\]|\d{1,10}[\x00\t\n\x0c\r ]+\d{1,5}[\x00\t\n\x0c\r ]+R)"
)
_RESOURCES = re.compile(
    rb"/Resources[\x00\t\n\x0c\r ]*(?:(\d{1,10})[\x00\t\n\x0c\r ]+\d{1,5}[\x00\t\n\x0c\r ]+R|<<)"
)
_PARENT = re.compile(
    rb"/Parent[\x00\t\n\x0c\r ]*(\d{1,10})[\x00\t\n\x0c\r ]+\d{1,5}[\x00\t\n\x0c\r ]+R"
)
_FONT = re.compile(
    rb"/Font[\x00\t\n\x0c\r ]*(?:(\d{1,10})[\x00\t\n\x0c\r ]+\d{1,5}[\x00\t\n\x0c\r ]+R|<<([^>]{0,100000})>>)"
)
_FONT_ENTRY = re.compile(
    rb"/([^\x00\t\n\x0c\r /\[\]()<>{}%]+)[\x00\t\n\x0c\r ]*(\d{1,10})[\x00\t\n\x0c\r ]+\d{1,5}[\x00\t\n\x0c\r ]+R"
)
_TOUNICODE = re.compile(
    rb"/ToUnicode[\x00\t\n\x0c\r ]*(\d{1,10})[\x00\t\n\x0c\r ]+\d{1,5}[\x00\t\n\x0c\r ]+R"
)
_INT = re.compile(rb"/(N|First)[\x00\t\n\x0c\r ]*(\d{1,10})")

# Content-stream and dictionary tokens. Literal strings are read by hand (nesting, escapes).
# (Dictionaries are read with these; content streams with the faster patterns below.)
_TOKEN = re.compile(
    rb"(?P<ws>[\x00\t\n\x0c\r ]+|%[^\r\n]*)"
    rb"|(?P<lit>\()"
    rb"|(?P<dict><<|>>)"
    rb"|(?P<hex><[0-9A-Fa-f\x00\t\n\x0c\r ]*>?)"
    rb"|(?P<arr>[\[\]{}])"
    rb"|(?P<name>/[^\x00\t\n\x0c\r /\[\]()<>{}%]*)"
    rb"|(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))"
    rb"|(?P<op>[^\x00\t\n\x0c\r /\[\]()<>{}%]+)"
    rb"|(?P<other>.)",
    re.S,
)

# A kerning adjustment in a TJ array wider than this (thousandths of an em) is a word gap
# (``_TJ_TEXT`` below spells this number out).
_WORD_GAP = 300

# --- Reading content streams fast -----------------------------------------------------------
# ``content_text`` reads the text that the token-by-token reading of ``_TOKEN`` would read
# (``tests/test_pdf_speed.py`` compares the two on thousands of generated streams), with
# fewer Python steps: a match may take several tokens at once. Wherever a pattern below
# takes a token, it takes the very token ``_TOKEN`` reads at that place, never a shorter
# one: numbers, names and operators end with a lookahead (so that a backtrack cannot split
# one), and literal strings are taken only when no unescaped parenthesis is inside (then
# they end where ``_literal`` ends them).
_DELIM = rb"\x00\t\n\x0c\r /\[\]()<>{}%"
_WS = rb"\x00\t\n\x0c\r "
_BLANK = rb"[" + _WS + rb"]*"
_END = rb"(?![^" + _DELIM + rb"])"  # where a name or an operator ends
_NUMBER = rb"[+-]?(?:\d+\.\d*(?!\d)|\d+(?![\d.])|\.\d+(?!\d))"
_SIMPLE_STRING = rb"\([^()\\]*(?:\\[\x00-\xff][^()\\]*)*\)"
_HEX_STRING = rb"<[0-9A-Fa-f" + _WS + rb"]*>"

# One token with the white space before it (one step, not two). ``slit``: a literal string
# without unescaped parenthesis inside; ``end``: white space at the end of the stream.
# Group names are those of ``_TOKEN``; a token's text is ``m.group(kind)``.
_TOKENS = (
    rb"(?P<ws>%[^\r\n]*)"
    rb"|(?P<slit>" + _SIMPLE_STRING + rb")"
    rb"|(?P<lit>\()"
    rb"|(?P<dict><<|>>)"
    rb"|(?P<hex><[0-9A-Fa-f" + _WS + rb"]*>?)"
    rb"|(?P<arr>[\[\]{}])"
    rb"|(?P<name>/[^" + _DELIM + rb"]*)"
    rb"|(?P<num>[+-]?(?:\d+\.?\d*|\.\d+))"
    rb"|(?P<op>[^" + _DELIM + rb"]+)"
    rb"|(?P<other>.)"
    rb"|(?P<end>\Z)"
)
_CTOKEN = re.compile(_BLANK + rb"(?:" + _TOKENS + rb")", re.S)  # inside an array

# An array of strings, hex strings and numbers (a TJ array), read in one match.
_ARRAY_ELEMENT = _SIMPLE_STRING + rb"|" + _HEX_STRING + rb"|" + _NUMBER
_SIMPLE_ARRAY = rb"\[(?:" + _BLANK + rb"(?:" + _ARRAY_ELEMENT + rb"))*" + _BLANK + rb"\]"
# The simple arrays TeX writes (strings and integers, nothing between them), fewer steps a
# piece; tried first, ``_SIMPLE_ARRAY`` after it (both end at the same "]"). Its pieces
# cannot be read two ways (a string without escape or with one, an integer to its last
# digit): a failing match is not tried again every other way.
_TEX_ARRAY = rb"\[(?:\([^()\\]*\)|\([^()\\]*(?:\\[\x00-\xff][^()\\]*)+\)|-?\d+(?!\d))*\]"
_ELEMENTS = re.compile(
    rb"(" + _SIMPLE_STRING + rb")|<([0-9A-Fa-f" + _WS + rb"]*)>|([+-]?(?:\d+\.?\d*|\.\d+))"
)

# A run of tokens that shows no text and leaves no operand: tokens that are only pushed
# (white space, comment, name, number, hex string, ``<<``, ``>>``, a stray ``)`` or ``>``)
# or operators other than the text operators, the last one an operator. The reader's state
# after it is what it was before, without operands: it is stepped over in one match.
# At most _RUN_OPS operators a match (a longer run is left to the stretch below), at most
# _RUN_OPERANDS tokens before each: a run is tried at every token, and tokens that never
# meet an operator must not be read again at each one (quadratic). White space is matched
# whole (a run of it split in two ways would make a failing match exponential).
_RUN_OPS = 16
_RUN_OPERANDS = 64
_TEXT_OP = rb"(?:Tj|TJ|'|\"|Tf|Td|TD|T\*|ET|Tm|BI)" + _END
_RUN = (
    rb"(?:(?:[" + _WS + rb"]+(?![" + _WS + rb"])|" + _NUMBER + rb"|/[^" + _DELIM + rb"]*" + _END
    + rb"|%[^\r\n]*(?![^\r\n])|<<|>>"
    + rb"|<(?!<)[0-9A-Fa-f" + _WS + rb"]*(?:>|(?![0-9A-Fa-f" + _WS + rb">]))"
    + rb"|\)|>(?!>)){0," + b"%d" % _RUN_OPERANDS + rb"}"
    + rb"(?![+-]?\.?\d)(?!" + _TEXT_OP + rb")[^" + _DELIM + rb"]+" + _END + rb"){1," + b"%d" % _RUN_OPS + rb"}"
)  # fmt: skip

# Outside arrays: the commonest text operations, operands and operator in one match (any
# operand before them does not matter: each of these operators reads only its own):
# ``(string) Tj`` (or ``<hex> Tj``) or ``[array] TJ``, each with the ``BT``, the ``/F1 12 Tf``
# and the ``x y Td`` (or TD) before it and the ``ET`` after it if any (as TeX writes a
# line: begin, font, move, show, end, the five read in one match); ``/F1 12 Tf``, ``x y Td``,
# ``a b c d e f Tm`` alone; then a ``run``; then one token.
_CPHRASE = re.compile(
    _BLANK
    + rb"(?:(?:BT" + _END + _BLANK + rb")?"
    + rb"(?:(?P<font>/[^" + _DELIM + rb"]*)" + _END + _BLANK + _NUMBER + _BLANK + rb"Tf" + _END
    + _BLANK + rb")?"
    + rb"(?:" + _NUMBER + _BLANK + rb"(?P<move>" + _NUMBER + rb")" + _BLANK + rb"T[dD]" + _END
    + _BLANK + rb")?"
    + rb"(?:(?P<tj>" + _SIMPLE_STRING + rb"|" + _HEX_STRING + rb")" + _BLANK + rb"Tj" + _END
    + rb"|(?P<tja>" + _TEX_ARRAY + rb"|" + _SIMPLE_ARRAY + rb")" + _BLANK + rb"TJ" + _END + rb")"
    + rb"(?:" + _BLANK + rb"ET" + _END + rb")?"
    + rb"|(?P<tf>/[^" + _DELIM + rb"]*)" + _END + _BLANK + _NUMBER + _BLANK + rb"Tf" + _END
    + rb"|" + _NUMBER + _BLANK + rb"(?P<td>" + _NUMBER + rb")" + _BLANK + rb"T[dD]" + _END
    + rb"|(?:" + _NUMBER + _BLANK + rb"){5}(?P<tm>" + _NUMBER + rb")" + _BLANK + rb"Tm" + _END
    + rb"|(?P<run>" + _RUN + rb")"
    + rb"|" + _TOKENS + rb")",
    re.S,
)  # fmt: skip
_SIMPLE_ARRAY_RE = re.compile(_SIMPLE_ARRAY)
# _CPHRASE is tried after these (and at the start), the single tokens of _CTOKEN after the
# others (a number, a name...: had a phrase or a run begun there, it would have matched one
# token earlier, unless it had more operands than a run takes; then the tokens are read one
# by one). Trying it at every token would read a long list of operands again at each one.
_PHRASE_AFTER = frozenset(("tj", "tja", "tf", "td", "tm", "run", "op", "slit", "lit", "arr"))

# Graphics (an illustration: megabytes of paths; a page's rules and colours between its text
# blocks) are crossed at C speed: a stretch without any byte that opens a string, an array,
# a dictionary, a comment or an inline image, or that can be part of a text operator (each
# holds T, I, ' or "), holds only white space, names, numbers and operators that are not
# text operators. It is cut after its last word that starts with a byte no number starts
# with (one operator token, to the next delimiter), preceded and followed by white space
# inside it: the stretch taken whole, then given back to that word (looked for near its end).
_STRETCH = re.compile(rb"[^TI'\"()\[\]{}<>%]*")
_LAST_OP = rb"(?<=[" + _WS + rb"])[^-+.0-9" + _DELIM + rb"][^" + _DELIM + rb"]*(?=[" + _WS + rb"])"
_STRETCH_OP = re.compile(rb"[^TI'\"()\[\]{}<>%]*" + _LAST_OP)


def _stretch_end(stream: bytes, pos: int) -> tuple[int, int]:
    """(the end of the last operator of the stretch at ``pos`` (a token's start, no array
    open), or ``pos`` when there is none; the end of the stretch). No later position
    before the stretch's end has an operator to find: it is not looked for again there."""
    stretch = _STRETCH.match(stream, pos)
    end = stretch.end() if stretch is not None else pos
    size = 256
    while True:  # the last operator is near the end: look back, widening 16x a time
        lo = max(pos, end - size)
        last = _STRETCH_OP.match(stream, lo, end)
        if last is not None or lo == pos:
            return (last.end() if last is not None else pos), end
        size *= 16


# What TJ shows of a simple array without hex strings (through the font's map if any): its
# strings, and a space for a number below -_WORD_GAP (a word gap); other numbers and white
# space are not matched (``findall`` passes over them: no string or wide number starts
# inside one). A wide number: -301 to -399, -400 to -999, -1000 and below, or -300 with
# a non-zero fraction; its integer part and fraction are all its digits (the lookaheads).
_TJ_TEXT = re.compile(
    rb"\(([^()\\]*(?:\\[\x00-\xff][^()\\]*)*)\)"
    rb"|(-0*(?:(?:[1-9]\d{3,}|30[1-9]|3[1-9]\d|[4-9]\d\d)(?:\.\d*(?!\d)|(?![\d.]))"
    rb"|300\.0*[1-9]\d*(?!\d)))"
)


# The strings of a simple TJ array without escapes (``_TJ_TEXT`` without its word gaps).
_TJ_STRINGS = re.compile(rb"\(([^()\\]*)\)")


def _unescape(text: bytes) -> bytes:
    """The bytes of a literal string's text (inside its parentheses, none unescaped)."""
    return text if b"\\" not in text else _literal(b"(" + text + b")", 0)[0]


def _simple_literal(token: bytes) -> bytes:
    """The bytes of a literal string token without unescaped parenthesis inside."""
    return token[1:-1] if b"\\" not in token else _literal(token, 0)[0]


def _array_items(array: bytes) -> list[object]:
    """The elements of a simple array's text (``_SIMPLE_ARRAY``), as the tokens read them."""
    items: list[object] = []
    for e in _ELEMENTS.finditer(array):
        text, digits, number = e.groups()
        if text is not None:
            items.append(text[1:-1] if b"\\" not in text else _literal(text, 0)[0])
        elif digits is not None:
            items.append(_unhex(digits))
        else:
            items.append(float(number))
    return items


_ESCAPES = {
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("("): b"(",
    ord(")"): b")",
    ord("\\"): b"\\",
}
_EI = re.compile(rb"[\x00\t\n\x0c\r ]EI(?![^\x00\t\n\x0c\r ])")

# What a malformed document may make the reader raise; turned into a ScanError.
_READ_ERRORS = (zlib.error, ValueError, IndexError, OverflowError, MemoryError, RecursionError)

Find = Callable[[bytes, Location, list[ScanError]], list[Hit]]


class PdfOptions(Protocol):
    """The limits PDFs obey (``keyscan.content.ContentOptions`` has them)."""

    @property
    def archive_max_bytes(self) -> int: ...
    @property
    def archive_max_ratio(self) -> int: ...
    @property
    def archive_ratio_floor(self) -> int: ...


class _Refused(KeyscanError):
    """A stream refused as a likely bomb."""


@dataclass
class _Object:
    num: int
    offset: int  # of "N G obj" in the file
    end: int  # end of the object in the file
    head: bytes  # the dictionary (or the whole object when it has no stream)
    stream: bytes | None = None  # the raw stream data
    in_stream: int | None = None  # the object stream holding it


@dataclass
class _Reader:
    data: bytes
    template: Location
    options: PdfOptions
    find: Find
    errors: list[ScanError]
    budget: int
    objects: list[_Object] = field(default_factory=list)
    # Content stream object number -> its page's ToUnicode maps by font resource name.
    fonts: dict[int, dict[bytes, ToUnicode]] = field(default_factory=dict)
    # Each hit with the span of its object in the file.
    hits: list[tuple[Hit, int, int]] = field(default_factory=list)

    def error(self, obj: _Object | None, message: str) -> None:
        where = self.template.display_path
        if obj is not None:
            where += f" (PDF object {obj.num})"
        self.errors.append(ScanError(where, message))


def scan_pdf(
    data: bytes,
    template: Location,
    options: PdfOptions,
    find: Find,
    raw: Sequence[Hit],
    errors: list[ScanError],
) -> tuple[list[Hit], list[Hit]]:
    """(hits in the text, strings and decoded streams of the PDF ``data``, the raw hits to
    keep). ``raw``: the hits of its raw bytes. A key found both ways is reported once, at its
    raw place, which then gets the PDF location in ``extra``."""
    reader = _Reader(data, template, options, find, errors, options.archive_max_bytes)
    if _ENCRYPT.search(data):
        reader.error(None, "encrypted PDF: streams and strings not decrypted, raw bytes scanned")
        return [], list(raw)
    try:
        _read_objects(reader)
        pages = _page_contents(reader)
        _scan_objects(reader, pages)
    except _READ_ERRORS as exc:
        reader.error(None, f"malformed PDF, partly read: {str(exc) or type(exc).__name__}")
    return _dedupe(reader, raw)


class _Searcher(Protocol):
    def search(self, data: bytes, pos: int, /) -> re.Match[bytes] | None: ...


# "obj" after white space: the end of every match of _OBJ (which starts with a lookbehind, so
# that re tries it at every byte: the most of the objects' reading on TeX's PDFs).
_OBJ_TAIL = re.compile(rb"[\x00\t\n\x0c\r ]obj(?![A-Za-z])")
_OBJ_BEFORE = 64  # bytes before its tail where a match of _OBJ is looked for first


class _ObjSearch:
    """``_OBJ.search(data, pos)``, its "obj" found first: no match spans two, so the first
    match ends at the first "obj" that ends one; it is looked for in the 64 bytes before it
    (then, for a long run of digits and white space, from the "obj" before it)."""

    def search(self, data: bytes, pos: int, /) -> re.Match[bytes] | None:
        lowest = pos
        while True:
            tail = _OBJ_TAIL.search(data, lowest)
            if tail is None:
                return None
            end = tail.end() + 1  # one byte past "obj": its lookahead sees the true next byte
            lo = max(lowest, tail.start() - _OBJ_BEFORE)
            m = _OBJ.search(data, lo, end)
            if m is None and lo > lowest:
                m = _OBJ.search(data, lowest, end)
            if m is not None:
                return m
            lowest = tail.start() + 1  # a match ending later does not hold this "obj"


class _Next:
    """The first match of a pattern at or after a position, searched again only when the
    position passes the last match: a file of many objects without ``endobj`` (or streams
    without ``endstream``) is read in linear time, not one search to its end per object."""

    def __init__(self, data: bytes, pattern: _Searcher) -> None:
        self.data, self.pattern = data, pattern
        self.at = -1  # position of the last search
        self.found: re.Match[bytes] | None = None

    def __call__(self, pos: int) -> re.Match[bytes] | None:
        if self.at < 0 or pos < self.at or (self.found is not None and self.found.start() < pos):
            self.at = pos
            self.found = self.pattern.search(self.data, pos)
        return self.found


def _read_objects(r: _Reader) -> None:
    data = r.data
    next_obj, next_endobj, next_endstream = (
        _Next(data, _ObjSearch()),
        _Next(data, _ENDOBJ),
        _Next(data, _ENDSTREAM),
    )
    next_stream = _Next(data, _STREAM)
    pos = 0
    while True:
        m = next_obj(pos)
        if m is None:
            return
        if len(r.objects) >= MAX_OBJECTS:
            r.error(None, f"more than {MAX_OBJECTS} objects: the rest not read")
            return
        num, start, body = int(m.group(1)), m.start(), m.end()
        # The dictionary ends where the stream begins (if before endobj and the next object).
        # The first "stream" after the object's start is its stream when no endobj and no
        # object starts before it: then endobj and the next object, which lie beyond the
        # stream data, are not looked for (that search would cross every stream's bytes).
        # Neither can start inside "stream" and end after it; with endpos one byte past its
        # start, a match of _OBJ that ends before it sees its true next byte.
        s = next_stream(body)
        if (
            s is not None
            and _ENDOBJ.search(data, body, s.start()) is None
            and _OBJ.search(data, body, s.start() + 1) is None
        ):
            obj = _Object(num, start, s.start(), b"")
        else:
            endobj = next_endobj(body)
            nxt = next_obj(body)
            limit = min(endobj.start() if endobj else len(data), nxt.start() if nxt else len(data))
            s = _STREAM.search(data, body, limit)
            obj = _Object(num, start, limit, data[body:limit])
        if s is None:
            if endobj is None and nxt is None:
                r.error(obj, "truncated: no endobj")
            r.objects.append(obj)
            pos = endobj.end() if endobj and endobj.start() == limit else limit
            continue
        obj.head = data[body : s.start()]
        sstart = s.end()
        send = -1
        length = _LENGTH.search(obj.head)
        if length is not None:
            n = int(length.group(1))
            after = data[sstart + n : sstart + n + 12].lstrip(b"\r\n \t")
            if sstart + n <= len(data) and after.startswith(b"endstream"):
                send = sstart + n
        if send < 0:
            e = next_endstream(sstart)
            if e is None:
                r.error(obj, "truncated: stream has no end, read to the end of the file")
                send = len(data)
            else:  # the end-of-line before "endstream" (CR LF, LF or CR) is not data
                send = e.start()
                if send - 2 >= sstart and data[send - 2 : send] == b"\r\n":
                    send -= 2
                elif send - 1 >= sstart and data[send - 1] in b"\r\n":
                    send -= 1
        obj.stream = data[sstart:send]
        obj.end = send
        r.objects.append(obj)
        pos = send


def _filters(head: bytes) -> list[bytes]:
    m = _FILTER.search(head)
    if m is None:
        return []
    return [n.group(1) for n in _NAME.finditer(m.group(1))]


def _decode(r: _Reader, obj: _Object) -> bytes | None:
    """The decoded stream of obj, None if a filter is not one we decode (an image)."""
    data = obj.stream or b""
    for name in _filters(obj.head):
        if name in (b"FlateDecode", b"Fl"):
            data = _inflate(r, obj, data)
        elif name in (b"ASCIIHexDecode", b"AHx"):
            data = _unhex(data.split(b">", 1)[0])
        elif name in (b"ASCII85Decode", b"A85"):
            data = _a85(data)
        else:
            return None
    return data


def _inflate(r: _Reader, obj: _Object, data: bytes) -> bytes:
    opts = r.options
    allowed = min(r.budget, max(opts.archive_ratio_floor, opts.archive_max_ratio * len(data)))
    d = zlib.decompressobj()
    out: list[bytes] = []
    size = 0
    step = 64 * 1024
    try:
        for i in range(0, len(data), step):
            part = d.decompress(data[i : i + step], allowed + 1 - size)
            out.append(part)
            size += len(part)
            while size <= allowed and d.unconsumed_tail:
                part = d.decompress(d.unconsumed_tail, allowed + 1 - size)
                if not part:
                    break
                out.append(part)
                size += len(part)
            if size > allowed or d.eof:
                break
    except zlib.error as exc:
        r.error(obj, f"damaged FlateDecode stream, scanned what inflated: {exc}")
    if size > allowed:
        r.budget = max(0, r.budget - size)
        raise _Refused(
            f"stream refused: inflates beyond {allowed} bytes "
            f"(ratio limit {opts.archive_max_ratio}:1 or --archive-max-bytes; bomb?)"
        )
    r.budget -= size
    return b"".join(out)


_NOT_HEX = re.compile(rb"[^0-9A-Fa-f]+")


def _unhex(data: bytes) -> bytes:
    digits = _NOT_HEX.sub(b"", data)  # C speed: ASCIIHex streams can be megabytes
    if len(digits) % 2:
        digits += b"0"
    return bytes.fromhex(digits.decode("ascii"))


def _a85(data: bytes) -> bytes:
    data = data.strip()
    if data.startswith(b"<~"):
        data = data[2:]
    data = data.split(b"~>", 1)[0]
    return base64.a85decode(data.translate(None, b"\x00\t\n\x0c\r "))


# A literal string's end is found by counting its parentheses, a backslash and the byte
# after it being one unit (an escaped parenthesis does not count; no other escape holds
# one); its escapes are then decoded in one substitution: \n \r \t \b \f \( \) \\, a line
# continuation (backslash, then CR LF, CR or LF: nothing), 1 to 3 octal digits, any other
# byte as itself, a backslash ending the data dropped.
_LIT_UNIT = re.compile(rb"\\[\x00-\xff]|[()]")
_LIT_ESCAPE = re.compile(rb"\\(\r\n|[0-7]{1,3}|[\x00-\xff]|\Z)")


def _unescape_one(m: re.Match[bytes]) -> bytes:
    e = m.group(1)
    if not e or e in (b"\r\n", b"\r", b"\n"):
        return b""
    c = e[0]
    if 0x30 <= c <= 0x37:
        return bytes([int(e, 8) & 0xFF])
    return _ESCAPES.get(c, e)


def _literal(data: bytes, pos: int) -> tuple[bytes, int]:
    """The literal string opening at data[pos] == '(': (its bytes, the offset after it)."""
    depth = 1
    end = len(data)
    after = end
    for m in _LIT_UNIT.finditer(data, pos + 1):
        c = data[m.start()]
        if c == 0x28:  # (
            depth += 1
        elif c == 0x29:  # )
            depth -= 1
            if depth == 0:
                end, after = m.start(), m.end()
                break
    body = data[pos + 1 : end]
    return (body if b"\\" not in body else _LIT_ESCAPE.sub(_unescape_one, body)), after


def _text_string(raw: bytes) -> bytes:
    """A PDF text string as UTF-8: UTF-16BE with its BOM decoded, others as they are."""
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be", "replace").encode("utf-8")
    if raw.startswith(b"\xff\xfe"):
        return raw[2:].decode("utf-16-le", "replace").encode("utf-8")
    return raw


class ToUnicode:
    """A font's ``/ToUnicode`` CMap, its ``bfchar`` and ``bfrange`` mappings: glyph codes
    (1 or 2 bytes) to text. Codes it does not map are kept when ASCII, else dropped."""

    def __init__(self, width: int, table: dict[int, str]) -> None:
        self.width, self.table = width, table
        # A page shows the same strings again and again (words, TJ pieces): each decoded
        # once, up to _DECODED strings of up to 64 bytes.
        self.decoded: dict[bytes, bytes] = {}

    def decode(self, codes: bytes) -> bytes:
        done = self.decoded.get(codes)
        if done is not None:
            return done
        w = self.width
        table = self.table
        out = []
        for i in range(0, len(codes) - w + 1, w):
            code = int.from_bytes(codes[i : i + w], "big")
            text = table.get(code)
            if text is None:
                text = chr(code) if code < 128 else ""
            out.append(text)
        done = "".join(out).encode("utf-8", "surrogatepass")
        if len(codes) <= 64 and len(self.decoded) < _DECODED:
            self.decoded[codes] = done
        return done


_DECODED = 4096


_BFCHAR = re.compile(rb"beginbfchar(.*?)endbfchar", re.S)
_BFRANGE = re.compile(rb"beginbfrange(.*?)endbfrange", re.S)
_CMAP_TOKEN = re.compile(rb"<([0-9A-Fa-f\x00\t\n\x0c\r ]*)>|\[([^\]]*)\]")
_CMAP_HEX = re.compile(rb"<([0-9A-Fa-f\x00\t\n\x0c\r ]*)>")
MAX_CMAP = 65_536


def _utf16(raw: bytes) -> str:
    return raw.decode("utf-16-be", "replace") if len(raw) >= 2 else raw.decode("latin-1")


def parse_tounicode(cmap: bytes) -> ToUnicode | None:
    """The mappings of a ToUnicode CMap, None if it has none."""
    table: dict[int, str] = {}
    width = 1
    for block in _BFCHAR.finditer(cmap):
        toks = _CMAP_HEX.findall(block.group(1))
        for src, dst in zip(toks[0::2], toks[1::2], strict=False):
            code = _unhex(src)
            width = max(width, min(len(code), 2))
            if len(table) < MAX_CMAP:
                table[int.from_bytes(code, "big")] = _utf16(_unhex(dst))
    for block in _BFRANGE.finditer(cmap):
        toks = list(_CMAP_TOKEN.finditer(block.group(1)))
        for i in range(0, len(toks) - 2, 3):
            lo_t, hi_t, dst_t = toks[i], toks[i + 1], toks[i + 2]
            if lo_t.group(1) is None or hi_t.group(1) is None:
                break  # out of step: malformed
            lo_b = _unhex(lo_t.group(1))
            width = max(width, min(len(lo_b), 2))
            lo, hi = int.from_bytes(lo_b, "big"), int.from_bytes(_unhex(hi_t.group(1)), "big")
            count = min(max(0, hi - lo + 1), MAX_CMAP - len(table))
            if dst_t.group(1) is not None:
                base = _utf16(_unhex(dst_t.group(1)))
                if not base:
                    continue
                for k in range(count):
                    table[lo + k] = base[:-1] + chr(min(0x10FFFF, ord(base[-1]) + k))
            else:
                dsts = _CMAP_HEX.findall(dst_t.group(2))
                for k in range(min(count, len(dsts))):
                    table[lo + k] = _utf16(_unhex(dsts[k]))
    return ToUnicode(width, table) if table else None


def content_text(stream: bytes, fonts: dict[bytes, ToUnicode] | None = None) -> bytes:
    """The text shown by a content stream's text operators, one line per text line;
    ``fonts``: the ToUnicode maps of the page's fonts, by resource name (``b"F1"``)."""
    lines: list[bytes] = []
    line: list[bytes] = []
    operands: list[object] = []
    arrays: list[list[object]] = []
    last_y: bytes | None = None
    pos = 0
    n = len(stream)
    cmap: ToUnicode | None = None

    def shown(codes: bytes) -> bytes:
        return codes if cmap is None else cmap.decode(codes)

    def newline() -> None:
        if line:
            lines.append(b"".join(line))
            line.clear()

    def show_array(pieces: list[object]) -> None:  # TJ
        for piece in pieces:
            if isinstance(piece, bytes):
                line.append(shown(piece))
            elif isinstance(piece, float) and piece < -_WORD_GAP:
                line.append(b" ")

    stretch = True  # at a token's start with no array open, after an operator
    stretched = 0  # the end of the last stretch looked at: none to find before it
    phrase = True  # try _CPHRASE: not after a token a run or a phrase could have begun with
    while pos < n:
        if stretch:
            stretch = False
            if pos >= stretched:
                start = pos
                pos, stretched = _stretch_end(stream, pos)
                if pos != start:  # it ends with an operator
                    operands.clear()
                if pos >= n:
                    break
        m = (_CPHRASE if phrase and not arrays else _CTOKEN).match(stream, pos)
        if m is None:  # pragma: no cover - "other" and "end" match anywhere
            break
        kind = m.lastgroup
        pos = m.end()
        if kind == "tja" or kind == "tj":  # a show, the BT, Tf and Td before it, the ET after it
            phrase = True
            font, move = m.group("font", "move")
            if font is not None:  # "/F1 12 Tf" before it
                cmap = fonts.get(font[1:]) if fonts else None
            if move is not None and float(move) != 0.0:  # "x y Td" before it
                newline()
            if kind == "tj":
                string = m.group(kind)
                if string[0] == 0x3C:  # <hex>
                    line.append(shown(_unhex(string[1:-1])))
                else:
                    line.append(shown(_simple_literal(string)))
            elif kind == "tja":
                inner = m.group(kind)[1:-1]
                if b"-" not in inner and b"\\" not in inner and b"<" not in inner and cmap is None:
                    # No word gap (each is a negative number), no escape: the strings joined
                    texts = _TJ_STRINGS.findall(inner)
                    if texts:
                        line.append(b"".join(texts))
                elif b"<" not in inner:
                    shows = _TJ_TEXT.findall(inner)
                    # Each string unescaped alone (an octal may end it).
                    if shows and b"\\" in inner:
                        unescape = _LIT_ESCAPE.sub
                        if cmap is None:
                            pieces = [
                                b" " if g else (unescape(_unescape_one, t) if b"\\" in t else t)
                                for t, g in shows
                            ]
                        else:
                            decode = cmap.decode
                            pieces = [
                                b" "
                                if g
                                else decode(unescape(_unescape_one, t) if b"\\" in t else t)
                                for t, g in shows
                            ]
                        line.append(b"".join(pieces))
                    elif shows:
                        if cmap is None:
                            pieces = [b" " if gap else text for text, gap in shows]
                        else:
                            decode = cmap.decode
                            pieces = [b" " if gap else decode(t) for t, gap in shows]
                        line.append(b"".join(pieces))
                else:
                    show_array(_array_items(inner))
            if stream.startswith(b"ET", pos - 2):  # "ET" after it
                newline()
                stretch = True  # graphics may follow
            operands.clear()
            continue
        phrase = kind in _PHRASE_AFTER
        value: object
        if kind == "ws" or kind == "other" or kind == "dict" or kind == "end":
            continue
        if kind == "run":
            operands.clear()
            stretch = True
            continue
        if kind == "tf" or kind == "td" or kind == "tm":
            if kind == "tf":
                cmap = fonts.get(m.group(kind)[1:]) if fonts else None
            elif kind == "td":
                if float(m.group(kind)) != 0.0:
                    newline()
            else:
                row = repr(float(m.group(kind))).encode()
                if row != last_y:
                    newline()
                last_y = row
            operands.clear()
            # no stretch looked for after text: more text or a text operator follows
            continue
        if kind == "slit":
            value = _simple_literal(m.group(kind))
        elif kind == "lit":
            value, pos = _literal(stream, m.start(kind))
        elif kind == "hex":
            value = _unhex(m.group(kind)[1:].rstrip(b">"))
        elif kind == "num":
            try:
                value = float(m.group(kind))
            except ValueError:
                value = 0.0
        elif kind == "name":
            value = m.group(kind)
        elif kind == "arr":
            c = m.group(kind)
            if c == b"[" and not arrays:
                a = _SIMPLE_ARRAY_RE.match(stream, m.start(kind))
                if a is not None:  # what the tokens up to its "]" would append
                    operands.append(_array_items(a.group()[1:-1]))
                    pos = a.end()
                    continue
            if c in b"[{":
                arrays.append([])
            elif arrays:
                done = arrays.pop()
                (arrays[-1] if arrays else operands).append(done)
            continue
        else:  # an operator
            op = m.group("op")
            if arrays:  # an operator inside an array: malformed, keep reading
                continue
            if op == b"Tj" and operands and isinstance(operands[-1], bytes):
                line.append(shown(operands[-1]))
            elif op == b"TJ" and operands and isinstance(operands[-1], list):
                show_array(operands[-1])
            elif op in (b"'", b'"') and operands and isinstance(operands[-1], bytes):
                newline()
                line.append(shown(operands[-1]))
            elif op == b"Tf":
                name = operands[-2] if len(operands) >= 2 else None
                cmap = fonts.get(name[1:]) if fonts and isinstance(name, bytes) else None
            elif op in (b"Td", b"TD"):
                if len(operands) >= 2 and operands[-1] != 0.0:
                    newline()
            elif op in (b"T*", b"ET"):
                newline()
            elif op == b"Tm":
                y = repr(operands[-1]).encode() if operands else None
                if y != last_y:
                    newline()
                last_y = y
            elif op == b"BI":  # an inline image: skip its data up to EI
                ei = _EI.search(stream, pos)
                pos = ei.end() if ei else n
            operands.clear()
            stretch = True
            continue
        (arrays[-1] if arrays else operands).append(value)
        if len(operands) > 64:  # an operand stack that never meets an operator
            del operands[:-8]
    newline()
    text = b"\n".join(lines)
    if b"\xfe\xff" not in text and b"\xff\xfe" not in text:  # no line starts with a BOM
        return text
    return b"\n".join([_text_string(x) for x in lines])


# The tokens of a dictionary that matter to its strings, each with the bytes before it, in
# one ``findall``: only a token that starts with "(", "<", "/" or "%" holds one of these four
# bytes (no white space, number, operator, bracket, ">" or ")" does), so the bytes between
# two of them are skipped whole. Each match: a comment, a literal string without unescaped
# parenthesis inside (``_SIMPLE_STRING``), any other "(" (then the dictionary is read token
# by token), "<<", a hex string, a name, or the end. Every position matches (linear time).
_DICT_TOKENS = re.compile(
    rb"[^(</%]*(?:%[^\r\n]*|(" + _SIMPLE_STRING + rb")|(\()|<<"
    rb"|(<[0-9A-Fa-f" + _WS + rb"]*>?)|(/[^" + _DELIM + rb"]*)|\Z)"
)


def dict_strings(head: bytes) -> list[tuple[str, bytes]]:
    """(the dictionary key before it, the decoded string) of every string in ``head``."""
    # A run of "<" of odd length: its last one opens a hex string (pairs are "<<"). Without
    # it and without "(", a dictionary has no string token: no "<" starts one (every run is
    # read as pairs: no token but "<<" and a comment can hold a "<"), no "(" either. A "<"
    # is left once every "<<" is taken out (at C speed) only then.
    if b"(" not in head and b"<" not in head.replace(b"<<", b""):
        return []
    out: list[tuple[str, bytes]] = []
    key = b""  # decoded only for a string after it (most names have none)
    for simple, lit, hexs, name in _DICT_TOKENS.findall(head):
        if name:
            key = name
        elif simple:
            out.append((key.decode("latin-1"), _text_string(_simple_literal(simple))))
        elif hexs:
            out.append((key.decode("latin-1"), _text_string(_unhex(hexs[1:].rstrip(b">")))))
        elif lit:  # a string with parentheses inside: read token by token
            return _dict_strings_by_token(head)
    return out


def _dict_strings_by_token(head: bytes) -> list[tuple[str, bytes]]:
    """``dict_strings``, one ``_TOKEN`` match a token (nested parentheses in a string)."""
    out: list[tuple[str, bytes]] = []
    key = ""
    pos = 0
    n = len(head)
    while pos < n:
        m = _TOKEN.match(head, pos)
        if m is None:  # pragma: no cover
            break
        kind = m.lastgroup
        pos = m.end()
        if kind == "name":
            key = m.group().decode("latin-1")
        elif kind == "lit":
            value, pos = _literal(head, m.start())
            out.append((key, _text_string(value)))
        elif kind == "hex":
            out.append((key, _text_string(_unhex(m.group()[1:].rstrip(b">")))))
    return out


def _page_contents(r: _Reader) -> dict[int, int]:
    """Content stream object number -> page number (1-based), from the page tree; objects
    of type /Page in file order when the tree cannot be walked."""
    by_num: dict[int, _Object] = {}
    for obj in r.objects:
        by_num.setdefault(obj.num, obj)
    _inner_objects(r, by_num)
    root = None
    for obj in r.objects:
        t = _TYPE.search(obj.head)
        if t is not None and t.group(1) == b"Catalog":
            p = _PAGES_REF.search(obj.head)
            if p is not None:
                root = int(p.group(1))
            break
    order: list[_Object] = []
    if root is not None:
        stack = [root]
        seen: set[int] = set()
        while stack and len(order) < MAX_PAGES:
            num = stack.pop()
            node = by_num.get(num)
            if node is None or num in seen:
                continue
            seen.add(num)
            kids = _KIDS.search(node.head)
            if kids is not None:
                refs = [int(k.group(1)) for k in _REF.finditer(kids.group(1))]
                stack.extend(reversed(refs))
            else:
                order.append(node)
    if not order:
        order = [
            o for o in by_num.values() if (t := _TYPE.search(o.head)) and t.group(1) == b"Page"
        ]
    pages: dict[int, int] = {}
    cmaps: dict[int, ToUnicode | None] = {}
    for number, page in enumerate(order, 1):
        c = _CONTENTS.search(page.head)
        if c is None:
            continue
        fonts = _page_fonts(r, page, by_num, cmaps)
        for ref in _REF.finditer(c.group(1)):
            num = int(ref.group(1))
            pages.setdefault(num, number)
            if fonts:
                r.fonts.setdefault(num, fonts)
    return pages


def _page_fonts(
    r: _Reader, page: _Object, by_num: dict[int, _Object], cmaps: dict[int, ToUnicode | None]
) -> dict[bytes, ToUnicode]:
    """The ToUnicode maps of a page's fonts by resource name (resources inherited from the
    page tree; a font resource dictionary direct or by reference)."""
    node: _Object | None = page
    res: bytes | None = None
    for _ in range(32):  # up the page tree for inherited resources
        if node is None:
            return {}
        m = _RESOURCES.search(node.head)
        if m is not None:
            if m.group(1) is not None:
                ref = by_num.get(int(m.group(1)))
                res = ref.head if ref is not None else None
            else:
                res = node.head[m.end() :]
            break
        parent = _PARENT.search(node.head)
        node = by_num.get(int(parent.group(1))) if parent else None
    if res is None:
        return {}
    f = _FONT.search(res)
    if f is None:
        return {}
    if f.group(1) is not None:
        ref = by_num.get(int(f.group(1)))
        entries = ref.head if ref is not None else b""
    else:
        entries = f.group(2)
    fonts: dict[bytes, ToUnicode] = {}
    for e in _FONT_ENTRY.finditer(entries):
        font = by_num.get(int(e.group(2)))
        if font is None:
            continue
        tu = _TOUNICODE.search(font.head)
        if tu is None:
            continue
        num = int(tu.group(1))
        if num not in cmaps:
            cmaps[num] = None
            stream = by_num.get(num)
            if stream is not None and stream.stream is not None:
                try:
                    data = _decode(r, stream)
                except _Refused as exc:
                    r.error(stream, str(exc))
                    data = None
                if data is not None:
                    cmaps[num] = parse_tounicode(data)
        found = cmaps[num]
        if found is not None:
            fonts[e.group(1)] = found
    return fonts


def _inner_objects(r: _Reader, by_num: dict[int, _Object]) -> None:
    """Objects held in object streams (/Type /ObjStm) join the list, as dictionaries."""
    inner = 0
    for obj in list(r.objects):
        t = _TYPE.search(obj.head)
        if obj.stream is None or t is None or t.group(1) != b"ObjStm":
            continue
        try:
            data = _decode(r, obj)
        except _Refused as exc:
            r.error(obj, str(exc))
            obj.stream = None
            continue
        obj.stream = None  # read here: not again as a stream
        if data is None:
            continue
        ints = {k.group(1): int(k.group(2)) for k in _INT.finditer(obj.head)}
        count, first = ints.get(b"N", 0), ints.get(b"First", 0)
        header = [int(x) for x in re.findall(rb"\d+", data[:first])][: 2 * count]
        pairs = list(zip(header[0::2], header[1::2], strict=False))
        for i, (num, off) in enumerate(pairs):
            inner += 1
            if inner > MAX_INNER:
                r.error(obj, f"more than {MAX_INNER} objects in object streams: the rest not read")
                return
            end = first + pairs[i + 1][1] if i + 1 < len(pairs) else len(data)
            o = _Object(num, obj.offset, obj.end, data[first + off : end], in_stream=obj.num)
            r.objects.append(o)
            by_num.setdefault(num, o)


def _scan_objects(r: _Reader, pages: dict[int, int]) -> None:
    for obj in r.objects:
        strings = dict_strings(obj.head)
        if strings:
            _scan_strings(r, obj, strings)
        if obj.stream is None:
            continue
        subtype = _SUBTYPE.search(obj.head)
        if subtype is not None and subtype.group(1) == b"Image":
            continue
        try:
            decoded = _decode(r, obj)
        except _Refused as exc:
            r.error(obj, str(exc))
            continue
        except ValueError as exc:
            r.error(obj, f"damaged stream, not decoded: {exc}")
            continue
        if decoded is None:
            continue
        page = pages.get(obj.num)
        shows_text = b"Tj" in decoded or b"TJ" in decoded or b"'" in decoded or b'"' in decoded
        if shows_text and (page is not None or b"BT" in decoded):
            text = content_text(decoded, r.fonts.get(obj.num))
            if text:
                extra: dict[str, object] = {"pdf_part": "page text"}
                if page is not None:
                    extra["pdf_page"] = page
                _emit(r, obj, text, extra)
        if decoded is not obj.stream and _filters(obj.head):
            _emit(r, obj, decoded, {"pdf_part": "stream"})


def _scan_strings(r: _Reader, obj: _Object, strings: list[tuple[str, bytes]]) -> None:
    text = b"\n".join(s.replace(b"\n", b" ") for _, s in strings)
    starts: list[int] = []
    at = 0
    for _, s in strings:
        starts.append(at)
        at += len(s) + 1
    for hit in _find(r, obj, text):
        i = max(0, bisect.bisect_right(starts, hit.location.offset) - 1)
        hit.location.extra["pdf_part"] = strings[i][0] or "string"
        _place(r, obj, hit)


def _emit(r: _Reader, obj: _Object, text: bytes, extra: dict[str, object]) -> None:
    for hit in _find(r, obj, text):
        hit.location.extra.update(extra)
        _place(r, obj, hit)


def _find(r: _Reader, obj: _Object, text: bytes) -> list[Hit]:
    tmpl = Location(
        path=r.template.path,
        line=1,
        column=1,
        offset=0,
        binary=False,
        source=r.template.source,
        commit=r.template.commit,
        blob=r.template.blob,
        extra=dict(r.template.extra),
        member=r.template.member,
    )
    return r.find(text, tmpl, r.errors)


def _place(r: _Reader, obj: _Object, hit: Hit) -> None:
    loc = hit.location
    loc.extra["pdf_object"] = obj.num
    if obj.in_stream is not None:
        loc.extra["pdf_object_stream"] = obj.in_stream
    loc.offset = obj.offset
    loc.line, loc.column, loc.binary = 1, 1, True
    loc.decoded = "pdf" + (f">{loc.decoded}" if loc.decoded else "")
    if r.template.decoded:
        loc.decoded = f"{r.template.decoded}>{loc.decoded}"
    r.hits.append((hit, obj.offset, obj.end))


def _is_piece(h: Hit, lo: int, hi: int, whole: Hit) -> bool:
    """h, at an offset in [lo, hi), is a less confident piece of ``whole`` (one TJ piece)."""
    return (
        lo <= h.location.offset < hi
        and h.secret != whole.secret
        and h.secret in whole.secret
        and h.confidence < whole.confidence
    )


def _dedupe(r: _Reader, raw: Sequence[Hit]) -> tuple[list[Hit], list[Hit]]:
    """One hit per (object, secret); a key also seen in the object's raw bytes is reported
    there, with the object's PDF location added to its ``extra``; a less confident hit that
    is a piece of a key read whole from the same object (one TJ piece) is dropped."""
    out: list[Hit] = []
    seen: set[tuple[int, int, bytes]] = set()
    raw_by_secret: dict[bytes, list[Hit]] = {}
    for h in raw:
        raw_by_secret.setdefault(h.secret, []).append(h)
    pieces: set[int] = set()
    for hit, lo, hi in r.hits:
        pieces.update(id(h) for h in raw if _is_piece(h, lo, hi, hit))
        pieces.update(id(h) for h, _, _ in r.hits if _is_piece(h, lo, hi, hit))
    for hit, lo, hi in r.hits:
        loc = hit.location
        k = (loc.offset, int(loc.extra.get("pdf_object", -1)), hit.secret)
        if k in seen or id(hit) in pieces:
            continue
        seen.add(k)
        same = [h for h in raw_by_secret.get(hit.secret, ()) if lo <= h.location.offset < hi]
        if same:
            for h in same:
                for name in ("pdf_object", "pdf_page", "pdf_part", "pdf_object_stream"):
                    if name in loc.extra:
                        h.location.extra.setdefault(name, loc.extra[name])
            continue
        out.append(hit)
    return out, [h for h in raw if id(h) not in pieces]
