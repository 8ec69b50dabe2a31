"""From detector matches to findings: locate (line, column), inline allow comments, dedupe.

A *hit* is one secret at one location. ``aggregate`` turns hits into findings: one finding per
unique secret, holding every location, with the most confident rule that matched it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from keyscan.models import Confidence, Finding, Location, Match, fingerprint_of, redact

# Comments that suppress a finding on their own line. gitleaks' and detect-secrets' spellings
# are honoured so that users can migrate without touching their code.
ALLOW_COMMENT = re.compile(rb"keyscan:allow|gitleaks:allow|pragma:\s*allowlist[ -]secret")


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
            extra=dict(template.extra),
            inline_allowed=allowed,
        )
        hits.append(Hit(m.rule.id, m.rule.description, m.family, m.rule.confidence, m.secret, loc))
    return hits


def aggregate(hits: Iterable[Hit]) -> list[Finding]:
    """One finding per unique secret, most confident rule first, locations sorted."""
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
            finding.rule_id, finding.family = hit.rule_id, hit.family
            finding.confidence, finding.description = hit.confidence, hit.description
        finding.locations.append(hit.location)
    findings = list(by_secret.values())
    for f in findings:
        f.locations.sort(key=Location.sort_key)
    findings.sort(key=lambda f: (-f.confidence, f.locations[0].sort_key() if f.locations else ()))
    return findings


def drop_inline_allowed(findings: list[Finding]) -> tuple[list[Finding], int]:
    """Remove locations carrying an allow comment; a finding with none left is suppressed.

    Returns the remaining findings and how many locations were suppressed.
    """
    kept: list[Finding] = []
    suppressed = 0
    for f in findings:
        remaining = [loc for loc in f.locations if not loc.inline_allowed]
        suppressed += len(f.locations) - len(remaining)
        if remaining:
            f.locations = remaining
            kept.append(f)
    return kept, suppressed
