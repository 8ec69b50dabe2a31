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
* archives (keyscan.formats.archives): members scanned to ``ContentOptions.archive_depth``;
  container images (keyscan.formats.images) are archives too;
* PDFs (keyscan.formats.pdf): page text, document strings and decoded streams, besides
  the raw bytes.

Problems (an archive refused as a bomb, a member that cannot be read) are appended to the
``errors`` list the caller passes. It is a required argument of every entry point here and of
every format: a partial scan never exits 0, so nothing may drop what could not be read.

The formats (``keyscan.formats``) are a layer below this one: they never import it, and are
handed a way to rescan the bytes they expand (``_rescan``, ``_cell_finder``).

Streams (stdin, pipes, big files, big archive members) are read here too, in overlapping
chunks (``scan_stream``), so that memory stays bounded and a key across a chunk boundary is
still found exactly once.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, BinaryIO

from keyscan.detector import MAX_MATCH_SPAN, Detector, resolve_overlaps
from keyscan.findings import Hit, HitSink, hits_from_matches, is_binary
from keyscan.formats import archive_kind, decoders, is_notebook, is_pdf
from keyscan.models import Confidence, Location, Match, Rule, ScanError
from keyscan.records import dataclass, replace

if TYPE_CHECKING:
    from keyscan.formats.archives import Rescan

# Notebooks bigger than this are scanned as plain text (in chunks), without cell locations.
NOTEBOOK_MAX_BYTES = 256 * 1024 * 1024
# PDFs bigger than this are scanned as raw bytes only (in chunks), and said so.
PDF_MAX_BYTES = 256 * 1024 * 1024
# Streams are read in chunks of CHUNK bytes that overlap by OVERLAP bytes.
CHUNK = 8 * 1024 * 1024
OVERLAP = 2 * MAX_MATCH_SPAN


@dataclass(frozen=True)
class ContentOptions:
    """How deep to look into content. Picklable: it travels to worker processes."""

    decode: bool = True  # base64, percent-encoding, string escapes, UTF-16 (--no-decode)
    archive_depth: int = 3  # zip/tar/gz members, nested up to this depth (--archive-depth)
    # Zip-bomb limits: total bytes inflated from one archive on disk (nested members
    # included), and the largest inflated/compressed ratio accepted for a member above
    # ``archive_ratio_floor`` bytes.
    archive_max_bytes: int = 1024 * 1024 * 1024
    archive_max_ratio: int = 200
    archive_ratio_floor: int = 1024 * 1024


DEFAULT_OPTIONS = ContentOptions()


def scan_buffer(
    detector: Detector,
    data: bytes,
    template: Location,
    options: ContentOptions | None = None,
    base_offset: int = 0,
    base_line: int = 1,
    limit: int | None = None,
    *,
    errors: list[ScanError],
) -> list[Hit]:
    """Hits in one buffer. ``limit``: ignore matches starting at or after this offset (the
    overlap that a chunked reader will see again in its next buffer).

    A buffer that is a whole file or blob (``base_offset`` 0, no limit inside it) may be an
    archive or a notebook; what could not be scanned inside it is appended to ``errors``."""
    opts = options or DEFAULT_OPTIONS
    hits = _scan(
        detector, data, template, opts, base_offset, base_line, limit, errors, utf16_ok=True
    )
    # A PDF: checked after the detector has read the buffer (its first kilobyte is in the CPU
    # cache), and text that does not start with the marker pays one comparison.
    if (
        base_offset == 0
        and (template.binary or data[:5] == b"%PDF-")
        and (limit is None or limit >= len(data))
        and is_pdf(data, template.binary)
        and not (opts.archive_depth > 0 and archive_kind(data[:512]))  # a PDF in a zip
    ):
        from keyscan.formats import pdf  # only for a buffer that is one

        found, hits = pdf.scan_pdf(data, template, opts, _pdf_finder(detector, opts), hits, errors)
        return _merge(hits, found)
    return hits


def load_readers(options: ContentOptions) -> None:
    """Import the format readers ``scan_buffer`` imports when it first meets their format
    (archives when ``options`` opens them, PDFs, notebooks): before a worker pool forks, so
    that the workers inherit them instead of each importing them again (~20 ms of CPU each)."""
    if options.archive_depth > 0:
        from keyscan.formats import archives  # noqa: F401
    from keyscan.formats import notebooks, pdf  # noqa: F401


def nothing_to_find(detector: Detector, data: bytes, options: ContentOptions) -> bool:
    """True only when ``scan_buffer`` over the whole buffer (no path hint) can answer
    nothing, no hit and no error: not an archive it would open, not a PDF, not UTF-16 or
    UTF-32 text, and no rule keyword nor decoder gate needle in it (one keyword pass). The
    history's hot path: most objects stop here. It lives beside ``scan_buffer`` so that a
    format added to the one is not forgotten by the other."""
    if options.archive_depth > 0 and archive_kind(data[:512]):
        return False
    if is_pdf(data[:1024], is_binary(data[:1024])):
        return False
    if options.decode and decoders.wide_encoding(data) is not None:
        return False
    return not detector.finds_keywords(data)


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

        rescan = _rescan(detector, options)
        return archives.scan_archive_bytes(data, template, options, rescan, errors)
    matches, keywords = detector.scan_keyed(data)
    plain = [m for m in matches if limit is None or m.start < limit]
    hits = hits_from_matches(data, plain, template, base_offset, base_line) if plain else []
    if whole and is_notebook(template.name):
        from keyscan.formats import notebooks

        cells = notebooks.scan_notebook(data, template, _cell_finder(detector, options), base_line)
        if cells is not None:
            hits = _merge(cells, hits)
    if not options.decode:
        return hits
    # No keyword offsets (nor gate needle): no decoder has anything to look at
    # (decoders.worth_decoding with gates checked), so the call is skipped.
    # Decoded for the whole buffer, the overlap included: a plain match before the limit that
    # spans an encoded key starting past it is that key's encoded form, as in a whole scan
    # (the next buffer reports the key itself).
    spanning = (
        _decoded_hits(detector, data, keywords, template, matches, base_offset, base_line, None)
        if keywords
        else []
    )
    found = [h for h in spanning if limit is None or h.location.offset - base_offset < limit]
    beyond = [h for h in spanning if limit is not None and h.location.offset - base_offset >= limit]
    if utf16_ok:
        encoding = decoders.wide_encoding(data, at_start=base_offset == 0)
        if encoding is not None:
            found.extend(
                _utf16_hits(
                    detector,
                    data,
                    encoding,
                    template,
                    options,
                    base_offset,
                    base_line,
                    limit,
                    errors,
                )
            )
    if not found and not beyond:
        return hits
    return _merge(_drop_encoded_forms(hits, found + beyond), found)


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


def _rescan(detector: Detector, options: ContentOptions) -> Rescan:
    """How archives scan their members: as content, without opening archives again (nested
    archives are opened by the archive code itself, to ``archive_depth``)."""
    from keyscan.formats.archives import Rescan

    flat = replace(options, archive_depth=0)

    def buffer(data: bytes, template: Location, errors: list[ScanError]) -> list[Hit]:
        return scan_buffer(detector, data, template, flat, errors=errors)

    def stream(
        fh: BinaryIO, template: Location, errors: list[ScanError]
    ) -> tuple[list[Hit], int]:
        return scan_stream(detector, fh, template, flat, errors=errors)

    return Rescan(buffer, stream)


def _pdf_finder(
    detector: Detector, options: ContentOptions
) -> Callable[[bytes, Location, list[ScanError]], list[Hit]]:
    """How PDFs scan the text and streams they decode: as content (an embedded archive is
    opened), but a PDF inside a PDF is not read again."""

    def find(data: bytes, template: Location, errors: list[ScanError]) -> list[Hit]:
        return _scan(detector, data, template, options, 0, 1, None, errors, utf16_ok=True)

    return find


def _cell_finder(
    detector: Detector, options: ContentOptions
) -> Callable[[bytes], list[tuple[int, Match, str]]]:
    """How notebooks scan one decoded string of a cell: plain matches, then (with
    ``options.decode``) keys found by decoding, at another place or with another secret."""

    def find(value: bytes) -> list[tuple[int, Match, str]]:
        matches, keywords = detector.scan_keyed(value)
        results = [(m.start, m, "") for m in matches]
        if options.decode:
            plain = {(m.start, m.secret) for _, m, _ in results}
            for s, _e, m, how in decoded_matches(detector, value, keywords):
                if (s, m.secret) not in plain:
                    results.append((s, m, how))
        return results

    return find


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
        if d.joints is not None:
            # Joined lines: only a whole key across a joint (the rest is plain text, found
            # plainly; a value glued onto the next line's text is no key).
            # Literals concatenated: a key assembled by code is likely but not certain (low).
            concatenated = d.how == decoders.CONCATENATED
            for m in found:
                if m.confidence > Confidence.LOW and any(m.start < j < m.end for j in d.joints):
                    if concatenated:
                        m = replace(m, rule=_low(m.rule))
                    yield d.to_parent(m.start), d.to_parent(max(m.start, m.end - 1)) + 1, m, d.how
            continue
        for m in found:
            yield d.to_parent(m.start), d.to_parent(max(m.start, m.end - 1)) + 1, m, d.how
        if depth + 1 < decoders.MAX_DEPTH:
            for s, e, m, how in decoded_matches(detector, d.data, inner_keywords, depth + 1):
                yield d.to_parent(s), d.to_parent(max(s, e - 1)) + 1, m, f"{d.how}>{how}"


_LOWERED: dict[str, tuple[Rule, Rule]] = {}


def _low(rule: Rule) -> Rule:
    """``rule`` at low confidence (one copy per rule, kept)."""
    got = _LOWERED.get(rule.id)
    if got is None or got[0] is not rule:
        got = (rule, replace(rule, confidence=Confidence.LOW))
        _LOWERED[rule.id] = got
    return got[1]


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
        best[k] = (Match(m.rule, start, end, m.secret, m.family, m.endpoint), how)
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
    errors: list[ScanError],
) -> list[Hit]:
    """Keys in UTF-16 or UTF-32 text: scanned as UTF-8, located by line and column in the
    text and by byte offset in the wide buffer."""
    decoded = decoders.decode_wide(data, encoding)
    inner = replace(template, binary=False, extra=dict(template.extra))
    # Line numbers continue from the chunk's first line (the caller counted "\n" bytes).
    hits = _scan(
        detector, decoded.data, inner, options, 0, base_line, None, errors, utf16_ok=False
    )
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
    """Archives, notebooks and PDFs on disk, which are scanned whole rather than in chunks.
    Returns (hits, bytes) or None for an ordinary file (fh is then left at its start)."""
    head = fh.read(1024)
    fh.seek(0)
    if options.archive_depth > 0 and archive_kind(head):
        from keyscan.formats import archives

        rescan = _rescan(detector, options)
        return archives.scan_archive_file(fh, template, options, rescan, errors), size
    if is_notebook(template.name) and size <= NOTEBOOK_MAX_BYTES:
        data = fh.read()
        return scan_buffer(detector, data, template, options, errors=errors), len(data)
    if is_pdf(head):
        if size <= PDF_MAX_BYTES:
            data = fh.read()
            return scan_buffer(detector, data, template, options, errors=errors), len(data)
        errors.append(
            ScanError(
                template.display_path,
                f"PDF larger than {PDF_MAX_BYTES // (1024 * 1024)} MiB: scanned as raw bytes, "
                "its streams not decoded",
            )
        )
    return None


def scan_image_dir(
    detector: Detector,
    root: str,
    template: Location,
    options: ContentOptions | None,
    errors: list[ScanError],
) -> list[Hit]:
    """An OCI image layout on disk (the folder ``root`` holding ``oci-layout``), read as one
    image (keyscan.formats.images); ``template`` names the folder."""
    from keyscan.formats import archives

    opts = options or DEFAULT_OPTIONS
    return archives.scan_image_dir(root, template, opts, _rescan(detector, opts), errors)


def scan_stream(
    detector: Detector,
    stream: BinaryIO,
    template: Location,
    options: ContentOptions | None = None,
    chunk: int = CHUNK,
    *,
    errors: list[ScanError],
    sink: HitSink | None = None,
) -> tuple[list[Hit], int]:
    """Scan a binary stream in overlapping chunks. Returns (hits, bytes read); with a
    ``sink``, hits go there chunk by chunk (bounded per secret) and none are returned.
    What could not be scanned is appended to ``errors``."""
    hits: list[Hit] = []
    buf = _read_chunk(stream, chunk)
    template.binary = is_binary(buf)
    if len(buf) >= chunk:
        _archive_too_big_for_a_stream(buf, template, options, errors)
    base = 0  # absolute offset of buf[0]
    line = 1  # line number at buf[0]
    column = 0  # characters of that line before buf[0] (a long line spans chunks)
    total = len(buf)
    while True:
        more = _read_chunk(stream, chunk) if len(buf) >= chunk else b""
        last = not more
        # Matches that start in the overlap are left for the next buffer, which re-reads it.
        limit = len(buf) if last else len(buf) - OVERLAP
        if buf:
            found = scan_buffer(
                detector, buf, template, options, base, line, limit, errors=errors
            )
            if column:  # hits on the chunk's first line: count the line from its start
                first_nl = buf.find(b"\n")
                first_line_end = len(buf) if first_nl < 0 else first_nl
                for h in found:
                    if h.location.offset - base < first_line_end:
                        h.location.column += column
            if sink is not None:
                sink.add(found)
            else:
                hits.extend(found)
        if last:
            return hits, total
        line += buf.count(b"\n", 0, limit)
        nl = buf.rfind(b"\n", 0, limit)
        tail = buf[nl + 1 : limit].decode("utf-8", "replace")
        column = len(tail) if nl >= 0 else column + len(tail)
        base += limit
        buf = buf[limit:] + more
        total += len(more)


def _read_chunk(stream: BinaryIO, chunk: int) -> bytes:
    """Up to ``chunk`` bytes: short reads (a pipe, a terminal) are read on until the chunk is
    full or the stream ends, so that chunking is the same as for a file."""
    data = stream.read(chunk)
    if not data or len(data) >= chunk:
        return data
    parts = [data]
    size = len(data)
    while size < chunk:
        part = stream.read(chunk - size)
        if not part:
            break
        parts.append(part)
        size += len(part)
    return b"".join(parts)


def _archive_too_big_for_a_stream(
    head: bytes, template: Location, options: ContentOptions | None, errors: list[ScanError]
) -> None:
    """A stream (stdin, a pipe) is not seekable: an archive bigger than one chunk on it is
    scanned as raw bytes only. Say so: its members were not opened."""
    opts = options or ContentOptions()
    if opts.archive_depth > 0 and archive_kind(head[:512]):
        errors.append(
            ScanError(
                template.display_path,
                f"archive larger than {CHUNK // (1024 * 1024)} MiB on a stream: scanned as raw "
                "bytes, members not opened (save it to a file and scan the file)",
            )
        )
