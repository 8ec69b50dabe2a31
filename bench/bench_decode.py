"""Benchmark: what decoding (base64, percent, escapes, UTF-16) costs on clean text.

    python bench/bench_decode.py [--mb 60] [--files 6000] [--runs 15] [--dir /tmp/ks_bench]

Generates (once) a tree with bench_scan.py's generator (source-like files, 1 in 20 OpenAI
client code, a few planted keys), reads every file into memory, then alternates
``keyscan.content.scan_buffer`` over all of them with ``ContentOptions()`` and with
``ContentOptions(decode=False)`` (``--no-decode``), ``--runs`` times each, and prints the
minimum CPU time of each (the least disturbed run on a shared machine) and their ratio.
A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scan import generate

from keyscan.content import ContentOptions, scan_buffer
from keyscan.detector import Detector
from keyscan.models import Location
from keyscan.rules import load_rules


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mb", type=int, default=60)
    ap.add_argument("--files", type=int, default=6000)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/ks_bench"))
    args = ap.parse_args()
    if not args.dir.exists():
        generate(args.dir, args.mb, args.files)
    bufs = []
    for folder, _, names in os.walk(args.dir):
        for name in names:
            bufs.append(Path(folder, name).read_bytes())
    detector = Detector(load_rules())
    template = Location("x", 0, 0, 0)
    options = {"decode": ContentOptions(), "no-decode": ContentOptions(decode=False)}
    cpu: dict[str, list[float]] = {k: [] for k in options}
    for _ in range(args.runs):
        for label, opts in options.items():
            start = time.process_time()
            for data in bufs:
                scan_buffer(detector, data, template, opts, errors=[])
            cpu[label].append(time.process_time() - start)
    best = {k: min(v) for k, v in cpu.items()}
    size = sum(map(len, bufs)) / 1e6
    print(f"{len(bufs)} files, {size:.1f} MB, minimum CPU of {args.runs} alternating runs:")
    for label, seconds in best.items():
        print(f"  {label:10s} {seconds:.3f} s  ({size / seconds:.0f} MB/s)")
    print(f"  ratio      {best['decode'] / best['no-decode']:.3f}")


if __name__ == "__main__":
    main()
