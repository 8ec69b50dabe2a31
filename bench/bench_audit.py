"""Benchmark ``keyscan audit`` over synthetic repositories, and draw the README screenshot.

    python bench/bench_audit.py [--repos 20] [--commits 150] [--runs 3] [--keep DIR]
    python bench/bench_audit.py --screenshot bench/audit-report.png

Timing: ``--repos`` repositories are generated with ``git fast-import`` (``--commits`` commits
each, a few hundred files, planted keys, some removed later). Then, each ``--runs`` times and
from a fresh store: ``keyscan audit --jobs 1``, ``keyscan audit --jobs 2``, and a second,
incremental audit with the ``--jobs 2`` store after one new commit in a quarter of the
repositories. Prints medians of wall time (a benchmark, not a test).

Screenshot: a small audit of five demo repositories, checked with ``--verify`` against the
test suite's fake OpenAI API (tests/fakeopenai, so statuses vary), rendered with ``keyscan
report --format html`` and photographed by headless Chromium.

Keys are generated at run time with keyscan.keygen: none is stored in this repository.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from keyscan.keygen import key  # noqa: E402

WORDS = ["alpha", "beta", "gamma", "delta", "config", "value", "client", "request"]
FAMILIES = ["project", "svcacct", "admin", "user-none", "legacy"]


def _data(text: str) -> bytes:
    raw = text.encode()
    return b"data %d\n" % len(raw) + raw + b"\n"


def make_repo(path: Path, commits: int, rng: random.Random, start: int) -> int:
    """A repository through git fast-import; returns the number of planted keys."""
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    stream: list[bytes] = []
    files = [f"src/mod{i // 20}/file{i}.py" for i in range(300)]
    planted = 0
    when = start
    for n in range(commits):
        when += rng.randint(3600, 5 * 86400)
        author = rng.choice(["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra"])
        email = author.split()[0].lower() + "@example.com"
        msg = f"change {n}: {' '.join(rng.choices(WORDS, k=4))}"
        stream.append(b"commit refs/heads/main\n")
        stream.append(f"author {author} <{email}> {when} +0000\n".encode())
        stream.append(f"committer {author} <{email}> {when} +0000\n".encode())
        stream.append(_data(msg))
        changed = files if n == 0 else rng.sample(files, 8)
        for name in changed:
            body = "\n".join(
                f"{rng.choice(WORDS)}_{i} = '{rng.choice(WORDS)}{rng.randint(0, 10**9)}'"
                for i in range(rng.randint(20, 80))
            )
            if n in (commits // 3, 2 * commits // 3) and name == changed[0]:
                body += f"\nOPENAI_API_KEY = '{key(rng.choice(FAMILIES), rng=rng)}'\n"
                planted += 1
            stream.append(f"M 100644 inline {name}\n".encode())
            stream.append(_data(body + "\n"))
        stream.append(b"\n")
    subprocess.run(
        ["git", "-C", str(path), "fast-import", "--quiet"], input=b"".join(stream), check=True
    )
    subprocess.run(["git", "-C", str(path), "gc", "-q"], check=True)
    subprocess.run(["git", "-C", str(path), "reset", "-q", "--hard"], check=True)
    return planted


def add_commit(path: Path, rng: random.Random) -> None:
    env = dict(os.environ, GIT_AUTHOR_NAME="Bench", GIT_AUTHOR_EMAIL="bench@example.com",
               GIT_COMMITTER_NAME="Bench", GIT_COMMITTER_EMAIL="bench@example.com")
    (path / "NEW.md").write_text(f"{rng.random()}\n")
    subprocess.run(["git", "-C", str(path), "add", "NEW.md"], check=True, env=env)
    subprocess.run(["git", "-C", str(path), "commit", "-q", "-m", "new"], check=True, env=env)


def audit(repos: list[Path], db: Path, *args: str) -> tuple[float, dict[str, object]]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "keyscan", "audit", *map(str, repos), "--db", str(db),
         "-f", "json", "-q", *args],
        capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"audit failed: {proc.stderr}")
    doc: dict[str, object] = json.loads(proc.stdout)
    return elapsed, doc


def bench(args: argparse.Namespace) -> None:
    work = Path(args.keep or tempfile.mkdtemp(prefix="keyscan-bench-audit-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    repos = [work / f"repo{i:02d}" for i in range(args.repos)]
    planted = 0
    if not all((r / ".git").exists() for r in repos):
        for i, r in enumerate(repos):
            shutil.rmtree(r, ignore_errors=True)
            planted += make_repo(r, args.commits, rng, 1_500_000_000 + i * 86400 * 30)
    print(f"{len(repos)} repositories x {args.commits} commits in {work} "
          f"({planted or 'reused'} planted keys); cores: {os.cpu_count()}")
    times: dict[str, list[float]] = {"jobs1": [], "jobs2": [], "incremental": []}
    last: dict[str, object] = {}
    for run in range(args.runs):
        for name, jobs in (("jobs1", "1"), ("jobs2", "2")):
            db = work / f"{name}.db"
            db.unlink(missing_ok=True)
            seconds, doc = audit(repos, db, "--jobs", jobs)
            times[name].append(seconds)
            last[name] = doc
        for r in repos[: max(1, len(repos) // 4)]:
            add_commit(r, rng)
        seconds, doc = audit(repos, work / "jobs2.db", "--jobs", "2")
        times["incremental"].append(seconds)
        last["incremental"] = doc
        print(f"run {run + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()))
    inc = last["incremental"]
    full = last["jobs2"]
    assert isinstance(inc, dict) and isinstance(full, dict)
    print()
    print(f"| audit of {len(repos)} repositories ({full['commits_scanned']} commits) "
          "| median wall time |")
    print("|---|---|")
    print(f"| `--jobs 1` | {statistics.median(times['jobs1']):.2f} s |")
    print(f"| `--jobs 2` | {statistics.median(times['jobs2']):.2f} s |")
    print(f"| second run, incremental (`--jobs 2`; {inc['commits_scanned']} new commits "
          f"scanned, {inc['commits_skipped']} skipped) | "
          f"{statistics.median(times['incremental']):.2f} s |")
    print(f"\nkeys found: {full['keys']}; medians of {args.runs} runs")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def screenshot(out: Path) -> None:
    """Five demo repositories, verified against the fake API, rendered and photographed."""
    from tests.audit_fixtures import Repo
    from tests.fakeopenai import FakeServer, FakeState

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not installed (apt-get install -y chromium)")
    work = Path(tempfile.mkdtemp(prefix="keyscan-shot-"))
    state = FakeState()
    rng = random.Random(7)
    live, restricted, dead = key("project", rng=rng), key("svcacct", rng=rng), key(
        "project", rng=rng)
    admin, legacy = key("admin", rng=rng), key("legacy", rng=rng)
    state.add_key(live, "live")
    state.add_key(restricted, "restricted")
    state.add_key(dead, "deleted")
    state.add_admin_key(admin, "live")
    state.add_key(legacy, "deactivated")
    billing = Repo(work / "acme" / "billing-service", start=1_640_995_200)
    billing.commit("Initial import", {"README.md": "billing\n"})
    billing.commit("Add OpenAI invoice summaries", {"config/settings.py": f"KEY = '{live}'\n"},
                   author="Dana Developer", days=40)
    billing.commit("Tidy", {"docs/x.md": "x\n"}, days=300)
    web = Repo(work / "acme" / "web-frontend", start=1_650_000_000)
    web.commit("Scaffold", {"package.json": "{}\n"})
    web.commit("Try the assistant API", {".env": f"OPENAI_API_KEY={dead}\n"},
               author="Sam Intern", days=20)
    web.commit("Remove .env from the repo", remove=(".env",), author="Lee Lead", days=3)
    web.commit("Ship the chatbot", {"src/chat.ts": f"const k = '{restricted}';\n"},
               author="Sam Intern", days=200)
    ops = Repo(work / "acme" / "ops-scripts", start=1_620_000_000)
    ops.commit("Cost report", {"cost_report.py": f"ADMIN = '{admin}'\n"}, author="Ops Bot",
               days=100)
    ops.commit("Legacy notebook", {"nb/old.py": f"openai.api_key = '{legacy}'\n"},
               author="Old Timer", days=30)
    ops.commit("Drop the notebook", remove=("nb/old.py",), author="Old Timer", days=400)
    docs = Repo(work / "acme" / "docs", start=1_660_000_000)
    docs.commit("Docs", {"index.md": "docs\n"})
    db = work / "audit.db"
    env = dict(os.environ, XDG_CACHE_HOME=str(work / "cache"))
    with FakeServer(state) as server:
        targets = [str(r.path) for r in (billing, web, ops, docs)]
        subprocess.run(
            [sys.executable, "-m", "keyscan", "audit", *targets, "--db", str(db), "--verify",
             "--no-cache", "--api-base", server.base_url, "-q"],
            env=env, check=False, cwd=work,
        )
    page = work / "report.html"
    subprocess.run(
        [sys.executable, "-m", "keyscan", "report", "--db", "audit.db", "--format", "html",
         "-o", str(page)], cwd=work, check=False,
    )
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", "--hide-scrollbars",
             "--window-size=1000,1250", f"--screenshot={out.resolve()}", page.as_uri()],
            capture_output=True, check=True, timeout=120,
        )
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB); report {page}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repos", type=int, default=20)
    ap.add_argument("--commits", type=int, default=150)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", help="generate (or reuse) the repositories in this directory")
    ap.add_argument("--screenshot", type=Path, help="write the README screenshot here")
    args = ap.parse_args()
    if args.screenshot:
        screenshot(args.screenshot)
    else:
        bench(args)


if __name__ == "__main__":
    main()
