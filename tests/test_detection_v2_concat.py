"""Issue 15 (stretch): keys assembled from adjacent string literals in the common languages,
reported at low confidence as the assembled key, located at the first literal's first
character, ``Location.decoded == "concatenated"``. Every key is generated at run time
(keyscan.keygen); no literal key here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keyscan.content import ContentOptions, scan_buffer
from keyscan.detector import ACCELERATE_AFTER, Detector
from keyscan.findings import Hit
from keyscan.keygen import FAMILY_TEMPLATES, generate, key
from keyscan.models import Confidence, Location, ScanError
from keyscan.openai_facts import MARKER
from keyscan.rules import load_rules

DET = Detector(load_rules())
FAMILIES = sorted(FAMILY_TEMPLATES)

# name: a template of a statement assembling {a} and {b}; the first literal's text starts
# where {a} does.
FORMS = {
    "c-implicit": 'const char *k = "{a}" "{b}";\n',
    "c-implicit-lines": 'static const char *k =\n    "{a}"\n    "{b}";\n',
    "python-plus": 'k = "{a}" + "{b}"\n',
    "python-parens": 'k = (\n    "{a}"\n    "{b}"\n)\n',
    "js-single": "const k = '{a}' + '{b}';\n",
    "js-backtick": "const k = `{a}` + `{b}`;\n",
    "java-plus-line-end": 'String k = "{a}" +\n        "{b}";\n',
    "csharp-plus-line-start": 'var k = "{a}"\n    + "{b}";\n',
    "go": 'k := "{a}"+"{b}"\n',
    "php": "$k = '{a}' . '{b}';\n",
    "perl": 'my $k = "{a}"."{b}";\n',
    "lua": 'local k = "{a}" .. "{b}"\n',
    "tabs": 'k = "{a}"\t+\t"{b}"\n',
    "crlf": 'k = ("{a}"\r\n    "{b}")\r\n',
}


def scan(data: bytes, det: Detector = DET, **opts: object) -> list[Hit]:
    errors: list[ScanError] = []
    hits = scan_buffer(
        det,
        data,
        Location("f.src", 0, 0, 0),
        ContentOptions(**opts),  # type: ignore[arg-type]
        errors=errors,
    )
    assert not errors
    return hits


def _cuts(k: str) -> list[int]:
    """Split positions: every 5th, every one around the marker and the prefix, the ends."""
    m = k.index(MARKER)
    around = {*range(1, 12), *range(m - 2, m + len(MARKER) + 3), len(k) - 2, len(k) - 1}
    return sorted({*range(1, len(k), 5), *around} & set(range(1, len(k))))


def _assembled(hits: list[Hit]) -> list[Hit]:
    return [h for h in hits if h.location.decoded == "concatenated"]


def _check(doc: str, k: str, at: int) -> str | None:
    """None when ``doc`` yields the assembled key exactly once, low, at ``at``, and no plain
    finding is the whole key or a value not in the input; else what went wrong."""
    hits = scan(doc.encode())
    got = [(h.secret.decode(), h.location.offset, h.confidence) for h in _assembled(hits)]
    if got != [(k, at, Confidence.LOW)]:
        return f"assembled {[(s == k, o, c.name) for s, o, c in got]}"
    # (A fragment is reported plainly as it is today: never as the whole key. One whose left
    # half holds a "-" that splits it into equal halves is a named key to the plain rules.)
    if any(h.secret.decode() == k for h in hits if h.location.decoded is None):
        return "the whole key reported plainly"
    if any(h.secret.decode() not in doc for h in hits if h.location.decoded is None):
        return "a plain finding that is not in the input"
    return None


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("family", FAMILIES)
def test_assembled_key_every_family_form_and_split(form: str, family: str) -> None:
    """Every family, every language form, split at many positions (inside the prefix and
    the marker too): the assembled key, low, at the first literal's first character. (A
    legacy or named key, whose prefix is no keyword, split inside its marker is found after
    an OpenAI name only: see test_legacy_key_split_inside_its_marker_after_an_openai_name.)"""
    k = key(family, seed=len(form))
    marker = k.index(MARKER)
    anchored_by_prefix = not k.startswith("sk-") or family not in ("legacy", "named-2024")
    problems = []
    for cut in _cuts(k):
        if not anchored_by_prefix and marker < cut < marker + len(MARKER):
            continue
        a, b = k[:cut], k[cut:]
        doc = FORMS[form].replace("{a}", a).replace("{b}", b)
        problem = _check(doc, k, FORMS[form].index("{a}"))
        if problem:
            problems.append((cut, problem))
    assert problems == []


def test_located_by_line_and_column_of_the_first_literal() -> None:
    k = key("project", seed=3)
    doc = f"# config\nx = 1\nk = (\n    '{k[:50]}'\n    '{k[50:]}'\n)\n"
    (hit,) = _assembled(scan(doc.encode()))
    assert (hit.location.line, hit.location.column) == (4, 6)
    assert hit.location.decoded == "concatenated"
    assert hit.rule_id == "openai-project-key" and hit.family == "project"


def test_many_pieces() -> None:
    """A key in many literals: found when a keyword is whole in one of them (the prefix, the
    marker) or after an OpenAI name (which anchors the first "sk-" after it)."""
    for family in ("project", "svcacct", "legacy"):
        k = key(family, seed=4)
        for width in (6, 10, 13, 40):
            pieces = [k[i : i + width] for i in range(0, len(k), width)]
            keyword = any(w in p for p in pieces for w in ("sk-proj-", "sk-svcacct-", MARKER))
            for joiner in (" + ", '"\n  "', " . "):
                for name in ("k", "openai_api_key"):
                    if joiner.startswith('"'):
                        doc = f'{name} = ("' + joiner.join(pieces) + '")\n'
                    else:
                        doc = f"{name} = " + joiner.join(f'"{p}"' for p in pieces) + ";\n"
                    at = doc.index('"') + 1
                    if keyword or name != "k":
                        assert _check(doc, k, at) is None, (family, width, joiner, name)
                    else:  # no keyword whole anywhere: a documented miss
                        assert _assembled(scan(doc.encode())) == []


def test_text_before_the_key_in_the_first_literal() -> None:
    """Text before the key in its literal (a header, a URL) is no part of it, as in plain
    text."""
    k = key("project", seed=5)
    for head in ("Bearer ", "https://x.test/?key=", "xyz"):
        doc = f'h = "{head}{k[:70]}" + "{k[70:]}"\n'
        assert _check(doc, k, doc.index(k[:70])) is None, head


def test_legacy_key_split_inside_its_marker_after_an_openai_name() -> None:
    for family in ("legacy", "named-2024"):
        k = key(family, seed=6)
        marker = k.index(MARKER)
        for cut in range(marker + 1, marker + len(MARKER)):
            doc = f'OPENAI_API_KEY = "{k[:cut]}" + "{k[cut:]}"\n'
            assert _check(doc, k, doc.index('"') + 1) is None, (family, cut)


def test_a_piece_that_is_a_whole_key_is_reported_as_today() -> None:
    """A literal that is a whole key next to another: the key, plainly, at its confidence;
    never re-assembled with its neighbour."""
    k1, k2 = key("project", seed=7), key("admin", seed=8)
    for doc in (
        f'k = "{k1}" + "{k2}"\n',
        f'k = "{k1}" "abc"\n',
        f'k = "abc" + "{k1}"\n',
        f"k = '{k1}' . '-suffix'\n",
        f'k = "{k1}" .. "{k1[:40]}"\n',
    ):
        hits = scan(doc.encode())
        assert _assembled(hits) == [], doc
        assert [h.secret.decode() for h in hits if h.confidence > Confidence.LOW] == [
            s for s in (k1, k2) if s in doc
        ], doc


def test_negatives() -> None:
    """Nothing assembled: a key prefix followed by a variable, unrelated strings, pieces
    separated by a comma, a comment or other code, a placeholder, a joined value with junk,
    a piece holding an escape or an interpolation."""
    k = key("project", seed=9)
    a, b = k[:60], k[60:]
    placeholder = generate("sk-proj-{x:74}{marker}{x:74}")
    docs = [
        'k = "sk-proj-" + suffix\n',
        f'k = "sk-proj-" + suffix + "{k[8:]}"\n',
        f'k = "{a}" + middle + "{b}"\n',
        f'a = "{a}"\nb = "{b}"\n',
        f'f("{a}", "{b}")\n',
        f'["{a}",\n "{b}"]\n',
        f'k = "{a}" /* c */ "{b}"\n',
        f'k = "{a}" # c\n "{b}"\n',
        f'k = "{a}" - "{b}"\n',
        f'k = "{a}" + + "{b}"\n',
        f'k = "{a}"; "{b}"\n',
        f'k = "{a}""{b}"\n',  # no blank, no operator: a doubled quote in CSV or SQL
        f'k = "{a}" + "{b}xyz"\n',
        f'k = "{a}" + "{b}" + "xyz"\n',
        f'k = "{a}" + "{b[:-1]}"\n',
        f'k = "{a}" + "\\x41{b}"\n',
        f'k = `{a}` + `${{x}}{b}`\n',
        f'k = "{a}" + "$x{b}"\n',
        f'k = "{a}" + "#{{x}}{b}"\n',
        f'k = "{placeholder[:60]}" + "{placeholder[60:]}"\n',
    ]
    for doc in docs:
        hits = scan(doc.encode())
        assert _assembled(hits) == [], doc
        assert [h for h in hits if h.confidence > Confidence.LOW] == [], doc
        assert all(h.secret.decode() in doc for h in hits if h.location.decoded is None), doc


def test_two_chains_and_unrelated_quotes_around() -> None:
    k1, k2 = key("project", seed=10), key("user-none", seed=11)
    doc = (
        "msg = \"it's\" + 'fine'\n"
        f'a = "{k1[:30]}" + "{k1[30:]}"\n'
        f"b = '{k2[:100]}' . '{k2[100:]}'\n"
        'c = "x" "y"\n'
    )
    got = [(h.secret.decode(), h.location.line) for h in _assembled(scan(doc.encode()))]
    assert got == [(k1, 2), (k2, 3)]


def test_no_decode_turns_it_off(tmp_path: Path) -> None:
    k = key("project", seed=12)
    (tmp_path / "client.js").write_text(f'const k = "{k[:70]}" +\n  "{k[70:]}";\n')
    run = [sys.executable, "-m", "keyscan", "scan", "-f", "json", str(tmp_path)]
    proc = subprocess.run(run, capture_output=True, text=True, check=False)
    assert proc.returncode == 1, proc.stderr
    assert k not in proc.stdout
    doc = json.loads(proc.stdout)
    assembled = [
        (f["confidence"], loc["line"], loc["column"], loc.get("decoded"))
        for f in doc["findings"]
        for loc in f["locations"]
        if loc.get("decoded") == "concatenated"
    ]
    assert assembled == [("low", 1, 12, "concatenated")]
    proc = subprocess.run([*run, "--no-decode"], capture_output=True, text=True, check=False)
    assert "concatenated" not in proc.stdout
    assert all(f["confidence"] == "low" for f in json.loads(proc.stdout)["findings"])


def test_pure_python_plan_finds_the_same(tmp_path: Path) -> None:
    """The pure-Python keyword plan (KEYSCAN_PURE_PYTHON=1, and a detector forced to it on a
    buffer past the point where Hyperscan takes over) finds what Hyperscan does."""
    keys = [key(f, seed=20 + i) for i, f in enumerate(FAMILIES)]
    body = "".join(
        f'k{i} = "{k[: 9 + i]}" + "{k[9 + i :]}"\n' for i, k in enumerate(keys)
    ).encode()
    data = b"# filler\n" * (ACCELERATE_AFTER // 9 + 1) + body
    want = sorted(h.secret.decode() for h in _assembled(scan(data)))
    assert want == sorted(keys)
    pure = Detector(load_rules(), accelerate=False)
    assert sorted(h.secret.decode() for h in _assembled(scan(data, pure))) == want
    # keywords not known (True): the decoders look for their anchors themselves
    from keyscan.formats import decoders

    regions = [d for d in decoders.candidates(data, True) if d.how == "concatenated"]
    assert len(regions) == len(keys)
    (tmp_path / "keys.py").write_bytes(body)
    env = {**os.environ, "KEYSCAN_PURE_PYTHON": "1"}
    run = [sys.executable, "-m", "keyscan", "scan", "-f", "json", str(tmp_path)]
    proc = subprocess.run(run, capture_output=True, text=True, check=False, env=env)
    assert proc.returncode == 1, proc.stderr
    found = [
        loc.get("decoded") for f in json.loads(proc.stdout)["findings"] for loc in f["locations"]
    ]
    assert found.count("concatenated") == len(keys)


def test_a_chain_of_more_than_32_literals_is_not_joined() -> None:
    """A longer chain (a table of literals, a hostile input) is not joined, and is walked
    once: the anchors inside it are not each the start of a walk and a region."""
    from keyscan.formats import decoders

    k = key("project", seed=13)
    pieces = [k[i : i + 4] for i in range(0, len(k), 4)]  # 41 literals
    doc = ("k = " + " + ".join(f'"{p}"' for p in pieces) + "\n").encode()
    assert _assembled(scan(doc)) == []
    hostile = b'"sk-proj-ab" ' * 20_000
    assert [d for d in decoders.candidates(hostile, True) if d.how == "concatenated"] == []
    # 32 literals are still joined (after an OpenAI name: no keyword is whole in them)
    pieces = [k[i : i + 6] for i in range(0, len(k), 6)]
    assert len(pieces) <= decoders.CONCAT_MAX_PIECES
    doc = ("openai_key = " + " + ".join(f'"{p}"' for p in pieces) + "\n").encode()
    assert [h.secret.decode() for h in _assembled(scan(doc))] == [k]
