"""Issue 16, the cost of PDFs: the PDF reader steps over graphics in one regular-expression
match (not one Python step a token) and finds each stream without crossing the bytes of
every other one. Nothing here is timed: the new reader is compared with the old
algorithm, kept below as a slow reference (``reference_content_text``,
``reference_read_objects``), on many generated content streams and PDFs, and the work it
does is counted (token matches, bytes its object searches cross)."""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keyscan.content import ContentOptions, scan_buffer
from keyscan.detector import Detector
from keyscan.findings import Hit, is_binary
from keyscan.formats import pdf
from keyscan.formats.pdf import ToUnicode, content_text, parse_tounicode
from keyscan.keygen import key
from keyscan.models import Location, ScanError
from keyscan.rules import load_rules
from tests.test_detection_v2_pdf import make_pdf, page, pdf_literal, split, tj_array

DET = Detector(load_rules())

# --- the old algorithm, token by token (the reference) -----------------------------------


# The token pattern as it was (the reader's own may read more in one match).
OLD_TOKEN = re.compile(
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


def reference_content_text(stream: bytes, fonts: dict[bytes, ToUnicode] | None = None) -> bytes:
    """``content_text`` as it was before issue 16: one ``_TOKEN`` match a token."""
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

    while pos < n:
        m = OLD_TOKEN.match(stream, pos)
        assert m is not None
        kind = m.lastgroup
        pos = m.end()
        value: object
        if kind == "ws" or kind == "other" or kind == "dict":
            continue
        if kind == "lit":
            value, pos = reference_literal(stream, m.start())
        elif kind == "hex":
            value = pdf._unhex(m.group()[1:].rstrip(b">"))
        elif kind == "num":
            try:
                value = float(m.group())
            except ValueError:
                value = 0.0
        elif kind == "name":
            value = m.group()
        elif kind == "arr":
            c = m.group()
            if c in b"[{":
                arrays.append([])
            elif arrays:
                done = arrays.pop()
                (arrays[-1] if arrays else operands).append(done)
            continue
        else:
            op = m.group()
            if arrays:
                continue
            if op == b"Tj" and operands and isinstance(operands[-1], bytes):
                line.append(shown(operands[-1]))
            elif op == b"TJ" and operands and isinstance(operands[-1], list):
                for piece in operands[-1]:
                    if isinstance(piece, bytes):
                        line.append(shown(piece))
                    elif isinstance(piece, float) and piece < -pdf._WORD_GAP:
                        line.append(b" ")
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
            elif op == b"BI":
                ei = pdf._EI.search(stream, pos)
                pos = ei.end() if ei else n
            operands.clear()
            continue
        (arrays[-1] if arrays else operands).append(value)
        if len(operands) > 64:
            del operands[:-8]
    newline()
    return b"\n".join(pdf._text_string(x) for x in lines)


def reference_literal(data: bytes, pos: int) -> tuple[bytes, int]:
    """``_literal`` as it was: one step a parenthesis or backslash."""
    out: list[bytes] = []
    depth = 1
    i = pos + 1
    n = len(data)
    while i < n:
        m = re.compile(rb"[()\\]").search(data, i)
        if m is None:
            out.append(data[i:])
            return b"".join(out), n
        out.append(data[i : m.start()])
        c = data[m.start()]
        i = m.end()
        if c == 0x28:
            depth += 1
            out.append(b"(")
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return b"".join(out), i
            out.append(b")")
        else:
            if i >= n:
                break
            e = data[i]
            if e in pdf._ESCAPES:
                out.append(pdf._ESCAPES[e])
                i += 1
            elif e in b"\r\n":
                i += 2 if data[i : i + 2] == b"\r\n" else 1
            elif 0x30 <= e <= 0x37:
                o = re.compile(rb"[0-7]{1,3}").match(data, i)
                assert o is not None
                out.append(bytes([int(o.group(), 8) & 0xFF]))
                i = o.end()
            else:
                out.append(bytes([e]))
                i += 1
    return b"".join(out), n


LITERAL_PARTS = [
    b"(", b")", b"\\", b"\\(", b"\\)", b"\\\\", b"\\0", b"\\12", b"\\777", b"\\1234", b"8",
    b"\\\r\n", b"\\\r", b"\\\n", b"\r\n", b"\\n", b"\\t", b"\\q", b"a", b"\xff", b"\x00",
]  # fmt: skip


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(LITERAL_PARTS), max_size=40), st.binary(max_size=8))
def test_literal_strings_read_as_the_old_reader_read_them(parts: list[bytes], noise: bytes) -> None:
    """Nesting, escaped parentheses, octal escapes, line continuations, a backslash at the
    end, unterminated strings: the same bytes and the same end."""
    data = b"x(" + b"".join(parts) + noise
    assert pdf._literal(data, 1) == reference_literal(data, 1), data


def test_literal_strings_in_random_bytes() -> None:
    rng = random.Random(5)
    for _ in range(2000):
        data = b"(" + bytes(rng.choice(b"()\\\r\n0123abc") for _ in range(rng.randrange(60)))
        assert pdf._literal(data, 0) == reference_literal(data, 0), data


def reference_dict_strings(head: bytes) -> list[tuple[str, bytes]]:
    """``dict_strings`` as it was: every token read."""
    out: list[tuple[str, bytes]] = []
    key = ""
    pos = 0
    while pos < len(head):
        m = OLD_TOKEN.match(head, pos)
        assert m is not None
        kind = m.lastgroup
        pos = m.end()
        if kind == "name":
            key = m.group().decode("latin-1")
        elif kind == "lit":
            value, pos = reference_literal(head, m.start())
            out.append((key, pdf._text_string(value)))
        elif kind == "hex":
            out.append((key, pdf._text_string(pdf._unhex(m.group()[1:].rstrip(b">")))))
    return out


_OLD_STREAM = re.compile(rb"(?<!end)stream(?:\r\n|\n|\r)")
_OLD_ENDSTREAM = re.compile(rb"(?:\r\n|\n|\r)?endstream")


def reference_read_objects(r: Any) -> None:
    """``_read_objects`` as it was before issue 16: each object's end and the next object
    looked for first (across its stream's bytes), then its stream within them."""
    data = r.data
    next_obj, next_endobj, next_endstream = (
        pdf._Next(data, pdf._OBJ),
        pdf._Next(data, pdf._ENDOBJ),
        pdf._Next(data, _OLD_ENDSTREAM),
    )
    pos = 0
    while True:
        m = next_obj(pos)
        if m is None:
            return
        if len(r.objects) >= pdf.MAX_OBJECTS:
            r.error(None, f"more than {pdf.MAX_OBJECTS} objects: the rest not read")
            return
        num, start, body = int(m.group(1)), m.start(), m.end()
        endobj = next_endobj(body)
        nxt = next_obj(body)
        limit = min(endobj.start() if endobj else len(data), nxt.start() if nxt else len(data))
        s = _OLD_STREAM.search(data, body, limit)
        obj = pdf._Object(num, start, limit, data[body:limit])
        if s is None:
            if endobj is None and nxt is None:
                r.error(obj, "truncated: no endobj")
            r.objects.append(obj)
            pos = endobj.end() if endobj and endobj.start() == limit else limit
            continue
        obj.head = data[body : s.start()]
        sstart = s.end()
        send = -1
        length = pdf._LENGTH.search(obj.head)
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
            else:
                send = e.start()
        obj.stream = data[sstart:send]
        obj.end = send
        r.objects.append(obj)
        pos = send


# --- generated content streams -----------------------------------------------------------

NUMBERS = [b"0", b"12", b"-3.5", b".5", b"1.", b"+2", b"1.2.3", b"12.", b"-.5", b"700", b"0.0"]
ODD_NUMBERS = [b"--", b"+", b".", b"-", b"1e5", b"+.", b"1-2", b"3..4"]
NAMES = [b"/F1", b"/F2", b"/GS0", b"/T1_0", b"/Ts", b"/Im0", b"/", b"/a#20b", b"/MC0", b"/TT1"]
GRAPHICS = [
    b"m",
    b"l",
    b"c",
    b"v",
    b"re",
    b"f",
    b"f*",
    b"S",
    b"s",
    b"q",
    b"Q",
    b"cm",
    b"gs",
    b"cs",
    b"CS",
    b"scn",
    b"SCN",
    b"W",
    b"n",
    b"BDC",
    b"BMC",
    b"EMC",
    b"Do",
    b"BT",
    b"d",
    b"w",
    b"Tc",
    b"Tw",
    b"Tz",
    b"TL",
    b"Tr",
    b"Ts",
    b"B*",
    b"d0",
    b"h",
    b"rg",
    b"RG",
    b"k",
    b"K",
]
TEXT = [b"Tj", b"TJ", b"'", b'"', b"Tf", b"Td", b"TD", b"T*", b"ET", b"Tm"]
ODD_OPS = [
    b"1Tj",
    b"-Tj",
    b"Tjx",
    b"xTj",
    b"12Td",
    b".Td",
    b"T",
    b"I",
    b"E",
    b"BIx",
    b"'x",
    b"-x",
    b"ID",
    b"EI",
    b"\xff\xfe",
    b"\x80T",
]
STRINGS = [
    b"(abc)",
    b"(a\\)b)",
    b"(a(b)c)",
    b"(\\101\\102)",
    b"(x\\\ny)",
    b"(Tj)",
    b"(% no)",
    b"(sk-proj-)",
    b"(T3Blbk)",
    b"()",
    b"(\\n\\r\\t\\b\\f\\\\)",
    b"(\\q)",
    b"(\\0)",
    b"<41 42>",
    b"<4142",
    b"<>",
    b"<feff0041>",
    b"<0100 0102>",
]
STRUCTURE = [b"[", b"]", b"{", b"}", b"<<", b">>", b">", b")", b"% comment Tj\n", b"%"]
INLINE = [b"BI /W 1 /H 1 ID \x00\xff(T EI", b"BI ID x EI", b"BI /W 2"]
SEPARATORS = [b" ", b" ", b" ", b"\n", b"\r\n", b"\r", b"\t", b"\x00", b"\x0c", b"", b"  "]
KINDS: list[tuple[list[bytes], int]] = [
    (NUMBERS, 30),
    (ODD_NUMBERS, 2),
    (NAMES, 6),
    (GRAPHICS, 20),
    (TEXT, 12),
    (ODD_OPS, 2),
    (STRINGS, 10),
    (STRUCTURE, 5),
    (INLINE, 1),
]


def _token(rng: random.Random) -> bytes:
    pool = rng.choices([k for k, _ in KINDS], weights=[w for _, w in KINDS])[0]
    return rng.choice(pool)


def graphics_run(rng: random.Random, count: int) -> bytes:
    """Path construction and painting as an illustration program writes it."""
    out = []
    for _ in range(count):
        out.append(
            rng.choice(
                [
                    b"%d %d m" % (rng.randrange(999), rng.randrange(999)),
                    b"%.3f %.3f l" % (rng.random() * 900, rng.random() * 900),
                    b"%.2f %.2f %.2f %.2f %.2f %.2f c"
                    % tuple(rng.random() * 700 for _ in range(6)),
                    b"f",
                    b"h",
                    b"S",
                    b"q",
                    b"Q",
                    b"/GS0 gs",
                    b"0.2 0.4 0.6 rg",
                    b"1 0 0 1 12 -4 cm",
                    b"0 0 612 792 re W n",
                ]
            )
        )
    return b"\n".join(out)


def random_stream(rng: random.Random) -> bytes:
    parts: list[bytes] = []
    for _ in range(rng.randrange(1, 60)):
        r = rng.random()
        if r < 0.1:
            parts.append(graphics_run(rng, rng.randrange(1, 40)))
        elif r < 0.13:
            parts.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80))))
        else:
            parts.append(_token(rng))
        parts.append(rng.choice(SEPARATORS))
    return b"".join(parts)


def fonts_for(rng: random.Random) -> dict[bytes, ToUnicode] | None:
    if rng.random() < 0.5:
        return None
    cmap = parse_tounicode(
        b"2 beginbfchar <41> <0078> <42> <0079> endbfchar "
        b"1 beginbfrange <0100> <0110> <0061> endbfrange"
    )
    assert cmap is not None
    return {b"F1": cmap}


def test_content_text_same_as_the_token_by_token_reader_on_generated_streams() -> None:
    rng = random.Random(16)
    for _ in range(3000):
        stream = random_stream(rng)
        fonts = fonts_for(rng)
        assert content_text(stream, fonts) == reference_content_text(stream, fonts), stream


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([t for pool, _ in KINDS for t in pool] + [b"12 300 l\n" * 8]),
            st.sampled_from(SEPARATORS),
        ),
        max_size=80,
    )
)
# Found by Hypothesis (Python 3.13's run): the ``/F1 12 Tf`` phrase split the one name
# ``/F1Tf`` into ``/F`` and ``1`` (a font switch the tokens never make).
@example(tokens=[(b"/F1", b""), (b"Tf", b" "), (b"Tj", b" ")])
def test_content_text_same_as_the_token_by_token_reader_property(
    tokens: list[tuple[bytes, bytes]],
) -> None:
    stream = b"".join(t + s for t, s in tokens)
    assert content_text(stream) == reference_content_text(stream)


@pytest.mark.parametrize("seed", range(40))
def test_content_text_same_on_long_graphics_with_text_between(seed: int) -> None:
    """Long stretches that the C-speed skip crosses, text operators among them (a key split
    across Tj pieces with graphics between, TJ kerning, Tm rows, fonts switched)."""
    rng = random.Random(seed)
    k = key("project", seed=seed).encode()
    pieces = split(k.decode(), 4)
    parts = [graphics_run(rng, 400)]
    parts.append(b"BT /F1 12 Tf 1 0 0 1 72 700 Tm " + pdf_literal(pieces[0].encode()) + b" Tj")
    parts.append(graphics_run(rng, 300))
    kern = -rng.choice([0, 12, 299, 301, 900])  # beyond -300: a word gap, a space
    parts.append(tj_array(pieces[1:3], kern=kern))
    parts.append(
        b"/F2 9 Tf "
        + graphics_run(rng, 50)
        + b" <"
        + pieces[3].encode().hex().encode()
        + b"> Tj ET"
    )
    parts.append(graphics_run(rng, 500))
    parts.append(b"BT 1 0 0 1 72 %d Tm (next) Tj ET" % rng.choice([700, 688]))
    stream = rng.choice([b"\n", b" ", b"\r\n"]).join(parts)
    fonts = fonts_for(rng)
    assert content_text(stream, fonts) == reference_content_text(stream, fonts)
    if fonts is None and kern >= -pdf._WORD_GAP:
        assert k in content_text(stream).replace(b"\n", b"")


WIDTHS = [
    b"-300", b"-300.", b"-300.0", b"-300.000", b"-300.001", b"-300.5", b"-0300.5", b"-301",
    b"-0301", b"-299.999", b"-309", b"-310", b"-399.9", b"-400", b"-999", b"-1000",
    b"-1000.", b"-3000.25", b"-00000400", b"300", b"301", b"+301", b"-.5", b"-301.5.5",
    b"-301-400", b"1-301", b"-3e5", b"--400",
]  # fmt: skip


@pytest.mark.parametrize("width", WIDTHS, ids=[w.decode() for w in WIDTHS])
def test_tj_word_gaps_same_as_the_token_by_token_reader(width: bytes) -> None:
    """A kerning below -300 (thousandths of an em) is a space; spelled in a regex, checked
    on the numbers around the bound, in every place of an array."""
    for arr in (b"[(a)%s(b)]", b"[%s]", b"[(a) %s]", b"[%s (b)]", b"[()%s()]", b"[(a)%s %s(b)]"):
        stream = b"BT " + arr.replace(b"%s", width) + b" TJ ET"
        assert content_text(stream) == reference_content_text(stream), stream


PIECE_PARTS = [
    b"a", b"Th", b"0", b"12", b"\\050", b"\\05", b"\\0", b"\\1234", b"\\(", b"\\)",
    b"\\\\", b"\\n", b"\\\r\n", b"\\\r", b"\\\n", b"\\q", b" ", b"\xe9", b"\\",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(PIECE_PARTS), max_size=5),
            st.sampled_from([b"", b" ", b"-12", b"-301", b"-1000", b"120", b" -400 ", b"\n"]),
        ),
        max_size=12,
    ),
    st.booleans(),
)
def test_tj_arrays_with_escapes_same_as_the_token_by_token_reader(
    pieces: list[tuple[list[bytes], bytes]], with_font: bool
) -> None:
    """Strings with escapes in TJ arrays: an octal escape or a line continuation at the end
    of one string is decoded with that string alone (never joined with the next one's)."""
    arr = b"".join(b"(" + b"".join(parts) + b")" + kern for parts, kern in pieces)
    fonts = fonts_for(random.Random(0)) if with_font else None
    for stream in (b"BT [" + arr + b"] TJ ET", b"BT /F1 1 Tf [" + arr + b"]TJ ET"):
        assert content_text(stream, fonts) == reference_content_text(stream, fonts), stream


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(
            [
                b"<",
                b"<<",
                b">",
                b">>",
                b"/Title",
                b"/URI",
                b"(a)",
                b"(",
                b")",
                b"<41>",
                b"% c<\n",
                b"%",
                b"\n",
                b" ",
                b"12",
                b"R",
                b"[",
                b"]",
                b"/",
                b"\\",
                b"<4",
                b"x",
            ]
        ),
        max_size=30,
    )
)
def test_dict_strings_same_as_reading_every_token(parts: list[bytes]) -> None:
    """A dictionary without "(" and without an odd run of "<" has no string: not read."""
    head = b"".join(parts)
    assert pdf.dict_strings(head) == reference_dict_strings(head), head


HOSTILE = [
    b"1" + b" " * 60 + b"Tj",  # a failing run over white space split many ways: exponential
    b"1 " * 30_000 + b"Tj",  # operands that never meet an operator: read again at each one
    b"/a " * 20_000 + b"Tj",
    b"<41> " * 20_000 + b"'",
    b"[ " * 5_000 + b"(a)" * 1000,
    b"(" * 5_000 + b"x Tj",
    b"[" + b"(a) " * 20_000 + b"TJ",
    b"\t\x00\x0c" * 20_000 + b"m Tj",
    b"%" * 10_000 + b"\n1 1 Td",
    # TeX's arrays tried first: a failing one is not read again every other way
    b"[" + b"(a)" * 5_000 + b"1" * 5_000 + b" x] TJ",
    b"[" + b"(\\a)1" * 5_000 + b"-] TJ",
    b"/F1 1 Tf 1 2 Td [" + b"(a)-1" * 5_000 + b"] Tx",
]


@pytest.mark.parametrize("stream", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_streams_read_as_the_token_by_token_reader(stream: bytes) -> None:
    """Inputs that made an earlier draft's patterns backtrack without end (the first took
    minutes) or read operands again at every token; no timing here, the same answer."""
    assert content_text(stream) == reference_content_text(stream)


def tex_like(rng: random.Random) -> bytes:
    """Text as TeX and word processors write it: font, move and show chained, strings with
    escapes, kerning, hex strings, Tm rows, graphics between blocks."""
    out = []
    for _ in range(rng.randrange(1, 40)):
        ops = []
        if rng.random() < 0.6:
            ops.append(b"/F%d %s Tf" % (rng.randrange(1, 4), rng.choice(NUMBERS)))
        if rng.random() < 0.6:
            ops.append(
                b"%s %s %s"
                % (
                    rng.choice(NUMBERS),
                    rng.choice([*NUMBERS, b"0", b"-0.0"]),
                    rng.choice([b"Td", b"TD"]),
                )
            )
        r = rng.random()
        words = [rng.choice(PIECE_PARTS[:-1]) + rng.choice(PIECE_PARTS[:-1]) for _ in range(4)]
        if r < 0.5:
            arr = b"".join(
                (b"(" + w + b")" if rng.random() < 0.8 else b"<" + w.hex().encode() + b">")
                + rng.choice([b"", b"-12", b"-301", b"-1000", b"40", b" "])
                for w in words
            )
            ops.append(b"[" + arr + b"]" + rng.choice([b"TJ", b" TJ", b"\nTJ"]))
        elif r < 0.75:
            ops.append(b"(" + words[0] + b")" + rng.choice([b"Tj", b" Tj", b" '"]))
        elif r < 0.85:
            ops.append(b"1 0 0 1 %s %s Tm" % (rng.choice(NUMBERS), rng.choice(NUMBERS)))
        else:
            ops.append(graphics_run(rng, rng.randrange(1, 6)))
        out.append(rng.choice([b"", b" ", b"\n"]).join(ops))
        if rng.random() < 0.2:
            out.append(b"ET\nq 1 0 0 1 2 3 cm 0 g 0 G Q\nBT")
    return b"BT " + rng.choice([b"\n", b" "]).join(out) + b" ET"


def test_chained_text_phrases_same_as_the_token_by_token_reader() -> None:
    rng = random.Random(1616)
    cmap = parse_tounicode(b"2 beginbfchar <41> <0078> <61> <0079> endbfchar")
    assert cmap is not None
    for i in range(1500):
        stream = tex_like(rng)
        fonts = None if i % 3 == 0 else {b"F1": cmap, b"F3": cmap}
        assert content_text(stream, fonts) == reference_content_text(stream, fonts), stream


class _Counting:
    """A compiled pattern that counts its matches and the bytes its searches cross."""

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self.pattern = pattern
        self.matches = 0
        self.crossed = 0

    def match(self, data: bytes, pos: int = 0, endpos: int = 2**62) -> re.Match[bytes] | None:
        self.matches += 1
        return self.pattern.match(data, pos, endpos)

    def search(self, data: bytes, pos: int = 0, endpos: int = 2**62) -> re.Match[bytes] | None:
        m = self.pattern.search(data, pos, endpos)
        self.crossed += (m.end() if m else min(endpos, len(data))) - pos
        return m

    def finditer(self, data: bytes, pos: int = 0, endpos: int = 2**62) -> Iterator[Any]:
        return self.pattern.finditer(data, pos, endpos)


def test_graphics_are_stepped_over_not_tokenized(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 0.4 MB drawing with one line of text: a few dozen token matches, not one a token."""
    rng = random.Random(7)
    k = key("project", seed=7)
    stream = b"\n".join(
        [graphics_run(rng, 20_000), page(tj_array(split(k, 3))), graphics_run(rng, 20_000)]
    )
    assert len(stream) > 400_000
    counting = _Counting(pdf._CPHRASE)
    monkeypatch.setattr(pdf, "_CPHRASE", counting)
    assert content_text(stream) == k.encode()
    assert counting.matches < 100
    old = _Counting(OLD_TOKEN)
    monkeypatch.setitem(globals(), "OLD_TOKEN", old)
    assert reference_content_text(stream) == k.encode()
    assert old.matches > 100_000  # the old way: one a token


def test_simple_tj_arrays_and_strings_read_in_one_match(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TJ array of simple strings, hex strings and kerning is one token match, not one an
    element; white space goes with the token after it."""
    k = key("project", seed=8)
    pieces = split(k, 8)
    arr = b" ".join(
        (pdf_literal(p.encode()) if i % 2 else b"<" + p.encode().hex().encode() + b">")
        + b" -%d" % (i * 7)
        for i, p in enumerate(pieces)
    )
    stream = b"BT /F1 12 Tf 72 700 Td [" + arr + b"] TJ (tail) Tj ET"
    counting = _Counting(pdf._CPHRASE)
    monkeypatch.setattr(pdf, "_CPHRASE", counting)
    assert content_text(stream) == k.encode() + b"tail"
    assert counting.matches <= 12
    assert reference_content_text(stream) == content_text(stream)


# --- generated PDFs: objects, streams, whole scans ---------------------------------------


def random_pdf(rng: random.Random) -> bytes:
    """Objects with and without streams; /Length right, wrong or indirect; stream bytes
    holding endobj, obj, stream and endstream; every end of line; damage."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    for num in range(1, rng.randrange(2, 14)):
        eol = rng.choice([b"\n", b"\r\n", b"\r", b" "])
        out += b"%d 0 obj" % num + eol
        if rng.random() < 0.5:
            out += b"<< /Title (t%d) /Kind /X >>" % num
        else:
            body = rng.choice(
                [
                    b"BT (x) Tj ET",
                    b"q 1 0 0 1 0 0 cm Q",
                    b"junk endobj 7 0 obj stream\n inside",
                    b"endstream",
                    b"x" * rng.randrange(0, 300),
                    bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))),
                ]
            )
            length = rng.choice([b"%d" % len(body), b"%d" % (len(body) + 3), b"9 0 R", b"0", b""])
            out += b"<< /Length " + length + b" >>" + rng.choice([b"", b" ", b"\n"])
            out += b"stream" + rng.choice([b"\n", b"\r\n", b"\r"]) + body
            out += rng.choice([b"\n", b"\r\n", b"\r", b"", b"\n\r"]) + b"endstream"
        if rng.random() < 0.9:
            out += eol + b"endobj"
        out += eol
        if rng.random() < 0.05:
            out += b"stream\n"
    if rng.random() < 0.2:
        out = out[: rng.randrange(len(out))]
    return bytes(out)


def _objects(data: bytes, read: Any) -> tuple[list[tuple[object, ...]], list[str]]:
    r = pdf._Reader(data, Location("x.pdf", 0, 0, 0), ContentOptions(), lambda *a: [], [], 0)
    read(r)
    objs = [(o.num, o.offset, o.end, o.head, o.stream) for o in r.objects]
    return objs, [f"{e.where}: {e.message}" for e in r.errors]


def test_objects_read_as_the_old_reader_read_them() -> None:
    rng = random.Random(1616)
    for _ in range(3000):
        data = random_pdf(rng)
        assert _objects(data, pdf._read_objects) == _objects(data, reference_read_objects), data


def test_object_searches_do_not_cross_the_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding the objects of a PDF holding 2 MB of streams crosses a few kilobytes with
    the object pattern (the old reader crossed every stream once more)."""
    rng = random.Random(3)
    big = [bytes(rng.randrange(256) for _ in range(200_000)) for _ in range(10)]
    objs = [b"<< /Length %d >>\nstream\n" % len(b) + b + b"\nendstream" for b in big]
    data = make_pdf([page(b"(x) Tj")] * 3, flate=True, extra_objects=objs)
    counting = _Counting(pdf._OBJ)
    monkeypatch.setattr(pdf, "_OBJ", counting)
    new = _objects(data, pdf._read_objects)
    assert counting.crossed < 20_000
    counting.crossed = 0
    assert _objects(data, reference_read_objects) == new
    assert counting.crossed > 2_000_000


def _tounicode_font(k: str) -> tuple[bytes, list[bytes], dict[str, int]]:
    chars = sorted(set(k))
    gid = {c: 0x0100 + i for i, c in enumerate(chars)}
    cmap = (
        b"%d beginbfchar\n" % len(chars)
        + b"".join(b"<%04X> <%04X>\n" % (gid[c], ord(c)) for c in chars)
        + b"endbfchar\n"
    )
    data = zlib.compress(cmap)
    stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream"
    font = b"<< /Type /Font /Subtype /Type0 /Encoding /Identity-H /ToUnicode 4 0 R >>"
    return font, [stream], gid


def generated_pdfs() -> Iterator[tuple[str, bytes]]:
    """PDFs with keys: many pages, big drawings, TJ kerning, ToUnicode fonts, object
    streams, hex strings, uncompressed and FlateDecode contents."""
    rng = random.Random(99)
    for i in range(12):
        k = key(["project", "svcacct", "admin", "user-none"][i % 4], seed=100 + i)
        pieces = split(k, 2 + i % 4)
        drawing = graphics_run(rng, 2000 + 500 * i)
        pages = [page(b"(intro %d) Tj" % p) + b"\n" + graphics_run(rng, 50) for p in range(i + 1)]
        pages.append(
            drawing + b"\n" + page(tj_array(pieces, kern=-((i * 60) % 300))) + b"\n" + drawing
        )
        kwargs: dict[str, Any] = {"flate": i % 2 == 0}
        if i % 3 == 0:
            font, objects, gid = _tounicode_font(k)
            arr = b" -8 ".join(b"<" + b"".join(b"%04X" % gid[c] for c in p) + b">" for p in pieces)
            pages.append(drawing + page(b"[" + arr + b"] TJ"))
            kwargs.update(font=font, font_objects=objects)
        if i % 4 == 1:
            k2 = key("project", seed=200 + i)
            inner = b"<< /Title " + pdf_literal(k2.encode()) + b" >>"
            header = b"40 0 "
            data = zlib.compress(header + inner)
            kwargs["extra_objects"] = [
                b"<< /Type /ObjStm /N 1 /First %d /Length %d /Filter /FlateDecode >>\nstream\n"
                % (len(header), len(data))
                + data
                + b"\nendstream"
            ]
        yield f"gen{i}", make_pdf(pages, **kwargs)


def _scan(data: bytes) -> tuple[list[tuple[object, ...]], list[str]]:
    errors: list[ScanError] = []
    hits = scan_buffer(
        DET,
        data,
        Location("d.pdf", 0, 0, 0, binary=is_binary(data)),
        ContentOptions(),
        errors=errors,
    )
    return [_hit(h) for h in hits], [e.message for e in errors]


def _hit(h: Hit) -> tuple[object, ...]:
    loc = h.location
    return (h.secret, h.rule_id, h.confidence, loc.offset, loc.decoded, sorted(loc.extra.items()))


@pytest.mark.parametrize(
    "name,data", list(generated_pdfs()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_whole_scan_same_as_with_the_old_reader(
    name: str, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = _scan(data)
    assert new[0], name  # each holds keys
    monkeypatch.setattr(pdf, "content_text", reference_content_text)
    monkeypatch.setattr(pdf, "_read_objects", reference_read_objects)
    assert _scan(data) == new


# --- dictionaries: their strings in one findall ----------------------------------------------


def test_dict_strings_without_nested_parentheses_read_in_one_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An annotation or Info dictionary whose strings hold no unescaped parenthesis is read
    without one ``_TOKEN`` match a token; one with nested parentheses still is, the same."""
    k = key("project", seed=16)
    head = (
        b"<< /Type /Annot /Subtype /Link /Rect [ 72 700 300 712 ] /Border [0 0 0]"
        b" /A << /S /URI /URI (https://example.com/?k=" + k.encode() + b") >>"
        b" /T <FEFF0041> /Contents (esc \\( \\) \\\\ \\053 \\n) % a comment (not a string\n"
        b" /NM (x) >>"
    )
    counting = _Counting(pdf._TOKEN)
    monkeypatch.setattr(pdf, "_TOKEN", counting)
    got = pdf.dict_strings(head)
    assert got == reference_dict_strings(head)
    assert ("/URI", b"https://example.com/?k=" + k.encode()) in got
    assert counting.matches == 0
    nested = head + b" /Title (a (nested) title)"
    assert pdf.dict_strings(nested) == reference_dict_strings(nested)
    assert counting.matches > 0


DICT_PARTS = [b"(", b")", b"\\", b"\\(", b"\\)", b"\\\\", b"\\0", b"\\12", b"<", b"<<", b">"]
DICT_PARTS += [b"/K", b"/", b"%", b"\r", b"\n", b" ", b"a", b"4", b"\xfe\xff", b"\x00"]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from(DICT_PARTS),
        max_size=40,
    )
)
def test_dict_strings_with_escapes_same_as_reading_every_token(parts: list[bytes]) -> None:
    head = b"".join(parts)
    assert pdf.dict_strings(head) == reference_dict_strings(head), head


# --- pages as pdfTeX writes them: short graphics between short text blocks ------------------


def pdftex_like(rng: random.Random, blocks: int) -> bytes:
    """Blocks of text (font, move, kerned array) between a few graphics operations, as
    pdfTeX writes a page; some rules drawn with a dash array."""
    out = [b"1 0 0 1 74.4095 789.6651 cm\n0 g 0 G\n"]
    for i in range(blocks):
        x, y = rng.uniform(50, 500), rng.uniform(50, 700)
        out.append(b"1 0 0 1 %.4f %.4f cm\n0 g 0 G\n1 0 0 1 %.4f %.4f cm\n" % (x, y, -x, -y))
        if i % 5 == 0:
            out.append(b"q\n[]0 d\n0 J\n0.3984 w\n0 0.1992 m\n3.985 0.1992 l\nS\nQ\n")
        words = [
            b"(%s)%d" % (rng.choice([b"Ret", b"u", b"rn", b"t\\050y\\051"]), k)
            for k in (1, 28, -333)
        ]
        out.append(b"BT\n/F8 9.9626 Tf %.4f %.4f Td[" % (x, y) + b"".join(words) + b"(.)]TJ\nET\n")
    return b"".join(out)


def test_graphics_between_text_blocks_crossed_in_one_match_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The few graphics operations between two text blocks (a page's rules, colours, moves)
    are crossed by the stretch, whatever their length, not read as operator runs."""
    stream = pdftex_like(random.Random(16), 300)
    runs: list[bytes] = []

    class Kinds:
        def match(self, data: bytes, pos: int = 0) -> re.Match[bytes] | None:
            m = phrase.match(data, pos)
            if m is not None and m.lastgroup == "run":
                runs.append(m.group())
            return m

    phrase = pdf._CPHRASE
    monkeypatch.setattr(pdf, "_CPHRASE", Kinds())
    assert content_text(stream) == reference_content_text(stream)
    assert len(stream) > 40_000
    assert not [r for r in runs if b"cm" in r]  # each graphics stretch taken whole


@pytest.mark.parametrize(
    "stream",
    [b"1 x/" * 50_000 + b"(a) Tj", b"1 x/y " * 30_000 + b"(a) Tj", b"q " * 100_000 + b"(a)'"],
    ids=["ops-before-names", "ops-and-names", "ops"],
)
def test_each_stretch_looked_for_once(monkeypatch: pytest.MonkeyPatch, stream: bytes) -> None:
    """A stretch is crossed once: after a stretch without an operator followed by white
    space, the next operators do not look for it again (that was quadratic)."""
    counting = _Counting(pdf._STRETCH)
    monkeypatch.setattr(pdf, "_STRETCH", counting)
    crossed = 0
    real = counting.match

    def match(data: bytes, pos: int = 0, endpos: int = 2**62) -> re.Match[bytes] | None:
        nonlocal crossed
        m = real(data, pos, endpos)
        crossed += m.end() - pos if m else 0
        return m

    monkeypatch.setattr(counting, "match", match)
    assert content_text(stream) == reference_content_text(stream)
    assert crossed <= 2 * len(stream)


def test_tex_text_blocks_read_in_one_match_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """A text block as TeX writes it (BT, font, move, kerned array, ET) is one match, its
    graphics one stretch: about one match a block, not one a phrase or a token."""
    rng = random.Random(1616)
    stream = pdftex_like(rng, 300)
    cmap = parse_tounicode(b"2 beginbfchar <52> <0078> <75> <0079> endbfchar")
    assert cmap is not None
    for fonts in (None, {b"F8": cmap}):
        counting = _Counting(pdf._CPHRASE)
        monkeypatch.setattr(pdf, "_CPHRASE", counting)
        got = content_text(stream, fonts)
        monkeypatch.undo()
        assert got == reference_content_text(stream, fonts)
        assert got.count(b"\n") == 299
        assert counting.matches <= 300 + 2 * 60 + 1  # a block each; "[]", "0 d"; the end


def test_long_stretch_given_back_from_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last operator of a megabyte of graphics is looked for near the stretch's end
    (widening 16x a time), not by a second match over the whole stretch."""
    rng = random.Random(11)
    k = key("project", seed=11)
    stream = graphics_run(rng, 40_000) + b"\n" + page(tj_array(split(k, 3)))
    looked = 0
    real = pdf._STRETCH_OP

    class Looking:
        def match(self, data: bytes, pos: int, endpos: int) -> re.Match[bytes] | None:
            nonlocal looked
            looked += endpos - pos
            return real.match(data, pos, endpos)

    monkeypatch.setattr(pdf, "_STRETCH_OP", Looking())
    assert content_text(stream) == k.encode() == reference_content_text(stream)
    assert len(stream) > 400_000
    assert looked < 20_000


def test_objects_found_from_their_obj_not_tried_at_every_byte(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The object pattern (led by a lookbehind: tried at every byte) is run only over the
    few bytes before each "obj", not over every dictionary; the objects are the same, with
    long runs of digits and white space before "obj", a "obj" word that is no object, and
    numbers too long to be an object's."""
    rng = random.Random(5)
    link = b"<< /Type /Annot /Subtype /Link /Border [0 0 0] /Rect [%d 1 2 3] /A << /S /URI >> >>"
    objs = [link % i + b" /Contents (%s)" % (b"w " * rng.randrange(200, 400)) for i in range(300)]
    objs += [b"<< /Note (an obj here, 12 0 obj inside a string) >>", b"<< /K [1 2] >>"]
    data = make_pdf([page(b"(x) Tj")] * 3, extra_objects=objs)
    data += b"\n12345678901 0 obj << >> endobj\n7" + b" " * 200 + b"0 obj << >> endobj\n"
    data += b"8 0\n\n  \t obj << >> endobj 9 0 objx 10 0 obj<<>>endobj"
    counting = _Counting(pdf._OBJ)
    monkeypatch.setattr(pdf, "_OBJ", counting)
    new = _objects(data, pdf._read_objects)
    crossed = counting.crossed
    assert _objects(data, reference_read_objects) == new
    assert {8, 10, 12, 7} <= {o[0] for o in new[0]}
    assert crossed < len(data) // 4 < counting.crossed - crossed


@pytest.mark.parametrize(
    "stream",
    [
        b"BT (\\376\\377\\000A\\000B) Tj ET BT (plain) Tj ET",
        b"BT (\\377\\376A\\000) Tj T* (x\\376\\377y) Tj ET",
        b"BT [(\\376)(\\377\\000C)] TJ ET",
        b"BT (a) Tj (\\376\\377) Tj ET",
    ],
)
def test_lines_starting_with_a_bom_decoded_as_before(stream: bytes) -> None:
    """The text is joined once; only when a byte order mark is in it are the lines that
    start with one decoded (UTF-16), each as before."""
    assert content_text(stream) == reference_content_text(stream)


@pytest.mark.parametrize(
    ("head", "read"),
    [
        (b"<< /Type /Page /Parent 3 0 R /Resources << /Font << /F1 5 0 R >> >> >>", False),
        (b"<< /A <<>> /B [<<>>] >>", False),
        (b"<< /ID [<41><42>] >>", True),
        (b"<<<41>>>", True),
        (b"<< /T (x) >>", True),
    ],
)
def test_dictionaries_without_strings_not_read(
    monkeypatch: pytest.MonkeyPatch, head: bytes, read: bool
) -> None:
    """A dictionary without "(" and without an odd run of "<" has no string: no pattern is
    run over it (the odd run found by taking every "<<" out, not by a pattern)."""
    calls: list[bytes] = []
    real = pdf._DICT_TOKENS

    class Counting:
        def findall(self, data: bytes) -> list[Any]:
            calls.append(data)
            return real.findall(data)

    monkeypatch.setattr(pdf, "_DICT_TOKENS", Counting())
    monkeypatch.delattr(pdf, "_ODD_LT", raising=False)
    assert pdf.dict_strings(head) == reference_dict_strings(head)
    assert bool(calls) == read
