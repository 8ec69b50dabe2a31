"""``keyscan audit --verify``: each unique key checked once across every repository, against
the fake OpenAI API over real HTTP; statuses land in the store and the reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from keyscan.keygen import key
from keyscan.models import fingerprint_of
from tests.audit_fixtures import Repo, keyscan, report_json
from tests.fakeopenai import FakeServer, FakeState


def test_verify_each_unique_key_once_across_repos(
    tmp_path: Path, fake_state: FakeState, fake_server: FakeServer
) -> None:
    live, dead, shared = key("project"), key("svcacct"), key("project")
    admin = key("admin")
    fake_state.add_admin_key(admin)
    prod = fake_state.add_project("Prod")
    fake_state.add_project_key(live, prod.id)
    fake_state.add_key(dead, "deleted")
    fake_state.add_key(shared, "restricted")
    repos = []
    for i in range(3):
        r = Repo(tmp_path / f"r{i}")
        files = {"shared.env": f"OPENAI_API_KEY={shared}\n"}
        if i == 0:
            files["live.py"] = f"KEY = '{live}'\n"
        if i == 1:
            files["old.py"] = f"KEY = '{dead}'\n"
        r.commit("keys", files)
        repos.append(str(r.path))
    db = tmp_path / "a.db"
    proc = keyscan(
        "audit",
        *repos,
        "--db",
        str(db),
        "--verify",
        "--no-cache",
        "--api-base",
        fake_server.base_url,
        "-f",
        "json",
        "--jobs",
        "2",
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["verified"] == 3 and summary["live"] == 2
    # One request per unique key, although the shared key sits in three repositories.
    asked = [r.bearer_fingerprint for r in fake_state.requests("/models")]
    assert sorted(asked) == sorted(fingerprint_of(k) for k in (live, dead, shared))
    doc = report_json(db, tmp_path)
    status = {f["fingerprint"]: f["verification"]["status"] for f in doc["findings"]}
    assert status == {
        fingerprint_of(live): "live",
        fingerprint_of(shared): "live-restricted",
        fingerprint_of(dead): "invalid",
    }
    # Live keys first, the dead one last.
    assert doc["findings"][-1]["fingerprint"] == fingerprint_of(dead)
    assert {doc["findings"][0]["fingerprint"], doc["findings"][1]["fingerprint"]} == {
        fingerprint_of(live),
        fingerprint_of(shared),
    }
    raw = db.read_bytes()
    assert all(k.encode() not in raw for k in (live, dead, shared))
    # --fail-on live: dead keys alone do not fail the run. Only r1 (dead + restricted shared)
    # still fails (shared is live-restricted); a repository with only the dead key passes.
    only_dead = Repo(tmp_path / "dead-only")
    only_dead.commit("old key", {"x.py": f"K = '{dead}'\n"})
    proc = keyscan(
        "audit",
        str(only_dead.path),
        "--db",
        str(tmp_path / "b.db"),
        "--verify",
        "--no-cache",
        "--api-base",
        fake_server.base_url,
        "--fail-on",
        "live",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # --only-live: the summary counts (and the exit code weighs) only live keys.
    proc = keyscan(
        "audit", str(only_dead.path), *repos[:1], "--db", str(tmp_path / "c.db"), "--only-live",
        "--no-cache", "--api-base", fake_server.base_url, "-f", "json", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["keys"] == 2  # live and shared (restricted); not the dead one
    proc = keyscan(
        "audit", str(only_dead.path), "--db", str(tmp_path / "d.db"), "--only-live",
        "--no-cache", "--api-base", fake_server.base_url, "-f", "json", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["keys"] == 0
    # Markdown and HTML carry the statuses, and the revoke command for the live key.
    md = keyscan("report", "--db", str(db), "--format", "md", cwd=tmp_path).stdout
    assert "**Live keys:** 2" in md and "invalid" in md
    assert f"keyscan revoke --report keyscan-key-{fingerprint_of(live)[:12]}.json" in md
    # The revoke command of the report, run as printed (plus --yes), deletes the live key.
    command = doc["findings"][0]["extra"]["audit"]["revoke_command"]
    if doc["findings"][0]["fingerprint"] != fingerprint_of(live):
        command = doc["findings"][1]["extra"]["audit"]["revoke_command"]
    env = dict(
        os.environ,
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        OPENAI_ADMIN_KEY=admin,
        OPENAI_BASE_URL=fake_server.base_url,
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
    )
    record = fake_state.key(live)
    assert record is not None

    def run_revoke(extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command + extra,
            shell=True,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    # A redacted report cannot prove which key it is (issue 11): --yes alone plans, and names
    # the --key-id that picks the candidate; with it, the key is deleted.
    done = run_revoke(" --yes --recheck-delay 0")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"--key-id {record.id}" in done.stdout and record.state == "live"
    done = run_revoke(f" --yes --recheck-delay 0 --key-id {record.id}")
    assert done.returncode == 1, done.stdout + done.stderr  # deleted; unproven without the raw key
    assert "revoked-unconfirmed" in done.stdout
    assert live not in done.stdout + done.stderr
    assert record.state == "deleted"
    assert [r.method for r in fake_state.requests() if r.method == "DELETE"] == ["DELETE"]
