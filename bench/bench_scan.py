"""Benchmark: `keyscan scan` throughput over a synthetic tree, beside `cat` as the floor.

    python bench/bench_scan.py [--mb 200] [--files 20000] [--runs 5] [--dir bench/data/tree]

Generates (once) a tree of source-like files (1 in 20 is OpenAI client code that holds no
key) with a few planted keys (generated at run time, never committed), drops nothing from the page cache (both commands read warm files), then
times, as medians of --runs runs:

* floor: `find DIR -type f -print0 | xargs -0 cat > /dev/null` (reading every byte once);
* keyscan scan DIR --jobs 1, and keyscan scan DIR (all cores).

and checks that exactly the planted keys are found.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from keyscan.keygen import key

WORDS = [
    "import",
    "os",
    "from",
    "def",
    "class",
    "return",
    "self",
    "value",
    "data",
    "result",
    "config",
    "client",
    "request",
    "response",
    "for",
    "while",
    "if",
    "else",
    "elif",
    "try",
    "except",
    "finally",
    "with",
    "as",
    "lambda",
    "yield",
    "async",
    "await",
    "None",
    "True",
    "False",
    "const",
    "let",
    "var",
    "function",
    "export",
    "default",
    "module",
    "require",
    "props",
    "state",
    "render",
    "component",
]


# What OpenAI client code looks like when it holds no key: 1 file in 20 starts with it.
AI_HEADER = """import os
import openai
from openai import OpenAI, AzureOpenAI

openai.api_key = os.environ["OPENAI_API_KEY"]
client = OpenAI(api_key=os.getenv("OPENAI_API_KEY"), timeout=30)
azure = AzureOpenAI(azure_endpoint=os.environ["AZURE_OPENAI_ENDPOINT"], api_version="2024-06-01")
OPENAI_MODEL = "gpt-4o-mini"  # see https://platform.openai.com/docs; keys look like sk-proj-...
response = client.chat.completions.create(model=OPENAI_MODEL, messages=messages)
"""


def make_line(rng: random.Random) -> str:
    n = rng.randint(2, 14)
    words = " ".join(rng.choice(WORDS) for _ in range(n))
    kind = rng.random()
    if kind < 0.1:
        return f'    {rng.choice(WORDS)}_{rng.randint(0, 999)} = "{rng.randbytes(12).hex()}"\n'
    if kind < 0.12:
        return f"# {words} task-{rng.choice(WORDS)} risk-{rng.randint(0, 10**6)}\n"
    return f"    {words}({rng.randint(0, 1000)})\n"


def generate(root: Path, total_mb: int, files: int, seed: int = 7) -> list[str]:
    """Write the tree; return the planted keys' paths."""
    rng = random.Random(seed)
    marker = root / ".complete"
    manifest = root / "planted.json"
    if marker.exists():
        return list(json.loads(manifest.read_text()))
    root.mkdir(parents=True, exist_ok=True)
    per_file = total_mb * 1024 * 1024 // files
    planted: list[str] = []
    block = "".join(make_line(rng) for _ in range(4000))
    for i in range(files):
        d = root / f"pkg{i % 97:02d}" / f"mod{i % 13}"
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"file{i}.{rng.choice(['py', 'js', 'ts', 'go', 'md', 'json', 'yaml'])}"
        size = max(200, int(rng.expovariate(1 / per_file)))
        start = rng.randrange(0, len(block) - 1)
        text = (block[start:] + block) * (size // len(block) + 1)
        text = text[:size]
        if i % 20 == 0:
            text = AI_HEADER + text
        if i % (files // 10 or 1) == 3:
            k = key(rng.choice(["project", "svcacct", "admin", "legacy", "user-none"]), rng=rng)
            cut = rng.randrange(0, len(text))
            text = text[:cut] + f'\nOPENAI_API_KEY = "{k}"\n' + text[cut:]
            planted.append(str(path.relative_to(root)))
        path.write_text(text)
    manifest.write_text(json.dumps(planted))
    marker.write_text("ok")
    return planted


def timed(
    cmd: list[str] | str, shell: bool = False
) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, shell=shell, capture_output=True, check=False)
    return time.perf_counter() - start, proc


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dir", type=Path, default=Path(__file__).parent / "data" / "tree")
    args = ap.parse_args()

    planted = generate(args.dir, args.mb, args.files)
    size = tree_bytes(args.dir)
    keyscan = [sys.executable, "-m", "keyscan", "scan", str(args.dir), "-f", "json"]
    floor_cmd = f"find {args.dir} -type f -print0 | xargs -0 cat > /dev/null"
    timed(floor_cmd, shell=True)  # warm the page cache
    rows: dict[str, list[float]] = {
        "floor (find | xargs cat)": [],
        "keyscan --jobs 1": [],
        "keyscan": [],
    }
    found = None
    for _ in range(args.runs):
        rows["floor (find | xargs cat)"].append(timed(floor_cmd, shell=True)[0])
        rows["keyscan --jobs 1"].append(timed([*keyscan, "--jobs", "1"])[0])
        t, proc = timed(keyscan)
        rows["keyscan"].append(t)
        doc = json.loads(proc.stdout)
        found = sorted({loc["path"] for f in doc["findings"] for loc in f["locations"]})
    expected = sorted(str(args.dir / p) for p in planted)
    floor = statistics.median(rows["floor (find | xargs cat)"])
    print(
        f"tree: {args.files} files, {size / 1e6:.0f} MB, {len(planted)} planted keys; "
        f"{os.cpu_count()} cores; medians of {args.runs} runs"
    )
    print(f"{'command':<28} {'median s':>9} {'MB/s':>8} {'x floor':>8}")
    for name, times in rows.items():
        med = statistics.median(times)
        print(f"{name:<28} {med:>9.2f} {size / 1e6 / med:>8.0f} {med / floor:>8.2f}")
    print("planted keys found:", "all" if found == expected else f"MISMATCH {found} != {expected}")


if __name__ == "__main__":
    main()
