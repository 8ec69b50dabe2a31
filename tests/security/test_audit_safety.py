"""Audit truth: an incremental audit never skips a commit that was scanned under narrower
options (an allow entry since expired, a dropped --exclude, a higher --min-confidence).

Repositories are real (``git`` in temp dirs); keys come from ``keyscan.keygen`` at run time.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from keyscan.keygen import generate, key
from keyscan.models import fingerprint_of
from tests.audit_fixtures import Repo, db_findings, keyscan

# A home of its own for every test (no user git config, caches or state).
pytestmark = pytest.mark.usefixtures("isolated_home")


def audit(tmp_path: Path, repo: Repo, db: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = keyscan("audit", str(repo.path), "--db", str(db), "-f", "json", *args, cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def stored(db: Path) -> set[str]:
    return {fp for _, fp, _, _ in db_findings(db)}


def repo_with(tmp_path: Path, files: dict[str, str]) -> Repo:
    repo = Repo(tmp_path / "repo")
    repo.commit("base", {"README.md": "hello\n"})
    repo.commit("leak", files)
    return repo


def test_allow_entry_that_expired_makes_the_key_reappear(tmp_path: Path) -> None:
    secret = key("project")
    repo = repo_with(tmp_path, {"app.env": f"OPENAI_API_KEY={secret}\n"})
    db = tmp_path / "a.db"
    config = tmp_path / "keyscan.yaml"
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    config.write_text(
        f"version: 1\nallow:\n  - fingerprint: {fingerprint_of(secret)}\n"
        f"    reason: rotated\n    expires: {tomorrow.isoformat()}\n"
    )
    code, doc, _ = audit(tmp_path, repo, db, "--config", str(config))
    assert code == 0 and doc["keys"] == 0
    assert fingerprint_of(secret) not in stored(db)
    # The entry expires (the date passes): the next audit scans the old commits again.
    yesterday = dt.date.today() - dt.timedelta(days=1)
    config.write_text(config.read_text().replace(tomorrow.isoformat(), yesterday.isoformat()))
    code, doc, err = audit(tmp_path, repo, db, "--config", str(config))
    assert code == 1, err
    assert doc["keys"] == 1 and doc["commits_scanned"] == 2 and doc["commits_skipped"] == 0
    assert fingerprint_of(secret) in stored(db)
    assert "scan options changed since the last audit" in err
    # Same options again: incremental once more.
    code, doc, err = audit(tmp_path, repo, db, "--config", str(config))
    assert code == 1 and doc["commits_scanned"] == 0 and doc["commits_skipped"] == 2
    assert "scan options changed" not in err


def test_options_hash_changes_the_day_an_allow_entry_expires() -> None:
    """The hash holds the suppressions in effect on the day, not the config text: time
    passing alone (no edit) changes it."""
    from keyscan.audit.coordinator import AuditPlan, options_hash
    from keyscan.config import parse_config
    from keyscan.pipeline import RunOptions
    from keyscan.rules import load_rules

    day = dt.date(2026, 6, 30)
    config = parse_config(
        {"version": 1, "allow": [{"path": "^docs/", "expires": day.isoformat()}]},
        Path("keyscan.yaml"),
    )
    run = RunOptions()
    run.suppressors.append(config.suppress)
    plan = AuditPlan(targets=["x"], rules=load_rules(), run=run)
    assert options_hash(plan, today=day) == options_hash(plan, today=day - dt.timedelta(1))
    assert options_hash(plan, today=day) != options_hash(plan, today=day + dt.timedelta(1))
    # And every option that decides what is found moves it.
    base = options_hash(plan, today=day)
    plan.git_options = {"excludes": ["vendor/**"]}
    assert options_hash(plan, today=day) != base
    plan.git_options = {}
    plan.rules = plan.rules[:-1]
    assert options_hash(plan, today=day) != base


def test_dropped_exclude_rescans(tmp_path: Path) -> None:
    secret = key("svcacct")
    repo = repo_with(tmp_path, {"secrets/prod.env": f"K={secret}\n"})
    db = tmp_path / "a.db"
    code, doc, _ = audit(tmp_path, repo, db, "--no-config", "--exclude", "secrets/**")
    assert code == 0 and doc["keys"] == 0
    code, doc, err = audit(tmp_path, repo, db, "--no-config")
    assert code == 1, err
    assert doc["keys"] == 1 and fingerprint_of(secret) in stored(db)


def test_lower_min_confidence_rescans(tmp_path: Path) -> None:
    token = generate("sess-{alnum:40}")
    repo = repo_with(tmp_path, {"client.sh": f"curl -H 'Authorization: Bearer {token}'\n"})
    db = tmp_path / "a.db"
    code, doc, _ = audit(tmp_path, repo, db, "--no-config", "--min-confidence", "high")
    assert code == 0 and doc["keys"] == 0
    code, doc, err = audit(tmp_path, repo, db, "--no-config")
    assert code == 1, err
    assert doc["keys"] == 1 and fingerprint_of(token) in stored(db)


def test_store_of_an_earlier_keyscan_is_migrated_and_rescanned(tmp_path: Path) -> None:
    """A store without options hashes (an earlier keyscan): opened, migrated, and its tips
    are not trusted for options it cannot vouch for."""
    secret = key("project")
    repo = repo_with(tmp_path, {"app.env": f"K={secret}\n"})
    db = tmp_path / "a.db"
    code, _, _ = audit(tmp_path, repo, db, "--no-config")
    assert code == 1
    con = sqlite3.connect(db)
    with con:
        con.execute("CREATE TABLE old AS SELECT repository_id, sha, scan_id FROM seen_commits")
        con.execute("DROP TABLE seen_commits")
        con.execute("CREATE TABLE seen_commits (repository_id INTEGER NOT NULL, sha TEXT NOT "
                    "NULL, scan_id INTEGER NOT NULL, PRIMARY KEY (repository_id, sha))")
        con.execute("INSERT INTO seen_commits SELECT * FROM old")
        con.execute("DROP TABLE old")
    con.close()
    code, doc, err = audit(tmp_path, repo, db, "--no-config")
    assert code == 1, err
    assert doc["commits_scanned"] == 2
    code, doc, err = audit(tmp_path, repo, db, "--no-config")
    assert code == 1 and doc["commits_scanned"] == 0, err
