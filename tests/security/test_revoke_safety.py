"""Revocation never deletes a key it cannot tell is the leaked one (issue 11, item 1).

A redacted value (first 8, last 4, length) cannot prove identity: the first 8 characters of a
project key are always ``sk-proj-``, so an innocent key of the organization can share all of it
with a leaked key of another organization, or with one already deleted. These tests run
``keyscan revoke`` against the fake OpenAI API over real HTTP on 127.0.0.1 and check that no
DELETE reaches such a look-alike, and that a DELETE which did not kill the leaked key is a
failure, not a success.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from keyscan.keygen import generate, key
from keyscan.models import fingerprint_of, redact
from tests.fakeopenai import FakeServer, FakeState
from tests.test_revoke_cli import Org, report_for

DELETE_KEY = r"/organization/projects/(?P<project_id>[^/]+)/api_keys/(?P<key_id>[^/]+)"


@pytest.fixture
def org(fake_state: FakeState, tmp_path: Path) -> Iterator[Org]:
    """An organization with two projects and a few keys (pages of 2, so lists cross pages)."""
    state = fake_state
    state.max_page_size = 2
    admin = key("admin")
    state.add_admin_key(admin, name="Automation admin key")
    prod = state.add_project("Prod")
    archived = state.add_project("Old", archived=True)
    other = state.add_project("Other")
    bot = state.add_service_account(prod.id, "deploy-bot")
    with FakeServer(state) as server:
        o = Org(state, server, tmp_path, admin, prod, archived, other, bot)
        for p in (prod, other):
            for _ in range(2):
                o.add("project", p)
        yield o


def lookalike(secret: str) -> str:
    """Another well-formed key (equal halves around the marker, so a scan of stdin finds it
    whole) with the same prefix, last 4 characters and length."""
    marker = generate("{marker}")
    i = secret.index(marker)
    half = len(secret) - i - len(marker)
    body = generate(f"{{b64url:{half}}}{{marker}}{{b64url:{half - 4}}}")
    return secret[: i - half] + body + secret[-4:]


def stranger_and_innocent(org: Org, **stranger_fields: Any) -> tuple[str, str, str]:
    """A leaked key that is NOT a key of this organization, and an innocent org key with the
    same first 8, last 4 and length. Returns (leaked, innocent, innocent id)."""
    innocent, rec = org.add("project", org.prod, name="production service")
    leaked = lookalike(innocent)
    org.secrets.append(leaked)
    if stranger_fields.get("state") != "unknown-to-api":
        org.state.add_key(leaked, **stranger_fields)  # live elsewhere: no project here
    assert redact(leaked) == redact(innocent) and len(leaked) == len(innocent)
    return leaked, innocent, rec.id


def alive(org: Org, secret: str) -> bool:
    rec = org.state.key(secret)
    return rec is not None and rec.state == "live"


# -- no DELETE on a redacted match alone ---------------------------------------------------------

@pytest.mark.parametrize("project", [None, "prod"])
def test_redacted_report_never_deletes_a_lookalike(org: Org, project: str | None) -> None:
    leaked, innocent, innocent_id = stranger_and_innocent(org)
    report = report_for(org, [leaked], org.tmp / "report.json",
                        project=org.prod.id if project else None)
    result = org.run("revoke", "--report", str(report), "--yes")
    assert result.exit_code == 1, result.output
    assert org.deletes() == []
    assert alive(org, innocent)
    assert innocent_id in result.stdout and "--key-id" in result.stdout
    assert "cannot prove" in result.stdout


def test_raw_key_of_another_org_is_not_matched_on_its_redaction(org: Org) -> None:
    """Live, but its answer names no project of this organization: the only look-alike here
    is someone else's production key. Nothing is deleted; the plan says why."""
    org.state.send_project_header = False
    leaked, innocent, innocent_id = stranger_and_innocent(org)
    result = org.revoke("--yes", secrets=[leaked])
    assert result.exit_code == 1, result.output
    assert org.deletes() == []
    assert alive(org, innocent)
    assert innocent_id in result.stdout
    assert "did not name its project" in result.stdout and "--key-id" in result.stdout


def test_raw_key_that_cannot_be_checked_deletes_nothing(org: Org) -> None:
    leaked, innocent, _ = stranger_and_innocent(org, state="ip-blocked")
    result = org.revoke("--yes", secrets=[leaked])
    assert result.exit_code == 1, result.output
    assert org.deletes() == []
    assert alive(org, innocent)
    assert "could not be checked" in result.stdout


def test_no_check_deletes_nothing_without_key_id(org: Org) -> None:
    secret, rec = org.add("project", org.prod)
    result = org.revoke("--yes", "--no-check", secrets=[secret])
    assert result.exit_code == 1, result.output
    assert org.deletes() == [] and alive(org, secret)
    assert "was not checked" in result.stdout
    result = org.revoke("--yes", "--no-check", "--key-id", rec.id, secrets=[secret])
    assert result.exit_code == 0, result.output
    assert not alive(org, secret)


def test_admin_key_lookalike_that_cannot_be_checked_is_not_deleted(org: Org) -> None:
    innocent = key("admin")
    org.secrets.append(innocent)
    org.state.add_admin_key(innocent, name="Billing automation")
    leaked = lookalike(innocent)
    org.secrets.append(leaked)
    org.state.add_key(leaked, "ip-blocked")
    result = org.revoke("--yes", secrets=[leaked])
    assert result.exit_code == 1, result.output
    assert org.deletes() == []
    assert alive(org, innocent)


# -- after a DELETE, the leaked key must answer dead -----------------------------------------------

def test_chosen_key_deleted_but_leaked_key_still_live_is_a_failure(org: Org) -> None:
    org.state.send_project_header = False
    leaked, _innocent, innocent_id = stranger_and_innocent(org)
    result = org.revoke("--yes", "--key-id", innocent_id, secrets=[leaked])
    assert result.exit_code == 2, result.output
    assert "failed:" in result.stdout and "still answers live" in result.stdout
    recheck = org.records()[-1]
    assert recheck["action"] == "recheck" and recheck["result"] == "still-live"
    assert recheck["fingerprint"] == fingerprint_of(leaked)


def _answer_404_without_deleting(org: Org, delete_too: bool) -> None:
    from tests.fakeopenai.app import error_response, register

    def gone(state: FakeState, req: Any, m: Any) -> Any:
        if delete_too:  # someone deleted it a moment before us
            state.delete_key(m.group("key_id"))
        return error_response(404, f"No such API key: {m.group('key_id')}", param="api_key_id")

    register("DELETE", DELETE_KEY, gone)


def _restore_delete() -> None:
    from tests.fakeopenai.app import register
    from tests.fakeopenai.org import delete_project_key

    register("DELETE", DELETE_KEY, delete_project_key)


def test_404_on_delete_while_the_key_answers_live_is_a_failure(org: Org) -> None:
    secret, _rec = org.add("project", org.prod)
    _answer_404_without_deleting(org, delete_too=False)
    try:
        result = org.revoke("--yes", secrets=[secret])
    finally:
        _restore_delete()
    assert result.exit_code == 2, result.output
    assert "already-revoked" not in result.stdout
    assert "failed:" in result.stdout and "404" in result.stdout
    assert [r["result"] for r in org.records()] == ["not-found", "still-live"]


def test_404_on_delete_of_a_dead_key_is_already_revoked(org: Org) -> None:
    secret, _rec = org.add("project", org.prod)
    _answer_404_without_deleting(org, delete_too=True)
    try:
        result = org.revoke("--yes", secrets=[secret])
    finally:
        _restore_delete()
    assert result.exit_code == 0, result.output
    assert "already-revoked" in result.stdout


def test_audit_history_does_not_turn_a_live_key_into_already_revoked(org: Org) -> None:
    """An earlier run deleted a key for this fingerprint; the key still answers live: that
    deletion was not this key. Nothing is reported done, nothing is deleted again."""
    org.state.send_project_header = False
    leaked, _innocent, innocent_id = stranger_and_innocent(org)
    org.state.delete_key(innocent_id)  # (the earlier, wrong, deletion)
    org.audit.parent.mkdir(parents=True)
    org.audit.write_text(json.dumps({
        "timestamp": "2025-01-01T00:00:00Z", "action": "delete-project-key",
        "result": "deleted", "project": org.prod.id, "key_id": innocent_id,
        "redacted": redact(leaked), "fingerprint": fingerprint_of(leaked),
    }) + "\n", encoding="utf-8")
    result = org.revoke("--yes", secrets=[leaked])
    assert result.exit_code == 1, result.output
    assert "already-revoked" not in result.stdout
    assert "still answers live" in result.stdout
    assert org.deletes() == []


def test_redacted_report_with_key_id_is_deleted_but_not_called_done(org: Org) -> None:
    secret, rec = org.add("project", org.prod)
    report = report_for(org, [secret], org.tmp / "report.json", project=org.prod.id)
    result: Result = org.run("revoke", "--report", str(report), "--yes", "--key-id", rec.id)
    assert result.exit_code == 1, result.output
    assert "revoked-unconfirmed" in result.stdout and "not available" in result.stdout
    assert not alive(org, secret)
    # Rerun from the same report: nothing more to delete, still not proven.
    result = org.run("revoke", "--report", str(report), "--yes")
    assert result.exit_code == 1, result.output
    assert org.deletes() == [f"/v1/organization/projects/{org.prod.id}/api_keys/{rec.id}"]
    # The raw key proves it.
    result = org.revoke("--yes", secrets=[secret])
    assert result.exit_code == 0 and "already-revoked" in result.stdout, result.output
