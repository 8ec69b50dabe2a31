"""Benchmark ``keyscan git`` against the cost of reading every object once.

    python bench/bench_git.py REPO [REPO...] [--runs 5] [--no-log-p]

For each repository, runs every command once per round, ``--runs`` rounds (so that a change
of load on the machine hits every command alike), and reports medians of wall time and of peak memory (``/usr/bin/time``'s maximum resident set size: the largest single
process of the run, git or Python) and of CPU time (user + system of the whole process tree:
less sensitive than wall time to other load on the machine). Commands:

* floor: ``git cat-file --batch-all-objects --batch --unordered > /dev/null``
  (inflating every object once: what any complete history scanner must at least pay);
* ``git log --all -p > /dev/null`` (what log-based scanners read);
* ``keyscan git -j1`` and ``keyscan git -j2`` (JSON report to /dev/null);
* ``keyscan git -j1 --no-decode`` when the option exists (plain matching only).

Prints a Markdown table (the README shows one). Nothing here is timed inside the test suite.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TIME = "/usr/bin/time"


def measure(shell: str, cwd: Path) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds of the whole process tree, peak RSS KiB, exit code)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        cmd = [TIME, "-f", "%e %U %S %M", "-o", out.name, "sh", "-c", shell]
        env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", PYTHONDONTWRITEBYTECODE="1")
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)  # fmt: skip
        fields = out.read().split()
        if len(fields) < 4:
            raise SystemExit(f"{shell}: {proc.stderr.decode(errors='replace')}")
        wall, user, system, rss = fields[-4:]
        return float(wall), float(user) + float(system), int(rss), proc.returncode


def has_option(option: str) -> bool:
    proc = subprocess.run(
        [sys.executable, "-m", "keyscan", "git", "--help"], capture_output=True, text=True
    )
    return option in proc.stdout


def repo_facts(repo: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                              text=True).stdout.strip()  # fmt: skip

    commits = git("rev-list", "--all", "--count")
    objects = git("count-objects", "-v")
    size = next((ln.split()[1] for ln in objects.splitlines() if ln.startswith("size-pack")), "?")
    blobs = sum(
        1
        for ln in subprocess.run(
            ["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch-check"],
            capture_output=True,
            text=True,
        ).stdout.splitlines()
        if " blob " in ln
    )
    return f"{commits} commits, {blobs} blobs, pack {int(size) / 1024:.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("repos", nargs="+", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-log-p", action="store_true", help="skip git log --all -p")
    args = ap.parse_args(argv)
    py = shlex.quote(sys.executable)
    keyscan = f"{py} -m keyscan git --no-config -f json -o /dev/null"
    commands = [
        ("`git cat-file --batch-all-objects --batch --unordered` (floor)",
         "git cat-file --batch-all-objects --batch --unordered > /dev/null"),
        ("`keyscan git -j1`", f"{keyscan} -j1 ."),
        ("`keyscan git -j2`", f"{keyscan} -j2 ."),
    ]  # fmt: skip
    if has_option("--no-decode"):
        commands.append(("`keyscan git -j1 --no-decode`", f"{keyscan} -j1 --no-decode ."))
        commands.append(("`keyscan git -j2 --no-decode`", f"{keyscan} -j2 --no-decode ."))
    if not args.no_log_p:
        commands.append(("`git log --all -p`", "git log --all -p > /dev/null"))
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores, load average {load:.1f} at start, {args.runs} rounds "
          "(each round runs every command once, in turn), medians\n")  # fmt: skip
    for repo in args.repos:
        repo = repo.resolve()
        name = repo.parent.name if repo.name in ("repo", ".git") else repo.name
        print(f"### {name}: {repo_facts(repo)}\n")
        runs: dict[str, list[tuple[float, float, int, int]]] = {label: [] for label, _ in commands}
        for _ in range(args.runs):
            for label, shell in commands:
                runs[label].append(measure(shell, repo))
        print("| command | wall (s) | x floor | CPU (s) | x floor CPU | peak RSS (MiB) |")
        print("|---|---:|---:|---:|---:|---:|")
        floor_wall = floor_cpu = 0.0
        for label, _ in commands:
            wall = statistics.median(r[0] for r in runs[label])
            cpu = statistics.median(r[1] for r in runs[label])
            rss = statistics.median(r[2] for r in runs[label]) / 1024
            floor_wall, floor_cpu = floor_wall or wall, floor_cpu or cpu
            codes = {r[3] for r in runs[label]}
            if "keyscan" not in label and codes != {0}:
                # e.g. git log -p stops at the first object a trimmed mirror lacks
                label += f" (failed: exit {max(codes)}, not comparable)"
            print(f"| {label} | {wall:.2f} | {wall / floor_wall:.2f} | {cpu:.2f} | "
                  f"{cpu / floor_cpu:.2f} | {rss:.0f} |", flush=True)  # fmt: skip
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
