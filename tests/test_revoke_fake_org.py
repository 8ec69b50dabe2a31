"""The fake Admin API's organization routes (tests/fakeopenai/org.py) behave like the spec says,
and every body they send validates against it (the ``fake_state`` fixture asserts that)."""

from __future__ import annotations

from typing import Any

import pytest

from keyscan.keygen import key
from tests.fakeopenai import FakeState, Request, Response, handle, spec


def call(state: FakeState, method: str, path: str, bearer: str | None) -> Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return handle(state, Request.build(method, "/v1" + path, headers))


@pytest.fixture
def world(fake_state: FakeState) -> dict[str, Any]:
    st = fake_state
    admin = key("admin")
    st.add_admin_key(admin)
    reader = key("admin")
    st.add_admin_key(reader, read_only=True)
    active = st.add_project("Active")
    old = st.add_project("Old", archived=True)
    bot = st.add_service_account(active.id, "bot")
    user_key = key("project")
    user_rec = st.add_project_key(user_key, active.id)
    bot_key = key("svcacct")
    bot_rec = st.add_project_key(bot_key, active.id, owner=bot)
    hidden_rec = st.add_project_key(key("project"), active.id, owner_project_access="inactive")
    old_rec = st.add_project_key(key("project"), old.id)
    return {
        "state": st, "admin": admin, "reader": reader, "active": active, "old": old,
        "bot": bot, "user_key": user_key, "user_rec": user_rec, "bot_key": bot_key,
        "bot_rec": bot_rec, "hidden_rec": hidden_rec, "old_rec": old_rec,
    }


def ids(resp: Response) -> list[str]:
    return [x["id"] for x in resp.body["data"]]


def test_projects_hide_archived_unless_asked(world: dict[str, Any]) -> None:
    st, admin = world["state"], world["admin"]
    resp = call(st, "GET", "/organization/projects", admin)
    assert resp.status == 200 and ids(resp) == [world["active"].id]
    resp = call(st, "GET", "/organization/projects?include_archived=true", admin)
    assert set(ids(resp)) == {world["active"].id, world["old"].id}
    archived = next(p for p in resp.body["data"] if p["id"] == world["old"].id)
    assert archived["status"] == "archived" and archived["archived_at"]


def test_key_list_filters_by_owner_project_access(world: dict[str, Any]) -> None:
    st, admin, pid = world["state"], world["admin"], world["active"].id
    visible = ids(call(st, "GET", f"/organization/projects/{pid}/api_keys", admin))
    assert world["hidden_rec"].id not in visible and world["user_rec"].id in visible
    every = ids(call(st, "GET", f"/organization/projects/{pid}/api_keys?owner_project_access=any",
                     admin))
    assert world["hidden_rec"].id in every and len(every) == 3
    inactive = ids(call(st, "GET",
                        f"/organization/projects/{pid}/api_keys?owner_project_access=inactive",
                        admin))
    assert inactive == [world["hidden_rec"].id]
    body = call(st, "GET", f"/organization/projects/{pid}/api_keys?owner_project_access=any",
                admin).body
    owners = {x["id"]: x["owner"]["type"] for x in body["data"]}
    assert owners[world["bot_rec"].id] == "service_account"
    redacted = {x["id"]: x["redacted_value"] for x in body["data"]}
    user_key = world["user_key"]
    assert redacted[world["user_rec"].id] == user_key[:8] + "*" * (len(user_key) - 12) + user_key[-4:]


def test_paging_with_a_small_page_cap(world: dict[str, Any]) -> None:
    st, admin, pid = world["state"], world["admin"], world["active"].id
    st.max_page_size = 1
    seen: list[str] = []
    after = ""
    for _ in range(10):
        path = f"/organization/projects/{pid}/api_keys?owner_project_access=any&limit=100"
        resp = call(st, "GET", path + (f"&after={after}" if after else ""), admin)
        assert len(resp.body["data"]) <= 1
        seen.extend(ids(resp))
        if not resp.body["has_more"]:
            break
        after = resp.body["last_id"]
    assert len(seen) == 3 and len(set(seen)) == 3
    st.max_page_size = None
    resp = call(st, "GET", f"/organization/projects/{pid}/api_keys?owner_project_access=any"
                "&limit=2", admin)
    assert len(resp.body["data"]) == 2 and resp.body["has_more"] is True


def test_delete_project_key_really_deletes(world: dict[str, Any]) -> None:
    st, admin, pid, rec = world["state"], world["admin"], world["active"].id, world["user_rec"]
    assert call(st, "GET", "/models", world["user_key"]).status == 200
    resp = call(st, "DELETE", f"/organization/projects/{pid}/api_keys/{rec.id}", admin)
    assert resp.status == 200 and resp.body == {
        "object": "organization.project.api_key.deleted", "id": rec.id, "deleted": True}
    after = call(st, "GET", "/models", world["user_key"])
    assert after.status == 401 and after.body["error"]["code"] == "invalid_api_key"
    assert world["user_key"] not in str(after.body)
    again = call(st, "DELETE", f"/organization/projects/{pid}/api_keys/{rec.id}", admin)
    assert again.status == 404
    assert call(st, "GET", f"/organization/projects/{pid}/api_keys/{rec.id}", admin).status == 404


def test_service_account_key_delete_is_refused_then_account_delete_works(
    world: dict[str, Any],
) -> None:
    st, admin, pid = world["state"], world["admin"], world["active"].id
    rec, bot = world["bot_rec"], world["bot"]
    resp = call(st, "DELETE", f"/organization/projects/{pid}/api_keys/{rec.id}", admin)
    assert resp.status == 400 and resp.schema == "ErrorResponse"
    assert call(st, "GET", "/models", world["bot_key"]).status == 200
    resp = call(st, "GET", f"/organization/projects/{pid}/service_accounts", admin)
    assert ids(resp) == [bot.id]
    assert call(st, "GET", f"/organization/projects/{pid}/service_accounts/{bot.id}",
                admin).status == 200
    resp = call(st, "DELETE", f"/organization/projects/{pid}/service_accounts/{bot.id}", admin)
    assert resp.status == 200 and resp.body["deleted"] is True
    assert call(st, "GET", "/models", world["bot_key"]).status == 401
    assert call(st, "DELETE", f"/organization/projects/{pid}/service_accounts/{bot.id}",
                admin).status == 404


def test_unknown_ids_answer_404(world: dict[str, Any]) -> None:
    st, admin, pid = world["state"], world["admin"], world["active"].id
    for method, path in [
        ("GET", "/organization/projects/proj_nope/api_keys"),
        ("DELETE", "/organization/projects/proj_nope/api_keys/key_x"),
        ("DELETE", f"/organization/projects/{pid}/api_keys/key_nope"),
        ("DELETE", f"/organization/projects/{world['old'].id}/api_keys/{world['user_rec'].id}"),
        ("DELETE", f"/organization/projects/{pid}/service_accounts/svc_acct_nope"),
        ("GET", "/organization/admin_api_keys/key_nope"),
        ("DELETE", "/organization/admin_api_keys/key_nope"),
    ]:
        resp = call(st, method, path, admin)
        assert resp.status == 404, (method, path)
        spec.validate(resp.body, "ErrorResponse")


def test_admin_auth_checks(world: dict[str, Any]) -> None:
    st, pid, rec = world["state"], world["active"].id, world["user_rec"]
    path = f"/organization/projects/{pid}/api_keys/{rec.id}"
    # No key, an unknown key, an ordinary project key: refused.
    assert call(st, "GET", "/organization/projects", None).status == 401
    wrong = call(st, "GET", "/organization/projects", key("admin"))
    assert wrong.status == 401 and wrong.body["error"]["code"] == "invalid_api_key"
    ordinary = call(st, "GET", "/organization/projects", world["user_key"])
    assert ordinary.status == 401 and "insufficient permissions" in ordinary.body["error"]["message"]
    # A read-only admin key lists but cannot delete.
    assert call(st, "GET", "/organization/projects", world["reader"]).status == 200
    denied = call(st, "DELETE", path, world["reader"])
    assert denied.status == 401 and "api.management.write" in denied.body["error"]["message"]
    assert st.key(world["user_key"]).state == "live"  # type: ignore[union-attr]


def test_admin_keys_list_get_delete(world: dict[str, Any]) -> None:
    st, admin = world["state"], world["admin"]
    st.max_page_size = 1
    first = call(st, "GET", "/organization/admin_api_keys", admin)
    assert len(first.body["data"]) == 1 and first.body["has_more"] is True
    second = call(st, "GET", f"/organization/admin_api_keys?after={first.body['last_id']}", admin)
    assert len(second.body["data"]) == 1 and second.body["has_more"] is False
    reader_id = next(k.id for k in st.admin_keys() if k.read_only)
    assert call(st, "GET", f"/organization/admin_api_keys/{reader_id}", admin).status == 200
    resp = call(st, "DELETE", f"/organization/admin_api_keys/{reader_id}", admin)
    assert resp.status == 200 and resp.body["object"] == "organization.admin_api_key.deleted"
    assert call(st, "GET", "/organization/projects", world["reader"]).status == 401
