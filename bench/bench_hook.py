"""Whole-process time of the pre-commit hook entry on one staged file, beside detect-secrets.

    python bench/bench_hook.py [--runs 15] [--files 10000] [--detect-secrets PATH]

Builds a throwaway repository of ``--files`` committed Python files (the "large repository"),
stages one new 9.4 KB file, then runs, interleaved so that both see the same machine load,
``keyscan hook pre-commit`` and (if given) ``detect-secrets-hook <file>`` (install it in a
separate venv: ``python -m venv /tmp/ds && /tmp/ds/bin/pip install detect-secrets``), plus
``python -c pass`` for scale. Prints the median wall time and the median CPU (user+sys) of
each after two warm-up runs.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_repo(root: Path, files: int) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b.invalid",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b.invalid"}  # fmt: skip
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, env=env)
    rng = random.Random(1)
    per_dir = 100
    for n in range(files):
        folder = root / f"pkg{n // per_dir}"
        folder.mkdir(exist_ok=True)
        lines = [
            f"def f{i}(x):\n    return x * {rng.randint(0, 1000)}  # some code line\n"
            for i in range(40)
        ]
        (folder / f"mod{n % per_dir}.py").write_text("".join(lines))
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "commit", "-qm", "big"], check=True, env=env)
    staged = "pkg0/changed.py"
    body = "".join(f"def g{i}(x):\n    return x + {i}  # staged change\n" for i in range(200))
    (root / staged).write_text(body)
    subprocess.run(["git", "-C", str(root), "add", staged], check=True, env=env)
    return staged


def measure(commands: dict[str, list[str]], cwd: Path, runs: int) -> None:
    wall: dict[str, list[float]] = {k: [] for k in commands}
    cpu: dict[str, list[float]] = {k: [] for k in commands}
    for i in range(runs + 2):
        for name, argv in commands.items():
            started = time.perf_counter()
            proc = subprocess.Popen(
                argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            _, _, usage = os.wait4(proc.pid, 0)
            proc.returncode = 0
            if i >= 2:
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(usage.ru_utime + usage.ru_stime)
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} cores")
    for name in commands:
        print(
            f"{name}: wall median {statistics.median(wall[name]) * 1000:.0f} ms "
            f"(min {min(wall[name]) * 1000:.0f}), CPU median "
            f"{statistics.median(cpu[name]) * 1000:.0f} ms, {runs} runs"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--detect-secrets", help="path of detect-secrets-hook")
    args = parser.parse_args()
    keyscan = shutil.which("keyscan", path=str(Path(sys.executable).parent)) or "keyscan"
    with tempfile.TemporaryDirectory(prefix="keyscan-bench-hook-") as tmp:
        root = Path(tmp) / "repo"
        staged = make_repo(root, args.files)
        commands = {"keyscan hook pre-commit": [keyscan, "hook", "pre-commit"]}
        if args.detect_secrets:
            commands[f"detect-secrets-hook {staged}"] = [args.detect_secrets, staged]
        commands["python -c pass"] = [sys.executable, "-c", "pass"]
        measure(commands, root, args.runs)


if __name__ == "__main__":
    main()
