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
