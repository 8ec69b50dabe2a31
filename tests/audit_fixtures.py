"""Throwaway repositories for the audit and report tests, built with the real ``git``.

Keys are generated at run time (keyscan.keygen); commit dates are fixed and increasing so
that timelines and "first appeared" are deterministic.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from keyscan.keygen import key

BASE_ENV = {
    "GIT_AUTHOR_NAME": "Alice Author",
    "GIT_AUTHOR_EMAIL": "alice@example.com",
    "GIT_COMMITTER_NAME": "Carl Committer",
    "GIT_COMMITTER_EMAIL": "carl@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


class Repo:
    def __init__(self, path: Path, start: int = 1_650_000_000) -> None:
        self.path = path
        self.tick = start
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, author: str | None = None) -> str:
        env = dict(os.environ, **BASE_ENV)
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"{self.tick} +0000"
        if author:
            env["GIT_AUTHOR_NAME"] = author
        proc = subprocess.run(["git", *args], cwd=self.path, env=env, capture_output=True)
        if proc.returncode != 0:
            raise AssertionError(f"git {args}: {proc.stderr.decode()}")
        return proc.stdout.decode().strip()

    def commit(
        self, message: str, files: dict[str, str] | None = None, remove: tuple[str, ...] = (),
        author: str | None = None, days: int = 30,
    ) -> str:
        for name, text in (files or {}).items():
            full = self.path / name
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_text(text)
            self.git("add", "--", name)
        for name in remove:
            self.git("rm", "-q", "--", name)
        self.tick += days * 86400
        self.git("commit", "-q", "--allow-empty", "-m", message, author=author)
        return self.git("rev-parse", "HEAD")


def make_repos(root: Path, n: int, shared: str | None = None) -> tuple[list[Path], list[str]]:
    """``n`` repositories, each with its own key (added, and in odd ones removed later), and
    ``shared`` (if given) in every repository. Returns (paths, keys)."""
    paths: list[Path] = []
    keys: list[str] = []
    for i in range(n):
        r = Repo(root / f"repo{i}", start=1_650_000_000 + i * 86400)
        own = key("project" if i % 2 == 0 else "svcacct")
        keys.append(own)
        r.commit("initial", {"README.md": f"repo {i}\n"})
        r.commit("add settings", {"settings.py": f"OPENAI_API_KEY = '{own}'\n"})
        if shared:
            r.commit("shared client", {"client.env": f"OPENAI_API_KEY={shared}\n"})
        if i % 2 == 1:
            r.commit("move key to env", {"settings.py": "import os\n"})
        paths.append(r.path)
    return paths, keys


def keyscan(*args: str, cwd: Path | None = None, stdin: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (stderr is a pipe: no progress)."""
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("XDG_CACHE_HOME", str(cwd or Path.cwd()))
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        cwd=cwd, capture_output=True, text=True, input=stdin, env=full_env, timeout=600,
    )


def db_findings(db: Path) -> set[tuple[str, str, str, int]]:
    """(repository, fingerprint, path, line) of every stored location."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT r.target, l.fingerprint, l.path, l.line FROM locations l "
            "JOIN repositories r ON r.id = l.repository_id"
        ).fetchall()
    finally:
        con.close()
    return {(str(a), str(b), str(c), int(d)) for a, b, c, d in rows}


def report_json(db: Path, cwd: Path) -> dict[str, Any]:
    proc = keyscan("report", "--db", str(db), "--format", "json", cwd=cwd)
    assert proc.returncode in (0, 1), proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


HOSTILE_SUBJECT = '<script>alert("subject")</script><img src=x onerror=alert(2)> | `x` [a](b)'
HOSTILE_PATH = "<script>alert(1)</script>.env"
HOSTILE_AUTHOR = 'Mallory" onmouseover="alert(3)'


def hostile_audit(root: Path) -> tuple[Path, dict[str, str]]:
    """An audit of two repositories with hostile names, subjects and paths: a key still at
    HEAD, one removed later, an admin key in another repository. Returns (db, keys)."""
    keys = {"kept": key("project"), "gone": key("svcacct"), "admin": key("admin")}
    evil = Repo(root / "evil<b>repo</b>")
    evil.commit("readme", {"README.md": "hi\n"})
    evil.commit(HOSTILE_SUBJECT, {HOSTILE_PATH: f"OPENAI_API_KEY={keys['kept']}\n"},
                author=HOSTILE_AUTHOR)
    evil.commit("add svc", {"svc.py": f"K = '{keys['gone']}'\n"}, days=200)
    evil.commit("remove svc", remove=("svc.py",), author="Rita Remover", days=100)
    other = Repo(root / "other", start=1_600_000_000)
    other.commit("admin key", {"ops/admin.txt": keys["admin"] + "\n"})
    db = root / "a.db"
    proc = keyscan("audit", str(evil.path), str(other.path), "--db", str(db), cwd=root)
    assert proc.returncode == 1, proc.stderr
    return db, keys
