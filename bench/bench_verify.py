"""Benchmark for validity checks (README, section "Validity checks").

N distinct live keys (default 1,000) in one file, the fake OpenAI API on 127.0.0.1 with a
fixed latency per request (default 100 ms), then ``keyscan scan --verify`` twice with default
settings and a fresh cache directory: the first run asks once per key, the second should send
no request at all. Prints wall time and request counts.

    python bench/bench_verify.py [--keys 1000] [--latency 0.1] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from keyscan.keygen import key  # noqa: E402
from tests.fakeopenai import FakeServer, FakeState  # noqa: E402


def run_scan(src: Path, cache: Path, base_url: str, extra: list[str]) -> tuple[float, dict]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "KEYSCAN_CACHE_DIR")}
    env["XDG_CACHE_HOME"] = str(cache)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "keyscan", "scan", "--verify", "--api-base", base_url,
         "--format", "json", *extra, str(src)],
        capture_output=True, text=True, env=env, check=False,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 1:
        raise SystemExit(f"unexpected exit {proc.returncode}: {proc.stderr}")
    return wall, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=None,
                        help="--verify-concurrency (default: keyscan's default, 8)")
    args = parser.parse_args()
    extra = ["--verify-concurrency", str(args.concurrency)] if args.concurrency else []
    state = FakeState()
    state.latency = args.latency
    with tempfile.TemporaryDirectory() as tmp, FakeServer(state) as server:
        src = Path(tmp) / "src"
        src.mkdir()
        keys = [key("project") for _ in range(args.keys)]
        for k in keys:
            state.add_key(k)
        (src / "keys.env").write_text("".join(f"KEY_{i}={k}\n" for i, k in enumerate(keys)))
        cache = Path(tmp) / "cache"
        concurrency = args.concurrency or 8
        ideal = args.keys * args.latency / concurrency
        print(f"{args.keys} distinct keys, {args.latency * 1000:.0f} ms latency per request, "
              f"concurrency {concurrency} (ideal {ideal:.1f} s)")
        for label in ("first run (empty cache)", "second run (cache)"):
            before = len(state.log)
            child = resource.getrusage(resource.RUSAGE_CHILDREN)
            fake_cpu = time.process_time()
            wall, doc = run_scan(src, cache, server.base_url, extra)
            fake_cpu = time.process_time() - fake_cpu
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            keyscan_cpu = (after.ru_utime - child.ru_utime) + (after.ru_stime - child.ru_stime)
            requests = len(state.log) - before
            live = sum(1 for f in doc["findings"] if f["verification"]["status"] == "live")
            print(f"{label}: {wall:.2f} s wall, {requests} requests, {live} live, "
                  f"max in flight {state.max_in_flight}; CPU: keyscan {keyscan_cpu:.2f} s, "
                  f"fake server {fake_cpu:.2f} s; load average {os.getloadavg()[0]:.1f}")
        assert not state.spec_violations, state.spec_violations[:3]


if __name__ == "__main__":
    main()
