"""Does a rule's regex backtrack catastrophically? Counted, never timed.

Python's ``re`` exposes no step counter, so the regex is parsed with ``re._parser`` (the very
parse tree ``re.compile`` turns into code for the backtracking engine ``_sre``) and run by a
small backtracking interpreter that follows the same order of attempts as ``_sre`` (greedy
repeats try the longest first, lazy ones the shortest, alternatives left to right,
``finditer`` restarts after each match) and counts one step per character test and per node
entered. ``check_linear`` runs it on adversarial inputs of size n, 2n and 4n built from the
pattern itself (runs of what each repeat accepts, after each keyword, with and without a
byte that makes the match fail) and refuses a rule whose work grows faster than linearly
(2n to 4n: at most 2.6 times; quadratic is 4) or blows a step budget (exponential).

Used at load time for user rules (``--rules``, config ``rules:``); the shipped rules are
checked by the test suite (tests/test_hard_regex_linear.py uses this interpreter).
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from keyscan.errors import KeyscanError

try:  # Python 3.11+
    from re import _constants as C  # type: ignore[attr-defined,unused-ignore]
    from re import _parser as P  # type: ignore[attr-defined,unused-ignore]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as C  # type: ignore[no-redef,unused-ignore]
    import sre_parse as P  # type: ignore[no-redef,unused-ignore]

# Added in Python 3.11 (possessive quantifiers, atomic groups); None on 3.10, where no
# parsed pattern holds them.
_POSSESSIVE_REPEAT = getattr(C, "POSSESSIVE_REPEAT", None)
_ATOMIC_GROUP = getattr(C, "ATOMIC_GROUP", None)

Cont = Callable[[int], bool]


class Unsupported(KeyscanError):
    """A construct the interpreter does not model (a backreference, ...)."""


class StepBudgetExceeded(KeyscanError):
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
                    raise Unsupported(str(iop))
            return hit != negate
        raise Unsupported(str(op))

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
        raise Unsupported(str(cat))

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
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, _POSSESSIVE_REPEAT):
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
                if op is _POSSESSIVE_REPEAT:
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
            elif av in (C.AT_BOUNDARY, C.AT_NON_BOUNDARY):
                before = pos > 0 and self._category(C.CATEGORY_WORD, s[pos - 1])
                after = pos < n and self._category(C.CATEGORY_WORD, s[pos])
                ok = (before != after) == (av is C.AT_BOUNDARY)
            elif av is C.AT_BEGINNING_LINE:
                ok = pos == 0 or s[pos - 1] == 10
            elif av is C.AT_END_LINE:
                ok = pos == n or s[pos] == 10
            else:
                raise Unsupported(str(av))
            return ok and nxt(pos)
        if op is _ATOMIC_GROUP:
            ends: list[int] = []

            def first(p: int) -> bool:
                ends.append(p)
                return True

            return self.seq(list(av.data), 0, pos, icase, first) and nxt(ends[0])
        raise Unsupported(str(op))

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




# -- the check --------------------------------------------------------------------------------

MAX_UNITS = 6  # pumped strings per pattern
STEP_BUDGET = 2_000_000  # per input: far above any linear rule's work on these sizes


def _witness(items: list[Any], icase: bool = False) -> bytes:
    """A short string the sequence ``items`` matches (best effort: lookarounds ignored)."""
    out = bytearray()
    for op, av in items:
        if op is C.LITERAL:
            out.append(av)
        elif op is C.NOT_LITERAL:
            out.append(ord("a") if av != ord("a") else ord("b"))
        elif op is C.ANY:
            out.append(ord("a"))
        elif op is C.IN:
            out += _in_witness(av)
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, _POSSESSIVE_REPEAT):
            lo, _hi, sub = av
            out += _witness(list(sub.data)) * max(lo, 1)
        elif op is C.SUBPATTERN:
            out += _witness(list(av[3].data))
        elif op is C.BRANCH:
            out += _witness(list(av[1][0].data))
        elif op is _ATOMIC_GROUP:
            out += _witness(list(av.data))
    return bytes(out)


def _in_witness(av: Any) -> bytes:
    negate = any(iop is C.NEGATE for iop, _ in av)
    if negate:
        probe = Interp(b"")
        for c in b"a0-_ .":
            if probe.char_ok(C.IN, av, c, False):
                return bytes([c])
        return b"\x01"
    for iop, iav in av:
        if iop is C.LITERAL:
            return bytes([iav])
        if iop is C.RANGE:
            return bytes([iav[0]])
        if iop is C.CATEGORY:
            return b"0" if iav is C.CATEGORY_DIGIT else b" " if iav is C.CATEGORY_SPACE else b"a"
    return b"a"


def _repeats(items: list[Any], found: list[tuple[bytes, int]]) -> None:
    """(witness of the body, upper bound or -1) of every repeat, outermost first."""
    for op, av in items:
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, _POSSESSIVE_REPEAT):
            _lo, hi, sub = av
            body = list(sub.data)
            if hi is C.MAXREPEAT or hi > 1:
                found.append((_witness(body), -1 if hi is C.MAXREPEAT else int(hi)))
            _repeats(body, found)
        elif op is C.SUBPATTERN:
            _repeats(list(av[3].data), found)
        elif op is C.BRANCH:
            for alt in av[1]:
                _repeats(list(alt.data), found)
        elif op in (C.ASSERT, C.ASSERT_NOT):
            _repeats(list(av[1].data), found)
        elif op is _ATOMIC_GROUP:
            _repeats(list(av.data), found)


def adversarial_inputs(
    pattern: bytes, flags: int, keywords: Sequence[bytes]
) -> list[tuple[str, list[bytes]]]:
    """(name, [input of size n, 2n, 4n]) built from the pattern: runs of what each repeat
    accepts, alone and after each keyword, bare and followed by a byte that fails the match,
    and runs of keyword + repeat unit."""
    tree = P.parse(pattern, flags)
    found: list[tuple[bytes, int]] = []
    _repeats(list(tree.data), found)
    units: list[bytes] = []
    for unit, _ in found:
        if unit and unit not in units:
            units.append(unit)
    units = units[:MAX_UNITS]
    bounds = [hi for _, hi in found if hi > 0]
    base = min(max(64, 2 * max(bounds, default=0) + 16), 512)
    prefixes = [b"", *dict.fromkeys(k for k in keywords if k)][:4]
    shapes: list[tuple[str, bytes, bytes, bytes]] = []
    for unit in units:
        for prefix in prefixes:
            for tail in (b"", b"\x00"):
                shapes.append((f"{prefix!r} + {unit!r}... + {tail!r}", prefix, unit, tail))
        for prefix in prefixes[1:]:
            shapes.append((f"({prefix!r} + {unit!r})...", b"", prefix + unit, b""))
    out: list[tuple[str, list[bytes]]] = []
    for name, prefix, unit, tail in shapes:
        count = max(1, base // len(unit))
        out.append((name, [prefix + unit * (count * f) + tail for f in (1, 2, 4)]))
    return out


def _steps(pattern: bytes, flags: int, data: bytes) -> int:
    interp = Interp(pattern, flags, budget=STEP_BUDGET)
    interp.finditer_spans(data)
    return interp.steps


def check_linear(regex: re.Pattern[bytes], keywords: Sequence[bytes] = ()) -> str | None:
    """Why ``regex`` is refused (its work on some input grows faster than linearly, or
    explodes), or None when it is linear on every adversarial input tried."""
    flags = regex.flags & ~re.UNICODE
    verdict: list[str | None] = []

    def run() -> None:
        try:
            for name, sizes in adversarial_inputs(regex.pattern, flags, keywords):
                counts: list[int] = []
                for data in sizes:
                    try:
                        counts.append(_steps(regex.pattern, flags, data))
                    except StepBudgetExceeded:
                        verdict.append(
                            f"catastrophic backtracking: over {STEP_BUDGET:,} steps on "
                            f"{len(data)} bytes of {name}"
                        )
                        return
                one, two, four = counts
                if four > 2.6 * two + 256:
                    verdict.append(
                        f"work grows faster than linearly on {name}: {one:,}, {two:,}, "
                        f"{four:,} steps for {len(sizes[0])}, {len(sizes[1])}, "
                        f"{len(sizes[2])} bytes"
                    )
                    return
            verdict.append(None)
        except Unsupported as exc:
            verdict.append(f"uses a construct the linearity check cannot judge ({exc})")
        except RecursionError:
            verdict.append("catastrophic backtracking: the check ran out of stack")

    # The interpreter recurses once per character: a roomy stack, in a thread of its own.
    old_limit = sys.getrecursionlimit()
    old_stack = threading.stack_size()
    try:
        sys.setrecursionlimit(max(old_limit, 60_000))
        threading.stack_size(512 * 1024 * 1024)
        worker = threading.Thread(target=run, name="keyscan-regex-check")
        worker.start()
        worker.join()
    finally:
        threading.stack_size(old_stack)
        sys.setrecursionlimit(old_limit)
    return verdict[0] if verdict else "the linearity check failed"
