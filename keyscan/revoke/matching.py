"""Which key of the organization is the leaked one? Matching on what a redaction keeps.

The Admin API never returns a key, only its ``redacted_value``: in real responses the first 8
characters, one ``*`` per hidden character and the last 4 (so the length survives); in the
spec's examples ``sk-abc...def`` (the length is lost). keyscan's own reports redact as
``first8...last4`` and keep the length in a separate field. A candidate must agree with the
leaked key on everything both sides still know: the head, the last 4 characters, the length
(when both keep it) and the owner type implied by the prefix. Too little left to compare
(a tail under 4 characters, a head under 6) is never a match: a wrong DELETE cannot be undone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MIN_HEAD = 6
MIN_TAIL = 4

# A key never holds '*' or '.', so a run of them (or an ellipsis) is the mask.
_REDACTED = re.compile(r"^(?P<head>[^*.\u2026\s]*)(?P<mask>[*.\u2026]+)(?P<tail>[^*.\u2026\s]*)$")


@dataclass(frozen=True)
class KeyShape:
    """What is known of a key: its leading and trailing characters, and maybe its length.

    For a raw key, ``head`` and ``tail`` are the whole key."""

    head: str
    tail: str
    length: int | None

    @classmethod
    def of_secret(cls, secret: str) -> KeyShape:
        return cls(head=secret, tail=secret, length=len(secret))

    def short(self) -> str:
        """``first8...last4`` (never more than that, even for a raw key)."""
        return f"{self.head[:8]}...{self.tail[-4:]}"


def parse_redacted(value: str, length: int | None = None) -> KeyShape | None:
    """Parse ``sk-proj-****...****abcd`` (length kept), ``sk-abc...abcd`` or
    ``sk-proj-****...abcd`` (length lost, unless given). None if it has no mask."""
    m = _REDACTED.match(value.strip())
    if m is None:
        return None
    head, mask, tail = m.group("head"), m.group("mask"), m.group("tail")
    if length is None and set(mask) == {"*"}:
        length = len(value.strip())
    return KeyShape(head=head, tail=tail, length=length)


@dataclass(frozen=True)
class Comparison:
    matches: bool
    # Why not, for the plan ("last 4 differ", "length differs", "redacted value too short").
    why: str = ""


def compare(leaked: KeyShape, candidate: KeyShape) -> Comparison:
    """Does ``candidate`` (from the Admin API) agree with ``leaked`` on all both still know?"""
    n = min(len(leaked.head), len(candidate.head))
    m = min(len(leaked.tail), len(candidate.tail))
    if n < MIN_HEAD or m < MIN_TAIL:
        return Comparison(False, "redacted value too short to compare safely")
    if leaked.head[:n] != candidate.head[:n]:
        return Comparison(False, "prefix differs")
    if leaked.tail[-m:] != candidate.tail[-m:]:
        return Comparison(False, "last characters differ")
    known = leaked.length is not None and candidate.length is not None
    if known and leaked.length != candidate.length:
        return Comparison(False, "length differs")
    return Comparison(True)
