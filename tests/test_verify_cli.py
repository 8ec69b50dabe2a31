"""End to end through the CLI: ``keyscan scan --verify`` and ``keyscan verify`` against the
fake OpenAI API on 127.0.0.1 (real HTTP, real subprocesses)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keyscan.keygen import key
from keyscan.models import fingerprint_of
from keyscan.report import FORMATS
from tests.fakeopenai import FakeServer, FakeState

# state in the fake -> status keyscan reports
EXPECTED = {
    "live": "live",
    "restricted": "live-restricted",
    "no-quota": "live-no-quota",
    "rate-limited": "live-rate-limited",
    "deleted": "invalid",
    "deactivated": "invalid-account",
    "ip-blocked": "unknown",
    "region-blocked": "unknown",
}


def run(
    args: list[str],
    cwd: Path,
    cache: Path,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"}
    full_env.update({"XDG_CACHE_HOME": str(cache), "NO_COLOR": "1"})
    full_env.pop("KEYSCAN_CACHE_DIR", None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


class World:
    def __init__(self, tmp: Path, state: FakeState, server: FakeServer) -> None:
        self.tmp, self.state, self.server = tmp, state, server
        self.cache = tmp / "cache"
        self.src = tmp / "src"
        self.src.mkdir()
        self.keys: dict[str, str] = {}

    def write_keys(self, keys: dict[str, str], name: str = "config.env") -> Path:
        self.keys.update(keys)
        path = self.src / name
        path.write_text("".join(f"KEY_{i}={k}\n" for i, k in enumerate(keys.values())))
        return path

    def scan(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(
            ["scan", "--verify", "--api-base", self.server.base_url, *args, "."],
            self.src,
            self.cache,
            env=env,
        )

    def verify(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run(
            ["verify", "--api-base", self.server.base_url, *args], self.src, self.cache, stdin=stdin
        )

    def assert_no_key(self, *texts: str) -> None:
        for text in texts:
            for k in self.keys.values():
                assert k not in text
                assert k[8:-4] not in text


@pytest.fixture
def world(tmp_path: Path, fake_state: FakeState, fake_server: FakeServer) -> Iterator[World]:
    yield World(tmp_path, fake_state, fake_server)


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {f["fingerprint"]: f["verification"]["status"] for f in doc["findings"]}


def make_all_states(world: World) -> dict[str, str]:
    """One key per fake state (families vary); returns state -> key."""
    families = [
        "project",
        "svcacct",
        "user-none",
        "legacy",
        "project",
        "svcacct",
        "project",
        "project",
    ]
    project = world.state.add_project("web")
    keys = {}
    for (state, _), fam in zip(EXPECTED.items(), families, strict=True):
        keys[state] = key(fam)
        world.state.add_key(keys[state], state, project_id=project.id)
    keys["admin"] = key("admin")
    world.state.add_admin_key(keys["admin"])
    world.write_keys(keys)
    return keys


def test_every_status_end_to_end(world: World) -> None:
    keys = make_all_states(world)
    proc = world.scan("--format", "json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    got = statuses(doc)
    for state, expected in EXPECTED.items():
        assert got[fingerprint_of(keys[state])] == expected, state
    assert got[fingerprint_of(keys["admin"])] == "live"
    live = next(f for f in doc["findings"] if f["fingerprint"] == fingerprint_of(keys["live"]))
    v = live["verification"]
    assert v["http_status"] == 200 and v["project"].startswith("proj_")
    assert v["organization"] == "user-fakeorg" and v["request_id"].startswith("req_")
    assert v["cached"] is False and v["checked_at"]
    unknown = [f for f in doc["findings"] if f["verification"]["status"] == "unknown"]
    assert all(f["verification"]["reason"] for f in unknown)
    assert "could not be verified" in proc.stderr
    # one request per unique key (a 429 rate limit is an answer: not retried)
    assert len(world.state.log) == len(keys)
    admin_fp = fingerprint_of(keys["admin"])
    assert [r.path for r in world.state.log if r.bearer_fingerprint == admin_fp] == [
        "/v1/organization/admin_api_keys"
    ]
    world.assert_no_key(proc.stdout, proc.stderr)


def test_text_output_shows_status(world: World) -> None:
    keys = make_all_states(world)
    proc = world.scan()
    assert proc.returncode == 1
    for expected in set(EXPECTED.values()):
        assert f"status: {expected}" in proc.stdout
    assert "missing scopes: api.model.read" in proc.stdout
    world.assert_no_key(proc.stdout, proc.stderr)
    assert keys


def test_cache_second_run_zero_requests_and_no_cache(world: World) -> None:
    keys = {str(i): key("project") for i in range(6)}
    for k in keys.values():
        world.state.add_key(k)
    world.write_keys(keys)
    assert world.scan("--format", "json").returncode == 1
    assert len(world.state.log) == 6
    second = world.scan("--format", "json")
    assert len(world.state.log) == 6  # every result came from the cache
    doc = json.loads(second.stdout)
    assert all(f["verification"]["cached"] for f in doc["findings"])
    assert {f["verification"]["status"] for f in doc["findings"]} == {"live"}
    assert doc["scan"]["stats"]["verify"] == {"keys": 6, "cached": 6, "checked": 0}
    world.scan("--no-cache")
    assert len(world.state.log) == 12
    # the cache holds fingerprints, never keys; it is private
    db = world.cache / "keyscan" / "verify.sqlite3"
    assert oct(db.stat().st_mode & 0o777) == "0o600"
    world.assert_no_key(db.read_bytes().decode("latin-1"))
    rows = sqlite3.connect(db).execute("SELECT fingerprint FROM verdicts").fetchall()
    assert {r[0] for r in rows} == {fingerprint_of(k) for k in keys.values()}


def test_cache_ttl_expiry(world: World) -> None:
    world.state.add_key(k := key("svcacct"))
    world.write_keys({"a": k})
    world.scan("--verify-ttl", "90m")
    db = world.cache / "keyscan" / "verify.sqlite3"
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE verdicts SET checked_at = checked_at - 3600")  # 60 min old
    conn.close()
    world.scan("--verify-ttl", "90m")
    assert len(world.state.log) == 1  # still fresh
    world.scan("--verify-ttl", "30m")
    assert len(world.state.log) == 2  # too old for 30 minutes
    world.scan("--verify-ttl", "0")  # 0: no cache at all
    assert len(world.state.log) == 3


def test_retries_5xx_then_success(world: World) -> None:
    world.state.add_key(k := key("project"))
    world.write_keys({"a": k})
    world.state.fail_next(1, 503, headers={"retry-after-ms": "50"})
    world.state.fail_next(1, 500, headers={"retry-after": "0"})
    proc = world.scan("--format", "json", "--no-cache")
    assert json.loads(proc.stdout)["findings"][0]["verification"]["status"] == "live"
    assert len(world.state.log) == 3


def test_dropped_connections_end_in_unknown(world: World) -> None:
    world.state.add_key(k := key("project"))
    world.write_keys({"a": k})
    world.state.drop_next(3)
    proc = world.scan("--format", "json", "--no-cache")
    v = json.loads(proc.stdout)["findings"][0]["verification"]
    assert v["status"] == "unknown" and "after 3 attempts" in v["reason"]
    assert proc.returncode == 1
    world.assert_no_key(proc.stdout, proc.stderr)


def test_hanging_server_ends_in_unknown(world: World) -> None:
    world.state.add_key(k := key("project"))
    world.write_keys({"a": k})
    world.state.hang_next(3)
    proc = world.scan("--format", "json", "--verify-timeout", "0.5")
    v = json.loads(proc.stdout)["findings"][0]["verification"]
    assert v["status"] == "unknown" and v["reason"].startswith("timed out after 3 attempts")
    # unknown is never cached: the next run asks again and gets the truth
    proc = world.scan("--format", "json", "--verify-timeout", "0.5")
    assert json.loads(proc.stdout)["findings"][0]["verification"]["status"] == "live"


def test_concurrency_limit(world: World) -> None:
    keys = {str(i): key("project") for i in range(12)}
    for k in keys.values():
        world.state.add_key(k)
    world.write_keys(keys)
    world.state.latency = 0.2
    proc = world.scan("--verify-concurrency", "3", "--no-cache", "--format", "json")
    assert proc.returncode == 1
    assert len(world.state.log) == 12
    assert world.state.max_in_flight <= 3
    assert world.state.max_in_flight >= 2  # it does run checks side by side


def test_keys_only_go_to_the_configured_base(world: World, tmp_path: Path) -> None:
    other_state = FakeState()
    with FakeServer(other_state) as other:
        world.state.add_key(k := key("project"))
        (world.src / "app.py").write_text(
            f'OPENAI_BASE_URL = "{other.base_url}"\n'
            f'client = OpenAI(base_url="{other.base_url}", api_key="{k}")\n'
        )
        world.keys["k"] = k
        proc = world.scan("--format", "json", env={"OPENAI_BASE_URL": other.base_url})
        assert proc.returncode == 1
        assert len(world.state.log) == 1
        assert other_state.log == []
        # OPENAI_BASE_URL is used when --api-base is absent; --api-base wins over it
        proc = run(
            ["scan", "--verify", "--no-cache", "."],
            world.src,
            world.cache,
            env={"OPENAI_BASE_URL": world.server.base_url},
        )
        assert len(world.state.log) == 2 and other_state.log == []


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--api-base", "http://api.openai.com/v1"], {}),
        ([], {"OPENAI_BASE_URL": "http://10.1.2.3/v1"}),
    ],
)
def test_plain_http_to_non_loopback_is_refused(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    (tmp_path / "k.env").write_text(f"K={key('project')}\n")
    proc = run(["scan", "--verify", *args, "."], tmp_path, tmp_path / "c", env=env)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("keyscan: error: --api-base: refusing")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_no_raw_key_in_any_output_format(world: World, fmt: str) -> None:
    make_all_states(world)
    world.state.drop_next(1)
    proc = world.scan("--format", fmt, "--no-cache")
    assert proc.returncode == 1, proc.stderr
    world.assert_no_key(proc.stdout, proc.stderr)
    # every format carries the status
    for status in ("live-restricted", "live-no-quota", "invalid-account"):
        assert status in proc.stdout, (fmt, status)


def test_only_live_and_fail_on_live(world: World) -> None:
    live, dead, gone = key("project"), key("project"), key("svcacct")
    world.state.add_key(live, "no-quota")
    world.state.add_key(dead, "deleted")
    world.state.add_key(gone, "deactivated")
    world.write_keys({"live": live, "dead": dead, "gone": gone})
    proc = world.scan("--only-live", "--format", "json")
    doc = json.loads(proc.stdout)
    assert [f["fingerprint"] for f in doc["findings"]] == [fingerprint_of(live)]
    assert proc.returncode == 1
    # dead keys alone: --fail-on live passes, --fail-on any (default) fails
    world.write_keys({"dead": dead, "gone": gone}, name="config.env")
    assert world.scan().returncode == 1
    assert world.scan("--fail-on", "live").returncode == 0
    # --only-live implies --verify; without live keys nothing is shown and the run passes
    proc = run(
        ["scan", "--only-live", "--api-base", world.server.base_url, "."], world.src, world.cache
    )
    assert proc.returncode == 0 and "no OpenAI keys found" in proc.stdout
    # an unknown status still fails under --fail-on live
    world.state.set_state(dead, "region-blocked")
    assert world.scan("--fail-on", "live", "--no-cache").returncode == 1


def test_verify_command_stdin(world: World) -> None:
    live, dead, admin = key("project"), key("legacy"), key("admin")
    world.state.add_key(live, "restricted")
    world.state.add_key(dead, "deleted")
    world.state.add_admin_key(admin)
    world.keys.update(a=live, b=dead, c=admin)
    text = f"{live}\n\n# a comment\n{dead}\n  {admin}  \n{live}\n"
    proc = world.verify("--format", "json", stdin=text)
    assert proc.returncode == 1, proc.stderr
    got = statuses(json.loads(proc.stdout))
    assert got == {
        fingerprint_of(live): "live-restricted",
        fingerprint_of(dead): "invalid",
        fingerprint_of(admin): "live",
    }
    assert len(world.state.log) == 3
    world.assert_no_key(proc.stdout, proc.stderr)
    # a line that holds no key is an error line (exit 2), the others are still checked
    proc = world.verify(
        "--format", "json", "--no-cache", stdin=f"{dead}\nnot a key at all\nsk-or-v1-{'a1' * 32}\n"
    )
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("keyscan: error:")]
    assert errors == [
        "keyscan: error: <stdin>:2: no OpenAI key recognised on this line",
        "keyscan: error: <stdin>:3: no OpenAI key recognised on this line",
    ]
    assert statuses(json.loads(proc.stdout)) == {fingerprint_of(dead): "invalid"}
    # only dead keys, --fail-on live: exit 0
    assert world.verify("--fail-on", "live", stdin=f"{dead}\n").returncode == 0
    assert world.verify(stdin="").returncode == 0


def test_verify_command_report(world: World) -> None:
    live, dead = key("svcacct"), key("project")
    world.state.add_key(live)
    world.state.add_key(dead, "deleted")
    world.write_keys({"a": live, "b": dead})
    redacted = world.src / "redacted.json"
    full = world.tmp / "full.json"
    assert (
        run(
            ["scan", ".", "--format", "json", "-o", str(redacted)], world.src, world.cache
        ).returncode
        == 1
    )
    assert (
        run(
            ["scan", ".", "--format", "json", "--show-secrets", "-o", str(full)],
            world.src,
            world.cache,
        ).returncode
        == 1
    )
    proc = world.verify("--report", str(redacted))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "redacted" in proc.stderr and "--show-secrets" in proc.stderr
    assert "keyscan verify" in proc.stderr
    proc = world.verify("--report", str(full), "--format", "json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert statuses(doc) == {fingerprint_of(live): "live", fingerprint_of(dead): "invalid"}
    assert all(f["locations"][0]["path"] == "config.env" for f in doc["findings"])
    world.assert_no_key(proc.stdout, proc.stderr)
    jsonl = world.tmp / "full.jsonl"
    run(
        ["scan", ".", "--format", "jsonl", "--show-secrets", "-o", str(jsonl)],
        world.src,
        world.cache,
    )
    proc = world.verify("--report", str(jsonl), "--only-live", "--format", "json")
    assert statuses(json.loads(proc.stdout)) == {fingerprint_of(live): "live"}
    bad = world.tmp / "bad.json"
    bad.write_text("[1, 2")
    proc = world.verify("--report", str(bad))
    assert proc.returncode == 2 and "not a keyscan JSON or JSONL report" in proc.stderr


def test_plain_scan_does_not_import_httpx(tmp_path: Path) -> None:
    (tmp_path / "k.env").write_text(f"K={key('project')}\n")
    code = (
        "import sys\n"
        "from keyscan.cli import main\n"
        "try:\n"
        "    main(['scan', '--format', 'json', '-o', 'out.json', '.'])\n"
        "except SystemExit as e:\n"
        "    print(e.code, 'httpx' in sys.modules, 'keyscan.verify' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.split() == ["1", "False", "False"], proc.stderr


def test_git_history_verify(world: World) -> None:
    from keyscan.cli import COMMANDS

    if "git" not in COMMANDS:
        pytest.skip("keyscan git not registered")
    live, dead = key("project"), key("svcacct")
    world.state.add_key(live)
    world.state.add_key(dead, "deleted")
    world.keys.update(live=live, dead=dead)
    repo = world.tmp / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "a.env").write_text(f"A={live}\nB={dead}\n")
    subprocess.run([*git, "add", "a.env"], check=True)
    subprocess.run([*git, "commit", "-qm", "add"], check=True)
    subprocess.run([*git, "rm", "-q", "a.env"], check=True)
    subprocess.run([*git, "commit", "-qm", "remove"], check=True)
    proc = run(
        ["git", "--verify", "--api-base", world.server.base_url, "--format", "json", "."],
        repo,
        world.cache,
    )
    assert proc.returncode == 1, proc.stderr
    assert statuses(json.loads(proc.stdout)) == {
        fingerprint_of(live): "live",
        fingerprint_of(dead): "invalid",
    }
    proc = run(
        ["git", "--only-live", "--api-base", world.server.base_url, "--format", "json", "."],
        repo,
        world.cache,
    )
    assert statuses(json.loads(proc.stdout)) == {fingerprint_of(live): "live"}
    assert len(world.state.log) == 2  # the second run came from the cache
    world.assert_no_key(proc.stdout, proc.stderr)
