"""Issue 15, encodings (second part): base64 wrapped at any column and indented, hex,
UTF-32, keys broken across lines by continuations. Every key is generated at run time
(keyscan.keygen); no literal key here. Each decoded key must be reported exactly (never with
a scrap of the encoding glued to it) and located at its encoded text."""

from __future__ import annotations

import base64

import pytest

from keyscan.content import ContentOptions, scan_buffer
from keyscan.detector import Detector
from keyscan.findings import Hit
from keyscan.keygen import EXPECTED_FAMILY, FAMILY_TEMPLATES, key
from keyscan.models import Confidence, Location, ScanError
from keyscan.rules import load_rules

DET = Detector(load_rules())
FAMILIES = sorted(FAMILY_TEMPLATES)


def scan(data: bytes, path: str = "f.txt", **opts: object) -> list[Hit]:
    errors: list[ScanError] = []
    hits = scan_buffer(
        DET,
        data,
        Location(path, 0, 0, 0),
        ContentOptions(**opts),  # type: ignore[arg-type]
        errors=errors,
    )
    assert not errors
    return hits


def wrap(blob: str, width: int, indent: str = "", eol: str = "\n") -> tuple[str, list[int]]:
    """``blob`` wrapped at ``width`` characters, each line indented; and, for each character
    of the blob, its offset in the wrapped text."""
    lines = [blob[i : i + width] for i in range(0, len(blob), width)]
    text = eol.join(indent + line for line in lines)
    where: list[int] = []
    at = 0
    for line in lines:
        at += len(indent)
        where.extend(range(at, at + len(line)))
        at += len(line) + len(eol)
    return text, where


# --- base64 wrapped at any column -----------------------------------------------------------


def _wrapped_doc(k: str, pre: int, width: int, indent: str, eol: str) -> tuple[bytes, int]:
    blob = base64.b64encode(b"p" * pre + k.encode() + b"\n").decode()
    body, where = wrap(blob, width, indent, eol)
    head = f"data: |{eol}"
    # The key's encoded text starts in the 4-character group holding its "s".
    return (head + body + eol).encode(), len(head) + where[pre * 4 // 3]


@pytest.mark.parametrize("family", ["legacy", "project"])
def test_base64_wrapped_at_every_column_and_offset_is_found(family: str) -> None:
    """Every wrap column from 9 characters (a line break can then fall anywhere in the
    marker's encoding, at most once) and every offset of the key in the encoded bytes (which
    moves the line breaks over every character of the key's encoding): 0 misses, the key
    exactly, located at its encoded text. The old decoder, which needed the marker's
    encoding whole on one line and no indentation, missed most of these."""
    k = key(family, seed=11)
    misses = []
    for width in range(9, 101):
        for pre in range(0, 3 * width, 1 if family == "legacy" else 2):
            doc, at = _wrapped_doc(k, pre, width, "  ", "\n")
            hits = scan(doc, "secret.yaml")
            got = [(h.secret.decode(), h.location.offset, h.location.decoded) for h in hits]
            if got != [(k, at, "base64")]:
                misses.append((width, pre))
    assert misses == []


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("width", "indent", "eol"),
    [(76, "", "\n"), (64, "", "\r\n"), (60, "    ", "\n"), (72, "\t", "\r\n"), (33, "  ", "\n")],
)
def test_base64_wrapped_every_family(family: str, width: int, indent: str, eol: str) -> None:
    """MIME (76), PEM (64, CRLF), YAML block scalars (indented), tabs, odd widths: every
    family, every position of the line breaks relative to the key."""
    k = key(family, seed=width)
    for pre in range(0, 3 * width, 5):
        doc, at = _wrapped_doc(k, pre, width, indent, eol)
        hits = scan(doc)
        assert [(h.secret.decode(), h.family, h.location.offset) for h in hits] == [
            (k, EXPECTED_FAMILY[family], at)
        ], (width, pre)


def test_base64_mime_and_pem_blocks() -> None:
    """base64.encodebytes (76 columns) and a PEM-style armour (64 columns, its END line is
    of the base64url alphabet): the key, nothing glued to it."""
    for seed in range(30):
        k = key("svcacct", seed=seed)
        payload = f'{{"name": "deploy", "openai": "{k}", "n": {seed}}}'.encode()
        mime = b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(payload) + b"\n--b--\n"
        blob = base64.b64encode(b"\x00" * seed + k.encode()).decode()
        pem = "-----BEGIN KEY-----\n" + wrap(blob, 64)[0] + "\n-----END KEY-----\n"
        for doc in (mime, pem.encode()):
            assert [(h.secret.decode(), h.location.decoded) for h in scan(doc)] == [
                (k, "base64")
            ], seed


def test_base64_wrapped_block_followed_by_tokens_of_the_alphabet() -> None:
    """A block whose last line is followed by a short or long word of the alphabet on the
    next line: the word is not glued onto the key."""
    k = key("legacy", seed=4)
    for width in (20, 40, 76):
        for pre in range(0, 60):
            blob = base64.b64encode(b"q" * pre + k.encode()).decode().rstrip("=")
            for after in ("\na+\n", "\nab\n", "\nzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz\n"):
                doc = (" " + wrap(blob, width)[0] + after).encode()
                assert [h.secret.decode() for h in scan(doc)] == [k], (width, pre, after)


def test_base64_two_keys_in_one_wrapped_block() -> None:
    k1, k2 = key("project", seed=1), key("admin", seed=2)
    for width in (9, 50, 76):
        blob = base64.b64encode(f"A={k1}\nB={k2}\n".encode()).decode()
        doc = ("secret: |\n" + wrap(blob, width, "  ")[0] + "\n").encode()
        assert sorted(h.secret.decode() for h in scan(doc)) == sorted([k1, k2])


def test_base64_wrapped_negatives() -> None:
    """Wrapped base64 of a fragment (one half and the marker), of a key-shaped string with
    unequal halves, of random bytes: no high-confidence key; a blank line ends a block."""
    import random

    rng = random.Random(5)
    k = key("project", seed=3)
    left, right = k.split("T3BlbkFJ")
    for width in (9, 30, 76):
        for text in (left + "T3BlbkFJ", left + "T3BlbkFJ" + right[:-10]):
            doc = wrap(base64.b64encode(text.encode() + b"\n").decode(), width, "  ")[0]
            assert [h for h in scan(doc.encode()) if h.confidence > Confidence.LOW] == []
        noise = base64.b64encode(bytes(rng.randrange(256) for _ in range(3000))).decode()
        assert scan(wrap(noise, width)[0].encode()) == []
    # A blank line between two halves of an encoding: two blocks, nothing joined.
    blob = base64.b64encode(k.encode()).decode()
    from keyscan.formats.decoders import BASE64_NEEDLES

    cut = next(blob.index(n.decode()) for n, _ in BASE64_NEEDLES if n.decode() in blob) + 5
    assert scan(f"{blob[:cut]}\n\n{blob[cut:]}\n".encode()) == []


# --- hex ------------------------------------------------------------------------------------


def _hex_forms(k: str) -> list[tuple[str, str, bool]]:
    """(text before the key's hex, the hex, whether it needs a keyword near it)."""
    raw = k.encode()
    c_array = ",\n    ".join(
        ", ".join(f"0x{b:02x}" for b in raw[i : i + 12]) for i in range(0, len(raw), 12)
    )
    return [
        ("blob = ", raw.hex(), False),
        ("BLOB=", raw.hex().upper(), False),
        ("x = bytes.fromhex('", raw.hex() + "0a')", False),
        ("static const char openai_key[] = {", c_array + "};", True),
        ('OPENAI_KEY = b"', "".join(f"\\x{b:02x}" for b in raw) + '"', True),
        ("openai: ", " ".join(f"{b:02x}" for b in raw), True),
        ("openai: ", ":".join(f"{b:02X}" for b in raw), True),
    ]


@pytest.mark.parametrize("family", FAMILIES)
def test_hex_encoded_keys(family: str) -> None:
    """Hex, lower or upper case, plain or with 0x / \\x / space / colon separators (those
    near an OpenAI name): the decoded key exactly, located at its encoded "s"."""
    k = key(family, seed=21)
    for before, encoded, _ in _hex_forms(k):
        doc = f"# config\n{before}{encoded}\n"
        hits = scan(doc.encode())
        assert [(h.secret.decode(), h.family) for h in hits] == [(k, EXPECTED_FAMILY[family])], (
            before
        )
        loc = hits[0].location
        assert loc.offset == len("# config\n") + len(before), before
        assert (loc.line, loc.column) == (2, len(before) + 1)
        assert loc.decoded in ("hex", "escape"), loc.decoded  # \x73... is also an escape


def test_hex_of_a_key_inside_longer_hex_and_negatives() -> None:
    k = key("svcacct", seed=2)
    left, right = k.split("T3BlbkFJ")
    # A key inside the hex of a whole file: the key only, nothing of the next bytes.
    blob = f"OPENAI_API_KEY={k}\nDEBUG=1\n".encode().hex()
    assert [h.secret.decode() for h in scan(blob.encode())] == [k]
    # Fragments and malformed keys in hex: never a high-confidence key.
    for text in (left + "T3BlbkFJ", left + "T3BlbkFJ" + right[:-9], left):
        hits = scan(text.encode().hex().encode())
        assert [h for h in hits if h.confidence > Confidence.LOW] == []
    # The hex of "sk-" in random hex (a hash, a dump): nothing.
    import random

    rng = random.Random(3)
    noise = "".join(rng.choice("0123456789abcdef") for _ in range(4000))
    noise = noise[:1000] + "736b2d" + noise[1000:2000] + "736B2D" + noise[2000:]
    assert scan(noise.encode()) == []
    # A byte array that starts on the line after its name, over several lines.
    raw = k.encode()
    rows = ",\n    ".join(
        ", ".join(f"0x{b:02X}" for b in raw[i : i + 8]) for i in range(0, len(raw), 8)
    )
    doc = f"static const unsigned char openai_key[] = {{\n    {rows}\n}};\n"
    hits = scan(doc.encode())
    assert [(h.secret.decode(), h.location.line, h.location.column) for h in hits] == [(k, 2, 5)]
    # Without decoding, nothing.
    assert scan(k.encode().hex().encode(), decode=False) == []


# --- UTF-32 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("codec", "bom", "name"),
    [
        ("utf-32-le", b"\xff\xfe\x00\x00", "utf-32le"),
        ("utf-32-be", b"\x00\x00\xfe\xff", "utf-32be"),
        ("utf-32-le", b"", "utf-32le"),
        ("utf-32-be", b"", "utf-32be"),
    ],
)
def test_utf32_text_holding_a_key(family: str, codec: str, bom: bytes, name: str) -> None:
    k = key(family, seed=32)
    before = "naïve — ✓ 🎉\nsettings:\n  " if bom else "settings:\n  key: x\n  "
    text = f"{before}OPENAI_API_KEY={k}\nend\n"
    data = bom + text.encode(codec)
    hits = scan(data)
    assert [(h.secret.decode(), h.location.decoded) for h in hits] == [(k, name)]
    loc = hits[0].location
    prefix = before + "OPENAI_API_KEY="
    assert loc.offset == len(bom) + len(prefix.encode(codec))
    assert loc.line == prefix.count("\n") + 1
    assert loc.column == len(prefix.rsplit("\n", 1)[1]) + 1


def test_utf32_negatives() -> None:
    k = key("project", seed=33)
    left = k.split("T3BlbkFJ")[0]
    for codec in ("utf-32", "utf-32-le", "utf-32-be"):
        assert scan(("plain text, no key\n" * 20).encode(codec)) == []
        hits = scan(f"k={left}T3BlbkFJ\n".encode(codec))
        assert [h for h in hits if h.confidence > Confidence.LOW] == []
    # UTF-16 stays UTF-16 (its BOM starts like UTF-32 LE's), also when its first character
    # is a NUL (found by the property test: FF FE 00 00 is then both marks).
    for first in ("k=", "\x00 k="):
        hits = scan(b"\xff\xfe" + f"{first}{k}\n".encode("utf-16-le"))
        assert [(h.secret.decode(), h.location.decoded) for h in hits] == [(k, "utf-16le")]


# --- keys broken across lines ----------------------------------------------------------------

CONTINUATIONS = {
    # name: (text before the key, what breaks the line inside it, text after it)
    "shell": ("export OPENAI_API_KEY=", "\\\n", "\n"),
    "shell-quoted": ('export OPENAI_API_KEY="', "\\\n", '"\n'),
    "python": ('client = OpenAI(api_key="', "\\\n", '")\n'),
    "c": ('#define OPENAI_KEY "', "\\\n", '"\n'),
    "dockerfile": ("ENV OPENAI_API_KEY=", "\\\n    ", "\n"),
    "dockerfile-crlf": ("ENV OPENAI_API_KEY=", "\\\r\n    ", "\r\n"),
    "yaml-double-quoted": ('openai:\n  key: "', "\\\n    ", '"\n'),
    "yaml-plain": ("openai:\n  key: ", "\n    ", "\n  model: gpt\n"),
    "yaml-folded": ("key: >\n  ", "\n  ", "\nother: 1\n"),
    "yaml-literal": ("key: |\n  ", "\n  ", "\nother: 1\n"),
    "yaml-literal-crlf": ("key: |\r\n  ", "\r\n  ", "\r\nother: 1\r\n"),
}


@pytest.mark.parametrize("form", sorted(CONTINUATIONS))
@pytest.mark.parametrize("family", ["legacy", "project", "named-2024", "admin"])
def test_key_broken_across_lines_at_every_position(form: str, family: str) -> None:
    """The key broken at every position (inside the marker too) by a continuation: joined,
    reported whole and exactly, at the line and column of its start. (A legacy or named key,
    whose prefix is no keyword, broken inside its marker is found after an OpenAI name only:
    the README says so.)"""
    before, brk, after = CONTINUATIONS[form]
    k = key(family, seed=len(form))
    marker = k.index("T3BlbkFJ")
    named = "openai" in before.lower()
    misses = []
    for cut in range(1, len(k)):
        if family in ("legacy", "named-2024") and not named and marker < cut < marker + 8:
            continue
        doc = (before + k[:cut] + brk + k[cut:] + after).encode()
        hits = scan(doc)
        got = [(h.secret.decode(), h.location.offset) for h in hits]
        if got != [(k, len(before))]:
            misses.append((cut, [(h.rule_id, h.secret == k.encode()) for h in hits]))
            continue
        loc = hits[0].location
        assert loc.line == before.count("\n") + 1
        assert loc.column == len(before.rsplit("\n", 1)[-1]) + 1
        assert loc.decoded == "continuation"
    assert misses == []


def test_legacy_key_broken_inside_its_marker_after_an_openai_name() -> None:
    k = key("legacy", seed=6)
    marker = k.index("T3BlbkFJ")
    for cut in range(marker + 1, marker + 8):
        for doc in (
            f"openai:\n  api_key: >\n    {k[:cut]}\n    {k[cut:]}\n",
            f"OPENAI_API_KEY={k[:cut]}\\\n{k[cut:]}\n",
        ):
            assert [h.secret.decode() for h in scan(doc.encode())] == [k], (cut, doc)
        # Without a name, nothing (no whole key, no fragment taken for one).
        doc = f"x: >\n  {k[:cut]}\n  {k[cut:]}\n"
        assert [h for h in scan(doc.encode()) if h.confidence > Confidence.LOW] == []


def test_key_broken_over_many_lines() -> None:
    k = key("project", seed=8)
    for width in (9, 20, 40):
        pieces = [k[i : i + width] for i in range(0, len(k), width)]
        shell = "OPENAI_API_KEY=" + "\\\n".join(pieces) + "\n"
        yaml = "key: >\n  " + "\n  ".join(pieces) + "\n"
        for doc in (shell, yaml):
            assert [h.secret.decode() for h in scan(doc.encode())] == [k], (width, doc)


def test_continuations_negatives() -> None:
    """A whole key followed by an indented line is reported once, plainly, nothing glued to
    it; a fragment followed by unrelated lines is never a whole key; lines that are not
    continuations (no indentation, no backslash) are not joined."""
    k1, k2 = key("project", seed=1), key("svcacct", seed=2)
    left, right = k1.split("T3BlbkFJ")
    doc = f"keys:\n  a: {k1}\n  b: {k2}\n  cmd: run\\\n    now\n"
    hits = scan(doc.encode())
    assert [(h.secret.decode(), h.location.decoded) for h in hits] == [(k1, None), (k2, None)]
    doc = f"value: {k1}\n  continued\n"
    assert [(h.secret.decode(), h.location.decoded) for h in scan(doc.encode())] == [(k1, None)]
    for doc in (
        f"a: {left}T3BlbkFJ\n  {right[:10]}\n",
        f"a: {left}T3Bl\\\nxyz\n",
        f"A={left}T3BlbkFJ{right[:30]}\nB={right[30:]}\n",  # .env lines are not joined
    ):
        hits = scan(doc.encode())
        assert [h for h in hits if h.confidence > Confidence.LOW] == [], doc
        assert all(h.secret.decode() != k1 for h in hits)


# --- the keyword plans agree on the new gate needles -------------------------------------------


def test_hyperscan_and_pure_python_plans_agree_on_the_gate_needles() -> None:
    """The pure-Python plan finds the halves of the marker's base64 in one translated copy
    (one pass per set of halves) and the hex of "sk-" in any case: exactly the offsets that
    Hyperscan finds."""
    import random

    from keyscan.detector import _HyperscanPlan, _KeywordPlan
    from keyscan.formats.decoders import BASE64_HALVES, HEX_NEEDLES

    hs = pytest.importorskip("hyperscan", reason="no hyperscan wheel for this platform")
    keywords = DET._keywords
    fast, pure = _HyperscanPlan(hs, keywords), _KeywordPlan(keywords)
    assert pure.translated is not None
    rng = random.Random(41)
    near = [h[:-1] + bytes([h[-1] ^ 1]) for h in BASE64_HALVES]  # one byte off
    pieces = [*BASE64_HALVES, *near, b"736b2d", b"736B2D", b"736b2D", b"736", b"T3BlbkFJ",
              b"T3Bl", b"lbkFJ", b"sk-proj-", b"openai", b"\n  ", b"GiYRZ", b"Jamr0"]  # fmt: skip
    for _ in range(300):
        data = b"".join(rng.choice(pieces) + rng.randbytes(rng.randint(0, 4)) for _ in range(50))
        got, want = fast.find(data), pure.find(data)
        assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in want.items()}
    marker_hex = [b"5433426c626b", b"5433426C626B", b"5433426c626B"]  # the hex gate
    for _ in range(100):
        data = b"".join(rng.choice(marker_hex + pieces) for _ in range(30))
        got, want = fast.find(data), pure.find(data)
        assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in want.items()}
    assert pure.find(b"x5433426C626By") == {(HEX_NEEDLES[0], True): [1]}


def test_base64_many_keys_in_one_long_wrapped_block() -> None:
    """A long MIME-wrapped blob holding a key every 165 bytes: every key found (the windows
    along the blob overlap without decoding it several times over the work budget)."""
    k = key("project", seed=1)
    data = base64.encodebytes((k + "\n").encode() * 1000)
    hits = scan(data)
    assert len(hits) == 1000 and {h.secret.decode() for h in hits} == {k}
    indented = b"blob: |\n" + b"".join(b"    " + line + b"\n" for line in data.splitlines())
    assert len(scan(indented)) == 1000
