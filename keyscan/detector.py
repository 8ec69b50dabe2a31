"""The detector: prefilter on literal keywords, then regex, entropy, deny and allow filters.

Works on bytes and decodes nothing: a buffer that holds none of a rule's keywords costs one
substring search per keyword (the OpenAI marker makes that nearly free), and a rule's regex
runs only over buffers that passed its prefilter.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from keyscan.models import Match, Rule

HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
# Bytes of context searched around a match for family_by_context patterns.
CONTEXT_WINDOW = 400
# Upper bound on the length of any match; chunked readers overlap by at least this much.
MAX_MATCH_SPAN = 2048


def shannon_entropy(data: bytes) -> float:
    """Shannon entropy in bits per symbol."""
    if not data:
        return 0.0
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values())


class Detector:
    """Runs a fixed set of rules over byte buffers. Stateless apart from its rules."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._keywords = sorted(
            {(k, r.keywords_ignore_case) for r in self.rules for k in r.keywords}
        )

    def prefilter(self, data: bytes) -> list[Rule]:
        """The rules whose keywords occur in data."""
        lowered: bytes | None = None
        present: set[tuple[bytes, bool]] = set()
        for keyword, ignore_case in self._keywords:
            if ignore_case:
                if lowered is None:
                    lowered = data.lower()
                hit = keyword in lowered
            else:
                hit = keyword in data
            if hit:
                present.add((keyword, ignore_case))
        if not present:
            return []
        return [
            r for r in self.rules if any((k, r.keywords_ignore_case) in present for k in r.keywords)
        ]

    def scan(self, data: bytes) -> list[Match]:
        """All secrets in data, one match per span (overlaps resolved), in offset order."""
        candidates: list[Match] = []
        for rule in self.prefilter(data):
            for m in rule.regex.finditer(data):
                start, end = m.span("secret")
                if start < 0:
                    continue
                if rule.equal_halves and m.start("right") >= 0:
                    # Key halves have equal length: drop what spilled past the right one
                    # (a key followed by '-' or '_', both legal in base64url, swallows them).
                    left = m.end("left") - m.start("left")
                    if m.end("right") - m.start("right") > left:
                        end = min(end, m.start("right") + left)
                match = self._check(rule, data, start, end)
                if match is not None:
                    candidates.append(match)
        return resolve_overlaps(candidates)

    def _check(self, rule: Rule, data: bytes, start: int, end: int) -> Match | None:
        secret = data[start:end]
        if any(p.search(secret) for p in rule.deny_secret):
            return None
        if any(p.search(secret) for p in rule.allow):
            return None
        threshold = rule.min_entropy
        if rule.min_entropy_hex is not None and all(b in HEX_DIGITS for b in secret):
            threshold = rule.min_entropy_hex
        if threshold is not None and shannon_entropy(secret) < threshold:
            return None
        family = rule.family
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
        return Match(rule=rule, start=start, end=end, secret=secret, family=family)


def resolve_overlaps(matches: list[Match]) -> list[Match]:
    """Where matches overlap, keep the most confident, then the longest, then the earliest."""
    if len(matches) <= 1:
        return matches
    ranked = sorted(matches, key=lambda m: (-m.rule.confidence, -(m.end - m.start), m.start))
    kept: list[Match] = []
    for m in ranked:
        if all(m.end <= k.start or m.start >= k.end for k in kept):
            kept.append(m)
    kept.sort(key=lambda m: m.start)
    return kept
