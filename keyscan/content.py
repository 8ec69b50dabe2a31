"""Content → hits: the one function every source calls on a buffer it has read.

Files (chunk by chunk), stdin, git blobs, commit messages and staged content all go through
``scan_buffer``, so anything that extends what is found in content (decoders for encoded
keys, notebooks, ...) is written once, here, and works for every source.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyscan.detector import Detector
from keyscan.findings import Hit, hits_from_matches
from keyscan.models import Location


@dataclass(frozen=True)
class ContentOptions:
    """How deep to look into content. Picklable: it travels to worker processes."""

    decode: bool = True  # base64, percent-encoding, string escapes, UTF-16 (--no-decode)
    archive_depth: int = 2  # zip/tar/gz members, nested up to this depth (--archive-depth)


def scan_buffer(
    detector: Detector,
    data: bytes,
    template: Location,
    options: ContentOptions | None = None,
    base_offset: int = 0,
    base_line: int = 1,
    limit: int | None = None,
) -> list[Hit]:
    """Hits in one buffer. ``limit``: ignore matches starting at or after this offset (the
    overlap that a chunked reader will see again in its next buffer)."""
    matches = detector.scan(data)
    if limit is not None:
        matches = [m for m in matches if m.start < limit]
    if not matches:
        return []
    return hits_from_matches(data, matches, template, base_offset, base_line)
