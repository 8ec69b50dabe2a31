"""No shipped rule backtracks catastrophically: the work grows linearly with the input.

How the work is counted (deterministically, never by the clock): Python's ``re`` exposes no
step counter, so each rule's regex is parsed with ``re._parser`` (the very parse tree that
``re.compile`` turns into code for the backtracking engine ``_sre``) and run by the small
backtracking interpreter of keyscan.regexlint (the one that checks user rules at load time), which follows the same order of attempts as ``_sre``
(greedy repeats try the longest first, lazy ones the shortest, alternatives left to right,
``finditer`` restarts after each match) and counts one step per character test and per
node entered. A test first checks that the interpreter finds exactly the spans ``re`` finds
on every input, so what is counted is the real search. The work on adversarial input of size
n, 2n and 4n must grow at most linearly: from 2n to 4n by at most 2.6 times (quadratic: 4;
from n to 2n, bounded repeats such as {20,200} are still filling up, so that step is not
judged).
A deliberately quadratic pattern shows that the harness sees superlinear growth.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest

from keyscan.keygen import MARKER, generate, key
from keyscan.regexlint import Interp
from keyscan.rules import load_rules

RULES = load_rules()


def adversarial(factor: int) -> list[tuple[str, bytes]]:
    """Inputs that drive backtracking regexes into their worst case: prefix + unit * (count *
    factor) + suffix, so that sizes grow exactly with ``factor`` (about 400 bytes at 1)."""
    k = key("project", seed=7).encode()
    legacy = key("legacy", seed=8).encode()
    sess = generate("sess-{alnum:40}", seed=9).encode()
    m = MARKER.encode()
    shapes: dict[str, tuple[bytes, bytes, int, bytes]] = {
        "sk- repeated": (b"", b"sk-", 133, b""),
        "sk-a repeated": (b"", b"sk-a", 100, b""),
        "sk-proj- then alnum": (b"sk-proj-", b"a", 400, b""),
        "sk- alnum marker alnum": (b"sk-", b"ab", 100, m + b"b" * 20),
        "named parts": (b"sk-", b"ab-", 133, m),
        "named parts, key-like": (b"sk-", b"ab-", 133, b"a" * 20 + m + b"b" * 20),
        "markers": (b"", m + b"-", 44, b""),
        "sk-x marker glued": (b"", b"sk-" + b"x" * 19 + m, 13, b""),
        "keys glued": (b"", k[:-1], 3, b""),
        "legacy glued": (b"", legacy + b"a", 8, b""),
        "openai spaces": (b"OpenAI(", b" ", 400, b""),
        "openai args": (b"OpenAI(", b"a,", 200, b""),
        "OpenAI( repeated": (b"", b"OpenAI(", 57, b""),
        "client api_key spaces": (b"OpenAI(api_key=", b" ", 400, b""),
        "assignment spaces": (b"openai_api_key", b" ", 400, b"="),
        "assignment repeated": (b"", b"OPENAI_API_KEY=", 27, b""),
        "openai underscores": (b"openai", b"_", 400, b""),
        "key quotes": (b"openai_key", b'"', 400, b""),
        "value run": (b"openai_api_key=", b"a1", 200, b""),
        "sess- repeated": (b"", sess[:-1] + b"-", 9, b""),
    }
    return [
        (name, prefix + unit * (count * factor) + suffix)
        for name, (prefix, unit, count, suffix) in shapes.items()
    ]


def spans_re(pattern: re.Pattern[bytes], data: bytes) -> list[tuple[int, int]]:
    return [m.span() for m in pattern.finditer(data)]


def steps(pattern: re.Pattern[bytes], data: bytes) -> int:
    interp = Interp(pattern.pattern, pattern.flags & ~re.UNICODE)
    spans = interp.finditer_spans(data)
    assert spans == spans_re(pattern, data), "interpreter and re disagree: the count is void"
    return interp.steps


@pytest.fixture(autouse=True)
def _deep_recursion() -> Any:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20000))
    yield
    sys.setrecursionlimit(old)


def test_interpreter_agrees_with_re_on_rule_examples() -> None:
    """The interpreter finds what re finds on every rule's positive and negative examples."""
    checked = 0
    for rule in RULES:
        for example in (*rule.examples_positive, *rule.examples_negative):
            text = generate(example, seed=1).encode()
            interp = Interp(rule.regex.pattern, rule.regex.flags & ~re.UNICODE)
            assert interp.finditer_spans(text) == spans_re(rule.regex, text), (rule.id, example)
            checked += 1
    assert checked > 30


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_work_grows_linearly(rule: Any) -> None:
    sizes = [adversarial(f) for f in (1, 2, 4)]
    for i, (name, _) in enumerate(sizes[0]):
        counts = [steps(rule.regex, inputs[i][1]) for inputs in sizes]
        one, two, four = counts
        # Linear: x2 from 2n to 4n (bounded repeats fill up between n and 2n); quadratic: x4.
        assert one <= two <= four <= 2.6 * two + 256, (
            f"{rule.id} on {name!r}: steps {counts} grow faster than linearly"
        )


def test_harness_sees_quadratic_growth() -> None:
    """The old openai-named-key regex, unbounded name parts, was quadratic on 'sk-sk-...'."""
    old = re.compile(
        rb"(?P<secret>sk-(?!proj-|svcacct-|admin-|None-)[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*-"
        rb"[A-Za-z0-9]{20}" + MARKER.encode() + rb"[A-Za-z0-9]{20})"
    )
    counts = [steps(old, b"sk-" * (40 * f)) for f in (1, 2, 4)]
    assert counts[2] > 10 * counts[0], counts
