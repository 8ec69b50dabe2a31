"""No shipped rule backtracks catastrophically: the work grows linearly with the input.

How the work is counted (deterministically, never by the clock): Python's ``re`` exposes no
step counter, so each rule's regex is parsed with ``re._parser`` (the very parse tree that
``re.compile`` turns into code for the backtracking engine ``_sre``) and run by the small
backtracking interpreter below, which follows the same order of attempts as ``_sre``
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
from collections.abc import Callable
from typing import Any

import pytest

from keyscan.keygen import MARKER, generate, key
from keyscan.rules import load_rules

try:  # Python 3.11+
    from re import _constants as C  # type: ignore[attr-defined]
    from re import _parser as P  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as C
    import sre_parse as P

RULES = load_rules()
Cont = Callable[[int], bool]


class StepBudgetExceeded(Exception):
    pass


class Interp:
    """A backtracking matcher over a ``re._parser`` tree of a bytes pattern, counting steps."""

    def __init__(self, pattern: bytes, flags: int = 0, budget: int = 5_000_000) -> None:
        tree = P.parse(pattern, flags)
        self.items = list(tree.data)
        self.icase = bool(tree.state.flags & re.IGNORECASE)
        self.steps = 0
        self.budget = budget
        self.s = b""

    # -- single characters -------------------------------------------------------------
    def _fold(self, c: int, icase: bool) -> int:
        return c + 32 if icase and 65 <= c <= 90 else c

    def char_ok(self, op: Any, av: Any, c: int, icase: bool) -> bool:
        self.steps += 1
        if op is C.LITERAL:
            return self._fold(c, icase) == self._fold(av, icase)
        if op is C.NOT_LITERAL:
            return self._fold(c, icase) != self._fold(av, icase)
        if op is C.ANY:
            return c != 10
        if op is C.IN:
            negate = False
            hit = False
            for iop, iav in av:
                if iop is C.NEGATE:
                    negate = True
                elif iop is C.LITERAL:
                    hit = hit or self._fold(c, icase) == self._fold(iav, icase)
                elif iop is C.RANGE:
                    lo, hi = iav
                    hit = hit or lo <= c <= hi or (icase and lo <= self._swap(c) <= hi)
                elif iop is C.CATEGORY:
                    hit = hit or self._category(iav, c)
                else:  # pragma: no cover
                    raise NotImplementedError(iop)
            return hit != negate
        raise NotImplementedError(op)  # pragma: no cover

    @staticmethod
    def _swap(c: int) -> int:
        if 65 <= c <= 90:
            return c + 32
        if 97 <= c <= 122:
            return c - 32
        return c

    @staticmethod
    def _category(cat: Any, c: int) -> bool:
        ch = chr(c)
        if cat is C.CATEGORY_DIGIT:
            return ch.isdigit() and c < 128
        if cat is C.CATEGORY_NOT_DIGIT:
            return not (ch.isdigit() and c < 128)
        if cat is C.CATEGORY_SPACE:
            return ch in " \t\n\r\f\v"
        if cat is C.CATEGORY_NOT_SPACE:
            return ch not in " \t\n\r\f\v"
        if cat is C.CATEGORY_WORD:
            return (ch.isalnum() and c < 128) or ch == "_"
        if cat is C.CATEGORY_NOT_WORD:
            return not ((ch.isalnum() and c < 128) or ch == "_")
        raise NotImplementedError(cat)  # pragma: no cover

    @staticmethod
    def _single(op: Any) -> bool:
        return op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN)

    # -- sequences -----------------------------------------------------------------------
    def seq(self, items: list[Any], k: int, pos: int, icase: bool, cont: Cont) -> bool:
        self.steps += 1
        if self.steps > self.budget:
            raise StepBudgetExceeded
        if k == len(items):
            return cont(pos)
        op, av = items[k]
        s = self.s
        nxt: Cont = lambda p: self.seq(items, k + 1, p, icase, cont)  # noqa: E731
        if self._single(op):
            return pos < len(s) and self.char_ok(op, av, s[pos], icase) and nxt(pos + 1)
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            lo, hi, sub = av
            hi = len(s) + 1 if hi is C.MAXREPEAT else hi
            sub_items = list(sub.data)
            if len(sub_items) == 1 and self._single(sub_items[0][0]):
                sop, sav = sub_items[0]
                if op is C.MIN_REPEAT:
                    r = 0
                    while True:
                        if r >= lo and nxt(pos + r):
                            return True
                        if r >= hi or pos + r >= len(s):
                            return False
                        if not self.char_ok(sop, sav, s[pos + r], icase):
                            return False
                        r += 1
                run = 0
                while (
                    run < hi and pos + run < len(s) and self.char_ok(sop, sav, s[pos + run], icase)
                ):
                    run += 1
                if op is C.POSSESSIVE_REPEAT:
                    return run >= lo and nxt(pos + run)
                return any(nxt(pos + r) for r in range(run, lo - 1, -1))
            return self.rep(sub_items, lo, hi, op is C.MIN_REPEAT, 0, pos, icase, nxt)
        if op is C.SUBPATTERN:
            _group, add, dele, sub = av
            sub_icase = (icase or bool(add & re.IGNORECASE)) and not (dele & re.IGNORECASE)
            return self.seq(list(sub.data), 0, pos, sub_icase, nxt)
        if op is C.BRANCH:
            return any(self.seq(list(alt.data), 0, pos, icase, nxt) for alt in av[1])
        if op in (C.ASSERT, C.ASSERT_NOT):
            direction, sub = av
            sub_items = list(sub.data)
            if direction == 1:
                ok = self.seq(sub_items, 0, pos, icase, lambda p: True)
            else:
                width = sub.getwidth()[0]
                ok = pos - width >= 0 and self.seq(
                    sub_items, 0, pos - width, icase, lambda p: p == pos
                )
            return (ok if op is C.ASSERT else not ok) and nxt(pos)
        if op is C.AT:
            n = len(s)
            if av is C.AT_BEGINNING or av is C.AT_BEGINNING_STRING:
                ok = pos == 0
            elif av is C.AT_END:
                ok = pos == n or (pos == n - 1 and s[pos] == 10)
            elif av is C.AT_END_STRING:
                ok = pos == n
            else:  # pragma: no cover
                raise NotImplementedError(av)
            return ok and nxt(pos)
        raise NotImplementedError(op)  # pragma: no cover

    def rep(
        self,
        sub: list[Any],
        lo: int,
        hi: int,
        lazy: bool,
        count: int,
        pos: int,
        icase: bool,
        cont: Cont,
    ) -> bool:
        self.steps += 1

        def again(p: int) -> bool:
            if p == pos and count >= lo:
                return False  # an empty iteration ends the repeat, as in _sre
            return self.rep(sub, lo, hi, lazy, count + 1, p, icase, cont)

        if lazy:
            if count >= lo and cont(pos):
                return True
            return count < hi and self.seq(sub, 0, pos, icase, again)
        if count < hi and self.seq(sub, 0, pos, icase, again):
            return True
        return count >= lo and cont(pos)

    # -- search ----------------------------------------------------------------------------
    def finditer_spans(self, s: bytes) -> list[tuple[int, int]]:
        self.s = s
        spans: list[tuple[int, int]] = []
        start = 0
        while start <= len(s):
            end: list[int] = []

            def accept(p: int, end: list[int] = end) -> bool:
                end.append(p)
                return True

            if self.seq(self.items, 0, start, self.icase, accept):
                spans.append((start, end[0]))
                start = end[0] if end[0] > start else start + 1
            else:
                start += 1
        return spans


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
