"""Content → hits: the one function every source calls on a buffer it has read.

Files (chunk by chunk), stdin, git blobs, commit messages and staged content all go through
``scan_buffer``, so anything that extends what is found in content (decoders for encoded
keys, notebooks, archives) is written once, here, and works for every source:

* plain matches of the rules over the bytes;
* when ``ContentOptions.decode``: keys that are base64/base64url, percent-encoded, behind
  JSON/JS string escapes, or in UTF-16 text (see keyscan.formats.decoders), located at the encoded
  text, with ``Location.decoded`` naming the chain of decoders ("base64", "base64>percent");
  a key also found plainly at the same place is reported once, plainly;
* Jupyter notebooks (keyscan.formats.notebooks): the same key, located by cell and line in the cell;
* archives (keyscan.formats.archives): members scanned to ``ContentOptions.archive_depth``.

Problems (an archive refused as a bomb, a member that cannot be read) are appended to the
``errors`` list the caller passes: a source that can meet archives must pass one and report
what it gets, since a partial scan never exits 0.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import BinaryIO

from keyscan.formats import decoders
from keyscan.detector import Detector, resolve_overlaps
from keyscan.findings import Hit, hits_from_matches
from keyscan.models import Location, Match, ScanError

# Notebooks bigger than this are scanned as plain text (in chunks), without cell locations.
NOTEBOOK_MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class ContentOptions:
    """How deep to look into content. Picklable: it travels to worker processes."""

    decode: bool = True  # base64, percent-encoding, string escapes, UTF-16 (--no-decode)
    archive_depth: int = 2  # zip/tar/gz members, nested up to this depth (--archive-depth)
    # Zip-bomb limits: total bytes inflated from one archive on disk (nested members
    # included), and the largest inflated/compressed ratio accepted for a member above
    # ``archive_ratio_floor`` bytes.
    archive_max_bytes: int = 1024 * 1024 * 1024
    archive_max_ratio: int = 200
    archive_ratio_floor: int = 1024 * 1024


DEFAULT_OPTIONS = ContentOptions()


def archive_kind(head: bytes) -> str | None:
    """The archive format from the first 512 bytes (magic numbers, not names): "zip",
    "gzip", "bzip2", "xz" or "tar", else None. Cheap: the archive code is imported only
    for a buffer that is one."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:3] == b"\x1f\x8b\x08":
        return "gzip"
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] == b"1AY&SY":
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[257:262] == b"ustar":
        return "tar"
    return None


def scan_buffer(
    detector: Detector,
    data: bytes,
    template: Location,
    options: ContentOptions | None = None,
    base_offset: int = 0,
    base_line: int = 1,
    limit: int | None = None,
    errors: list[ScanError] | None = None,
) -> list[Hit]:
    """Hits in one buffer. ``limit``: ignore matches starting at or after this offset (the
    overlap that a chunked reader will see again in its next buffer).

    A buffer that is a whole file or blob (``base_offset`` 0, no limit inside it) may be an
    archive or a notebook; pass ``errors`` to learn what could not be scanned inside it."""
    return _scan(
        detector,
        data,
        template,
        options or DEFAULT_OPTIONS,
        base_offset,
        base_line,
        limit,
        errors if errors is not None else [],
        utf16_ok=True,
    )


def _scan(
    detector: Detector,
    data: bytes,
    template: Location,
    options: ContentOptions,
    base_offset: int,
    base_line: int,
    limit: int | None,
    errors: list[ScanError],
    utf16_ok: bool,
) -> list[Hit]:
    whole = base_offset == 0 and (limit is None or limit >= len(data))
    if whole and options.archive_depth > 0 and archive_kind(data[:512]):
        from keyscan.formats import archives  # tarfile, zipfile, lzma...: only when needed

        return archives.scan_archive_bytes(detector, data, template, options, errors)
    matches, keywords = detector.scan_keyed(data)
    plain = [m for m in matches if limit is None or m.start < limit]
    hits = hits_from_matches(data, plain, template, base_offset, base_line) if plain else []
    if whole and _is_notebook(template.path):
        from keyscan.formats import notebooks

        cells = notebooks.scan_notebook(detector, data, template, options, base_line)
        if cells is not None:
            hits = _merge(cells, hits)
    if not options.decode:
        return hits
    found = _decoded_hits(
        detector, data, keywords, template, matches, base_offset, base_line, limit
    )
    if utf16_ok:
        encoding = decoders.utf16_encoding(data, at_start=base_offset == 0)
        if encoding is not None:
            found.extend(
                _utf16_hits(
                    detector, data, encoding, template, options, base_offset, base_line, limit
                )
            )
    if not found:
        return hits
    return _merge(_drop_encoded_forms(hits, found), found)


def _drop_encoded_forms(plain: list[Hit], decoded: list[Hit]) -> list[Hit]:
    """A less confident plain match that spans the encoded text of a decoded key (the base64
    blob assigned to OPENAI_API_KEY) is that key in disguise: report the key only."""
    starts = sorted((h.location.offset, h.confidence) for h in decoded)
    offsets = [s for s, _ in starts]
    out = []
    for h in plain:
        lo, hi = h.location.offset, h.location.offset + len(h.secret)
        inside = starts[bisect.bisect_left(offsets, lo) : bisect.bisect_left(offsets, hi)]
        if any(c > h.confidence for _, c in inside):
            continue
        out.append(h)
    return out


def _is_notebook(path: str) -> bool:
    return path.lower().endswith(".ipynb")


def _merge(first: list[Hit], then: list[Hit]) -> list[Hit]:
    """Hits of ``first``, then those of ``then`` at another place or with another secret."""
    seen = {(h.location.offset, h.secret) for h in first}
    out = list(first)
    for h in then:
        k = (h.location.offset, h.secret)
        if k not in seen:
            seen.add(k)
            out.append(h)
    return out


def decoded_matches(
    detector: Detector, data: bytes, keywords: bool | Sequence[int] = True, depth: int = 0
) -> Iterator[tuple[int, int, Match, str]]:
    """(start, end, match, how) of keys found by decoding regions of data. start/end are
    offsets of the encoded text in data; ``match`` is relative to the decoded text.
    ``keywords``: offsets of rule keywords in data (``Detector.scan_keyed``), or True when
    unknown (see decoders.candidates)."""
    if not decoders.worth_decoding(
        data,
        keywords,
        gates_checked=keywords is not True,  # scan_keyed covers the gates
    ):
        return
    for d in decoders.candidates(data, keywords):
        found, inner_keywords = detector.scan_keyed(d.data)
        for m in found:
            yield d.to_parent(m.start), d.to_parent(max(m.start, m.end - 1)) + 1, m, d.how
        if depth + 1 < decoders.MAX_DEPTH:
            for s, e, m, how in decoded_matches(detector, d.data, inner_keywords, depth + 1):
                yield d.to_parent(s), d.to_parent(max(s, e - 1)) + 1, m, f"{d.how}>{how}"


def _decoded_hits(
    detector: Detector,
    data: bytes,
    keywords: Sequence[int],
    template: Location,
    plain: list[Match],
    base_offset: int,
    base_line: int,
    limit: int | None,
) -> list[Hit]:
    best: dict[tuple[int, bytes], tuple[Match, str]] = {}
    plain_spans: dict[bytes, list[tuple[int, int]]] = {}
    for p in plain:
        plain_spans.setdefault(p.secret, []).append((p.start, p.end))
    for start, end, m, how in decoded_matches(detector, data, keywords):
        if limit is not None and start >= limit:
            continue  # the next buffer of a chunked reader sees it whole
        if any(ps < end and start < pe for ps, pe in plain_spans.get(m.secret, ())):
            continue  # found plainly: reported once, as plain text
        k = (start, m.secret)
        if k in best and best[k][1].count(">") <= how.count(">"):
            continue
        best[k] = (Match(m.rule, start, end, m.secret, m.family), how)
    if not best:
        return []
    # Windows that cut a key short can yield a truncated match where another window has the
    # whole key: as for plain matches, overlapping spans keep the most confident, longest.
    how_of = {id(m): how for m, how in best.values()}
    kept = resolve_overlaps([m for m, _ in best.values()], detector.rules)
    ordered = [(m, how_of[id(m)]) for m in sorted(kept, key=lambda m: m.start)]
    hits = hits_from_matches(data, [m for m, _ in ordered], template, base_offset, base_line)
    prefix = f"{template.decoded}>" if template.decoded else ""
    for hit, (_, how) in zip(hits, ordered, strict=True):
        hit.location.decoded = prefix + how
    return hits


def _utf16_hits(
    detector: Detector,
    data: bytes,
    encoding: str,
    template: Location,
    options: ContentOptions,
    base_offset: int,
    base_line: int,
    limit: int | None,
) -> list[Hit]:
    """Keys in UTF-16 text: scanned as UTF-8, located by line and column in the text and by
    byte offset in the UTF-16 buffer."""
    decoded = decoders.decode_utf16(data, encoding)
    inner = replace(template, binary=False, extra=dict(template.extra))
    # Line numbers continue from the chunk's first line (the caller counted "\n" bytes).
    hits = _scan(detector, decoded.data, inner, options, 0, base_line, None, [], utf16_ok=False)
    out: list[Hit] = []
    for hit in hits:
        raw = decoded.to_parent(hit.location.offset)
        if limit is not None and raw >= limit:
            continue
        loc = hit.location
        loc.offset = base_offset + raw
        loc.decoded = encoding + (f">{loc.decoded}" if loc.decoded else "")
        if template.decoded:
            loc.decoded = f"{template.decoded}>{loc.decoded}"
        out.append(hit)
    return out


def scan_special_file(
    detector: Detector,
    fh: BinaryIO,
    template: Location,
    options: ContentOptions,
    size: int,
    errors: list[ScanError],
) -> tuple[list[Hit], int] | None:
    """Archives and notebooks on disk, which are scanned whole rather than in chunks.
    Returns (hits, bytes) or None for an ordinary file (fh is then left at its start)."""
    head = fh.read(512)
    fh.seek(0)
    if options.archive_depth > 0 and archive_kind(head):
        from keyscan.formats import archives

        return archives.scan_archive_file(detector, fh, template, options, errors), size
    if _is_notebook(template.path) and size <= NOTEBOOK_MAX_BYTES:
        data = fh.read()
        return scan_buffer(detector, data, template, options, errors=errors), len(data)
    return None
