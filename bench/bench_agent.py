"""Benchmark (not a test): what a coding agent waits for on every tool call.

    python bench/bench_agent.py [--runs 21]

* in process: ``keyscan.agent.decide`` on a PreToolUse Write of a 12 KB clean file and of one
  holding a key, with a warm scanner (median of --runs rounds of 20 calls);
* whole process: ``keyscan hook agent`` started for one call, as an agent runs it (median of
  --runs runs), beside ``python -c pass``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from keyscan.keygen import key


def payload(content: str) -> dict[str, object]:
    return {
        "hook_event_name": "PreToolUse",
        "tool_name": "Write",
        "tool_input": {"file_path": "/nonexistent/app.py", "content": content},
        "cwd": "/",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()

    from keyscan.agent import decide
    from keyscan.api import Scanner

    scanner = Scanner()
    clean = "x = compute(value)\n" * 640
    leaky = clean[:6000] + f'OPENAI_API_KEY = "{key("project")}"\n' + clean[6000:]
    for name, text in (("clean 12 KB write", clean), ("12 KB write with a key", leaky)):
        p = payload(text)
        rounds = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            for _ in range(20):
                decide(p, scanner)
            rounds.append((time.perf_counter() - t0) / 20 * 1e3)
        print(f"in process, {name}: {statistics.median(rounds):.3f} ms per call")
    body = json.dumps(payload(clean))
    for label, argv in (
        ("keyscan hook agent (whole process)", [sys.executable, "-m", "keyscan", "hook", "agent"]),
        ("python -c pass", [sys.executable, "-c", "pass"]),
    ):
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run(argv, input=body, capture_output=True, text=True)
            times.append((time.perf_counter() - t0) * 1e3)
        print(f"{label}: {statistics.median(times):.0f} ms median of {args.runs}")


if __name__ == "__main__":
    main()
