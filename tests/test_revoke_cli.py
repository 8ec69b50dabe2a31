"""``keyscan revoke`` end to end, against the fake OpenAI API over real HTTP on 127.0.0.1.

The organization: five projects (one archived), project keys owned by users and by a service
account, admin keys, and a page size of 2 so that every list crosses pages. Every test checks
that no raw key reaches stdout, stderr or the audit log; the ``fake_state`` fixture checks that
every body the fake sent validates against OpenAI's spec.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from keyscan.cli import cli
from keyscan.keygen import generate, key
from keyscan.models import Confidence, Finding, Location, Verification, fingerprint_of, redact
from keyscan.report.json_report import finding_to_json
from tests.fakeopenai import FakeServer, FakeState
from tests.fakeopenai.state import KeyRecord, Project, ServiceAccount


def lookalike(secret: str) -> str:
    """Another key with the same first 8, last 4 and length (a suffix collision)."""
    middle = len(secret) - 12
    half = (middle - 8) // 2
    body = generate(f"{{b64url:{half}}}{{marker}}{{b64url:{middle - 8 - half}}}")
    return secret[:8] + body + secret[-4:]


@dataclass
class Org:
    state: FakeState
    server: FakeServer
    tmp: Path
    admin: str
    prod: Project
    archived: Project
    other: Project
    bot: ServiceAccount
    secrets: list[str] = field(default_factory=list)

    @property
    def audit(self) -> Path:
        return self.tmp / "data" / "keyscan" / "audit.jsonl"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "OPENAI_ADMIN_KEY": self.admin,
            "OPENAI_BASE_URL": self.server.base_url,
            "XDG_DATA_HOME": str(self.tmp / "data"),
            "XDG_CACHE_HOME": str(self.tmp / "cache"),
            "HOME": str(self.tmp / "home"),
        }
        env.update(extra)
        return env

    def add(self, family: str, project: Project, **fields: Any) -> tuple[str, KeyRecord]:
        secret = key(family)
        self.secrets.append(secret)
        return secret, self.state.add_project_key(secret, project.id, **fields)

    def run(self, *args: str, input: str | None = None, env: dict[str, str] | None = None
            ) -> Result:
        argv = list(args)
        if argv and argv[0] == "revoke":
            argv += ["--recheck-delay", "0", "--backoff", "0"]
        result = CliRunner().invoke(cli, argv, input=input, env=env or self.env())
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        self.assert_no_secret(result)
        return result

    def revoke(self, *args: str, secrets: list[str] | None = None) -> Result:
        """``keyscan revoke -`` with raw keys on stdin."""
        text = "".join(f"OPENAI_API_KEY={s}\n" for s in secrets or [])
        return self.run("revoke", "-", *args, input=text)

    def assert_no_secret(self, result: Result) -> None:
        texts = [result.stdout, result.stderr]
        if self.audit.exists():
            texts.append(self.audit.read_text(encoding="utf-8"))
        for secret in [*self.secrets, self.admin]:
            for text in texts:
                assert secret not in text

    def deletes(self) -> list[str]:
        return [r.path for r in self.state.requests() if r.method == "DELETE"]

    def records(self) -> list[dict[str, Any]]:
        if not self.audit.exists():
            return []
        return [json.loads(line) for line in self.audit.read_text().splitlines()]


@pytest.fixture
def org(fake_state: FakeState, tmp_path: Path) -> Iterator[Org]:
    state = fake_state
    state.max_page_size = 2
    admin = key("admin")
    state.add_admin_key(admin, name="Automation admin key")
    state.add_admin_key(key("admin"), name="Another admin key")
    prod = state.add_project("Prod")
    archived = state.add_project("Old", archived=True)
    other = state.add_project("Other")
    for name in ("Sandbox", "Research"):
        p = state.add_project(name)
        for _ in range(3):
            state.add_project_key(key("project"), p.id)
    bot = state.add_service_account(prod.id, "deploy-bot")
    with FakeServer(state) as server:
        o = Org(state, server, tmp_path, admin, prod, archived, other, bot)
        for p in (prod, archived, other):
            for _ in range(3):
                o.add("project", p)
        yield o


def test_unique_match_deleted_and_confirmed(org: Org) -> None:
    org.state.send_project_header = False  # no project hint: search every project
    secret, rec = org.add("project", org.archived, name="ci key", last_used_at=1700000000)
    # Without a project in the key's own answer, a unique match is not proof: --key-id is.
    result = org.revoke("--yes", secrets=[secret])
    assert result.exit_code == 1 and org.deletes() == [], result.output
    assert f"--key-id {rec.id}" in result.stdout
    org.state.log.clear()
    result = org.revoke("--yes", "--key-id", rec.id, secrets=[secret])
    assert result.exit_code == 0, result.output
    assert "revoked:" in result.stdout and rec.id in result.stdout
    assert "[archived]" in result.stdout
    assert org.state.key(secret).state == "deleted"  # type: ignore[union-attr]
    assert org.deletes() == [f"/v1/organization/projects/{org.archived.id}/api_keys/{rec.id}"]
    # The leaked key was re-checked after the delete and answered invalid.
    models = [r for r in org.state.requests("/models")
              if r.bearer_fingerprint == fingerprint_of(secret)]
    assert len(models) == 2
    # Every list went to the end, page by page; key lists asked owner_project_access=any;
    # archived projects were included.
    projects = org.state.requests("/organization/projects")
    assert all(r.query.get("include_archived") == ["true"] for r in projects)
    assert len(projects) == 3 and any("after" in r.query for r in projects)
    key_lists = org.state.requests("/api_keys")
    assert key_lists and all(r.query.get("owner_project_access") == ["any"] for r in key_lists)
    assert any("after" in r.query for r in key_lists)
    # The audit log: 0600, what was done, never the key.
    assert stat.S_IMODE(org.audit.stat().st_mode) == 0o600
    delete, recheck = org.records()
    assert delete["action"] == "delete-project-key" and delete["result"] == "deleted"
    assert delete["project"] == org.archived.id and delete["key_id"] == rec.id
    assert delete["fingerprint"] == fingerprint_of(secret)
    assert delete["redacted"] == redact(secret)
    assert delete["http_status"] == 200 and delete["request_id"].startswith("req_")
    assert delete["timestamp"].endswith("Z")
    assert recheck["action"] == "recheck" and recheck["result"] == "revoked"


def test_dry_run_prints_the_plan_and_changes_nothing(org: Org) -> None:
    owner = org.state.add_user("Dana Developer", "dana@example.com")
    secret, rec = org.add("project", org.prod, name="laptop key", owner=owner,
                          last_used_at=1700000000)
    result = org.revoke(secrets=[secret])
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "dry run" in out
    for expected in (rec.id, "laptop key", org.prod.id, "Prod", "Dana Developer",
                     "dana@example.com", "created:", "2023-11-14", "project key",
                     f"delete project key {rec.id}"):
        assert expected in out
    assert redact(secret) in out
    assert org.deletes() == []
    assert org.state.key(secret).state == "live"  # type: ignore[union-attr]
    assert not org.audit.exists()


def test_verified_project_narrows_the_search(org: Org) -> None:
    secret, _rec = org.add("project", org.prod)
    twin = lookalike(secret)
    org.secrets.append(twin)
    org.state.add_project_key(twin, org.other.id)
    result = org.revoke("--yes", secrets=[secret])
    assert result.exit_code == 0, result.output
    assert org.state.key(secret).state == "deleted"  # type: ignore[union-attr]
    assert org.state.key(twin).state == "live"  # type: ignore[union-attr]
    listed = {r.path for r in org.state.requests("/api_keys")}
    assert listed == {f"/v1/organization/projects/{org.prod.id}/api_keys"}


def test_ambiguous_match_deletes_nothing_and_key_id_resolves_it(org: Org) -> None:
    org.state.send_project_header = False
    secret, rec = org.add("project", org.prod)
    twin = lookalike(secret)
    org.secrets.append(twin)
    twin_rec = org.state.add_project_key(twin, org.other.id)
    result = org.revoke("--yes", secrets=[secret])
    assert result.exit_code == 1, result.output
    assert "2 candidates" in result.stdout and "--key-id" in result.stdout
    assert rec.id in result.stdout and twin_rec.id in result.stdout
    assert org.deletes() == []
    # A --key-id that is not a candidate: a warning in a dry run, an error with --yes.
    result = org.revoke("--key-id", "key_notacandidate", secrets=[secret])
    assert result.exit_code == 1 and "not among the candidates" in result.stderr
    result = org.revoke("--yes", "--key-id", "key_notacandidate", secrets=[secret])
    assert result.exit_code == 2 and org.deletes() == []
    assert "nothing was deleted" in one_error_line(result)
    # The user picks.
    result = org.revoke("--yes", "--key-id", rec.id, secrets=[secret])
    assert result.exit_code == 0, result.output
    assert org.state.key(secret).state == "deleted"  # type: ignore[union-attr]
    assert org.state.key(twin).state == "live"  # type: ignore[union-attr]


def test_owner_type_must_agree_with_prefix(org: Org) -> None:
    org.state.send_project_header = False
    secret = key("project")
    org.secrets.append(secret)
    # A user-prefixed key listed as a service account's: not a candidate.
    org.state.add_project_key(secret, org.prod.id, owner=org.bot)
    result = org.revoke("--yes", secrets=[secret])
    assert result.exit_code == 1
    assert "not found in this organization" in result.stdout
    assert "owned by a service account" in result.stdout
    assert org.deletes() == []


def test_key_hidden_without_owner_project_access_any_is_found(org: Org) -> None:
    secret, _rec = org.add("project", org.prod, owner_project_access="inactive")
    result = org.revoke("--yes", secrets=[secret])
    assert result.exit_code == 0, result.output
    assert org.state.key(secret).state == "deleted"  # type: ignore[union-attr]


def test_not_found_in_this_organization(org: Org) -> None:
    stranger = key("project")
    org.secrets.append(stranger)
    org.state.add_key(stranger)  # live, but in no project of this organization
    result = org.revoke("--yes", secrets=[stranger])
    assert result.exit_code == 1
    assert "not found in this organization" in result.stdout
    assert org.deletes() == []


def test_legacy_key_gets_dashboard_advice(org: Org) -> None:
    legacy = key("legacy")
    org.secrets.append(legacy)
    org.state.add_key(legacy)
    result = org.revoke("--yes", secrets=[legacy])
    assert result.exit_code == 1
    assert "platform.openai.com" in result.stdout and legacy[-4:] in result.stdout
    assert org.deletes() == []


def test_dead_key_has_nothing_to_revoke(org: Org) -> None:
    dead, _ = org.add("project", org.prod, state="deleted")
    result = org.revoke("--yes", secrets=[dead])
    assert result.exit_code == 0
    assert "nothing to revoke" in result.stdout
    assert org.deletes() == []


def test_service_account_key_needs_explicit_service_account_deletion(org: Org) -> None:
    secret, _rec = org.add("svcacct", org.prod, owner=org.bot, name="deploy")
    sibling, _ = org.add("svcacct", org.prod, owner=org.bot, name="deploy 2")
    result = org.revoke("--yes", secrets=[secret])
    assert result.exit_code == 1, result.output
    assert "needs-service-account-deletion" in result.stdout
    assert "--delete-service-account" in result.stdout and "WARNING" in result.stdout
    assert "revokes all 2 of its keys" in result.stdout
    assert org.state.key(secret).state == "live"  # type: ignore[union-attr]
    assert [r["result"] for r in org.records()] == ["refused"]
    assert org.records()[0]["http_status"] == 400
    # The dry run with the flag says plainly what it will do.
    result = org.revoke("--delete-service-account", secrets=[secret])
    assert f"delete service account {org.bot.id}" in result.stdout
    assert "revokes all 2 of its keys" in result.stdout
    assert org.state.key(secret).state == "live"  # type: ignore[union-attr]
    result = org.revoke("--yes", "--delete-service-account", secrets=[secret])
    assert result.exit_code == 0, result.output
    assert "revoked" in result.stdout
    assert org.state.key(secret).state == "deleted"  # type: ignore[union-attr]
    assert org.state.key(sibling).state == "deleted"  # type: ignore[union-attr]
    actions = [(r["action"], r["result"]) for r in org.records()]
    assert ("delete-service-account", "deleted") in actions
    sa_record = next(r for r in org.records() if r["action"] == "delete-service-account")
    assert sa_record["service_account_id"] == org.bot.id


def test_admin_key_path(org: Org) -> None:
    leaked = key("admin")
    org.secrets.append(leaked)
    rec = org.state.add_admin_key(leaked, name="Leaked admin key")
    result = org.revoke("--yes", secrets=[leaked])
    assert result.exit_code == 0, result.output
    assert org.deletes() == [f"/v1/organization/admin_api_keys/{rec.id}"]
    assert org.state.key(leaked).state == "deleted"  # type: ignore[union-attr]
    assert "revoked" in result.stdout
    assert org.records()[0]["action"] == "delete-admin-key"


def test_refuses_to_delete_the_admin_key_making_the_request(org: Org) -> None:
    result = org.revoke("--yes", secrets=[org.admin])
    assert result.exit_code == 1
    assert "refusing to delete" in result.stdout
    assert org.deletes() == []
    assert org.state.key(org.admin).state == "live"  # type: ignore[union-attr]


def report_for(org: Org, secrets: list[str], path: Path, project: str | None = None,
               status: str | None = "live") -> Path:
    """A redacted keyscan JSON report, written by keyscan's own serializer."""
    findings = []
    for s in secrets:
        f = Finding(
            rule_id="openai-project-key", family="project", confidence=Confidence.HIGH,
            fingerprint=fingerprint_of(s), redacted=redact(s), length=len(s), secret=s,
            locations=[Location(path="app/settings.py", line=4, column=11, offset=60)],
            verification=Verification(status=status, project=project) if status else None,
        )
        findings.append(finding_to_json(f, show_secrets=False))
    path.write_text(json.dumps({"schema_version": 1, "findings": findings}), encoding="utf-8")
    return path


def test_redacted_report_and_idempotent_rerun(org: Org) -> None:
    secret, rec = org.add("project", org.prod)
    report = report_for(org, [secret], org.tmp / "report.json", project=org.prod.id)
    assert secret not in report.read_text()
    # A redacted value cannot prove identity: plan only, deletion only with --key-id.
    result = org.run("revoke", "--report", str(report), "--yes")
    assert result.exit_code == 1, result.output
    assert org.deletes() == [] and f"--key-id {rec.id}" in result.stdout
    result = org.run("revoke", "--report", str(report), "--yes", "--key-id", rec.id)
    assert result.exit_code == 1, result.output  # deleted, but the leaked value is unproven
    assert "revoked-unconfirmed" in result.stdout and "not available" in result.stdout
    assert org.state.key(secret).state == "deleted"  # type: ignore[union-attr]
    # Run again: the audit log names the deleted id; nothing is deleted again.
    result = org.run("revoke", "--report", str(report), "--yes")
    assert result.exit_code == 1, result.output
    assert "never saw the key itself answer invalid" in result.stdout
    assert len(org.deletes()) == 1
    # With the raw key: it is dead now, revoked before.
    result = org.revoke("--yes", secrets=[secret])
    assert result.exit_code == 0 and "already-revoked" in result.stdout


def test_report_dead_key_and_project_of_another_org(org: Org) -> None:
    a, _ = org.add("project", org.prod)
    b, _ = org.add("project", org.prod)
    report_for(org, [a], org.tmp / "dead.json", status="invalid")
    result = org.run("revoke", "--report", str(org.tmp / "dead.json"), "--yes")
    assert result.exit_code == 0 and "nothing to revoke" in result.stdout
    report_for(org, [b], org.tmp / "elsewhere.json", project="proj_" + "z" * 24)
    result = org.run("revoke", "--report", str(org.tmp / "elsewhere.json"), "--yes")
    assert result.exit_code == 1 and "not found in this organization" in result.stdout
    assert org.deletes() == []


def test_json_output(org: Org) -> None:
    secret, rec = org.add("project", org.prod)
    result = org.run("revoke", "-", "--format", "json", input=secret + "\n")
    doc = json.loads(result.stdout)
    assert doc["dry_run"] is True and doc["keys"][0]["target"]["id"] == rec.id
    assert doc["keys"][0]["action"] == "delete-project-key"
    result = org.run("revoke", "-", "--format", "json", "--yes", input=secret + "\n")
    doc = json.loads(result.stdout)
    assert doc["keys"][0]["status"] == "revoked" and doc["error"] is None


# -- errors ------------------------------------------------------------------------------------

def one_error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("keyscan: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_invalid_admin_key(org: Org) -> None:
    secret, _ = org.add("project", org.prod)
    wrong = key("admin")
    org.secrets.append(wrong)
    result = org.run("revoke", "-", "--yes", input=secret, env=org.env(OPENAI_ADMIN_KEY=wrong))
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "admin key was rejected" in line and "nothing was deleted" in line
    assert org.deletes() == []


def test_admin_key_without_write_scope(org: Org) -> None:
    reader = key("admin")
    org.secrets.append(reader)
    org.state.add_admin_key(reader, read_only=True)
    secret, _ = org.add("project", org.prod)
    second, _ = org.add("project", org.other)
    text = f"{secret}\n{second}\n"
    result = org.run("revoke", "-", "--yes", input=text, env=org.env(OPENAI_ADMIN_KEY=reader))
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "lacks a permission" in line and "0 key(s) revoked" in line
    # The first delete failed, the second was not attempted: said plainly, per key.
    assert "1. " + redact(secret) + "  failed:" in result.stdout
    assert "2. " + redact(second) + "  not-run:" in result.stdout
    assert org.state.key(secret).state == "live"  # type: ignore[union-attr]
    assert org.state.key(second).state == "live"  # type: ignore[union-attr]
    assert org.records()[0]["result"] == "error" and org.records()[0]["http_status"] == 401


def test_forbidden_403_is_a_scope_error(org: Org) -> None:
    """Plan GETs succeed, then the DELETE answers 403: stop, say so, exit 2."""
    secret, _ = org.add("project", org.prod)
    from tests.fakeopenai.app import error_response, register
    from tests.fakeopenai.org import delete_project_key

    def forbidden(state: FakeState, req: Any, m: Any) -> Any:
        return error_response(403, "Forbidden: this key may not manage keys.")

    pattern = r"/organization/projects/(?P<project_id>[^/]+)/api_keys/(?P<key_id>[^/]+)"
    register("DELETE", pattern, forbidden)
    try:
        result = org.revoke("--yes", secrets=[secret])
    finally:
        register("DELETE", pattern, delete_project_key)
    assert result.exit_code == 2
    assert "lacks a permission" in one_error_line(result)
    assert org.state.key(secret).state == "live"  # type: ignore[union-attr]


def test_rate_limit_is_retried_with_backoff(org: Org) -> None:
    secret, rec = org.add("project", org.prod)
    before = len(org.state.requests())
    org.state.fail_next(2, status=429, headers={"retry-after-ms": "10"},
                        code="rate_limit_exceeded", message="Rate limit reached")
    # --no-check: the first requests are the Admin API's (the 429s hit the project list).
    result = org.revoke("--yes", "--no-check", "--key-id", rec.id, secrets=[secret])
    assert result.exit_code == 0, result.output
    assert org.state.key(secret).state == "deleted"  # type: ignore[union-attr]
    assert len(org.state.requests()) > before + 2


def test_server_errors_after_retries(org: Org) -> None:
    secret, _ = org.add("project", org.prod)
    org.state.fail_next(1)  # the key check before planning: retried, then fine
    org.state.fail_next(50, status=503)
    result = org.revoke("--yes", secrets=[secret])
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "server error" in line and "HTTP 503" in line and "nothing was deleted" in line
    assert org.state.key(secret).state == "live"  # type: ignore[union-attr]
    while org.state.take_failure() is not None:
        pass


def test_server_error_midway_says_what_was_done(org: Org) -> None:
    """The first delete succeeds, the second meets a lasting 503: stop, and say so."""
    from tests.fakeopenai.app import error_response, register
    from tests.fakeopenai.org import delete_project_key

    first, _ = org.add("project", org.prod)
    second, _ = org.add("project", org.other)
    third, _ = org.add("project", org.other)
    calls: list[str] = []

    def flaky(state: FakeState, req: Any, m: Any) -> Any:
        calls.append(req.path)
        if len(calls) == 1:
            return delete_project_key(state, req, m)
        return error_response(503, "The server is overloaded.", type="server_error")

    pattern = r"/organization/projects/(?P<project_id>[^/]+)/api_keys/(?P<key_id>[^/]+)"
    register("DELETE", pattern, flaky)
    try:
        result = org.revoke("--yes", secrets=[first, second, third])
    finally:
        register("DELETE", pattern, delete_project_key)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "revocation stopped" in line and "1 key(s) revoked before it, 2 not revoked" in line
    assert f"1. {redact(first)}  revoked:" in result.stdout
    assert f"2. {redact(second)}  failed:" in result.stdout
    assert f"3. {redact(third)}  not-run:" in result.stdout
    assert len(calls) == 5  # 1 + the failing DELETE with its 3 retries; the third never sent
    assert org.state.key(first).state == "deleted"  # type: ignore[union-attr]
    assert org.state.key(second).state == "live"  # type: ignore[union-attr]
    results = [(r["action"], r["result"]) for r in org.records()]
    assert results == [("delete-project-key", "deleted"), ("recheck", "revoked"),
                       ("delete-project-key", "error")]


def test_network_failure(org: Org) -> None:
    secret, _ = org.add("project", org.prod)
    closed = FakeServer(FakeState())
    base = closed.base_url
    closed._server.server_close()  # a port nobody listens on any more
    result = org.run("revoke", "-", "--yes", "--no-check", input=secret,
                     env=org.env(OPENAI_BASE_URL=base))
    assert result.exit_code == 2
    assert "cannot reach the Admin API" in one_error_line(result)


def test_unsafe_base_url_and_missing_inputs(org: Org) -> None:
    secret, _ = org.add("project", org.prod)
    result = org.run("revoke", "-", "--no-check", "--api-base", "http://example.com/v1",
                     input=secret)
    assert result.exit_code == 2 and "plain http" in one_error_line(result)
    env = org.env()
    del env["OPENAI_ADMIN_KEY"]
    result = org.run("revoke", "-", input=secret, env={**env, "OPENAI_ADMIN_KEY": ""})
    assert result.exit_code == 2 and "OPENAI_ADMIN_KEY" in one_error_line(result)
    # A key as an argument is refused, without echoing it.
    result = org.run("revoke", secret)
    assert result.exit_code == 2 and "never on the command line" in one_error_line(result)
    result = org.run("revoke")
    assert result.exit_code == 2
    # An audit log that cannot be written stops the run before anything is deleted.
    blocker = org.tmp / "blocker"
    blocker.write_text("", encoding="utf-8")
    result = org.run("revoke", "-", "--yes", "--audit-log", str(blocker / "audit.jsonl"),
                     input=secret)
    assert result.exit_code == 2 and "audit log" in one_error_line(result)
    assert org.deletes() == []


def test_admin_key_file(org: Org) -> None:
    secret, _ = org.add("project", org.prod)
    f = org.tmp / "admin.key"
    f.write_text(org.admin + "\n", encoding="utf-8")
    os.chmod(f, 0o600)
    env = {**org.env(), "OPENAI_ADMIN_KEY": ""}
    result = org.run("revoke", "-", "--yes", "--admin-key-file", str(f), input=secret, env=env)
    assert result.exit_code == 0, result.output
    assert org.state.key(secret).state == "deleted"  # type: ignore[union-attr]


# -- from a scan ---------------------------------------------------------------------------------

def test_scan_verify_revoke(org: Org) -> None:
    secret, rec = org.add("project", org.prod)
    dead, _ = org.add("project", org.prod, state="deleted")
    src = org.tmp / "repo"
    src.mkdir()
    (src / "settings.py").write_text(f'OPENAI_API_KEY = "{secret}"\nOLD = "{dead}"\n',
                                     encoding="utf-8")
    result = org.run("scan", "--verify", "--revoke", "--format", "json", str(src))
    assert result.exit_code == 1, result.output
    assert "Revocation plan" in result.stderr and rec.id in result.stderr
    assert redact(dead) not in result.stderr  # verified dead: nothing to revoke
    assert org.deletes() == []
    json.loads(result.stdout)  # the report on stdout stays clean JSON
    result = org.run("scan", "--verify", "--revoke", "--yes", "--format", "json", str(src))
    assert result.exit_code == 1, result.output
    assert org.state.key(secret).state == "deleted"  # type: ignore[union-attr]
    doc = json.loads(result.stdout)
    revoked = next(f for f in doc["findings"] if f["fingerprint"] == fingerprint_of(secret))
    assert revoked["extra"]["revocation"]["status"] == "revoked"
    assert revoked["extra"]["revocation"]["key_id"] == rec.id
    assert org.deletes() == [f"/v1/organization/projects/{org.prod.id}/api_keys/{rec.id}"]
    # --yes alone is refused.
    result = org.run("scan", "--yes", str(src))
    assert result.exit_code == 2


def test_git_history_verify_revoke(org: Org) -> None:
    """A key committed and then removed is still in history: ``keyscan git --revoke`` finds
    and revokes it."""
    import subprocess

    secret, rec = org.add("project", org.archived)
    repo = org.tmp / "history"
    repo.mkdir()
    genv = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
            "HOME": str(org.tmp / "home")}

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, env=genv, check=True, capture_output=True)

    git("init", "-q")
    (repo / "config.env").write_text(f"OPENAI_API_KEY={secret}\n", encoding="utf-8")
    git("add", "config.env")
    git("commit", "-q", "-m", "add config")
    (repo / "config.env").write_text("OPENAI_API_KEY=\n", encoding="utf-8")
    git("commit", "-q", "-am", "remove the key")
    result = org.run("git", "--verify", "--revoke", "--yes", "--no-cache", str(repo))
    assert result.exit_code == 1, result.output  # the key is still in history: a finding
    assert "revoked:" in result.stderr and rec.id in result.stderr
    assert org.state.key(secret).state == "deleted"  # type: ignore[union-attr]
    assert org.records()[0]["key_id"] == rec.id
