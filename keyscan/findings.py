"""From detector matches to findings: locate (line, column), inline allow comments, dedupe.

A *hit* is one secret at one location. ``aggregate`` turns hits into findings: one finding per
unique secret, with the most confident rule that matched it and its locations.

Memory follows the input, not the repetitions: a secret seen more than ``MAX_LOCATIONS``
times keeps its first ``MAX_LOCATIONS`` locations (in report order) and counts the others
(``Finding.more_locations``). Sources that gather many hits fold them as they go with
``compact`` and an ``Overflow`` record per secret, so that one key repeated a million times
never holds a million locations in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from keyscan.models import Confidence, Finding, Location, Match, fingerprint_of, redact
from keyscan.records import dataclass, field

# Comments that suppress a finding on their own line. gitleaks' and detect-secrets' spellings
# are honoured so that users can migrate without touching their code.
ALLOW_COMMENT = re.compile(rb"keyscan:allow|gitleaks:allow|pragma:\s*allowlist[ -]secret")

# Locations kept per secret; the others are counted (see the module docstring).
MAX_LOCATIONS = 1000


@dataclass
class Hit:
    rule_id: str
    description: str
    family: str
    confidence: Confidence
    secret: bytes
    location: Location


def is_binary(head: bytes) -> bool:
    """Git's heuristic: a NUL byte in the first 8 KiB."""
    return b"\0" in head[:8192]


class LineCounter:
    """Turns increasing byte offsets of one buffer into 1-based (line, column), incrementally.

    Columns count characters (UTF-8, invalid bytes count one each), not bytes.
    ``base_line`` lets a chunked reader continue numbering from an earlier chunk.
    """

    def __init__(self, data: bytes, base_line: int = 1) -> None:
        self.data = data
        self._pos = 0
        self._line = base_line
        self._line_start = 0
        self._column = 1  # column of _pos

    def locate(self, offset: int) -> tuple[int, int, int]:
        """(line, column, line_start) for an offset not before the previous one asked.

        Linear in the buffer over all calls: only the bytes since the previous offset are
        looked at (thousands of keys on one 8 MB minified line must not cost quadratic time).
        """
        if offset < self._pos:
            raise ValueError("offsets must not decrease")
        nl = self.data.rfind(b"\n", self._pos, offset)
        if nl >= 0:
            self._line += self.data.count(b"\n", self._pos, offset)
            self._line_start = nl + 1
            self._column = len(self.data[nl + 1 : offset].decode("utf-8", "replace")) + 1
        else:
            self._column += len(self.data[self._pos : offset].decode("utf-8", "replace"))
        self._pos = offset
        return self._line, self._column, self._line_start


def line_at(data: bytes, offset: int) -> bytes:
    start = data.rfind(b"\n", 0, offset) + 1
    end = data.find(b"\n", offset)
    return data[start : end if end >= 0 else len(data)]


def hits_from_matches(
    data: bytes,
    matches: Sequence[Match],
    template: Location,
    base_offset: int = 0,
    base_line: int = 1,
    counter: LineCounter | None = None,
) -> list[Hit]:
    """Hits for matches in one buffer; ``template`` supplies path, source and commit."""
    counter = counter or LineCounter(data, base_line)
    hits: list[Hit] = []
    line_end = -1  # the allow comment is looked for once per line, however many keys it holds
    allowed = False
    for m in sorted(matches, key=lambda m: m.start):
        line, column, line_start = counter.locate(m.start)
        if m.start >= line_end:
            line_end = data.find(b"\n", m.start)
            line_end = len(data) if line_end < 0 else line_end
            allowed = bool(ALLOW_COMMENT.search(data, line_start, line_end))
        loc = Location(
            path=template.path,
            line=line,
            column=column,
            offset=base_offset + m.start,
            binary=template.binary,
            source=template.source,
            commit=template.commit,
            blob=template.blob,
            decoded=template.decoded,
            extra=_extra(template.extra, m),
            inline_allowed=allowed,
            member=template.member,
        )
        hits.append(Hit(m.rule.id, m.rule.description, m.family, m.rule.confidence, m.secret, loc))
    return hits


# Location.extra key: the host of the Azure endpoint next to an Azure OpenAI key.
AZURE_ENDPOINT_KEY = "azure_endpoint"


def _extra(template: dict[str, Any], m: Match) -> dict[str, Any]:
    extra = dict(template)
    if m.endpoint is not None:
        extra[AZURE_ENDPOINT_KEY] = m.endpoint
    return extra


@dataclass
class Overflow:
    """The hits of one secret beyond those kept: counted, not kept."""

    count: int = 0
    allowed: int = 0  # of them, on a line with an inline allow comment
    best: Hit | None = None  # the most confident of them (its rule may be the finding's)


@dataclass
class HitSink:
    """Hits gathered with bounded memory: ``hits`` keeps at most ``limit`` hits per secret
    once compacted (the first in report order), ``overflow`` counts the others."""

    hits: list[Hit] = field(default_factory=list)
    overflow: dict[bytes, Overflow] = field(default_factory=dict)
    limit: int = MAX_LOCATIONS
    _next_check: int = 0

    def add(self, hits: Iterable[Hit]) -> None:
        self.hits.extend(hits)
        if len(self.hits) > max(self._next_check, 4 * self.limit):
            self.hits = compact(self.hits, self.overflow, self.limit)
            self._next_check = 2 * len(self.hits)  # amortised: many distinct secrets

    def merge(self, other: HitSink) -> None:
        for secret, more in other.overflow.items():
            merge_overflow(self.overflow, secret, more)
        self.add(other.hits)

    def findings(self) -> list[Finding]:
        return aggregate(self.hits, self.overflow, self.limit)


def merge_overflow(into: dict[bytes, Overflow], secret: bytes, more: Overflow) -> None:
    mine = into.setdefault(secret, Overflow())
    mine.count += more.count
    mine.allowed += more.allowed
    if more.best is not None and (mine.best is None or more.best.confidence > mine.best.confidence):
        mine.best = more.best


def _report_order(hit: Hit) -> tuple[bool, tuple[str, int, int, str], int]:
    """Locations without an allow comment first: if those kept all carry one, so do those
    only counted (a finding is suppressed as a whole, or shows where it is not allowed)."""
    return hit.location.inline_allowed, hit.location.sort_key(), hit.location.offset


def compact(
    hits: list[Hit], overflow: dict[bytes, Overflow], limit: int = MAX_LOCATIONS
) -> list[Hit]:
    """Keep the first ``limit`` hits of each secret (in report order, those on a line with an
    allow comment last); count the others in ``overflow``. Hits are returned unchanged (same
    order) when no secret is over the limit."""
    by_secret: dict[bytes, list[Hit]] = {}
    for hit in hits:
        by_secret.setdefault(hit.secret, []).append(hit)
    if all(len(group) <= limit for group in by_secret.values()):
        return hits
    out: list[Hit] = []
    for secret, group in by_secret.items():
        if len(group) > limit:
            group.sort(key=_report_order)
            more = Overflow()
            for hit in group[limit:]:
                more.count += 1
                more.allowed += hit.location.inline_allowed
                if more.best is None or hit.confidence > more.best.confidence:
                    more.best = hit
            merge_overflow(overflow, secret, more)
            group = group[:limit]
        out.extend(group)
    return out


def aggregate(
    hits: Iterable[Hit],
    overflow: dict[bytes, Overflow] | None = None,
    limit: int = MAX_LOCATIONS,
) -> list[Finding]:
    """One finding per unique secret, most confident rule first, locations sorted; at most
    ``limit`` locations per finding, the others counted in ``Finding.more_locations``."""
    overflow = dict(overflow or {})
    hits = compact(list(hits), overflow, limit)
    by_secret: dict[bytes, Finding] = {}
    for hit in hits:
        finding = by_secret.get(hit.secret)
        if finding is None:
            text = hit.secret.decode("utf-8", "surrogateescape")
            finding = Finding(
                rule_id=hit.rule_id,
                family=hit.family,
                confidence=hit.confidence,
                fingerprint=fingerprint_of(hit.secret),
                redacted=redact(text),
                length=len(text),
                secret=text,
                description=hit.description,
            )
            by_secret[hit.secret] = finding
        elif hit.confidence > finding.confidence:
            _take_rule(finding, hit)
        finding.locations.append(hit.location)
    for secret, more in overflow.items():
        finding = by_secret.get(secret)
        if finding is None:  # pragma: no cover - compaction always keeps some hits
            continue
        finding.more_locations += more.count
        finding.more_allowed += more.allowed
        if more.best is not None and more.best.confidence > finding.confidence:
            _take_rule(finding, more.best)
    findings = list(by_secret.values())
    for f in findings:
        f.locations.sort(key=Location.sort_key)
    findings.sort(key=lambda f: (-f.confidence, f.locations[0].sort_key() if f.locations else ()))
    return findings


def _take_rule(finding: Finding, hit: Hit) -> None:
    finding.rule_id, finding.family = hit.rule_id, hit.family
    finding.confidence, finding.description = hit.confidence, hit.description


def drop_inline_allowed(findings: list[Finding]) -> tuple[list[Finding], int]:
    """Remove locations carrying an allow comment; a finding with none left is suppressed.

    Returns the remaining findings and how many locations were suppressed.
    """
    kept: list[Finding] = []
    suppressed = 0
    for f in findings:
        remaining = [loc for loc in f.locations if not loc.inline_allowed]
        suppressed += len(f.locations) - len(remaining) + f.more_allowed
        f.more_locations -= f.more_allowed
        f.more_allowed = 0
        if remaining or f.more_locations:
            f.locations = remaining
            kept.append(f)
    return kept, suppressed
