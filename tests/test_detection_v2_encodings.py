"""Issue 15, encodings: quoted-printable soft line breaks inside a key (keys generated at run
time; no literal key here)."""

from __future__ import annotations

import quopri

import pytest

from keyscan.api import Scanner
from keyscan.keygen import key


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner()


@pytest.mark.parametrize("family", ["project", "svcacct", "legacy", "admin"])
@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_quoted_printable_soft_breaks_inside_a_key(scanner: Scanner, family: str, eol: str) -> None:
    for seed in range(10):
        k = key(family, seed=seed)
        cut1, cut2 = 7 + seed, len(k) - 5 - seed
        text = f'Subject: deploy{eol}{eol}OPENAI_API_KEY=3D"{k[:cut1]}={eol}{k[cut1:cut2]}={eol}{k[cut2:]}"{eol}'
        found = scanner.scan_text(text).findings
        assert [(f.secret, f.locations[0].decoded) for f in found] == [(k, "quoted-printable")]
        assert found[0].locations[0].line == 3


def test_a_mail_encoded_by_quopri_yields_the_whole_key(scanner: Scanner) -> None:
    k = key("project", seed=99)
    body = ("Hello,\n\nthe key is " + k + " and nothing else.\n").encode()
    text = quopri.encodestring(body).decode()
    assert "=\n" in text
    assert [f.secret for f in scanner.scan_text(text).findings] == [k]


def test_no_soft_break_no_quoted_printable_pass(scanner: Scanner) -> None:
    k = key("project", seed=5)
    found = scanner.scan_text(f"a=3Db\nkey = {k}\n").findings
    assert [(f.secret, f.locations[0].decoded) for f in found] == [(k, None)]


@pytest.mark.parametrize("family", ["project", "svcacct", "legacy", "admin"])
def test_quopri_mails_with_a_key_anywhere_yield_the_whole_key(
    scanner: Scanner, family: str
) -> None:
    """Wherever the 76-column wrapping falls in the key, the soft breaks are near a keyword
    (the gate looks only there) and the whole key is reported. A legacy key has no keyword
    but its marker, which the wrap may split: it is named here (a known miss otherwise, as
    the README says)."""
    import random

    rng = random.Random(family)
    words = ["deploy", "the", "service", "key", "rotate", "x=1", "a+b", "naïve", "résumé"]
    for seed in range(12):
        k = key(family, seed=seed)
        before = " ".join(rng.choice(words) for _ in range(rng.randint(0, 60)))
        after = " ".join(rng.choice(words) for _ in range(rng.randint(0, 60)))
        name = "OPENAI_API_KEY: " if family == "legacy" else ""
        body = f"Hello,\n\n{before} {name}{k} {after}\n".encode()
        text = quopri.encodestring(body).decode()
        found = scanner.scan_text(text).findings
        assert [f.secret for f in found] == [k], seed


def test_quoted_printable_pass_only_near_a_keyword(
    scanner: Scanner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A soft line break far from every keyword costs no quoted-printable pass (the gate
    searches only around keywords, not the whole buffer)."""
    from keyscan.formats import decoders

    calls: list[int] = []
    real = decoders._qp_spans

    def counting(data: bytes, anchors: object) -> list[tuple[int, int]]:
        calls.append(len(data))
        return real(data, anchors)  # type: ignore[arg-type]

    monkeypatch.setattr(decoders, "_qp_spans", counting)
    filler = "# nothing to see here, just some text\n" * 300
    far = f"import openai\n{filler}total =\n  a + b\n"
    assert scanner.scan_text(far).findings == []
    assert calls == []
    near = f"import openai\ntotal =\n  a + b\n{filler}"
    assert scanner.scan_text(near).findings == []
    assert calls


ESCAPES = {
    "x2d": lambda k: k.replace("-", "\\x2d"),
    "x2D": lambda k: k.replace("-", "\\x2D"),
    "u002d": lambda k: k.replace("-", "\\u002d"),
    "u002D": lambda k: k.replace("-", "\\u002D"),
    "u{2d}": lambda k: k.replace("-", "\\u{2d}"),
    "u{2D}": lambda k: k.replace("-", "\\u{002D}"),
    "all-x": lambda k: "".join(f"\\x{ord(c):02x}" for c in k),
    "all-X": lambda k: "".join(f"\\x{ord(c):02X}" for c in k),
    "all-u": lambda k: "".join(f"\\u{ord(c):04x}" for c in k),
}


@pytest.mark.parametrize("family", ["project", "legacy", "admin", "named-2024"])
@pytest.mark.parametrize("how", sorted(ESCAPES))
def test_js_and_json_escapes_of_a_key(scanner: Scanner, family: str, how: str) -> None:
    """Every escape form JavaScript and JSON allow for the dashes, or for the whole key:
    the decoded key is reported whole, nothing of the escape glued to it."""
    for seed in range(3):
        k = key(family, seed=seed)
        # A key in \\xNN whole has no keyword of its own: found near an OpenAI name.
        name = "openaiToken" if how in ("all-x", "all-X") else "token"
        text = f'const cfg = {{ {name}: "{ESCAPES[how](k)}" }};\n'
        found = scanner.scan_text(text).findings
        assert [(f.secret, f.locations[0].decoded) for f in found] == [(k, "escape")], seed


def test_escapes_that_are_no_key_stay_quiet(scanner: Scanner) -> None:
    text = 'const a = "\\u{1F600} \\x41\\x42 \\u{zz} \\u{110000} \\x73\\x6b\\x2d\\x31";\n'
    assert scanner.scan_text(text).findings == []


CHAR_REFS = {
    "dash-hex": lambda k: k.replace("-", "&#x2d;"),
    "dash-HEX": lambda k: k.replace("-", "&#X2D;"),
    "dash-dec": lambda k: k.replace("-", "&#45;"),
    "all-dec": lambda k: "".join(f"&#{ord(c)};" for c in k),
    "all-hex": lambda k: "".join(f"&#x{ord(c):x};" for c in k),
    "underscore": lambda k: k.replace("_", "&lowbar;").replace("-", "&#45;"),
}


@pytest.mark.parametrize("family", ["project", "legacy", "svcacct", "named-2024"])
@pytest.mark.parametrize("how", sorted(CHAR_REFS))
def test_html_and_xml_character_references(scanner: Scanner, family: str, how: str) -> None:
    for seed in range(3):
        k = key(family, seed=seed)
        # A key referenced whole has no keyword of its own: found near an OpenAI name.
        name = "openai_token" if how.startswith("all") else "token"
        for text in (
            f'<input type="hidden" name="{name}" value="{CHAR_REFS[how](k)}">\n',
            f"<config><{name}>{CHAR_REFS[how](k)}</{name}></config>\n",
        ):
            found = scanner.scan_text(text).findings
            got = [(f.secret, f.locations[0].decoded) for f in found]
            assert got == [(k, "char-ref")], (how, seed)
            assert found[0].locations[0].line == 1


def test_named_slash_reference_in_an_openai_url(scanner: Scanner) -> None:
    k = key("project", seed=11)
    text = f"<a href=\"https:&sol;&sol;api.openai.com&sol;v1?key={k.replace('-', '&#45;')}\">\n"
    assert [f.secret for f in scanner.scan_text(text).findings] == [k]


def test_character_references_that_are_no_key_stay_quiet(scanner: Scanner) -> None:
    text = (
        "<p>OpenAI &amp; friends &#169; &#x1F600; &#0; &#99999999; &hyphen; &unknown;"
        " &#115;&#107;&#45;&#49;</p>\n"
    )
    assert scanner.scan_text(text).findings == []
