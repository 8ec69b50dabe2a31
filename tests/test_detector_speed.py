"""The detector's speed-ups are behaviour-neutral (issue 16; timings live in bench/, never here).

* entropy from a table of c*log2(c) equals the textbook formula;
* rules that match the same span share their entropy and the deny/allow verdict of equal
  pattern lists (the file-wide lists they inherit), never a verdict of a list they lack.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter

import pytest

from keyscan.detector import VALIDATORS, Detector, shannon_entropy
from keyscan.models import Confidence, Match, Rule
from keyscan.rules import load_rules


def _textbook(data: bytes) -> float:
    if not data:
        return 0.0
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values())


def test_table_entropy_equals_the_formula() -> None:
    rng = random.Random(16)
    samples = [b"", b"a", b"aaaa", bytes(range(256)), b"x" * 5000, bytes(range(256)) * 20]
    for _ in range(3000):
        n = rng.randint(1, 900)
        alphabet = rng.randint(1, 90)
        samples.append(bytes(rng.randrange(alphabet) for _ in range(n)))
    for data in samples:
        assert shannon_entropy(data) == pytest.approx(_textbook(data), abs=1e-9)


def _rule(rid: str, allow: tuple[bytes, ...], file_allow: tuple[bytes, ...] = ()) -> Rule:
    patterns = tuple(re.compile(p) for p in (*file_allow, *allow))
    return Rule(
        id=rid,
        description="",
        family="unknown",
        confidence=Confidence.parse("low"),
        regex=re.compile(rb"tok_(?P<secret>[A-Za-z0-9]{16})"),
        keywords=(b"tok_",),
        min_entropy=3.0,
        allow=patterns,
        source="same.yaml",
    )


def _naive(rule: Rule, secret: bytes) -> bool:
    return not any(p.search(secret) for p in (*rule.deny_secret, *rule.allow)) and (
        rule.min_entropy is None or _textbook(secret) >= rule.min_entropy
    )


def test_rules_on_one_span_share_only_equal_pattern_lists() -> None:
    """Three rules, one span: a shared file-wide allow list, and own lists that differ. The
    rule whose own list refuses the span loses it; the others keep it."""
    file_allow = (rb"^zzzz",)
    loose = _rule("loose", (), file_allow)
    strict = _rule("strict", (rb"Q",), file_allow)  # refuses any secret holding a Q
    other = _rule("other", (rb"^nope",), file_allow)
    secret = b"aQ3xK9mP2vL7wR4t"
    data = b"k = tok_" + secret + b"\n"
    for order in ([loose, strict, other], [strict, loose, other], [other, strict, loose]):
        detector = Detector(order, accelerate=False)
        matches = detector.scan(data)
        keep = [r.id for r in order if _naive(r, secret)]
        assert sorted(keep) == ["loose", "other"]
        assert [m.rule.id for m in matches] == [keep[0]]  # same span: the first rule listed
        for rule in order:
            checked = detector._check(rule, data, 8, 8 + len(secret), {})
            assert (checked is not None) == _naive(rule, secret), rule.id


def test_shipped_rules_give_the_naive_verdicts() -> None:
    """Every shipped rule on spans of every shape: the shared-verdict check answers as each
    rule's own patterns and entropy would alone."""
    rules = load_rules(cache_path=False)
    detector = Detector(rules, accelerate=False)
    rng = random.Random(4)
    alphabets = [b"abcdef0123456789", b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"]
    spans = [b"sk-ant-" + b"a1" * 20, b"xxxxxxxxxx12", b"sk-proj-example-key-1234"]
    for _ in range(200):
        alphabet = rng.choice(alphabets)
        spans.append(bytes(rng.choice(alphabet) for _ in range(rng.randint(8, 90))))
    for secret in spans:
        data = b"= " + secret + b" ;"
        memo: dict[tuple[int, int, int], float | bool] = {}
        for rule in rules:
            got: Match | None = detector._check(rule, data, 2, 2 + len(secret), memo)
            threshold = rule.min_entropy
            if rule.min_entropy_hex is not None and all(
                b in b"0123456789abcdefABCDEF" for b in secret
            ):
                threshold = rule.min_entropy_hex
            want = not any(p.search(secret) for p in (*rule.deny_secret, *rule.allow)) and (
                threshold is None or _textbook(secret) >= threshold
            )
            # A rule's validate check (issue 15: Codex tokens) refuses what it is not.
            if want and rule.validate is not None:
                want = VALIDATORS[rule.validate](rule, data, 2, 2 + len(secret)) is not None
            assert (got is not None) == want, (rule.id, secret)
