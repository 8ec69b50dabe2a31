"""Generate a synthetic git repository for benchmarking ``keyscan git``.

    python bench/gen_repo.py DEST [--commits 3000] [--files 4000] [--large 6] [--keys 20]

Thousands of commits, tens of thousands of distinct blobs, a few large files (text and
binary), and planted keys, all written through ``git fast-import`` (fast, deterministic with
``--seed``). The planted keys are generated at run time with ``keyscan.keygen``: no key is
ever stored in this repository. The repository is packed (``git gc``) like a real one.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
from pathlib import Path

from keyscan.keygen import key

WORDS = [
    *[
        "alpha",
        "beta",
        "gamma",
        "delta",
        "config",
        "value",
        "return",
        "import",
        "client",
        "request",
        "response",
        "token",
    ],
    *[
        "handler",
        "session",
        "user",
        "model",
        "input",
        "output",
        "error",
        "retry",
        "timeout",
        "buffer",
        "stream",
    ],
]


def _text(rng: random.Random, lines: int) -> bytes:
    out = []
    for i in range(lines):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))
        out.append(f"    {words} = {rng.randint(0, 10**6)}  # line {i}")
    return ("\n".join(out) + "\n").encode()


def _blob(data: bytes) -> bytes:
    return b"data %d\n" % len(data) + data + b"\n"


def generate(
    dest: Path, commits: int, files: int, large: int, keys: int, seed: int
) -> dict[str, int]:
    rng = random.Random(seed)
    dest.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1")
    subprocess.run(["git", "init", "-q", "-b", "main", str(dest)], check=True, env=env)
    proc = subprocess.Popen(
        ["git", "-C", str(dest), "fast-import", "--quiet"], stdin=subprocess.PIPE, env=env
    )
    assert proc.stdin is not None
    w = proc.stdin.write
    paths = [f"src/pkg{i % 40}/mod{i}.py" for i in range(files)]
    contents: dict[str, bytes] = {}
    key_commits = set(rng.sample(range(1, commits), min(keys, commits - 1)))
    planted = 0
    when = 1_600_000_000
    for c in range(1, commits + 1):
        when += 600
        w(b"commit refs/heads/main\n")
        w(b"mark :%d\n" % c)
        w(b"committer Bench <bench@example.com> %d +0000\n" % when)
        w(_blob(f"commit {c}: update modules".encode()))
        if c > 1:
            w(b"from :%d\n" % (c - 1))
        # The first commit adds every file; later ones touch a few.
        touched = paths if c == 1 else rng.sample(paths, rng.randint(3, 15))
        for i, p in enumerate(touched):
            data = contents.get(p) or _text(rng, rng.randint(20, 200))
            lines = data.split(b"\n")
            pos = rng.randrange(len(lines))
            lines[pos] = _text(rng, 1).rstrip(b"\n")
            data = b"\n".join(lines)
            if c in key_commits and i == 0:
                data += f'OPENAI_API_KEY = "{key("project", rng=rng)}"\n'.encode()
                planted += 1
            contents[p] = data
            w(b"M 100644 inline " + p.encode() + b"\n" + _blob(data))
        if c <= large:
            size = 4 * 1024 * 1024
            if c % 2:
                big = rng.randbytes(size)  # binary, incompressible
                name = f"assets/blob{c}.bin"
            else:
                big = _text(rng, size // 60)
                name = f"data/large{c}.txt"
            w(b"M 100644 inline " + name.encode() + b"\n" + _blob(big))
    w(b"done\n")
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "-C", str(dest), "gc", "-q"], check=True, env=env)
    subprocess.run(["git", "-C", str(dest), "reset", "-q", "--hard"], check=True, env=env)
    return {"commits": commits, "planted_keys": planted}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest", type=Path)
    ap.add_argument("--commits", type=int, default=3000)
    ap.add_argument("--files", type=int, default=4000)
    ap.add_argument("--large", type=int, default=6, help="large (4 MiB) files")
    ap.add_argument("--keys", type=int, default=20, help="commits that plant a key")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    if args.dest.exists() and any(args.dest.iterdir()):
        print(f"{args.dest}: exists and is not empty", file=sys.stderr)
        return 2
    info = generate(args.dest, args.commits, args.files, args.large, args.keys, args.seed)
    print(f"{args.dest}: {info['commits']} commits, {info['planted_keys']} planted keys")
    return 0


if __name__ == "__main__":
    sys.exit(main())
