"""Benchmark: what the PDF reader costs, on real and generated PDFs, old against new.

    python bench/bench_formats.py [--repo /work/.mirror/psf+requests/repo] [--pdf F ...]
                                  [--old /tmp/old-tree] [--runs 7] [--no-generated]

PDFs: every blob of ``--repo`` (a git repository, bare or not) that is a PDF (``%PDF-`` in
its first kilobyte: Illustrator files too), the ``--pdf`` files, and generated ones (a big
text, many pages, TJ arrays with kerning, ToUnicode fonts, object streams, an illustration
of a megabyte of paths with one line of text). For each, the reader
(``keyscan.formats.pdf.scan_pdf`` with the real finder: what a scan adds to the raw bytes'
scan) is timed ``--runs`` times; with ``--old`` (a keyscan source tree, e.g. one exported
with ``git archive``) the old tree's ``formats/pdf.py`` is loaded beside the current one and
the two alternate in the same interpreter (paired runs). Prints the median wall time, the
file's MB/s and the ratio; then the same for ``content_text`` alone over the inflated
content streams (the tokenizer's MB/s). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine

from keyscan.content import ContentOptions, _pdf_finder
from keyscan.detector import Detector
from keyscan.findings import is_binary
from keyscan.formats import pdf as new_pdf
from keyscan.keygen import key
from keyscan.models import Location
from keyscan.rules import load_rules


def repo_pdfs(repo: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of every blob of ``repo``'s history whose path ends in .pdf or .ai and
    that is a PDF (``%PDF-`` in its first kilobyte)."""
    listing = subprocess.run(
        ["git", "-C", str(repo), "rev-list", "--objects", "--all", "--missing=allow-any"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\n")
    wanted: dict[bytes, bytes] = {}
    for row in listing:
        oid, _, path = row.partition(b" ")
        if path.lower().endswith((b".pdf", b".ai")):
            wanted.setdefault(oid, path)
    batch = subprocess.run(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        input=b"".join(oid + b"\n" for oid in wanted),
        capture_output=True,
        check=True,
    ).stdout
    out = []
    pos = 0
    while pos < len(batch):
        eol = batch.index(b"\n", pos)
        head = batch[pos:eol].split()
        pos = eol + 1
        if len(head) < 3 or head[1] != b"blob":
            continue  # missing
        size = int(head[2])
        data = batch[pos : pos + size]
        pos += size + 1
        if new_pdf_marker(data[:1024]):
            name = wanted[head[0]].rsplit(b"/", 1)[-1].decode("utf-8", "replace")
            out.append((f"{name[:14]}:{head[0][:7].decode()}", data))
    return out


def new_pdf_marker(head: bytes) -> bool:
    from keyscan.formats import is_pdf

    return is_pdf(head, is_binary(head))


# --- generated PDFs ------------------------------------------------------------------------


def _lit(text: bytes) -> bytes:
    return b"(" + text.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def build(pages: list[bytes], *, font: bytes = b"", extra: list[bytes] | None = None) -> bytes:
    """A valid PDF: FlateDecode page contents, one font (``font``: its dictionary and the
    objects after it), extra objects."""
    objs: list[bytes] = [b"", b""]
    font_dict = font or b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    objs.append(font_dict)
    kids = []
    for content in pages:
        data = zlib.compress(content)
        objs.append(
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream"
        )
        objs.append(
            b"<< /Type /Page /Parent 2 0 R /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents %d 0 R >>" % len(objs)
        )
        kids.append(len(objs))
    objs[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objs[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    objs.extend(extra or [])
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    for i, body in enumerate(objs, 1):
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n%%%%EOF\n" % (len(objs) + 1)
    return bytes(out)


def _words(rng: random.Random, n: int) -> list[bytes]:
    vocab = [b"the", b"request", b"session", b"adapter", b"proxy", b"header", b"cookie", b"API"]
    return [rng.choice(vocab) for _ in range(n)]


def _drawing(rng: random.Random, n: int) -> bytes:
    ops = []
    for _ in range(n):
        r = rng.random()
        if r < 0.4:
            ops.append(b"%.3f %.3f l" % (rng.random() * 900, rng.random() * 900))
        elif r < 0.8:
            ops.append(
                b"%.2f %.2f %.2f %.2f %.2f %.2f c" % tuple(rng.random() * 700 for _ in "123456")
            )
        else:
            ops.append(rng.choice([b"f", b"h", b"q", b"Q", b"/GS0 gs", b"0.2 0.4 0.6 rg", b"S"]))
    return b"\n".join(ops)


def generated() -> list[tuple[str, bytes]]:
    rng = random.Random(16)
    k = key("project", seed=16).encode()
    out = []
    # A big text: 40 pages of 60 lines, one Tj a line.
    pages = []
    for _ in range(40):
        lines = [b"BT /F1 10 Tf 72 760 Td 12 TL"]
        for _ in range(60):
            lines.append(_lit(b" ".join(_words(rng, 12))) + b" Tj T*")
        lines.append(b"ET")
        pages.append(b"\n".join(lines))
    pages[-1] += b"\nBT (" + k + b") Tj ET"
    out.append(("gen:big-text", build(pages)))
    # Many pages: 2,000 short ones.
    out.append(
        ("gen:many-pages", build([b"BT 72 700 Td (page %d) Tj ET" % i for i in range(2000)]))
    )
    # TJ arrays with kerning, every word in pieces.
    pages = []
    for _ in range(30):
        lines = [b"BT /F1 10 Tf 72 760 Td"]
        for _ in range(50):
            arr = b" ".join(
                _lit(w[: len(w) // 2]) + b" -%d " % rng.randrange(5, 60) + _lit(w[len(w) // 2 :])
                for w in _words(rng, 10)
            )
            lines.append(b"[" + arr + b"] TJ 0 -12 Td")
        lines.append(b"ET")
        pages.append(b"\n".join(lines))
    out.append(("gen:tj-kerning", build(pages)))
    # ToUnicode: 2-byte glyph ids through a CMap.
    chars = sorted({c for w in _words(random.Random(1), 200) for c in w.decode()} | {" "})
    gid = {c: 0x0100 + i for i, c in enumerate(chars)}
    cmap = zlib.compress(
        b"%d beginbfchar\n" % len(chars)
        + b"".join(b"<%04X> <%04X>\n" % (gid[c], ord(c)) for c in chars)
        + b"endbfchar\n"
    )
    tounicode = (
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(cmap) + cmap + b"\nendstream"
    )
    font = b"<< /Type /Font /Subtype /Type0 /Encoding /Identity-H /ToUnicode %d 0 R >>"
    pages = []
    for _ in range(30):
        lines = [b"BT /F1 10 Tf 72 760 Td"]
        for _ in range(50):
            text = b" ".join(_words(rng, 10)).decode()
            lines.append(b"<" + b"".join(b"%04X" % gid[c] for c in text) + b"> Tj 0 -12 Td")
        lines.append(b"ET")
        pages.append(b"\n".join(lines))
    n_objs = 3 + 2 * len(pages)
    out.append(("gen:tounicode", build(pages, font=font % (n_objs + 1), extra=[tounicode])))
    # Object streams: 5,000 dictionaries with strings.
    inner = [b"<< /Title (%s) /Author (%s) >>" % (w, w) for w in _words(rng, 5000)]
    header = b"".join(b"%d %d " % (1000 + i, sum(map(len, inner[:i]))) for i in range(len(inner)))
    body = zlib.compress(header + b"".join(inner))
    objstm = (
        b"<< /Type /ObjStm /N %d /First %d /Length %d /Filter /FlateDecode >>\nstream\n"
        % (len(inner), len(header), len(body))
        + body
        + b"\nendstream"
    )
    out.append(("gen:object-streams", build([b"BT (x) Tj ET"], extra=[objstm])))
    # An illustration: a megabyte of paths, one line of text.
    out.append(
        (
            "gen:drawing",
            build([_drawing(rng, 40_000) + b"\nBT (logo) Tj ET\n" + _drawing(rng, 10_000)]),
        )
    )
    return out


# --- timing --------------------------------------------------------------------------------


def load_old(tree: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "old_keyscan_pdf", tree / "keyscan" / "formats" / "pdf.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def content_streams(data: bytes) -> list[bytes]:
    """The inflated streams the reader reads as content (page contents, or any that shows
    text inside BT): what content_text is given."""
    r = new_pdf._Reader(data, Location("x", 0, 0, 0), ContentOptions(), lambda *a: [], [], 1 << 40)
    new_pdf._read_objects(r)
    pages = new_pdf._page_contents(r)
    out = []
    for obj in r.objects:
        if obj.stream is None:
            continue
        try:
            d = new_pdf._decode(r, obj)
        except Exception:  # a benchmark: what does not decode is not timed
            continue
        if d is None:
            continue
        shows = b"Tj" in d or b"TJ" in d or b"'" in d or b'"' in d
        if shows and (obj.num in pages or b"BT" in d):
            out.append(d)
    return out


def paired(fns: dict[str, Callable[[], Any]], runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm
    for _ in range(runs):
        for label, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repo", type=Path, action="append", default=[])
    ap.add_argument("--pdf", type=Path, nargs="*", default=[])
    ap.add_argument("--old", type=Path, help="an old keyscan source tree to compare with")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--no-generated", action="store_true")
    args = ap.parse_args()
    docs: list[tuple[str, bytes]] = []
    for repo in args.repo:
        docs.extend(repo_pdfs(repo))
    docs.extend((p.name, p.read_bytes()) for p in args.pdf)
    if not args.no_generated:
        docs.extend(generated())
    mods = {"new": new_pdf}
    if args.old:
        mods = {"old": load_old(args.old), "new": new_pdf}
    opts = ContentOptions()
    find = _pdf_finder(Detector(load_rules()), opts)
    print(f"{machine()}; medians of {args.runs} alternating runs, wall")
    head = "  ".join(f"{k:>17s}" for k in mods)
    print(f"{'PDF':24s} {'MB':>6s}  {head}" + ("  old/new" if args.old else ""))
    totals = {k: 0.0 for k in mods}
    for name, data in docs:
        tmpl = Location(name, 0, 0, 0, binary=is_binary(data))
        fns = {
            label: (lambda m=m, d=data, t=tmpl: m.scan_pdf(d, t, opts, find, [], []))
            for label, m in mods.items()
        }
        med = paired(fns, args.runs)
        mb = len(data) / 1e6
        cells = "  ".join(f"{med[k] * 1e3:8.1f} ms {mb / med[k]:5.0f}/s" for k in mods)
        ratio = f"  {med['old'] / med['new']:6.1f}x" if args.old else ""
        print(f"{name[:24]:24s} {mb:6.2f}  {cells}{ratio}")
        for k in mods:
            totals[k] += med[k]
    if args.old:
        print(
            f"{'all':24s} {'':6s}  total old {totals['old']:.3f} s, new {totals['new']:.3f} s,"
            f" {totals['old'] / totals['new']:.1f}x"
        )
    print("\ncontent_text alone (the tokenizer), inflated content bytes:")
    for name, data in docs:
        streams = content_streams(data)
        size = sum(map(len, streams)) / 1e6
        if not streams:
            continue
        fns = {
            label: (lambda m=m, ss=streams: [m.content_text(s) for s in ss])
            for label, m in mods.items()
        }
        med = paired(fns, args.runs)
        cells = "  ".join(f"{med[k] * 1e3:8.1f} ms {size / med[k]:5.0f}/s" for k in mods)
        ratio = f"  {med['old'] / med['new']:6.1f}x" if args.old else ""
        print(f"{name[:24]:24s} {size:6.2f}  {cells}{ratio}")


if __name__ == "__main__":
    main()
