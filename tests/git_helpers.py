"""Throwaway git repositories for the git tests (built with the real ``git``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from keyscan.content import ContentOptions
from keyscan.git.history import scan_repository
from keyscan.git.options import GitScanOptions
from keyscan.keygen import key
from keyscan.models import ScanResult
from keyscan.rules import load_rules

ENV_TEMPLATE = {
    "GIT_AUTHOR_NAME": "Alice Author",
    "GIT_AUTHOR_EMAIL": "alice@example.com",
    "GIT_COMMITTER_NAME": "Carl Committer",
    "GIT_COMMITTER_EMAIL": "carl@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class Repo:
    """A repository in a temp dir with helpers; commits get increasing dates."""

    def __init__(self, path: Path, bare: bool = False, init: bool = True) -> None:
        self.path = path
        self.tick = 1_700_000_000
        if init:
            path.mkdir(parents=True, exist_ok=True)
            self.git("init", "-q", "-b", "main", *(["--bare"] if bare else []))

    def env(self) -> dict[str, str]:
        env = dict(os.environ, **ENV_TEMPLATE)
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"{self.tick} +0000"
        return env

    def git(self, *args: str | bytes, input: bytes | None = None, check: bool = True) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=self.path, env=self.env(), input=input, capture_output=True
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"git {args}: {proc.stderr.decode()}")
        return proc.stdout.decode("utf-8", "surrogateescape").strip()

    def write(self, name: str | bytes, text: str | bytes) -> None:
        raw = name.encode() if isinstance(name, str) else name
        full = os.path.join(os.fsencode(self.path), raw)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as fh:
            fh.write(text.encode() if isinstance(text, str) else text)

    def commit(self, message: str, *files: tuple[str | bytes, str | bytes]) -> str:
        for name, text in files:
            self.write(name, text)
            self.git("add", "--", name)
        self.tick += 60
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def rm(self, name: str) -> None:
        self.git("rm", "-q", "--", name)


def new_key(family: str = "project") -> str:
    return key(family)


def scan(target: str | Path, **kw: Any) -> ScanResult:
    kw.setdefault("jobs", 1)
    options = GitScanOptions(**kw)
    return scan_repository(str(target), options, load_rules())


def fingerprints(result: ScanResult) -> set[str]:
    return {f.fingerprint for f in result.findings}


def finding_for(result: ScanResult, secret: str) -> Any:
    matches = [f for f in result.findings if f.secret == secret]
    assert len(matches) == 1, f"expected one finding for the key, got {len(matches)}"
    return matches[0]


def cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run ``python -m keyscan`` for real; returns (exit code, stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        cwd=cwd,
        env=env or dict(os.environ, **ENV_TEMPLATE),
        capture_output=True,
        text=True,
    )
    return proc.returncode, proc.stdout, proc.stderr


def cli_json(*args: str, cwd: Path | None = None) -> tuple[int, dict[str, Any], str]:
    code, out, err = cli(*args, "--format", "json", "--no-config", cwd=cwd)
    return code, json.loads(out), err


__all__ = ["ContentOptions", "Repo", "cli", "cli_json", "finding_for", "new_key", "scan"]
