"""Decoders for keys that are encoded: base64/base64url, percent-encoding, JSON/JS string
escapes, quoted-printable, character references, hex, UTF-16 and UTF-32 text, and keys
broken across lines by continuations.

Decoding everything would make every scan pay for what almost never happens, so each decoder
first looks for a cheap, literal sign that an encoded key may be there, and decodes only a
bounded region around it:

* base64: the base64 text of the key marker at each of the three byte alignments
  (``VDNCbGJrRk``, ``QzQmxia0ZK``, ``UM0JsYmtGS``: the marker is itself base64, so this is
  ``OpenAI`` encoded twice), found by their two halves (a line break may fall inside a
  needle). A run is a block of lines (wrapped at any column, indented, CRLF: MIME, PEM, YAML
  block scalars) decoded with its line breaks and indentation removed; the needle, found in
  that joined text, tells where the 4-character groups start, so the block is decoded at
  the right alignment even when text of the base64 alphabet sits before it.
* percent-encoding: only in buffers holding ``%`` and a rule keyword (the marker, "openai"),
  around ``sk%2D`` or an encoded assignment (``key%3D``, ``key%22%3A``); or a key encoded
  whole (``%73%6B%2D``, found by one extra search in buffers that hold ``%``).
* string escapes: likewise, around ``\\u00``, ``\\u{`` and ``\\x`` (JS) and ``\\/`` (so also a
  key escaped whole in ``\\xNN`` near a keyword); or a key escaped whole in ``\\u00NN``
  anywhere (``\\u0073\\u006b``).
* quoted-printable: only where a soft line break (``=`` at a line's end) is near a rule
  keyword (``QP_GATE``: the only way quoted-printable hides a key is a soft break inside it,
  since it leaves letters, digits, ``-`` and ``_`` as they are), over several lines around
  the keyword: soft breaks removed, ``=XX`` decoded. The gate searches only those bytes
  (a search of the whole buffer made decoding ~1.8x slower on plain trees).
* HTML/XML character references: likewise, around ``&#...;`` or ``&sol;``-like names (so
  also a key referenced whole, near a keyword). No needle of their own: each would cost the
  pure-Python keyword plan a pass over every buffer (~8% each on plain trees).
* hex: the hex of ``sk-`` (``736b2d``, any case: a gate needle) anywhere; its forms with
  ``0x``/``\\x``/space/colon separators near a keyword. Decoded as long as the hex goes on
  in the form it started.
* UTF-16 LE/BE and UTF-32 LE/BE: a byte-order mark (a UTF-32 one checked against the text
  after it), or the NULs of mostly-ASCII text (every other byte; three in every four).
* line continuations (backslash-newline, a line break then indentation): in the run of key
  characters and continuations that holds a rule keyword (the marker, a key prefix, the
  first ``sk-`` after an OpenAI name), joined; only a whole key across a joint counts.

Every decoded region keeps a map from decoded offsets back to offsets in the buffer it came
from, so a finding points at the encoded text. Work is bounded: at most ``MAX_REGIONS``
regions and ``MAX_DECODED_FACTOR`` times the buffer's size in decoded bytes per buffer.
"""

from __future__ import annotations

import binascii
import bisect
import re
from collections.abc import Callable, Iterable, Iterator, Sequence

from keyscan.lazypattern import lazy_compile
from keyscan.openai_facts import MARKER_BYTES
from keyscan.records import dataclass

# The base64 text of the key marker at each of the 3 byte alignments, with how far the
# needle starts after the beginning of its 4-character group (which fixes the alignment of
# the run). The base64 of "sk-" (c2st, ?NrL, zay?) would do too, but takes 9 short needles,
# slower to search for than these 3 long ones; every key family but the marker-less,
# low-confidence one holds the marker.
BASE64_NEEDLES: tuple[tuple[bytes, int], ...] = (
    (b"VDNCbGJrRk", 0),
    (b"QzQmxia0ZK", 2),
    (b"UM0JsYmtGS", 3),
)
# What the detector looks for, per needle: pieces that stay whole wherever a line break (with
# any indentation) falls in a wrapped block, inside the needle too; the needle is then found
# in the run with its blanks removed. A break after character p leaves n[:6] whole for p >= 6
# and n[4:] for p <= 4 (an unbroken needle holds both); after the 5th, n[5:] follows the
# break's last blank (line break or indentation). Six-character pieces: Hyperscan finds them
# at no measurable cost on a plain tree, where the two 5-character halves of each needle cost
# the keyword pass ~15 ms on 208 MB (+35 %), pieces ending in a line break ~8 ms, and the
# pieces after a bare CR ~13 ms (bench/bench_plain_cost.py): a block wrapped with bare CRs
# (classic Mac OS) broken right after the 5th character of the needle is not found.
BASE64_HEADS: tuple[bytes, ...] = tuple(n[:6] for n, _ in BASE64_NEEDLES)
BASE64_TAILS: tuple[bytes, ...] = tuple(n[4:] for n, _ in BASE64_NEEDLES)
BASE64_SPLIT: tuple[bytes, ...] = tuple(
    blank + n[5:] for n, _ in BASE64_NEEDLES for blank in (b"\n", b" ", b"\t")
)
BASE64_GATES: tuple[bytes, ...] = (*BASE64_HEADS, *BASE64_TAILS, *BASE64_SPLIT)
BASE64_HALVES = BASE64_GATES  # the former name (the two halves of each needle)
_BASE64_GATE_SET = frozenset(BASE64_GATES)
assert {len(g) for g in BASE64_GATES} == {6}
# Signs, in a buffer or a window, that decoding escapes or percent-encoding may reveal a key:
# a partly encoded key keeps its marker, an encoded assignment its variable name; a key whose
# every character is encoded starts with the encoded "sk".
_SIGNS = (MARKER_BYTES, b"sk\\", b"sk%")
_SIGNS_FOLDED = (b"openai", b"open_ai", b"open-ai")
_FULL_PERCENT = b"%73%6"
_FULL_ESCAPES = (b"\\u0073\\u006",)
# The shortest run that can hold a whole key: 51 characters (legacy) -> 68 in base64.
MIN_BASE64_RUN = 64
# Runs of the base64 and base64url alphabets over wrapped lines: a line break may have
# blanks around it (indentation of a YAML block scalar, trailing spaces, CRLF).
_B64_RUN = lazy_compile(
    globals(), "_B64_RUN", rb"(?:[A-Za-z0-9+/_-]+|[ \t]*(?:\r\n?|\n)[ \t]*(?=[A-Za-z0-9+/_-]))*"
)
_B64_LINE = lazy_compile(globals(), "_B64_LINE", rb"[A-Za-z0-9+/_-]+")
_B64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")
_BLANKS = frozenset(b" \t\r\n")
_B64_TO_STD = bytes.maketrans(b"-_", b"+/")

_PERCENT_TRIGGER = lazy_compile(
    globals(), "_PERCENT_TRIGGER",
    rb"sk%2[dD]|%73%6[bB]%2[dD]|(?:key|KEY|Key|token|TOKEN|secret|SECRET)(?:%2[27])?%3[aAdD]"
)
_FULL_PERCENT_TRIGGER = lazy_compile(globals(), "_FULL_PERCENT_TRIGGER", rb"%73%6[bB]%2[dD]")
_ESCAPE_TRIGGER = lazy_compile(globals(), "_ESCAPE_TRIGGER", rb"\\u00|\\u\{|\\x[0-9A-Fa-f]{2}|\\/")
_FULL_ESCAPE_TRIGGER = lazy_compile(globals(), "_FULL_ESCAPE_TRIGGER", rb"\\u0073\\u006[bB]")
# HTML/XML character references: numeric ones, and the named ones of ASCII characters a key
# or its assignment may hold (not &hyphen;/&dash;: those are U+2010, no ASCII "-").
_REF_TRIGGER = lazy_compile(
    globals(), "_REF_TRIGGER", rb"&#[xX]?[0-9a-fA-F]{1,7};|&(?:sol|lowbar|equals|colon|quot|apos);"
)
_REF = lazy_compile(
    globals(), "_REF", rb"&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|([A-Za-z]{2,8}));"
)
_NAMED_REFS = {
    b"sol": b"/",
    b"lowbar": b"_",
    b"equals": b"=",
    b"colon": b":",
    b"quot": b'"',
    b"apos": b"'",
    b"amp": b"&",
    b"lt": b"<",
    b"gt": b">",
    b"period": b".",
    b"plus": b"+",
    b"num": b"#",
}
_SIMPLE_ESCAPES = {
    ord("/"): b"/",
    ord("\\"): b"\\",
    ord('"'): b'"',
    ord("'"): b"'",
    ord("`"): b"`",
    ord("n"): b"\n",
    ord("t"): b"\t",
    ord("r"): b"\r",
    ord("b"): b"\b",
    ord("f"): b"\f",
}

# Region sizes around a trigger (bytes before, after). Keys are at most a few hundred bytes,
# even percent-encoded; the context before lets assignment rules see the variable name.
BASE64_WINDOW = (1024, 2048)
# Around a keyword (the marker sits mid-key: up to 3 + 32 + 100 characters, encoded, before).
SIGN_WINDOW = (512, 1536)
PERCENT_WINDOW = (96, 1536)
ESCAPE_WINDOW = (256, 1536)
MAX_REGIONS = 4096
MAX_DECODED_FACTOR = 4
MAX_DEPTH = 3  # decoders applied one inside another ("base64>percent>escape")
UTF16_SAMPLE = 4096


@dataclass
class Decoded:
    """A decoded region: ``data`` decoded from ``buffer[start:end]`` by ``how``."""

    how: str
    start: int
    end: int
    data: bytes
    to_parent: Callable[[int], int]  # decoded offset -> offset in the parent buffer
    # Joined lines ("continuation"): the decoded offsets where text was removed. Only a key that spans one of them is news (the rest is found plainly), and
    # only a well-formed one (a whole key), never a value glued onto the next line's text.
    joints: tuple[int, ...] | None = None


# --- base64 -------------------------------------------------------------------------------


def _b64_hits(data: bytes, keywords: bool | Sequence[int]) -> list[int]:
    """Offsets in the marker's base64 of the pieces that find it (``BASE64_GATES``) in data:
    from the keyword offsets the detector found (the pieces are among its gate needles), else
    searched here. A piece that starts with a blank counts from its next character (in the
    run)."""
    if not isinstance(keywords, bool):
        # Every piece has 6 characters: one slice and a set lookup per keyword offset.
        hits = [at for at in keywords if data[at : at + 6] in _BASE64_GATE_SET]
    else:
        hits = []
        for piece in BASE64_GATES:
            at = data.find(piece)
            while at >= 0 and len(hits) < MAX_REGIONS:
                hits.append(at)
                at = data.find(piece, at + 1)
        hits.sort()
    return [at + 1 if data[at] in _BLANKS else at for at in hits]


def _b64_run_start(data: bytes, pos: int, floor: int) -> int:
    """Where the base64 run holding ``pos`` starts, looking back no further than ``floor``:
    characters of the alphabet, and line breaks with the blanks around them (wrapped and
    indented blocks: MIME, PEM, YAML block scalars)."""
    i = pos
    while i > floor:
        c = data[i - 1]
        if c in _B64_ALPHABET:
            i -= 1
            continue
        if c in _BLANKS:
            j = i - 1
            while j > floor and data[j - 1] in _BLANKS:
                j -= 1
            if data[j:i].translate(None, b" \t") in (b"\n", b"\r\n", b"\r"):
                i = j  # one line break (not a blank line: that ends a block)
                continue
        break
    while i < pos and data[i] in _BLANKS:
        i += 1
    return i


@dataclass
class _Block:
    """A base64 run with its blanks (line breaks, indentation) removed: ``text``, the lines
    it came from (``starts``: index in text where each line starts; ``origins``: offset of
    that line's first character in the buffer)."""

    text: bytes
    starts: list[int]
    origins: list[int]

    def line_of(self, index: int) -> int:
        return bisect.bisect_right(self.starts, index) - 1

    def line_end(self, line: int) -> int:
        return self.starts[line + 1] if line + 1 < len(self.starts) else len(self.text)

    def origin(self, index: int) -> int:
        line = self.line_of(index)
        return self.origins[line] + (index - self.starts[line])


def _b64_block(data: bytes, lo: int, hi: int) -> _Block:
    text = bytearray()
    starts: list[int] = []
    origins: list[int] = []
    for m in _B64_LINE.finditer(data, lo, hi):
        starts.append(len(text))
        origins.append(m.start())
        text += m.group()
    return _Block(bytes(text), starts, origins)


def _block_lasts(block: _Block) -> list[int]:
    """For each line, the last line of the encoded text that goes on from it.

    A block wrapped at a column has lines of one width but its first (which may follow a
    ``key:``) and its last, which is shorter: it ends at the first line after the given one
    that is shorter than the line before it, or before one that is longer (when that is not
    the first line). One pass from the end, for every line at once."""
    count = len(block.starts)
    lengths = [block.line_end(i) - block.starts[i] for i in range(count)]
    lasts = [count - 1] * count
    for i in range(count - 2, -1, -1):
        j = i + 1
        if lengths[j] < lengths[i]:
            lasts[i] = j
        elif lengths[j] > lengths[i] and i > 0:
            lasts[i] = i
        else:
            lasts[i] = lasts[j]
    return lasts


def _block_ends(block: _Block, line: int, lasts: list[int]) -> list[int]:
    """Where the encoded text that goes on from ``line`` may end (indexes in block.text): the
    end of its block; and, since a last line may also be a short token of the next line of
    text (``a+``), indistinguishable from a short last line, the end of the line before."""
    last = lasts[line]
    ends = [block.line_end(last)]
    if last > line:
        ends.append(block.line_end(last - 1))
    return ends


def _b64_regions(data: bytes, keywords: bool | Sequence[int]) -> Iterator[tuple[_Block, int, int]]:
    """(block, start, end) of base64 text to decode: runs around the halves of the marker's
    base64, with line breaks and indentation removed, so that a line break anywhere (inside
    the marker's encoding too) is no obstacle; ``start`` is aligned to the 4-character
    groups by the needle found in the joined text, bounded to ``BASE64_WINDOW`` characters
    before and after it."""
    n = len(data)
    before, after = BASE64_WINDOW
    covered = -1  # runs already decoded reach this far
    seen: set[tuple[int, int, int]] = set()
    for pos in _b64_hits(data, keywords):
        if pos + BASE64_WINDOW[1] // 4 < covered:
            continue
        lo = _b64_run_start(data, pos, max(0, pos - before))
        right = _B64_RUN.match(data, pos, min(n, pos + after))
        hi = right.end() if right else pos
        # A needle near the window's end gets a window of its own (its key may run past).
        covered = hi
        block = _b64_block(data, lo, hi)
        lasts = _block_lasts(block)
        for needle, shift in BASE64_NEEDLES:
            at = block.text.find(needle)
            while at >= 0:
                aligned = (at - shift) % 4
                line = block.line_of(at)
                for end in _block_ends(block, line, lasts):
                    key = (block.origins[0], aligned, end)
                    if key not in seen and end - aligned >= MIN_BASE64_RUN:
                        seen.add(key)
                        yield block, aligned, end
                at = block.text.find(needle, at + 1)


def decode_base64_block(block: _Block, start: int, end: int) -> Decoded | None:
    """block.text[start:end] decoded (base64 or base64url), offsets mapped back to the
    buffer through the block's lines."""
    raw = block.text[start:end].rstrip(b"=")
    if len(raw) % 4 == 1:
        raw = raw[:-1]
    text = raw.translate(_B64_TO_STD)
    if len(text) < MIN_BASE64_RUN:
        return None
    try:
        out = binascii.a2b_base64(text + b"=" * (-len(text) % 4))
    except binascii.Error:
        return None

    def to_parent(offset: int) -> int:
        return block.origin(min(start + offset * 4 // 3, max(start, end - 1)))

    return Decoded(
        "base64", block.origin(start), block.origin(max(start, end - 1)) + 1, out, to_parent
    )


# --- percent-encoding and string escapes --------------------------------------------------


def _windows(
    data: bytes, anchors: Iterable[tuple[int, int]], before: int, after: int
) -> Iterator[tuple[int, int]]:
    """Merged windows around anchors (in order), clipped to the line they are on."""
    cur_start = cur_end = -1
    for a_start, a_end in anchors:
        s = max(0, a_start - before)
        nl = data.rfind(b"\n", s, a_start)
        if nl >= 0:
            s = nl + 1
        e = min(len(data), a_end + after)
        nl = data.find(b"\n", a_end, e)
        if nl >= 0:
            e = nl
        if s <= cur_end:
            cur_end = max(cur_end, e)
            continue
        if cur_end > cur_start >= 0:
            yield cur_start, cur_end
        cur_start, cur_end = s, e
    if cur_end > cur_start >= 0:
        yield cur_start, cur_end


def _spans(
    data: bytes, anchors: Iterable[tuple[int, int]], before: int, after: int
) -> Iterator[tuple[int, int]]:
    """Merged windows around anchors (in order), over lines."""
    lo = hi = -1
    for a_start, a_end in anchors:
        s, e = max(0, a_start - before), min(len(data), a_end + after)
        if s <= hi:
            hi = max(hi, e)
            continue
        if hi > lo:
            yield lo, hi
        lo, hi = s, e
    if hi > lo:
        yield lo, hi


def _mapped(how: str, start: int, end: int, out: bytes, origin: list[int]) -> Decoded:
    origin.append(end)

    def to_parent(offset: int) -> int:
        return origin[min(offset, len(origin) - 1)]

    return Decoded(how, start, end, out, to_parent)


def _decode_marked_hex(
    data: bytes, start: int, end: int, mark: int, how: str, soft_breaks: bool = False
) -> Decoded | None:
    """``<mark>XX`` decoded (``%2D`` for percent-encoding, ``=2D`` for quoted-printable); with
    ``soft_breaks``, ``<mark>`` at a line's end (a soft line break) removed. Every other byte
    as is. None when nothing was decoded."""
    out = bytearray()
    origin: list[int] = []
    i = start
    changed = False
    while i < end:
        c = data[i]
        if c == mark:
            if soft_breaks and data.startswith(b"\n", i + 1):
                i += 2
                changed = True
                continue
            if soft_breaks and data.startswith(b"\r\n", i + 1):
                i += 3
                changed = True
                continue
            if i + 3 <= end and _is_hex(data[i + 1 : i + 3]):
                out.append(int(data[i + 1 : i + 3], 16))
                origin.append(i)
                i += 3
                changed = True
                continue
        out.append(c)
        origin.append(i)
        i += 1
    if not changed:
        return None
    return _mapped(how, start, end, bytes(out), origin)


def decode_percent(data: bytes, start: int, end: int) -> Decoded | None:
    return _decode_marked_hex(data, start, end, 0x25, "percent")


def decode_escapes(data: bytes, start: int, end: int) -> Decoded | None:
    out = bytearray()
    origin: list[int] = []
    i = start
    changed = False
    while i < end:
        c = data[i]
        if c != 0x5C or i + 1 >= end:
            out.append(c)
            origin.append(i)
            i += 1
            continue
        nxt = data[i + 1]
        if nxt == ord("u") and i + 6 <= end and _is_hex(data[i + 2 : i + 6]):
            code = int(data[i + 2 : i + 6], 16)
            width = 6
            if 0xD800 <= code < 0xDC00 and data[i + 6 : i + 8] == b"\\u" and i + 12 <= end:
                low = data[i + 8 : i + 12]
                if _is_hex(low) and 0xDC00 <= int(low, 16) < 0xE000:
                    code = 0x10000 + ((code - 0xD800) << 10) + (int(low, 16) - 0xDC00)
                    width = 12
            encoded = chr(code).encode("utf-8", "surrogatepass")
            out += encoded
            origin.extend([i] * len(encoded))
            i += width
            changed = True
        elif (
            nxt == ord("u")
            and data.startswith(b"{", i + 2)
            and (close := data.find(b"}", i + 3, min(end, i + 10))) > i + 3
            and _is_hex(data[i + 3 : close])
            and int(data[i + 3 : close], 16) < 0x110000
        ):
            # ES2015 code point escape: \u{2d}, \u{1F600}
            encoded = chr(int(data[i + 3 : close], 16)).encode("utf-8", "surrogatepass")
            out += encoded
            origin.extend([i] * len(encoded))
            i = close + 1
            changed = True
        elif nxt == ord("x") and i + 4 <= end and _is_hex(data[i + 2 : i + 4]):
            encoded = chr(int(data[i + 2 : i + 4], 16)).encode("utf-8")
            out += encoded
            origin.extend([i] * len(encoded))
            i += 4
            changed = True
        elif nxt in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[nxt]
            origin.append(i)
            i += 2
            changed = True
        else:
            out.append(c)
            origin.append(i)
            i += 1
    if not changed:
        return None
    return _mapped("escape", start, end, bytes(out), origin)


def decode_char_refs(data: bytes, start: int, end: int) -> Decoded | None:
    """HTML/XML character references (``&#115;``, ``&#x2d;``, ``&sol;``) decoded; every
    other byte (and an unknown or invalid reference) as is. None when nothing was decoded."""
    out = bytearray()
    origin: list[int] = []
    at = start
    for m in _REF.finditer(data, start, end):
        dec, hexa, name = m.groups()
        if name is not None:
            encoded = _NAMED_REFS.get(name)
            if encoded is None:
                continue
        else:
            code = int(dec, 10) if dec is not None else int(hexa, 16)
            if code >= 0x110000 or code == 0:
                continue
            encoded = chr(code).encode("utf-8", "surrogatepass")
        out += data[at : m.start()]
        origin.extend(range(at, m.start()))
        out += encoded
        origin.extend([m.start()] * len(encoded))
        at = m.end()
    if at == start:
        return None
    out += data[at:end]
    origin.extend(range(at, end))
    return _mapped("char-ref", start, end, bytes(out), origin)


def _is_hex(text: bytes) -> bool:
    return len(text) > 0 and all(b in b"0123456789abcdefABCDEF" for b in text)


# --- hex ---------------------------------------------------------------------------------

# A key encoded in hex (bytes.hex(), xxd -p, a hex column of a config) is found by the hex of
# the start of its marker ("T3Blbk": every family but the marker-less one holds it), in any
# case (GATE_NEEDLES_FOLDED); its start, the hex of "sk-", is then looked for before it. The
# gate was the hex of "sk-" itself ("736b2d"), which cost the keyword pass ~7 ms on a plain
# 208 MB tree; the marker's 12 characters cost ~2 ms at most (bench/bench_plain_cost.py).
HEX_NEEDLES: tuple[bytes, ...] = (MARKER_BYTES[:6].hex().encode(),)
_HEX_SK = b"736b2d"
# How far before the marker's hex its "sk-" may be: 2 hex characters per byte of the longest
# prefix and half (sk-svcacct- and 74 characters: 85 bytes), with room for longer names.
HEX_BACK = 512
# A byte of hex text: two digits, maybe after 0x or \x; between bytes, maybe ", ", " " or ":".
_HEX_BYTE = lazy_compile(globals(), "_HEX_BYTE", rb"(?:0[xX]|\\[xX])?([0-9a-fA-F]{2})")
_HEX_SEP = lazy_compile(globals(), "_HEX_SEP", rb",[ \t]*(?:\r?\n[ \t]*)?|[ :]")
# "sk-" in hex with separators; starts with a literal (a fast search), its 0x or \\x before.
_HEX_TRIGGER = lazy_compile(
    globals(), "_HEX_TRIGGER",
    rb"73(?:, ?|[ :])?(?:0[xX]|\\[xX])?6[bB](?:, ?|[ :])?(?:0[xX]|\\[xX])?2[dD]"
)
# Bytes decoded from one trigger: the longest key is ~170 characters, then some context.
HEX_MAX_BYTES = 512


def decode_hex(data: bytes, start: int) -> Decoded | None:
    """Hex text from ``start`` (the encoded "sk-"), as long as it goes on: pairs of digits,
    each maybe after ``0x``/``\\x``, maybe separated by ", ", " " or ":"."""
    out = bytearray()
    origin: list[int] = []
    i = start
    # The first byte and the first separator fix the form: hex written one way goes on the
    # same way (so "736b2d..." followed by " 41" does not take in the 41).
    prefix: bytes | None = None
    kind: int | None = None  # first byte of the separator, 0 for none
    while len(out) < HEX_MAX_BYTES:
        m = _HEX_BYTE.match(data, i)
        if m is None:
            break
        this = data[m.start() : m.start(1)].lower()
        if prefix is None:
            prefix = this
        elif this != prefix:
            break
        out.append(int(m.group(1), 16))
        origin.append(m.start())
        i = m.end()
        sep = _HEX_SEP.match(data, i)
        sep_kind = data[i] if sep is not None else 0
        if kind is None:
            kind = sep_kind
        if sep_kind != kind:
            break
        if sep is not None:
            if _HEX_BYTE.match(data, sep.end()) is None:
                break
            i = sep.end()
    if len(out) < 20:
        return None
    return _mapped("hex", start, i, bytes(out), origin)


def _hex_starts(data: bytes, keywords: bool | Sequence[int]) -> list[int]:
    """Offsets of the hex of "sk-", in any case, that start a key's hex: before the hex of
    the marker (``HEX_NEEDLES``), by a whole number of bytes, at most ``HEX_BACK`` characters
    before it."""
    (needle,) = HEX_NEEDLES
    if not isinstance(keywords, bool):
        marks = [
            at
            for at in keywords
            if data[at] == needle[0] and data[at : at + len(needle)].lower() == needle
        ]
    else:
        lowered = data.lower()
        marks = []
        at = lowered.find(needle)
        while at >= 0 and len(marks) < MAX_REGIONS:
            marks.append(at)
            at = lowered.find(needle, at + 1)
    found: set[int] = set()
    low = 0  # the window before a marker starts after the one before it (no byte twice)
    for mark in marks:
        lo = max(low, mark - HEX_BACK)
        window = data[lo:mark].lower()
        at = window.find(_HEX_SK)
        while at >= 0 and len(found) < MAX_REGIONS:
            if (mark - lo - at) % 2 == 0:
                found.add(lo + at)
            at = window.find(_HEX_SK, at + 1)
        low = max(low, mark)
    return sorted(found)


# --- keys broken across lines ---------------------------------------------

_KEY_CHAR = rb"[A-Za-z0-9_-]"
# A line continuation between two characters of a key: backslash-newline (shell, Python, C,
# Dockerfile, a YAML double-quoted scalar's escaped line break), with the next line's
# indentation; or a line break followed by indentation (YAML plain scalars continued on an
# indented line, folded ``>`` and literal ``|`` block scalars).
_CONTINUATION = lazy_compile(
    globals(), "_CONTINUATION",
    rb"(?<=" + _KEY_CHAR + rb")(?:\\\r?\n[ \t]*|\r?\n[ \t]+)(?=" + _KEY_CHAR + rb")"
)
# Where a key broken across lines may be, among the rule keywords (no needle of its own, so
# plain trees pay nothing): its marker whole on one line; its prefix (sk-proj-, sk-svcacct-,
# sk-admin-, sk-None-), which also finds a key whose marker the break splits; the first
# "sk-" after an OpenAI name (a legacy or named key broken inside its marker).
JOIN_WINDOW = 384
# How far after an OpenAI name its key may start.
JOIN_NAME_REACH = 96


_KEY_RUN = lazy_compile(globals(), "_KEY_RUN", rb"(?:[A-Za-z0-9_-]+|\\\r?\n[ \t]*|\r?\n[ \t]+)*")
_KEY_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# A key spans at most this many continuations after its anchor (~200 characters wrapped
# at 9).
JOIN_MAX_AFTER = 24


def _run_start(data: bytes, at: int, floor: int) -> int:
    """Back from ``at`` over key characters and continuations (to ``floor`` at most)."""
    i = at
    while i > floor:
        c = data[i - 1]
        if c in _KEY_CHARS:
            i -= 1
            continue
        j = i
        while j > floor and data[j - 1] in b" \t":
            j -= 1
        indented = j < i
        if j > floor and data[j - 1] == 0x0A:
            j -= 1
            if j > floor and data[j - 1] == 0x0D:
                j -= 1
            if j > floor and data[j - 1] == 0x5C:
                j -= 1
            elif not indented:
                break
            if j > floor and data[j - 1] in _KEY_CHARS:
                i = j
                continue
        break
    return i


def _join(data: bytes, start: int, end: int, joints: list[tuple[int, int]]) -> Decoded:
    """data[start:end] without the spans ``joints`` (in order)."""
    pieces: list[bytes] = []
    seg_starts: list[int] = []  # decoded offset where each piece starts
    seg_origins: list[int] = []  # its offset in data
    removed: list[int] = []
    at = start
    size = 0
    for j_start, j_end in joints:
        seg_starts.append(size)
        seg_origins.append(at)
        pieces.append(data[at:j_start])
        size += j_start - at
        removed.append(size)
        at = j_end
    seg_starts.append(size)
    seg_origins.append(at)
    pieces.append(data[at:end])

    def to_parent(offset: int) -> int:
        i = bisect.bisect_right(seg_starts, offset) - 1
        return seg_origins[i] + (offset - seg_starts[i])

    return Decoded("continuation", start, end, b"".join(pieces), to_parent, tuple(removed))


def _join_anchors(data: bytes, keywords: bool | Sequence[int]) -> Iterator[int]:
    if isinstance(keywords, bool):
        spans = _sign_anchors(data)
        keywords = [a for a, _ in spans]
        at = data.find(b"sk-")
        while at >= 0 and len(keywords) < MAX_REGIONS:
            keywords.append(at)
            at = data.find(b"sk-", at + 1)
    for at in keywords:
        c = data[at]
        if (c == 0x54 and data.startswith(MARKER_BYTES, at)) or (
            c == 0x73 and data.startswith(b"sk-", at)
        ):
            yield at
        elif c in b"oO" and data[at : at + 4].lower() == b"open":
            s = data.find(b"sk-", at, at + JOIN_NAME_REACH)
            if s >= 0:
                yield s


def _continuations(data: bytes, anchors: Sequence[int]) -> Iterator[Decoded]:
    """Keys broken across lines, joined: from an anchor (the marker, a key prefix, the first
    "sk-" after an OpenAI name; sorted), the run of key characters and continuations that
    holds it, with the continuations before the anchor removed and those after it removed one
    more at a time (a key ends where its right half does, and the line after it is no part
    of it)."""
    done = -1
    for at in anchors:
        if at < done:
            continue  # inside a run already joined
        end = _KEY_RUN.match(data, at, min(len(data), at + JOIN_WINDOW))
        hi = end.end() if end else at
        lo = _run_start(data, at, max(0, at - JOIN_WINDOW))
        done = hi
        joints = [m.span() for m in _CONTINUATION.finditer(data, lo, hi)]
        if not joints:
            continue
        before = [j for j in joints if j[0] < at]
        after = [j for j in joints if j[0] >= at][:JOIN_MAX_AFTER]
        for n in range(0 if before else 1, len(after) + 1):
            yield _join(data, lo, hi, before + after[:n])


# --- keys assembled from adjacent string literals ------------------------------------------

CONCATENATED = "concatenated"  # Decoded.how, Location.decoded
_QUOTES = frozenset(b"\"'`")
_KEY_CHAR_BYTES = bytes(sorted(_KEY_CHARS))
_GAP_BLANKS = b" \t\r\n"
# Between two literals: whitespace (line breaks too: C, and Python inside parentheses) and at
# most one concatenation operator: ``+`` (JS, Java, C#, Go, Python), ``.`` (PHP, Perl), ``..``
# (Lua). Nothing else: no comment, no comma, no name.
_CONCAT_GAP = lazy_compile(globals(), "_CONCAT_GAP", rb"[ \t\r\n]*(?:(?:\+|\.\.?)[ \t\r\n]*)?")
# What a piece may not hold: an escape, an interpolation (``$x``, ``${x}``, ``#{x}``), a line
# break. Such a literal is not joined (its value is not its text).
_PIECE_BAD = lazy_compile(globals(), "_PIECE_BAD", rb"[\\$\r\n]|#\{")
CONCAT_MAX_PIECE = 512  # characters inside one literal
# Literals in one chain (a 164-character key in pieces of 6); a longer chain is not joined.
CONCAT_MAX_PIECES = 32
CONCAT_GAP_MAX = 256  # blanks and operator between two literals
# A joined value shorter than this holds no whole key (the shortest family has 51).
CONCAT_MIN_JOINED = 48


def _piece_ok(data: bytes, lo: int, hi: int) -> bool:
    return hi - lo <= CONCAT_MAX_PIECE and _PIECE_BAD.search(data, lo, hi) is None


def _anchor_literal(data: bytes, at: int) -> tuple[int, int] | None:
    """(start, end) of the text of the string literal holding the key characters at ``at``,
    when a quote ends or starts them; else None (the common case: a key not in a literal,
    or a literal with more text on both sides of the key characters)."""
    n = len(data)
    ahead = data[at : at + CONCAT_MAX_PIECE]
    e = at + len(ahead) - len(ahead.lstrip(_KEY_CHAR_BYTES))
    behind = data[max(0, at - CONCAT_MAX_PIECE) : at]
    s = at - len(behind) + len(behind.rstrip(_KEY_CHAR_BYTES))
    if e < n and data[e] in _QUOTES:
        opening = data.rfind(data[e : e + 1], max(0, e - CONCAT_MAX_PIECE - 1), s)
        if opening >= 0 and _piece_ok(data, opening + 1, e):
            return opening + 1, e
    if s > 0 and data[s - 1] in _QUOTES:
        closing = data.find(data[s - 1 : s], s, min(n, s + CONCAT_MAX_PIECE + 1))
        if closing >= 0 and _piece_ok(data, s, closing):
            return s, closing
    return None


def _literal_after(data: bytes, pos: int) -> tuple[int, int] | None:
    """The text of the literal that follows the closing quote before ``pos``, joined to it by
    blanks and at most one concatenation operator."""
    gap = _CONCAT_GAP.match(data, pos, min(len(data), pos + CONCAT_GAP_MAX))
    q = gap.end() if gap else pos
    if q == pos or q >= len(data) or data[q] not in _QUOTES:
        return None
    closing = data.find(data[q : q + 1], q + 1, min(len(data), q + CONCAT_MAX_PIECE + 2))
    if closing < 0 or not _piece_ok(data, q + 1, closing):
        return None
    return q + 1, closing


def _literal_before(data: bytes, opening: int) -> tuple[int, int] | None:
    """The text of the literal that comes before the opening quote at ``opening``, joined to
    it by blanks and at most one concatenation operator."""
    floor = max(0, opening - CONCAT_GAP_MAX)
    i = opening
    while i > floor and data[i - 1] in _GAP_BLANKS:
        i -= 1
    if i > floor and data[i - 1] == 0x2B:  # +
        i -= 1
    elif i > floor and data[i - 1] == 0x2E:  # . or ..
        i -= 1
        if i > floor and data[i - 1] == 0x2E:
            i -= 1
    while i > floor and data[i - 1] in _GAP_BLANKS:
        i -= 1
    if i == opening or i == 0 or data[i - 1] not in _QUOTES:
        return None
    closing = i - 1
    start = data.rfind(data[closing:i], max(0, closing - CONCAT_MAX_PIECE - 1), closing)
    if start < 0 or not _piece_ok(data, start + 1, closing):
        return None
    return start + 1, closing


def _assemble(data: bytes, pieces: Sequence[tuple[int, int]]) -> Decoded:
    """The texts of ``pieces`` (literals, in order) joined; the joints are where they meet."""
    parts: list[bytes] = []
    seg_starts: list[int] = []
    seg_origins: list[int] = []
    joints: list[int] = []
    size = 0
    for lo, hi in pieces:
        if parts:
            joints.append(size)
        seg_starts.append(size)
        seg_origins.append(lo)
        parts.append(data[lo:hi])
        size += hi - lo

    def to_parent(offset: int) -> int:
        i = bisect.bisect_right(seg_starts, offset) - 1
        return seg_origins[i] + (offset - seg_starts[i])

    start, end = pieces[0][0] - 1, pieces[-1][1] + 1
    return Decoded(CONCATENATED, start, end, b"".join(parts), to_parent, tuple(joints))


def _concatenations(data: bytes, anchors: Sequence[int]) -> Iterator[Decoded]:
    """Keys assembled from adjacent string literals (``"sk-proj-ab" "cd"``, ``'..' + '..'``,
    ``'..' . '..'``, ``".." .. ".."``), joined: from an anchor (sorted: the marker, a key
    prefix, the first "sk-" after an OpenAI name) inside a literal that a quote ends or
    starts right at its key characters, the chain of literals around it, joined by nothing
    but blanks and one concatenation operator each. The whole chain is joined: the value the
    code builds (key characters a later literal glues onto a key make it no key)."""
    done = -1
    for at in anchors:
        if at < done:
            continue  # inside a chain already joined
        found = _anchor_literal(data, at)
        if found is None:
            continue
        left = [found]  # right to left
        while len(left) <= CONCAT_MAX_PIECES:
            before = _literal_before(data, left[-1][0] - 1)
            if before is None:
                break
            left.append(before)
        pieces = left[::-1]
        while len(pieces) <= CONCAT_MAX_PIECES:
            after = _literal_after(data, pieces[-1][1] + 1)
            if after is None:
                break
            pieces.append(after)
        if len(pieces) > CONCAT_MAX_PIECES:
            # Too long a chain (a table of literals, or a hostile input): not joined. Its end
            # is found once, so that the anchors in it are not walked again.
            end = pieces[-1][1]
            while (after := _literal_after(data, end + 1)) is not None:
                end = after[1]
            done = end
            continue
        done = pieces[-1][1]
        if len(pieces) >= 2 and sum(hi - lo for lo, hi in pieces) >= CONCAT_MIN_JOINED:
            yield _assemble(data, pieces)


# --- UTF-16 and UTF-32 ---------------------------------------------------------------------

_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32le"),  # before UTF-16 LE: its BOM starts the same way
    (b"\x00\x00\xfe\xff", "utf-32be"),
    (b"\xff\xfe", "utf-16le"),
    (b"\xfe\xff", "utf-16be"),
)
_BOM_FIRST = frozenset(bom[:1] for bom, _ in _BOMS)
_UNIT = {"utf-16le": 2, "utf-16be": 2, "utf-32le": 4, "utf-32be": 4}


def wide_encoding(data: bytes, at_start: bool = True) -> str | None:
    """ "utf-16le" / "utf-16be" / "utf-32le" / "utf-32be" if data looks like UTF-16 or
    UTF-32 text (a byte-order mark, or the NULs of mostly-ASCII text), else None."""
    if at_start and data[:1] in _BOM_FIRST:  # most buffers: one comparison
        for bom, encoding in _BOMS:
            if data.startswith(bom) and (_UNIT[encoding] == 2 or _utf32_body(data, encoding)):
                return encoding
    if data.find(b"\0", 0, UTF16_SAMPLE) < 0 or len(data) < 16:
        return None  # the common case, without copying anything
    head = data[:UTF16_SAMPLE]
    quads = len(head) // 4
    zeros = [head[i : quads * 4 : 4].count(0) for i in range(4)]
    # UTF-32 of mostly-ASCII text: three NULs in every four bytes, the fourth rarely NUL.
    high, low = quads * 0.98, quads * 0.02
    if zeros[0] <= low and zeros[1] >= quads * 0.3 and zeros[2] >= high and zeros[3] >= high:
        return "utf-32le"
    if zeros[3] <= low and zeros[2] >= quads * 0.3 and zeros[1] >= high and zeros[0] >= high:
        return "utf-32be"
    pairs = len(head) // 2
    even = head[0 : pairs * 2 : 2].count(0)
    odd = head[1 : pairs * 2 : 2].count(0)
    if odd >= pairs * 0.3 and even <= pairs * 0.02:
        return "utf-16le"
    if even >= pairs * 0.3 and odd <= pairs * 0.02:
        return "utf-16be"
    return None


def _utf32_body(data: bytes, encoding: str) -> bool:
    """After a UTF-32 byte-order mark, text whose code points all have a NUL top byte and
    mostly lie in the first plane (the UTF-16 LE mark followed by a NUL character starts the
    same way)."""
    body = data[4 : 4 + UTF16_SAMPLE]
    quads = len(body) // 4
    top, plane = (3, 2) if encoding == "utf-32le" else (0, 1)
    return (
        body[top : quads * 4 : 4].count(0) == quads
        and body[plane : quads * 4 : 4].count(0) * 2 >= quads
    )


def utf16_encoding(data: bytes, at_start: bool = True) -> str | None:
    """UTF-16 only (``wide_encoding`` without UTF-32)."""
    found = wide_encoding(data, at_start)
    return found if found in ("utf-16le", "utf-16be") else None


def decode_wide(data: bytes, encoding: str) -> Decoded:
    """The whole buffer as UTF-8; offsets map back to the UTF-16 code unit or UTF-32 code
    point they came from."""
    unit = _UNIT[encoding]
    bom = next(b for b, e in _BOMS if e == encoding)
    skip = len(bom) if data.startswith(bom) else 0
    body = data[skip : len(data) - (len(data) - skip) % unit]
    text = body.decode(encoding, "replace")
    out = text.encode("utf-8", "surrogatepass")
    if out.isascii():

        def to_parent(offset: int) -> int:
            return skip + unit * offset
    else:
        # UTF-8 offset -> offset in the wide text, through the cumulative widths of the
        # characters: a loop over every character, so built only when a hit asks for it
        # (binary data taken for UTF-16 is mostly non-ASCII and rarely holds a hit: 45 MB
        # of object files cost 2.6 s of this loop for nothing).
        starts: list[list[int]] = []

        def to_parent(offset: int) -> int:
            if not starts:
                utf8_starts: list[int] = []
                wide_starts: list[int] = []
                u8 = wide = 0
                for ch in text:
                    utf8_starts.append(u8)
                    wide_starts.append(wide)
                    cp = ord(ch)
                    u8 += 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4
                    wide += 4 if unit == 4 or cp >= 0x10000 else 2
                starts.extend((utf8_starts, wide_starts))
            utf8_starts, wide_starts = starts
            i = bisect.bisect_right(utf8_starts, offset) - 1
            return skip + (wide_starts[i] if i >= 0 else 0)

    return Decoded(encoding, 0, len(data), out, to_parent)


def decode_utf16(data: bytes, encoding: str) -> Decoded:
    return decode_wide(data, encoding)


# --- all together -------------------------------------------------------------------------


# --- quoted-printable ------------------------------------------------------------------

_QP_SOFT_BREAKS = (b"=\n", b"=\r\n")
_QP_SOFT_BREAK = lazy_compile(globals(), "_QP_SOFT_BREAK", rb"=\r?\n")
QP_WINDOW = (512, 1536)
# Where a soft break inside a key can be, around a keyword (bytes before, after): the marker
# sits mid-key (a half is at most ~100 characters, over 2 wrapped lines), the sk-proj-
# prefix starts it, a variable name or an Azure endpoint comes before the value.
QP_GATE = (256, 512)


def soft_break_near(data: bytes, keywords: Sequence[int]) -> bool:
    """Whether a quoted-printable soft line break is within ``QP_GATE`` of a keyword offset
    (sorted): one search per run of keywords whose windows touch, each byte searched once."""
    if not keywords:
        return False
    before, after = QP_GATE
    first = last = keywords[0]
    for at in keywords[1:]:
        if at - last > before + after:
            if _QP_SOFT_BREAK.search(data, max(0, first - before), last + after):
                return True
            first = at
        last = at
    return _QP_SOFT_BREAK.search(data, max(0, first - before), last + after) is not None


def decode_quoted_printable(data: bytes, start: int, end: int) -> Decoded | None:
    """Quoted-printable (RFC 2045): soft line breaks (``=`` at a line's end) removed, ``=XX``
    decoded; every other byte as is. None when nothing was decoded."""
    return _decode_marked_hex(data, start, end, 0x3D, "quoted-printable", soft_breaks=True)


def _qp_spans(data: bytes, anchors: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Windows (over several lines) around signs of a key that hold a soft line break."""
    spans: list[tuple[int, int]] = []
    before, after = QP_WINDOW
    for a_start, a_end in anchors:
        lo, hi = max(0, a_start - before), min(len(data), a_end + after)
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], hi))
        else:
            spans.append((lo, hi))
    return [
        (lo, hi) for lo, hi in spans if any(data.find(b, lo, hi) >= 0 for b in _QP_SOFT_BREAKS)
    ]


def _sign_anchors(data: bytes) -> list[tuple[int, int]]:
    """Where a partly encoded key or an encoded assignment may be: the marker, "sk" before an
    escape or a "%", and "openai" in any case."""
    spans: list[tuple[int, int]] = []
    folded: bytes | None = None
    for signs, fold in ((_SIGNS, False), (_SIGNS_FOLDED, True)):
        if fold:
            folded = data.lower()
        hay = folded if fold and folded is not None else data
        for sign in signs:
            at = hay.find(sign)
            while at >= 0 and len(spans) < MAX_REGIONS:
                spans.append((at, at + len(sign)))
                at = hay.find(sign, at + 1)
    spans.sort()
    return spans


def _trigger_anchors(data: bytes, trigger: re.Pattern[bytes]) -> Iterator[tuple[int, int]]:
    for m in trigger.finditer(data):
        yield m.span()


# Literal needles whose presence in a buffer is worth decoding for (with rule keywords). A
# Detector looks for them in its own single pass (Detector.scan_keyed), so that
# worth_decoding costs nothing more.
GATE_NEEDLES: tuple[bytes, ...] = (
    *BASE64_GATES,
    _FULL_PERCENT,
    *_FULL_ESCAPES,
)


# Looked for in any case (the hex of "sk-", upper or lower case).
GATE_NEEDLES_FOLDED: tuple[bytes, ...] = HEX_NEEDLES
# Sets of gate needles of one length (and whether in any case) that the pure-Python keyword
# plan finds in one translated copy, one pass per set (see keyscan.detector._Translated):
# the heads, the tails and the split pieces of the marker's base64, the hex of "sk-".
GATE_NEEDLE_SETS: tuple[tuple[tuple[bytes, ...], bool], ...] = (
    (BASE64_HEADS, False),
    (BASE64_TAILS, False),
    (BASE64_SPLIT, False),
    (HEX_NEEDLES, True),
)


def worth_decoding(
    data: bytes, keywords: bool | Sequence[int], gates_checked: bool = False
) -> bool:
    """The prefilter: False when no decoder can find anything in data (most buffers).

    ``gates_checked``: ``keywords`` came from a detector that also looked for GATE_NEEDLES
    and counts their offsets among them, so nothing is left to search for here."""
    if gates_checked:
        return bool(keywords)
    return (
        bool(keywords)
        or any(h in data for h in BASE64_GATES)
        or any(h in data.lower() for h in HEX_NEEDLES)
        or (b"%" in data and _FULL_PERCENT in data)
        or (b"\\" in data and _FULL_ESCAPES[0] in data)
    )


def candidates(data: bytes, keywords: bool | Sequence[int] = True) -> Iterator[Decoded]:
    """Decoded regions of data that may hold an encoded key (not UTF-16: see decode_utf16).

    ``keywords``: the offsets of rule keywords in data (``Detector.scan_keyed``), or True if
    not known (they are then looked for here). Without any, escapes and percent-encoding can
    only hide a key whose every character is encoded, so only that is looked for."""
    budget = max(MAX_DECODED_FACTOR * len(data), 1 << 20)
    regions = 0

    def allowed(decoded: Decoded) -> bool:
        nonlocal budget, regions
        regions += 1
        budget -= len(decoded.data)
        return regions <= MAX_REGIONS and budget >= 0

    for block, start, end in _b64_regions(data, keywords):
        d = decode_base64_block(block, start, end)
        if d is not None:
            if not allowed(d):
                return
            yield d
    signs: list[tuple[int, int]] | None = None
    if keywords and (
        soft_break_near(data, keywords)
        if not isinstance(keywords, bool)
        else any(b in data for b in _QP_SOFT_BREAKS)
    ):
        # Quoted-printable wraps lines with a soft break that may fall inside a key.
        signs = (
            _sign_anchors(data)
            if isinstance(keywords, bool)
            else [(at, at + 1) for at in keywords[:MAX_REGIONS]]
        )
        qp_spans = (
            _qp_spans(data, signs)
            if not isinstance(keywords, bool) or soft_break_near(data, [a for a, _ in signs])
            else []
        )
        for start, end in qp_spans:
            d = decode_quoted_printable(data, start, end)
            if d is not None:
                if not allowed(d):
                    return
                yield d
    for mark, trigger, full, full_trigger, window, decode in (
        (b"%", _PERCENT_TRIGGER, (_FULL_PERCENT,), _FULL_PERCENT_TRIGGER, PERCENT_WINDOW,
         decode_percent),
        (b"\\", _ESCAPE_TRIGGER, _FULL_ESCAPES, _FULL_ESCAPE_TRIGGER, ESCAPE_WINDOW,
         decode_escapes),
        (b"&", _REF_TRIGGER, (), None, ESCAPE_WINDOW, decode_char_refs),
    ):  # fmt: skip
        if mark not in data:
            continue
        spans: list[tuple[int, int]] = []
        if keywords:
            # Around signs of a key (the keywords the detector found, else found here), where
            # something is encoded.
            if signs is None:
                if isinstance(keywords, bool):
                    signs = _sign_anchors(data)
                else:
                    signs = [(at, at + 1) for at in keywords[:MAX_REGIONS]]
            for start, end in _windows(data, signs, *SIGN_WINDOW):
                if trigger.search(data, start, end):
                    spans.append((start, end))
        if full_trigger is not None and (
            any(data.startswith(f, at) for at in keywords for f in full)
            if not isinstance(keywords, bool)  # the gate needles' offsets are among them
            else any(f in data for f in full)
        ):
            # A key encoded whole shows no sign: around its encoded "sk-".
            spans.extend(_windows(data, _trigger_anchors(data, full_trigger), *window))
        spans.sort()
        for start, end in _windows(data, spans, 0, 0):
            d = decode(data, start, end)
            if d is not None:
                if not allowed(d):
                    return
                yield d
    # Hex: from the hex of "sk-" (gate needles), or its forms with separators (0x73, 0x6b,
    # ...; 73 6b 2d; 73:6b:2d) near a keyword.
    starts = set(_hex_starts(data, keywords))
    if keywords:
        if signs is None:
            signs = (
                _sign_anchors(data)
                if isinstance(keywords, bool)
                else [(at, at + 1) for at in keywords[:MAX_REGIONS]]
            )
        # Over lines (a byte array often starts on the line after its name).
        for start, end in _spans(data, signs, *SIGN_WINDOW):
            for m in _HEX_TRIGGER.finditer(data, start, end):
                at = m.start()
                starts.add(at - 2 if data[max(0, at - 2) : at].lower() in (b"0x", b"\\x") else at)
    covered = -1
    for start in sorted(starts):
        if start < covered:
            continue  # decoded from an earlier start, with what follows it
        d = decode_hex(data, start)
        if d is not None:
            covered = d.to_parent(len(d.data) // 2) if len(d.data) >= HEX_MAX_BYTES else d.end
            if not allowed(d):
                return
            yield d
    # Keys broken across lines by continuations, joined; keys assembled from adjacent string
    # literals, concatenated. Both around the same anchors (rule keywords only).
    anchors = sorted(set(_join_anchors(data, keywords)))
    for d in _continuations(data, anchors):
        if not allowed(d):
            return
        yield d
    for d in _concatenations(data, anchors):
        if not allowed(d):
            return
        yield d
