"""The detector: prefilter on literal keywords, then regex, entropy, deny and allow filters.

Works on bytes and decodes nothing: a buffer that holds none of a rule's keywords costs one
substring search per keyword (the OpenAI marker makes that nearly free), and a rule's regex
runs only over buffers that passed its prefilter.
"""

from __future__ import annotations

import bisect
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from keyscan.formats.decoders import GATE_NEEDLE_SETS, GATE_NEEDLES, GATE_NEEDLES_FOLDED
from keyscan.models import Match, Rule
from keyscan.openai_facts import azure_endpoint_near, codex_jwt_family, is_codex_auth_json

HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
# Bytes of context searched around a match for family_by_context patterns.
CONTEXT_WINDOW = 400
# Upper bound on the length of any match; chunked readers overlap by at least this much.
MAX_MATCH_SPAN = 2048


def _validate_codex_jwt(rule: Rule, data: bytes, start: int, end: int) -> str | None:
    return codex_jwt_family(data[start:end], data[max(0, start - 40) : start])


def _validate_codex_auth_json(rule: Rule, data: bytes, start: int, end: int) -> str | None:
    return rule.family if is_codex_auth_json(data) else None


# Checks a regex cannot make (``validate:`` in a rule): the family of the match, or None
# when the match is no secret of the rule.
VALIDATORS = {
    "codex_jwt": _validate_codex_jwt,
    "codex_auth_json": _validate_codex_auth_json,
}
VALIDATOR_NAMES = tuple(VALIDATORS)


# c * log2(c) for the counts of a key-sized span (built at import: about 30 us): entropy
# without a log2 per symbol.
_CLOG2C = [0.0] + [c * math.log2(c) for c in range(1, 512)]


def _clog2c(c: int) -> float:
    return _CLOG2C[c] if c < len(_CLOG2C) else c * math.log2(c)


def shannon_entropy(data: bytes) -> float:
    """Shannon entropy in bits per symbol: log2(n) - sum(c * log2(c)) / n over the counts c,
    the same value as -sum(c/n * log2(c/n)) (up to float rounding), with the c * log2(c)
    terms read from a table."""
    if not data:
        return 0.0
    n = len(data)
    counts = Counter(data).values()
    table = _CLOG2C.__getitem__ if n < len(_CLOG2C) else _clog2c
    total = sum(map(table, counts))
    return max(0.0, math.log2(n) - total / n)


def _all(data: bytes, needle: bytes, at: int) -> Iterator[int]:
    while at >= 0:
        yield at
        at = data.find(needle, at + 1)


def _common_prefix(words: Sequence[bytes]) -> bytes:
    first, last = min(words), max(words)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def _derivations(
    keywords: Sequence[tuple[bytes, bool]],
) -> tuple[dict[bytes, bytes], dict[bytes, tuple[bytes, int]]]:
    """Keywords picked out of another keyword's hits, at no extra pass: a case-sensitive one
    whose lower-case form is searched in any case (``OpenAI`` from ``openai``), and a
    case-insensitive one holding another one (``.openai.azure.`` holds ``openai``), with
    where that one starts in it."""
    folded = sorted({k for k, ic in keywords if ic})
    sensitive = sorted({k for k, ic in keywords if not ic})
    derived = {k: k.lower() for k in sensitive if k.lower() in folded}
    roots = [k for k in folded if not any(o != k and o in k for o in folded)]
    inside: dict[bytes, tuple[bytes, int]] = {}
    for k in folded:
        for other in roots:
            if other != k and other in k and k not in inside:
                inside[k] = (other, k.index(other))
    return derived, inside


class _KeywordPlan:
    """How to find every keyword with as few passes over a buffer as possible.

    * case-insensitive keywords are searched in one lower-cased copy (``bytes.lower`` is
      ASCII-only, so offsets are unchanged; IGNORECASE regexes are far slower);
    * a case-sensitive keyword whose lower-case form is also searched case-insensitively is
      picked out of those hits (``OpenAI`` from ``openai``) at no extra pass;
    * keywords that share a prefix of 3+ bytes are found with one pass for the prefix and a
      ``startswith`` check per hit (``sk-proj-``, ``sk-admin-``, ...: one ``sk-`` pass);
    * a case-insensitive keyword that holds another one is picked out of its hits;
    * sets of rare keywords of one length (the decoders' ``GATE_NEEDLE_SETS``: the halves of
      the marker's base64) are searched in one copy translated so that each set's words all
      read the same (``_Translated``): a pass for the copy and one per set, not one per word.
    """

    def __init__(self, keywords: Sequence[tuple[bytes, bool]]) -> None:
        folded = sorted({k for k, ic in keywords if ic})
        sensitive = sorted({k for k, ic in keywords if not ic})
        self.derived, self.inside = _derivations(keywords)
        folded = [k for k in folded if k not in self.inside]
        sets = [
            (ws, fold)
            for ws, fold in GATE_NEEDLE_SETS
            if all(w in (folded if fold else sensitive) for w in ws)
        ]
        self.translated = _Translated(sets) if sets else None
        together = {(w, fold) for ws, fold in sets for w in ws}
        self.folded = self._group([k for k in folded if (k, True) not in together])
        self.sensitive = self._group(
            [k for k in sensitive if k not in self.derived and (k, False) not in together]
        )

    @staticmethod
    def _group(words: Sequence[bytes]) -> list[tuple[bytes, list[bytes], re.Pattern[bytes] | None]]:
        """Group keywords by their first 3 bytes. A group of several is searched with one
        regex (literal prefix, then the alternatives), so that frequent occurrences of the
        prefix alone ('sk-' in 'task-list') are rejected in C, not in a Python loop."""
        groups: dict[bytes, list[bytes]] = {}
        for k in words:
            groups.setdefault(k[:3], []).append(k)
        planned: list[tuple[bytes, list[bytes], re.Pattern[bytes] | None]] = []
        for group in groups.values():
            anchor = _common_prefix(group)
            pattern = None
            if len(group) > 1 and all(len(k) > len(anchor) for k in group):
                rests = sorted((re.escape(k[len(anchor) :]) for k in group), key=len, reverse=True)
                pattern = re.compile(re.escape(anchor) + b"(?:" + b"|".join(rests) + b")")
            planned.append((anchor, group, pattern))
        return planned

    @staticmethod
    def _find(
        data: bytes,
        groups: list[tuple[bytes, list[bytes], re.Pattern[bytes] | None]],
        folded: bool,
        hits: dict[tuple[bytes, bool], list[int]],
    ) -> None:
        for anchor, group, pattern in groups:
            first = data.find(anchor)  # bytes.find is several times faster than a regex search
            if first < 0:
                continue
            if pattern is None:
                positions: Iterable[int] = _all(data, anchor, first)
            else:
                positions = (m.start() for m in pattern.finditer(data, first))
            for at in positions:
                for k in group:
                    if len(k) == len(anchor) or data.startswith(k, at):
                        hits.setdefault((k, folded), []).append(at)

    def find(self, data: bytes) -> dict[tuple[bytes, bool], list[int]]:
        hits: dict[tuple[bytes, bool], list[int]] = {}
        self._find(data, self.sensitive, False, hits)
        if self.translated is not None:
            self.translated.find(data, hits)
        if self.folded:
            lowered = data.lower()
            self._find(lowered, self.folded, True, hits)
            for k, (other, shift) in self.inside.items():
                found = [
                    at - shift
                    for at in hits.get((other, True), ())
                    if at >= shift and lowered.startswith(k, at - shift)
                ]
                if found:
                    hits[(k, True)] = found
        for k, source in self.derived.items():
            found = [at for at in hits.get((source, True), ()) if data.startswith(k, at)]
            if found:
                hits[(k, False)] = found
        return hits


class _Translated:
    """Sets of keywords, each set's words of one length, found with one ``bytes.find`` per
    set in a translated copy of the buffer: bytes at the same position of a set's words share
    a class (union-find), every other byte reads as 0, so a set's words all read the same;
    each hit of that pattern is checked against the words themselves."""

    def __init__(self, sets: Sequence[tuple[Sequence[bytes], bool]]) -> None:
        parent = list(range(256))

        def root(b: int) -> int:
            while parent[b] != b:
                parent[b] = parent[parent[b]]
                b = parent[b]
            return b

        used: set[int] = set()
        for words, fold in sets:
            for column in zip(*words, strict=True):
                # A case-insensitive set: both cases of a letter read the same.
                column_bytes = set(column)
                if fold:
                    column_bytes |= set(bytes(column).upper() + bytes(column).lower())
                first, *rest = sorted(column_bytes)
                used.update(column_bytes)
                for b in rest:
                    parent[root(b)] = root(first)
        ids = {r: i + 1 for i, r in enumerate(sorted({root(b) for b in used}))}
        self.table = bytes(ids[root(b)] if b in used else 0 for b in range(256))
        self.sets = [(words[0].translate(self.table), list(words), fold) for words, fold in sets]

    def find(self, data: bytes, hits: dict[tuple[bytes, bool], list[int]]) -> None:
        if not data:
            return
        copy = data.translate(self.table)
        for pattern, words, fold in self.sets:
            at = copy.find(pattern)
            while at >= 0:
                for w in words:
                    if (data[at : at + len(w)].lower() == w) if fold else data.startswith(w, at):
                        hits.setdefault((w, fold), []).append(at)
                at = copy.find(pattern, at + 1)


def _load_hyperscan(honour_env: bool = True) -> Any | None:
    """The Hyperscan module, or None where it is not installed (a pure-Python plan is used)
    or ``KEYSCAN_PURE_PYTHON`` is set. keyscan imports hyperscan here and nowhere else."""
    if honour_env and os.environ.get("KEYSCAN_PURE_PYTHON"):
        return None
    try:
        import hyperscan
    except ImportError:
        return None
    return hyperscan


def accelerated_plan() -> bool:
    """Whether a Detector built now (``accelerate=None``) searches keywords with Hyperscan
    once past its first ``ACCELERATE_AFTER`` bytes: installed, ``KEYSCAN_PURE_PYTHON`` not
    set. Imports hyperscan (~2 ms): ask only when the scan is large."""
    return _load_hyperscan() is not None


class _HyperscanPlan:
    """Every keyword in one pass of Hyperscan, the multi-pattern engine noseyparker and
    Kingfisher build on: about 0.3 ns per byte for all keywords together, where the passes of
    ``_KeywordPlan`` cost about 3 ns. Same answers as ``_KeywordPlan`` (a test compares them)."""

    def __init__(self, hs: Any, keywords: Sequence[tuple[bytes, bool]]) -> None:
        # Keywords picked out of another one's hits (as the pure-Python plan does) are not
        # compiled: each literal more can cost the whole pass (Hyperscan's literal matcher
        # groups its literals into a few buckets; past some count, frequent lower-case
        # literals share buckets with the rest and every false candidate is confirmed): one
        # literal more cost the keyword pass ~20 ms on a plain 208 MB tree
        # (bench/bench_plain_cost.py).
        self.derived, self.inside = _derivations(keywords)
        self.keywords = [
            (k, ic)
            for k, ic in keywords
            if not (ic and k in self.inside) and not (not ic and k in self.derived)
        ]
        self.lengths = [len(k) for k, _ in self.keywords]
        self.db = hs.Database()
        self.db.compile(
            expressions=[re.escape(k) for k, _ in self.keywords],
            ids=list(range(len(self.keywords))),
            elements=len(self.keywords),
            flags=[hs.HS_FLAG_CASELESS if folded else 0 for _, folded in self.keywords],
        )

    def find(self, data: bytes) -> dict[tuple[bytes, bool], list[int]]:
        ends: dict[int, list[int]] = {}

        def on_match(ident: int, start: int, end: int, flags: int, context: object) -> None:
            ends.setdefault(ident, []).append(end)

        self.db.scan(data, match_event_handler=on_match)
        if not ends:  # most buffers
            return {}
        hits = {
            self.keywords[i]: [end - self.lengths[i] for end in found] for i, found in ends.items()
        }
        if not hits:
            return hits
        for k, (other, shift) in self.inside.items():
            found = [
                at - shift
                for at in hits.get((other, True), ())
                if at >= shift and data[at - shift : at - shift + len(k)].lower() == k
            ]
            if found:
                hits[(k, True)] = found
        for k, source in self.derived.items():
            found = [at for at in hits.get((source, True), ()) if data.startswith(k, at)]
            if found:
                hits[(k, False)] = found
        return hits


# Bytes a Detector scans with the pure-Python plan before it switches to Hyperscan.
ACCELERATE_AFTER = 256 * 1024


def keyword_plan(
    keywords: Sequence[tuple[bytes, bool]], accelerate: bool | None = None
) -> _KeywordPlan | _HyperscanPlan:
    """``accelerate=None``: Hyperscan where it is installed and ``KEYSCAN_PURE_PYTHON`` is
    not set, else the pure-Python plan; True or False: that plan, whatever the environment."""
    if accelerate is False or not keywords:
        return _KeywordPlan(keywords)
    hs = _load_hyperscan(honour_env=accelerate is None)
    if hs is None:
        if accelerate:
            raise RuntimeError("hyperscan is not installed")
        return _KeywordPlan(keywords)
    return _HyperscanPlan(hs, keywords)


class _Derived:
    """What a Detector derives from its rules (keywords, filter segments, reaches, the
    pure-Python keyword plan), none of it changed by scanning. The last rules' are kept, so
    that a second detector over the same rule objects (the metadata redactor's, after the
    scan's) shares them instead of deriving them again."""

    __slots__ = ("filters", "keywords", "plan", "reach", "rules")
    _last: _Derived | None = None

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        keywords = {(k, r.keywords_ignore_case) for r in rules for k in r.keywords}
        # The decoders' gate needles ride along in the same pass (free with Hyperscan): their
        # offsets count among the keyword offsets scan_keyed returns.
        self.keywords = sorted(
            keywords
            | {(n, False) for n in GATE_NEEDLES}
            | {(n, True) for n in GATE_NEEDLES_FOLDED}
        )
        self.filters = _filter_segments(rules)
        self.reach = {id(r): _reach(r) for r in rules}
        self.plan: _KeywordPlan | None = None

    @classmethod
    def of(cls, rules: tuple[Rule, ...]) -> _Derived:
        last = _Derived._last
        if (
            last is not None
            and len(last.rules) == len(rules)
            and all(a is b for a, b in zip(last.rules, rules, strict=True))  # kept alive
        ):
            return last
        derived = _Derived._last = cls(rules)
        return derived

    def pure_plan(self) -> _KeywordPlan:
        if self.plan is None:
            self.plan = _KeywordPlan(self.keywords)
        return self.plan


class Detector:
    """Runs a fixed set of rules over byte buffers. Stateless apart from its rules."""

    def __init__(self, rules: Sequence[Rule], accelerate: bool | None = None) -> None:
        self.rules = tuple(rules)
        derived = _Derived.of(self.rules)
        self._keywords = derived.keywords
        self._accelerate = accelerate
        # Hyperscan costs ~10 ms to import and compile: a pre-commit run over a few small
        # files is faster without it. The pure-Python plan serves until the scan has seen
        # ACCELERATE_AFTER bytes (or is asked for Hyperscan), then Hyperscan takes over.
        self._plan: _KeywordPlan | _HyperscanPlan = (
            keyword_plan(self._keywords, accelerate)
            if accelerate  # True; None: auto, below
            else derived.pure_plan()
        )
        self._seen = 0
        self._filters = derived.filters
        self._reach = derived.reach

    def _plan_for(self, data: bytes) -> _KeywordPlan | _HyperscanPlan:
        if self._accelerate is None and isinstance(self._plan, _KeywordPlan):
            self._seen += len(data)
            if self._seen >= ACCELERATE_AFTER:
                self.prepare()
        return self._plan

    def prepare(self) -> None:
        """Switch now to the plan a large scan ends up with (Hyperscan where installed and
        not refused), instead of after ``ACCELERATE_AFTER`` bytes. Before a worker pool
        forks: each worker inherits the compiled database instead of compiling its own."""
        if self._accelerate is None and isinstance(self._plan, _KeywordPlan):
            self._plan = keyword_plan(self._keywords, None)
            self._accelerate = isinstance(self._plan, _HyperscanPlan)

    def finds_keywords(self, data: bytes) -> bool:
        """Whether a rule keyword or a decoder's gate needle occurs in data. False means
        ``scan_keyed(data)`` answers ``([], [])``: nothing to match, nothing to decode."""
        return bool(self._plan_for(data).find(data))

    def prefilter(self, data: bytes) -> list[Rule]:
        """The rules whose keywords occur in data."""
        hits = self._plan_for(data).find(data)
        if not hits:  # most buffers (every tree object of a history walk): no rule to test
            return []
        return [
            r for r in self.rules if any((k, r.keywords_ignore_case) in hits for k in r.keywords)
        ]

    def scan(self, data: bytes) -> list[Match]:
        """All secrets in data, one match per span (overlaps resolved), in offset order."""
        return self.scan_keyed(data)[0]

    def scan_keyed(self, data: bytes) -> tuple[list[Match], list[int]]:
        """``scan(data)``, and the offsets where rule keywords occur (sorted; empty when none
        does): the decoders use them as a free gate (a partly encoded key keeps its marker
        plain, an encoded assignment its variable name)."""
        hits = self._plan_for(data).find(data)
        if not hits:
            return [], []
        candidates: list[Match] = []
        # Rules often match the same span (a project key is also a key, an assignment...):
        # its entropy, and the deny/allow verdict of rules with equal lists, are computed
        # once per span.
        memo: dict[tuple[int, int, int], float | bool] = {}
        for rule in self.rules:
            offsets: list[int] = []
            for k in rule.keywords:
                offsets.extend(hits.get((k, rule.keywords_ignore_case), ()))
            if offsets:
                for m in _regex_matches(rule, data, offsets, self._reach.get(id(rule))):
                    match = self._check_match(rule, data, m, memo)
                    if match is not None:
                        candidates.append(match)
        keyword_offsets = sorted({at for offsets in hits.values() for at in offsets})
        return resolve_overlaps(candidates, self.rules), keyword_offsets

    def _check_match(
        self,
        rule: Rule,
        data: bytes,
        m: re.Match[bytes],
        memo: dict[tuple[int, int, int], float | bool] | None = None,
    ) -> Match | None:
        start, end = m.span("secret")
        if start < 0:
            return None
        if rule.equal_halves and m.start("right") >= 0:
            span = _equal_halves_span(rule, data, m, start, end)
            if span is None:
                return None
            start, end = span
        return self._check(rule, data, start, end, memo)

    def _check(
        self,
        rule: Rule,
        data: bytes,
        start: int,
        end: int,
        memo: dict[tuple[int, int, int], float | bool] | None = None,
    ) -> Match | None:
        secret = data[start:end]
        if memo is None:
            memo = {}
        segments = self._filters.get(id(rule))
        if segments is None:  # not one of this detector's rules: nothing shared
            if any(p.search(secret) for p in (*rule.deny_secret, *rule.allow)):
                return None
        else:
            for segment, patterns in segments:
                key = (segment, start, end)
                refused = memo.get(key)
                if refused is None:
                    refused = memo[key] = any(p.search(secret) for p in patterns)
                if refused:
                    return None
        threshold = rule.min_entropy
        if rule.min_entropy_hex is not None and all(b in HEX_DIGITS for b in secret):
            threshold = rule.min_entropy_hex
        if threshold is not None:
            key = (-1, start, end)  # segments count from 0: the entropy of the span
            entropy = memo.get(key)
            if entropy is None:
                entropy = memo[key] = shannon_entropy(secret)
            if entropy < threshold:
                return None
        family = rule.family
        if rule.validate is not None:
            validated = VALIDATORS[rule.validate](rule, data, start, end)
            if validated is None:
                return None
            family = validated
        for prefix, fam in rule.family_by_prefix:
            if secret.startswith(prefix):
                family = fam
                break
        if rule.family_by_context:
            window = data[max(0, start - CONTEXT_WINDOW) : end + CONTEXT_WINDOW]
            for pattern, fam in rule.family_by_context:
                if pattern.search(window):
                    family = fam
                    break
        endpoint = azure_endpoint_near(data, start, end) if family == "azure" else None
        return Match(
            rule=rule, start=start, end=end, secret=secret, family=family, endpoint=endpoint
        )


_SEPARATORS = frozenset(b"-_")


def _equal_halves_span(
    rule: Rule, data: bytes, m: re.Match[bytes], start: int, end: int
) -> tuple[int, int] | None:
    """Where a key with equal halves starts and ends, or None when the text is no such key.

    Never a value that is not in the input: a right half longer than the left one is cut
    only where a separator follows the cut (a key followed by ``-suffix`` or ``_v2``, both
    legal in base64url). Before that, a rule with name segments (``family_by_prefix``) may
    have taken a dash of the left half for a segment's end: when the text the right half's
    length back from the marker starts after a dash (or right after ``sk-``), that is the
    left half and the match is whole. Anything else is malformed (truncated, spliced, a
    fragment of a split literal): this rule does not report it (``openai-key-malformed``
    reports its exact text at low confidence)."""
    left_start, marker = m.span("left")
    right_start, right_end = m.span("right")
    left, right = marker - left_start, right_end - right_start
    if left == right:
        return start, end
    wider = marker - right
    if right > left:
        if (
            rule.family_by_prefix
            and wider >= start + 3
            and (wider == start + 3 or data[wider - 1] == 0x2D)
        ):
            return start, end
        cut = right_start + left
        if data[cut] in _SEPARATORS:
            return start, cut
    elif rule.family_by_prefix and data[wider - 1] == 0x2D:
        # The left half took text before the key (``sk-sk-team-<half>...``): the key is the
        # last ``sk-`` whose name segments end where a left half of the right length begins.
        at = data.rfind(b"sk-", start, wider)
        if at >= 0:
            return at, end
    return None


def _filter_segments(
    rules: Sequence[Rule],
) -> dict[int, list[tuple[int, tuple[re.Pattern[bytes], ...]]]]:
    """Each rule's deny and allow patterns cut into segments that rules share: the deny list,
    the allow patterns its file's rules have in common (the file-wide list they inherit), its
    own allow patterns. Equal segments get one number, so that a span several rules match is
    searched once per segment. Only the verdict (does any pattern match) is shared, so any
    cut gives the same answers as searching every pattern of every rule."""
    common: dict[str, tuple[re.Pattern[bytes], ...]] = {}
    for rule in rules:
        have = common.get(rule.source)
        if have is None:
            common[rule.source] = rule.allow
        else:
            n = 0
            while n < min(len(have), len(rule.allow)) and have[n] == rule.allow[n]:
                n += 1
            common[rule.source] = have[:n]
    numbers: dict[tuple[re.Pattern[bytes], ...], int] = {}
    out: dict[int, list[tuple[int, tuple[re.Pattern[bytes], ...]]]] = {}
    for rule in rules:
        k = len(common[rule.source])
        parts = [rule.deny_secret, rule.allow[:k], rule.allow[k:]]
        out[id(rule)] = [
            (numbers.setdefault(part, len(numbers)), part) for part in parts if part
        ]
    return out


# Bytes added past a window's end, so that a lookahead after a match sees the real next byte.
WINDOW_MARGIN = 8


# A rule whose matches begin at most this far before a keyword hit is tried with match() at
# each possible start; a wider one with finditer() over merged windows.
ANCHORED_BEFORE = 32


def _reach(rule: Rule) -> tuple[int, int] | None:
    """How far before and after a keyword hit the rule's regex runs (None: everywhere)."""
    if rule.window is None:
        return None
    before, after = rule.window
    return before, after + max(len(k) for k in rule.keywords) + WINDOW_MARGIN


def _regex_matches(
    rule: Rule, data: bytes, offsets: list[int], reach: tuple[int, int] | None = None
) -> Iterator[re.Match[bytes]]:
    """Regex matches of a rule, looked for only where a keyword hit makes one possible.
    ``reach``: ``_reach(rule)``, computed once by the Detector."""
    size = len(data)
    if rule.window is None:
        yield from rule.regex.finditer(data)
        return
    before, after = reach if reach is not None else _reach(rule) or rule.window
    offsets = sorted(set(offsets)) if len(offsets) > 1 else offsets
    if before <= ANCHORED_BEFORE:
        tried = -1
        for at in offsets:
            hi = min(size, at + after)
            for start in range(max(0, at - before, tried + 1), at + 1):
                m = rule.regex.match(data, start, hi)
                if m is not None:
                    yield m
            tried = at
        return
    lo, hi = max(0, offsets[0] - before), min(size, offsets[0] + after)
    for at in offsets[1:]:
        if at - before <= hi:
            hi = min(size, max(hi, at + after))
            continue
        yield from rule.regex.finditer(data, lo, hi)
        lo, hi = max(0, at - before), min(size, at + after)
    yield from rule.regex.finditer(data, lo, hi)


def resolve_overlaps(matches: list[Match], order: Sequence[Rule] = ()) -> list[Match]:
    """Where matches overlap, keep the most confident, then the longest, then the earliest,
    then the rule listed first. (Rules keep a longer match from swallowing text before a key:
    a name segment of a named key is never ``sk``, so ``task-sk-...`` holds one key.)

    O(n log n): kept spans are disjoint, so each candidate is compared with its neighbours."""
    if len(matches) <= 1:
        return matches
    rank = {id(r): i for i, r in enumerate(order)}
    ranked = sorted(
        matches,
        key=lambda m: (-m.rule.confidence, -(m.end - m.start), m.start, rank.get(id(m.rule), 0)),
    )
    starts: list[int] = []
    kept: list[Match] = []
    for m in ranked:
        i = bisect.bisect_left(starts, m.start)
        if i > 0 and kept[i - 1].end > m.start:
            continue
        if i < len(kept) and kept[i].start < m.end:
            continue
        starts.insert(i, m.start)
        kept.insert(i, m)
    return kept
