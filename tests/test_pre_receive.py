"""``keyscan hook pre-receive`` with real ``git push`` over ``file://`` to a bare repository
that has the hook installed: the pushed objects live in git's quarantine while it runs."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keyscan.git.plumbing import QUARANTINE_ENV, git_env, keep_quarantine
from keyscan.keygen import key
from keyscan.models import fingerprint_of, redact
from tests.test_hooks import env_for

BIN = Path(sys.executable).parent


class Server:
    """A bare repository with keyscan as its pre-receive hook, and a clone to push from."""

    def __init__(self, tmp: Path, args: str = "", extra_env: dict[str, str] | None = None):
        self.env = env_for(tmp, **(extra_env or {}))
        self.bare = tmp / "server.git"
        self.url = self.bare.as_uri()
        subprocess.run(["git", "init", "-q", "--bare", str(self.bare)], check=True, env=self.env)
        self.git_bare("config", "receive.advertisePushOptions", "true")
        self.work = tmp / "work"
        subprocess.run(["git", "init", "-q", "-b", "main", str(self.work)], check=True, env=self.env)
        self.git("remote", "add", "origin", self.url)
        self.write("README", "hello\n")
        self.commit("init")
        self.push("main")
        self.install(args)

    def install(self, args: str = "") -> None:
        hook = self.bare / "hooks" / "pre-receive"
        hook.write_text(f"#!/bin/sh\nexec {shlex.quote(str(BIN / 'keyscan'))} hook pre-receive {args}\n")
        hook.chmod(0o755)

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["git", *args], cwd=self.work, env=self.env, capture_output=True, text=True, timeout=600
        )
        if check:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def git_bare(self, *args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.bare, env=self.env, capture_output=True, text=True, check=True
        ).stdout.strip()

    def write(self, name: str, text: str) -> None:
        path = self.work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def commit(self, message: str, **files: str) -> str:
        for name, text in files.items():
            self.write(name, text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD").stdout.strip()

    def push(self, *refspecs: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        opts = [a for o in options for a in ("-o", o)]
        return self.git("push", *opts, "origin", *refspecs, check=False)

    def has(self, oid: str) -> bool:
        return subprocess.run(
            ["git", "cat-file", "-e", oid], cwd=self.bare, env=self.env, capture_output=True
        ).returncode == 0


def refused(proc: subprocess.CompletedProcess[str]) -> bool:
    return proc.returncode != 0 and "pre-receive hook declined" in proc.stderr


@pytest.fixture
def server(tmp_path: Path) -> Server:
    return Server(tmp_path)


def test_push_of_a_key_is_refused_with_a_redacted_message_and_objects_stay_out(
    server: Server,
) -> None:
    secret = key("project")
    sha = server.commit("add config", **{"app/settings.py": f"x = 1\nOPENAI_API_KEY = '{secret}'\n"})
    proc = server.push("main")
    assert refused(proc), proc.stderr
    assert secret not in proc.stderr
    assert redact(secret) in proc.stderr
    assert sha[:12] in proc.stderr and "app/settings.py:2" in proc.stderr
    assert "Revoke the key" in proc.stderr and "rewrite" in proc.stderr
    # The pushed objects were only ever in git's quarantine, and are gone with it.
    assert not server.has(sha)


def test_clean_push_passes(server: Server) -> None:
    server.commit("docs", **{"doc.md": "read the key from OPENAI_API_KEY\n"})
    proc = server.push("main")
    assert proc.returncode == 0, proc.stderr


def test_new_branch_scans_only_what_the_push_introduces(tmp_path: Path) -> None:
    server = Server(tmp_path)
    old = key("project")
    # History from before the hook: a key the server already holds.
    server.bare.joinpath("hooks", "pre-receive").unlink()
    server.commit("old key", **{"old.env": f"K={old}\n"})
    assert server.push("main").returncode == 0
    server.install()
    # A branch created at an existing commit, and one with a clean new commit on top.
    assert server.push("main:refs/heads/copy").returncode == 0
    server.git("checkout", "-q", "-b", "feature")
    server.commit("clean", **{"f.txt": "ok\n"})
    proc = server.push("feature")
    assert proc.returncode == 0, proc.stderr
    # Branch creation (old = zeros) with a key in its new commit is refused.
    server.git("checkout", "-q", "-b", "leaky")
    new = key("svcacct")
    server.commit("leak", **{"n.env": f"K={new}\n"})
    proc = server.push("leaky")
    assert refused(proc)
    assert redact(new) in proc.stderr and redact(old) not in proc.stderr


def test_force_push_is_scanned_and_a_fixed_history_passes(server: Server) -> None:
    server.commit("a", **{"a.txt": "1\n"})
    assert server.push("main").returncode == 0
    secret = key("project")
    server.git("commit", "-q", "--amend", "-m", "rewritten")
    server.write("k.env", f"K={secret}\n")
    server.git("add", "k.env")
    server.git("commit", "-q", "--amend", "-m", "rewritten with key")
    assert refused(server.push("+main"))
    server.git("rm", "-q", "k.env")
    server.git("commit", "-q", "--amend", "-m", "rewritten, key removed")
    proc = server.push("+main")
    assert proc.returncode == 0, proc.stderr


def test_tags_annotated_and_lightweight(server: Server) -> None:
    # An annotated tag of an existing commit whose message holds a key.
    secret = key("project")
    server.git("tag", "-a", "v1", "-m", f"release {secret}")
    proc = server.push("refs/tags/v1")
    assert refused(proc) and redact(secret) in proc.stderr
    server.git("tag", "-d", "v1")
    # A lightweight tag of an existing commit: nothing new, accepted.
    server.git("tag", "v2")
    assert server.push("refs/tags/v2").returncode == 0
    # A lightweight tag of a new commit carrying a key (the branch itself not pushed).
    other = key("admin")
    server.commit("key", **{"a.env": f"K={other}\n"})
    server.git("tag", "v3")
    proc = server.push("refs/tags/v3")
    assert refused(proc) and redact(other) in proc.stderr


def test_many_refs_in_one_push_and_deletions(server: Server) -> None:
    base = server.git("rev-parse", "HEAD").stdout.strip()
    secret = key("project")
    keys: dict[str, str] = {}
    for i in range(5):
        server.git("checkout", "-q", "-b", f"b{i}", base)
        text = f"K={secret}\n" if i == 3 else f"n={i}\n"
        server.commit(f"b{i}", **{f"f{i}.txt": text})
        keys[f"b{i}"] = text
    proc = server.push(*[f"b{i}" for i in range(5)])
    assert refused(proc) and redact(secret) in proc.stderr
    assert "f3.txt:1" in proc.stderr
    # Without the leaky branch the rest goes through; then a deletion is accepted.
    assert server.push("b0", "b1").returncode == 0
    proc = server.push(":b1")
    assert proc.returncode == 0, proc.stderr


def test_the_pushers_allow_comment_and_config_are_ignored(server: Server) -> None:
    secret = key("project")
    config = 'version: 1\nallow:\n  - path: "."\n    reason: everything\n'
    server.commit(
        "allow myself",
        **{".keyscan.yaml": config, "a.py": f"k = '{secret}'  # keyscan:allow\n"},
    )
    proc = server.push("main")
    assert refused(proc), proc.stderr


def test_the_servers_config_suppresses(tmp_path: Path) -> None:
    secret = key("project")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"version: 1\nallow:\n  - fingerprint: {fingerprint_of(secret)}\n    reason: revoked test key\n"
    )
    server = Server(tmp_path, extra_env={"KEYSCAN_SERVER_CONFIG": str(policy)})
    server.commit("known", **{"t.env": f"K={secret}\n"})
    proc = server.push("main")
    assert proc.returncode == 0, proc.stderr
    # --config names it too.
    other = key("project")
    server2 = Server(tmp_path / "two", args=f"--config {shlex.quote(str(policy))}")
    server2.commit("known", **{"t.env": f"K={secret}\n"})
    assert server2.push("main").returncode == 0
    server2.commit("unknown", **{"u.env": f"K={other}\n"})
    assert refused(server2.push("main"))


def test_bypass_push_option_is_off_by_default(server: Server) -> None:
    secret = key("project")
    server.commit("k", **{"k.env": f"K={secret}\n"})
    proc = server.push(
        "main", options=(f"keyscan.allow={fingerprint_of(secret)}", "keyscan.reason=test")
    )
    assert refused(proc)
    assert "does not allow bypasses" in proc.stderr


def test_bypass_push_option_is_audited(tmp_path: Path) -> None:
    log = tmp_path / "bypass.log"
    server = Server(tmp_path, args=f"--allow-bypass {shlex.quote(str(log))}")
    secret = key("project")
    server.commit("k", **{"k.env": f"K={secret}\n"})
    fp = fingerprint_of(secret)
    proc = server.push("main", options=(f"keyscan.allow={fp}",))
    assert refused(proc) and "give a reason" in proc.stderr
    assert "keyscan.allow=<fingerprint>" in proc.stderr
    proc = server.push("main", options=(f"keyscan.allow={fp}", "keyscan.reason=revoked already"))
    assert proc.returncode == 0, proc.stderr
    record = json.loads(log.read_text().splitlines()[0])
    assert record["fingerprint"] == fp and record["reason"] == "revoked already"
    assert record["refs"] == ["refs/heads/main"]
    assert secret not in log.read_text()
    assert oct(log.stat().st_mode & 0o777) == "0o600"


def test_timeout_fails_closed_by_default_or_open_when_configured(tmp_path: Path) -> None:
    server = Server(tmp_path, args="--timeout 0")
    server.commit("c", **{"c.txt": "x\n"})
    proc = server.push("main")
    assert refused(proc) and "fail closed" in proc.stderr
    server.install("--timeout 0 --on-timeout accept")
    proc = server.push("main")
    assert proc.returncode == 0 and "fail open" in proc.stderr


def test_bad_input_refuses(tmp_path: Path) -> None:
    server = Server(tmp_path)
    proc = subprocess.run(
        [str(BIN / "keyscan"), "hook", "pre-receive"], input="not a line\n", text=True,
        cwd=server.bare, env=server.env, capture_output=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "pre-receive input line 1" in proc.stderr


def test_quarantine_variables_are_kept_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in QUARANTINE_ENV:
        monkeypatch.setenv(name, f"/q/{name}")
    try:
        assert not set(QUARANTINE_ENV) & set(git_env())
        keep_quarantine(dict(os.environ))
        assert all(git_env()[n] == f"/q/{n}" for n in QUARANTINE_ENV)
    finally:
        keep_quarantine({})
    assert not set(QUARANTINE_ENV) & set(git_env())


def test_push_of_1000_commits(server: Server) -> None:
    secret = key("project")
    # 1,000 commits built with fast-import (one process), one of them with a key.
    head = server.git("rev-parse", "HEAD").stdout.strip()
    stream = []
    for i in range(1000):
        body = f"K={secret}\n" if i == 617 else f"line {i}\n"
        data = body.encode()
        msg = f"c{i}".encode()
        stream.append(b"commit refs/heads/main\n")
        stream.append(b"committer t <t@t.invalid> %d +0000\n" % (1700000000 + i))
        stream.append(b"data %d\n%s\n" % (len(msg), msg))
        if i == 0:
            stream.append(f"from {head}\n".encode())
        stream.append(b"M 100644 inline f%d.txt\ndata %d\n%s\n" % (i % 50, len(data), data))
    subprocess.run(
        ["git", "fast-import", "--quiet", "--force"], cwd=server.work, env=server.env,
        input=b"".join(stream), check=True,
    )  # fmt: skip
    started = time.monotonic()
    proc = server.push("main")
    took = time.monotonic() - started
    assert refused(proc) and redact(secret) in proc.stderr
    assert "f17.txt:1" in proc.stderr
    assert took < 60
