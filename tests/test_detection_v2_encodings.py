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
