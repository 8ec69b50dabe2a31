"""Planning and execution at unit level: the Admin API client on the fake's httpx transport."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keyscan.keygen import generate, key
from keyscan.models import Verification
from keyscan.revoke import RevokeOptions, leaked_from_secret, run_revocation
from keyscan.revoke.audit import AuditLog, read_records
from keyscan.revoke.client import AdminClient
from keyscan.revoke.errors import AdminApiError
from keyscan.revoke.execute import ExecOptions, Executor
from keyscan.revoke.model import (
    AMBIGUOUS,
    DASHBOARD,
    DELETE_PROJECT_KEY,
    FAILED,
    NO_ACTION,
    REVOKED,
    SELF,
    UNIQUE,
    LeakedKey,
)
from keyscan.revoke.plan import Planner, PlanOptions
from keyscan.revoke.render import plan_text, render_plan, run_text
from tests.fakeopenai import FakeState, FakeTransport
from tests.fakeopenai.app import json_response, register

BASE = "https://api.openai.com/v1"


def lookalike(secret: str) -> str:
    middle = len(secret) - 12
    half = (middle - 8) // 2
    body = generate(f"{{b64url:{half}}}{{marker}}{{b64url:{middle - 8 - half}}}")
    return secret[:8] + body + secret[-4:]


@pytest.fixture
def admin(fake_state: FakeState) -> str:
    secret = key("admin")
    fake_state.add_admin_key(secret)
    return secret


@pytest.fixture
def client(fake_state: FakeState, admin: str) -> Iterator[AdminClient]:
    with AdminClient.connect(BASE, admin, FakeTransport(fake_state), retries=0) as c:
        yield c


def live(secret: str, family: str = "unknown", project: str | None = None) -> LeakedKey:
    return leaked_from_secret(secret, family, Verification(status="live", project=project))


def test_one_org_key_matched_by_two_leaked_keys_is_not_deleted(
    fake_state: FakeState, client: AdminClient
) -> None:
    p = fake_state.add_project("P")
    a = key("project")
    fake_state.add_project_key(a, p.id)
    b = lookalike(a)  # not in the organization, but looks the same redacted
    plan = Planner(client, PlanOptions()).plan([live(a), live(b)])
    assert [i.action for i in plan] == [NO_ACTION, NO_ACTION]
    assert {i.reason for i in plan} == {AMBIGUOUS}
    assert "2 different leaked keys" in plan[0].message


def test_unique_and_families_without_admin_api(fake_state: FakeState, client: AdminClient) -> None:
    p = fake_state.add_project("P")
    a = key("project")
    rec = fake_state.add_project_key(a, p.id)
    none_key = key("user-none")
    plan = Planner(client, PlanOptions()).plan(
        [live(a, project=p.id), live(none_key), live(key("legacy")),
         leaked_from_secret(generate("{hex:32}"), "azure")]
    )
    assert plan[0].action == DELETE_PROJECT_KEY and plan[0].reason == UNIQUE
    assert plan[0].target is not None and plan[0].target.id == rec.id
    assert [i.reason for i in plan[1:]] == [DASHBOARD] * 3
    assert "dashboard" in plan[1].message and none_key[-4:] in plan[1].message
    assert "Azure" in plan[3].message


def test_admin_key_that_looks_like_the_requester_is_refused(
    fake_state: FakeState, client: AdminClient, admin: str
) -> None:
    twin = lookalike(admin)  # leaked, not in the org; the only look-alike is our own key
    item = Planner(client, PlanOptions(admin_key=admin)).plan([live(twin, "admin")])[0]
    assert item.action == NO_ACTION and item.reason == SELF
    item = Planner(client, PlanOptions(admin_key=admin)).plan([live(admin, "admin")])[0]
    assert item.reason == SELF and "making the request" in item.message


def test_recheck_retries_for_propagation(fake_state: FakeState, client: AdminClient,
                                         tmp_path: Path) -> None:
    p = fake_state.add_project("P")
    a = key("project")
    fake_state.add_project_key(a, p.id)
    plan = Planner(client, PlanOptions()).plan([live(a, project=p.id)])
    answers = iter(["live", "live", "invalid"])
    sleeps: list[float] = []

    def verifier(k: LeakedKey) -> Verification:
        return Verification(status=next(answers), http_status=401)

    audit = AuditLog(tmp_path / "audit.jsonl")
    ex = Executor(client, audit, ExecOptions(recheck_attempts=4, recheck_delay=1.0,
                                             sleep=sleeps.append), verifier)
    [outcome] = ex.run(plan)
    assert outcome.status == REVOKED
    assert sleeps == [1.0, 2.0]
    assert [r["action"] for r in read_records(audit.path)] == ["delete-project-key", "recheck"]
    assert read_records(audit.path)[1]["attempts"] == 3


def test_recheck_gives_up_as_failed(fake_state: FakeState, client: AdminClient,
                                    tmp_path: Path) -> None:
    # (A leaked key still live after the delete is a failure: the deleted key may not be it.)
    p = fake_state.add_project("P")
    a = key("project")
    fake_state.add_project_key(a, p.id)
    plan = Planner(client, PlanOptions()).plan([live(a, project=p.id)])
    ex = Executor(client, AuditLog(tmp_path / "a.jsonl"),
                  ExecOptions(recheck_attempts=3, recheck_delay=0),
                  lambda k: Verification(status="live"))
    [outcome] = ex.run(plan)
    assert outcome.status == FAILED and "after 3 checks" in outcome.message


def test_plan_text_is_safe_for_terminals(fake_state: FakeState, client: AdminClient) -> None:
    p = fake_state.add_project("\x1b[2J\x1b[31mevil\u202e")
    a = key("project")
    fake_state.add_project_key(a, p.id, name="k\rforged")
    text = render_plan(Planner(client, PlanOptions()).plan([live(a)]), True, False)
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text
    assert "\\x1b[31mevil" in text


def test_client_refuses_endless_paging(fake_state: FakeState, client: AdminClient) -> None:
    def broken(state: FakeState, req: object, m: object) -> object:
        body = {"object": "list", "data": [], "first_id": None, "last_id": None,
                "has_more": True}
        return json_response(body, "ProjectListResponse")

    from tests.fakeopenai.org import list_projects

    register("GET", r"/organization/projects", broken)  # type: ignore[arg-type]
    try:
        with pytest.raises(AdminApiError, match="has_more without a usable last_id"):
            client.list_projects()
    finally:
        register("GET", r"/organization/projects", list_projects)


def test_revoke_keys_api_with_transports(fake_state: FakeState, admin: str,
                                         tmp_path: Path) -> None:
    """The library entry point, with both transports injected (no socket at all)."""
    from tests.fakeopenai import AsyncFakeTransport

    p = fake_state.add_project("P")
    a = key("project")
    fake_state.add_project_key(a, p.id)
    options = RevokeOptions(
        admin_key=admin, base_url=BASE, yes=True, audit_path=tmp_path / "audit.jsonl",
        transport=FakeTransport(fake_state), verify_transport=AsyncFakeTransport(fake_state),
        recheck_delay=0, backoff_initial=0,
    )
    shown: list[str] = []
    run = run_revocation(
        [leaked_from_secret(a, "project")], options,
        on_plan=lambda r: shown.append(plan_text(r, "text", False)),
    )  # fmt: skip
    assert run.code == 0, run.errors
    assert fake_state.key(a).state == "deleted"  # type: ignore[union-attr]
    # The engine prints nothing: the plan reached the caller before the DELETE, the results
    # are data that the command line renders.
    assert len(shown) == 1 and "Revocation plan" in shown[0]
    end = run_text(run, "text", str(tmp_path / "audit.jsonl"))
    assert "revoked:" in end
    for text in (*shown, end, *run.errors, (tmp_path / "audit.jsonl").read_text()):
        assert a not in text and admin not in text


def test_same_ends_other_length_is_not_a_candidate(fake_state: FakeState,
                                                     client: AdminClient) -> None:
    p = fake_state.add_project("P")
    leaked = key("project")  # 164 characters
    shorter = leaked[:8] + generate("{b64url:56}{marker}{b64url:56}") + leaked[-4:]
    assert len(shorter) != len(leaked)
    rec = fake_state.add_project_key(shorter, p.id)
    item = Planner(client, PlanOptions()).plan([live(leaked)])[0]
    assert item.action == NO_ACTION and item.target is None
    assert "not found in this organization" in item.message
    assert f"{rec.id} (length differs)" in item.message
