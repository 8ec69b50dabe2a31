"""``keyscan audit`` end to end: many repositories, failures, incremental runs, the store."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

from keyscan.keygen import key
from keyscan.models import fingerprint_of, redact
from tests.audit_fixtures import Repo, db_findings, keyscan, make_repos, report_json


def test_audit_many_repos_with_failures_and_store(tmp_path: Path) -> None:
    shared = key("admin")
    paths, keys = make_repos(tmp_path, 3, shared=shared)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / ".git").write_text("gitdir: /nowhere/at/all\n")
    listing = tmp_path / "targets.txt"
    listing.write_text(f"# the org\n{paths[2]}\n\n{tmp_path / 'missing'}\n")
    db = tmp_path / "audit.db"
    proc = keyscan(
        "audit", str(paths[0]), f"file://{paths[1]}", str(corrupt), "--from", str(listing),
        "--db", str(db), "--jobs", "2", cwd=tmp_path,
    )
    # Failures are reported, one clear line each, and the other repositories go on: exit 2.
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("keyscan: error:")]
    assert len(errors) == 2, proc.stderr
    assert any(str(corrupt) in e for e in errors) and any("missing" in e for e in errors)
    assert "Audited 5 repositories (3 ok, 2 with errors)" in proc.stdout
    # The progress bar never goes to a pipe.
    assert "\r" not in proc.stderr and "[#" not in proc.stderr
    # The store: 0600, every key of the ok repositories, the shared one once.
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600
    rows = db_findings(db)
    stored = {fp for _, fp, _, _ in rows}
    assert stored == {fingerprint_of(k) for k in [*keys, shared]}
    repos = {repo for repo, _, _, _ in rows}
    assert repos == {str(paths[0]), f"file://{paths[1]}", str(paths[2])}
    # Never a raw key, anywhere in the file; redacted values are there.
    raw = db.read_bytes()
    for k in [*keys, shared]:
        assert k.encode() not in raw
        assert k[8:-4].encode() not in raw
    con = sqlite3.connect(db)
    redacted = {r[0] for r in con.execute("SELECT redacted FROM keys")}
    con.close()
    assert redacted == {redact(k) for k in [*keys, shared]}
    doc = report_json(db, tmp_path)
    shared_doc = next(f for f in doc["findings"] if f["fingerprint"] == fingerprint_of(shared))
    assert len(shared_doc["extra"]["audit"]["repositories"]) == 3
    assert doc["scan"]["complete"] is False


def test_incremental_second_audit_skips_seen_commits(tmp_path: Path) -> None:
    paths, _ = make_repos(tmp_path, 2)
    db = tmp_path / "a.db"
    first = keyscan("audit", *map(str, paths), "--db", str(db), "-f", "json", cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    one = json.loads(first.stdout)
    assert one["commits_skipped"] == 0 and one["commits_scanned"] == 2 + 3
    assert one["keys"] == 2
    # Nothing new: every commit skipped, the keys are still reported (exit 1).
    second = keyscan("audit", *map(str, paths), "--db", str(db), "-f", "json", cwd=tmp_path)
    assert second.returncode == 1, second.stderr
    two = json.loads(second.stdout)
    assert two["commits_scanned"] == 0 and two["commits_skipped"] == 5
    assert two["keys"] == 2
    text = keyscan("audit", *map(str, paths), "--db", str(db), cwd=tmp_path)
    assert "0 commits scanned, 5 skipped (seen by an earlier audit)" in text.stdout
    # A new commit with a new key: only that commit is scanned, and the key is found.
    repo = Repo.__new__(Repo)
    repo.path, repo.tick = paths[0], 1_800_000_000
    new = key("user-none")
    repo.commit("oops", {"deploy/env.sh": f"export OPENAI_API_KEY={new}\n"})
    third = keyscan("audit", *map(str, paths), "--db", str(db), "-f", "json", cwd=tmp_path)
    three = json.loads(third.stdout)
    by_target = {r["target"]: r for r in three["repositories"]}
    assert by_target[str(paths[0])]["commits_scanned"] == 1
    assert by_target[str(paths[0])]["commits_skipped"] == 2
    assert by_target[str(paths[0])]["new_keys"] == 1
    assert three["keys"] == 3
    assert fingerprint_of(new) in {fp for _, fp, _, _ in db_findings(db)}
    # --full scans everything again and finds no new key.
    full = json.loads(
        keyscan("audit", *map(str, paths), "--db", str(db), "-f", "json", "--full",
                cwd=tmp_path).stdout
    )
    assert full["commits_skipped"] == 0 and full["commits_scanned"] == 6
    assert all(r["new_keys"] == 0 for r in full["repositories"])


def test_still_at_head_and_removed_by(tmp_path: Path) -> None:
    r = Repo(tmp_path / "r")
    k1, k2 = key("project"), key("svcacct")
    r.commit("add both", {"a.env": f"K={k1}\n", "b.env": f"K={k2}\n"})
    db = tmp_path / "a.db"
    assert keyscan("audit", str(r.path), "--db", str(db), cwd=tmp_path).returncode == 1
    doc = report_json(db, tmp_path)
    state = {f["fingerprint"]: f["extra"]["audit"] for f in doc["findings"]}
    assert state[fingerprint_of(k1)]["still_at_head"] and state[fingerprint_of(k2)]["still_at_head"]
    # Remove k2 in a later commit: the incremental audit does not rescan the old commit, yet
    # knows that k2 left HEAD, and which commit removed it.
    removing = r.commit("drop b", remove=("b.env",), author="Bob Remover")
    assert keyscan("audit", str(r.path), "--db", str(db), cwd=tmp_path).returncode == 1
    doc = report_json(db, tmp_path)
    state = {f["fingerprint"]: f["extra"]["audit"] for f in doc["findings"]}
    gone = state[fingerprint_of(k2)]
    assert gone["still_at_head"] is False
    repo_state = gone["repositories"][0]
    assert repo_state["removed_commit"] == removing
    assert repo_state["removed_author"] == "Bob Remover"
    assert state[fingerprint_of(k1)]["repositories"][0]["head_paths"] == ["a.env"]
    # Live/unknown keys are listed first; keys still at HEAD before removed ones.
    assert doc["findings"][0]["fingerprint"] == fingerprint_of(k1)


def test_clean_repos_exit_0_and_quiet(tmp_path: Path) -> None:
    r = Repo(tmp_path / "clean")
    r.commit("nothing here", {"a.txt": "hello\n"})
    proc = keyscan("audit", str(r.path), "--db", str(tmp_path / "x.db"), "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    # The default store is keyscan-audit.db in the current directory.
    proc = keyscan("audit", str(r.path), cwd=tmp_path)
    assert proc.returncode == 0
    assert (tmp_path / "keyscan-audit.db").exists()


def test_usage_errors(tmp_path: Path) -> None:
    proc = keyscan("audit", cwd=tmp_path)
    assert proc.returncode == 2 and "no repository to audit" in proc.stderr
    proc = keyscan("audit", "--from", str(tmp_path / "nope.txt"), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("keyscan: error:") and "nope.txt" in proc.stderr
    proc = keyscan("report", "--db", str(tmp_path / "none.db"), cwd=tmp_path)
    assert proc.returncode == 2 and "no such audit database" in proc.stderr
    assert not (tmp_path / "none.db").exists()


def test_seen_commits_that_vanished_do_not_break_the_next_audit(tmp_path: Path) -> None:
    r = Repo(tmp_path / "r")
    r.commit("base", {"a.txt": "a\n"})
    r.git("checkout", "-q", "-b", "topic")
    k = key("project")
    r.commit("topic key", {"t.env": f"K={k}\n"})
    r.git("checkout", "-q", "main")
    url = f"file://{r.path}"
    db = tmp_path / "a.db"
    first = json.loads(keyscan("audit", url, "--db", str(db), "-f", "json", cwd=tmp_path).stdout)
    assert first["keys"] == 1 and first["commits_scanned"] == 2
    # The branch is deleted and its commit pruned: the remembered tip no longer exists.
    r.git("branch", "-q", "-D", "topic")
    r.git("reflog", "expire", "--expire=now", "--all")
    r.git("gc", "-q", "--prune=now")
    r.commit("more", {"b.txt": "b\n"})
    proc = keyscan("audit", url, "--db", str(db), "-f", "json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr  # the key is still recorded for this repository
    second = json.loads(proc.stdout)
    assert second["repositories"][0]["status"] == "ok"
    assert second["commits_scanned"] == 1 and second["commits_skipped"] == 1


def test_credentials_in_urls_are_never_stored_or_shown(tmp_path: Path) -> None:
    token = "tok-" + key("project")[8:30]
    url = f"https://{token}@127.0.0.1:9/acme/repo.git"
    db = tmp_path / "a.db"
    proc = keyscan("audit", url, "--db", str(db), cwd=tmp_path,
                   env={"GIT_HTTP_LOW_SPEED_TIME": "5", "GIT_HTTP_LOW_SPEED_LIMIT": "1"})
    assert proc.returncode == 2
    assert "keyscan: error: https://***@127.0.0.1:9/acme/repo.git:" in proc.stderr
    assert token not in proc.stdout + proc.stderr
    assert token.encode() not in db.read_bytes()
