"""Benchmark: what detection and decoding cost on a plain tree, in-process CPU.

    PYTHONPATH=OLD python bench/bench_plain_cost.py TREE [RUNS]
    PYTHONPATH=NEW python bench/bench_plain_cost.py TREE [RUNS]

Reads every file of TREE into memory, then times (``time.process_time``, best of RUNS)
``Detector.scan_keyed`` over all of them, the decoding stage (``content.decoded_matches``
with the keyword offsets scan_keyed found), and the whole per-file path of ``keyscan scan``
in one process (``sources.files.scan_tasks`` over the walk: open, read, scan, the file
name; warm page cache), with its cost per file. Run it alternately
over two checkouts (PYTHONPATH) to compare them; ``KEYSCAN_PURE_PYTHON=1`` times the
pure-Python keyword plan instead of Hyperscan. A benchmark, not a test (issue 15: new
formats cost only where they occur).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import keyscan
from keyscan.content import decoded_matches
from keyscan.detector import Detector
from keyscan.rules import load_rules
from keyscan.sources import files


def main() -> None:
    root = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    bufs = [
        Path(folder, name).read_bytes()
        for folder, _, names in os.walk(root)
        for name in sorted(names)
    ]
    det = Detector(load_rules())
    keywords = [det.scan_keyed(b)[1] for b in bufs]  # warm: switches to Hyperscan
    scan: list[float] = []
    decode: list[float] = []
    found = 0
    for _ in range(runs):
        t = time.process_time()
        for b in bufs:
            det.scan_keyed(b)
        scan.append(time.process_time() - t)
        t = time.process_time()
        found = 0
        for b, k in zip(bufs, keywords, strict=True):
            found += sum(1 for _ in decoded_matches(det, b, k))
        decode.append(time.process_time() - t)
    tasks = list(files.iter_walk([root], [], [], []))
    whole: list[float] = []
    for _ in range(runs):
        t = time.process_time()
        files.scan_tasks(det, tasks)
        whole.append(time.process_time() - t)
    size = sum(map(len, bufs)) / 1e6
    print(
        f"{Path(keyscan.__file__).parent.parent}: scan_keyed {min(scan):.4f} s  "
        f"decode {min(decode):.4f} s  files {min(whole):.4f} s "
        f"({min(whole) / len(tasks) * 1e6:.2f} us/file)  ({found} decoded matches, "
        f"{len(bufs)} files, {size:.0f} MB)"
    )


if __name__ == "__main__":
    main()
