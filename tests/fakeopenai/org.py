"""Organization routes of the fake Admin API: projects, project keys, service accounts, admin
keys. Registered into app.ROUTES when the package is imported (see app.EXTENSIONS).

Behaviour, as the spec and openai-facts.md describe the real API:

- lists page with ``limit`` (1..100, default 20) and ``after``; ``state.max_page_size`` (when
  set) caps every page so that tests cross pages with a handful of objects;
- ``/organization/projects`` hides archived projects unless ``include_archived=true``;
- project key lists hide keys whose owner lost access (``owner_project_access="inactive"``)
  unless ``owner_project_access=any`` (or ``inactive``) is asked;
- DELETE of a project key really deletes it (``state.delete_key``: the key then answers 401
  ``invalid_api_key``); a key owned by a service account answers 400; unknown ids answer 404;
- DELETE of a service account deletes it and every key it owns;
- every route needs a live admin key; DELETE needs one with write scope (a ``read_only``
  admin key gets 401 "insufficient permissions ... Missing scopes: api.management.write",
  which is how OpenAI answers a key lacking a scope: 401, not 403).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.fakeopenai.app import (
    Request,
    Response,
    admin_key_json,
    error_response,
    json_response,
    register,
    require_admin,
    success_headers,
)
from tests.fakeopenai.state import FakeState, KeyRecord, Project

READ_SCOPE = "api.management.read"
WRITE_SCOPE = "api.management.write"

ADMIN_KEY_DELETED_SCHEMA = (
    "#/paths/~1organization~1admin_api_keys~1{key_id}/delete/responses/200/content/"
    "application~1json/schema"
)


def _page_size(state: FakeState, req: Request) -> int:
    try:
        limit = int(req.arg("limit") or 20)
    except ValueError:
        limit = 20
    limit = max(1, min(limit, 100))
    if state.max_page_size:
        limit = min(limit, state.max_page_size)
    return limit


def _list(state: FakeState, req: Request, items: list[Any], id_of: Callable[[Any], str],
          to_json: Callable[[Any], dict[str, Any]], schema: str, auth: KeyRecord) -> Response:
    after = req.arg("after")
    if after:
        ids = [id_of(x) for x in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    limit = _page_size(state, req)
    chunk, more = items[:limit], len(items) > limit
    data = [to_json(x) for x in chunk]
    body = {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": more,
    }
    return json_response(body, schema, headers=success_headers(state, auth))


def _admin(state: FakeState, req: Request, write: bool = False) -> KeyRecord | Response:
    rec = require_admin(state, req, WRITE_SCOPE if write else READ_SCOPE)
    if isinstance(rec, Response):
        return rec
    if write and rec.read_only:
        return error_response(
            401,
            "You have insufficient permissions for this operation. Missing scopes: "
            f"{WRITE_SCOPE}. Check that you have the correct role in your organization.",
        )
    return rec


def _no_project(project_id: str) -> Response:
    return error_response(404, f"No project found with id '{project_id}'.", param="project_id")


def project_json(p: Project) -> dict[str, Any]:
    return {
        "id": p.id,
        "object": "organization.project",
        "name": p.name,
        "created_at": p.created_at,
        "archived_at": p.archived_at,
        "status": "archived" if p.archived else "active",
        "external_key_id": None,
    }


def project_key_json(state: FakeState, rec: KeyRecord) -> dict[str, Any]:
    owner: dict[str, Any]
    if rec.owner_type == "service_account":
        sa = state.service_accounts.get(rec.service_account_id or "")
        owner = {
            "type": "service_account",
            "service_account": {
                "id": sa.id if sa else (rec.service_account_id or "svc_acct_unknown"),
                "name": sa.name if sa else "Service account",
                "created_at": sa.created_at if sa else rec.created_at,
                "role": sa.role if sa else "member",
            },
        }
    else:
        user = state.users.get(rec.user_id or "")
        owner = {
            "type": "user",
            "user": {
                "id": user.id if user else (rec.user_id or "user-unknown"),
                "email": user.email if user else "unknown@example.com",
                "name": user.name if user else "Unknown",
                "created_at": user.created_at if user else rec.created_at,
                "role": user.role if user else "member",
            },
        }
    return {
        "object": "organization.project.api_key",
        "redacted_value": rec.redacted_value,
        "name": rec.name,
        "created_at": rec.created_at,
        "last_used_at": rec.last_used_at,
        "id": rec.id,
        "owner_project_access": rec.owner_project_access,
        "owner": owner,
    }


def service_account_json(sa: Any) -> dict[str, Any]:
    return {
        "object": "organization.project.service_account",
        "id": sa.id,
        "name": sa.name,
        "role": sa.role,
        "created_at": sa.created_at,
    }


# -- projects ---------------------------------------------------------------------------------

def list_projects(state: FakeState, req: Request, m: re.Match[str]) -> Response:
    auth = _admin(state, req)
    if isinstance(auth, Response):
        return auth
    with state.lock:
        projects = sorted(state.projects.values(), key=lambda p: (p.created_at, p.id))
        if req.arg("include_archived") != "true":
            projects = [p for p in projects if not p.archived]
        return _list(state, req, projects, lambda p: p.id, project_json,
                     "ProjectListResponse", auth)


# -- project keys -----------------------------------------------------------------------------

def _project_key(state: FakeState, project_id: str, key_id: str) -> KeyRecord | Response:
    """The project's key, or the 404 the API gives for a missing project or key."""
    if project_id not in state.projects:
        return _no_project(project_id)
    for rec in state.project_keys(project_id):
        if rec.id == key_id:
            return rec
    return error_response(404, f"No such API key: {key_id}", param="api_key_id")


def list_project_keys(state: FakeState, req: Request, m: re.Match[str]) -> Response:
    auth = _admin(state, req)
    if isinstance(auth, Response):
        return auth
    pid = m.group("project_id")
    with state.lock:
        if pid not in state.projects:
            return _no_project(pid)
        keys = sorted(state.project_keys(pid), key=lambda k: (k.created_at, k.id))
        access = req.arg("owner_project_access")
        if access in ("active", "inactive"):
            keys = [k for k in keys if k.owner_project_access == access]
        elif access != "any":
            # Membership-based visibility: keys whose owner lost access are not shown.
            keys = [k for k in keys if k.owner_project_access == "active"]
        return _list(state, req, keys, lambda k: k.id, lambda k: project_key_json(state, k),
                     "ProjectApiKeyListResponse", auth)


def get_project_key(state: FakeState, req: Request, m: re.Match[str]) -> Response:
    auth = _admin(state, req)
    if isinstance(auth, Response):
        return auth
    pid, kid = m.group("project_id"), m.group("key_id")
    with state.lock:
        rec = _project_key(state, pid, kid)
        if isinstance(rec, Response):
            return rec
        return json_response(project_key_json(state, rec), "ProjectApiKey",
                             headers=success_headers(state, auth))


def delete_project_key(state: FakeState, req: Request, m: re.Match[str]) -> Response:
    auth = _admin(state, req, write=True)
    if isinstance(auth, Response):
        return auth
    pid, kid = m.group("project_id"), m.group("key_id")
    with state.lock:
        rec = _project_key(state, pid, kid)
        if isinstance(rec, Response):
            return rec
        if rec.owner_type == "service_account":
            return error_response(
                400,
                "API keys owned by service accounts cannot be deleted; delete the service "
                "account instead.",
                param="api_key_id",
            )
        state.delete_key(kid)
        body = {"object": "organization.project.api_key.deleted", "id": kid, "deleted": True}
        return json_response(body, "ProjectApiKeyDeleteResponse",
                             headers=success_headers(state, auth))


# -- service accounts ---------------------------------------------------------------------------

def _service_accounts(state: FakeState, project_id: str) -> list[Any]:
    return sorted(
        (sa for sa in state.service_accounts.values()
         if sa.project_id == project_id and not sa.deleted),
        key=lambda sa: (sa.created_at, sa.id),
    )


def list_service_accounts(state: FakeState, req: Request, m: re.Match[str]) -> Response:
    auth = _admin(state, req)
    if isinstance(auth, Response):
        return auth
    pid = m.group("project_id")
    with state.lock:
        if pid not in state.projects:
            return _no_project(pid)
        return _list(state, req, _service_accounts(state, pid), lambda sa: sa.id,
                     service_account_json, "ProjectServiceAccountListResponse", auth)


def _service_account(state: FakeState, pid: str, sid: str) -> Any:
    """The project's service account, or the 404 for a missing project or account."""
    if pid not in state.projects:
        return _no_project(pid)
    for sa in _service_accounts(state, pid):
        if sa.id == sid:
            return sa
    return error_response(404, f"No such service account: {sid}", param="service_account_id")


def get_service_account(state: FakeState, req: Request, m: re.Match[str]) -> Response:
    auth = _admin(state, req)
    if isinstance(auth, Response):
        return auth
    pid, sid = m.group("project_id"), m.group("sa_id")
    with state.lock:
        sa = _service_account(state, pid, sid)
        if isinstance(sa, Response):
            return sa
        return json_response(service_account_json(sa), "ProjectServiceAccount",
                             headers=success_headers(state, auth))


def delete_service_account(state: FakeState, req: Request, m: re.Match[str]) -> Response:
    auth = _admin(state, req, write=True)
    if isinstance(auth, Response):
        return auth
    pid, sid = m.group("project_id"), m.group("sa_id")
    with state.lock:
        sa = _service_account(state, pid, sid)
        if isinstance(sa, Response):
            return sa
        sa.deleted = True
        for rec in state.project_keys(pid):
            if rec.owner_type == "service_account" and rec.service_account_id == sid:
                state.delete_key(rec.id)
        body = {"object": "organization.project.service_account.deleted", "id": sid,
                "deleted": True}
        return json_response(body, "ProjectServiceAccountDeleteResponse",
                             headers=success_headers(state, auth))


# -- admin keys ---------------------------------------------------------------------------------

def list_admin_keys(state: FakeState, req: Request, m: re.Match[str]) -> Response:
    auth = _admin(state, req)
    if isinstance(auth, Response):
        return auth
    with state.lock:
        keys = sorted(state.admin_keys(), key=lambda k: (k.created_at, k.id))
        if req.arg("order") == "desc":
            keys.reverse()
        return _list(state, req, keys, lambda k: k.id, lambda k: admin_key_json(state, k),
                     "ApiKeyList", auth)


def _admin_key(state: FakeState, kid: str) -> KeyRecord | None:
    for rec in state.admin_keys():
        if rec.id == kid:
            return rec
    return None


def get_admin_key(state: FakeState, req: Request, m: re.Match[str]) -> Response:
    auth = _admin(state, req)
    if isinstance(auth, Response):
        return auth
    kid = m.group("key_id")
    with state.lock:
        rec = _admin_key(state, kid)
        if rec is None:
            return error_response(404, f"No such admin API key: {kid}", param="key_id")
        return json_response(admin_key_json(state, rec), "AdminApiKey",
                             headers=success_headers(state, auth))


def delete_admin_key(state: FakeState, req: Request, m: re.Match[str]) -> Response:
    auth = _admin(state, req, write=True)
    if isinstance(auth, Response):
        return auth
    kid = m.group("key_id")
    with state.lock:
        rec = _admin_key(state, kid)
        if rec is None:
            return error_response(404, f"No such admin API key: {kid}", param="key_id")
        state.delete_key(kid)
        body = {"id": kid, "object": "organization.admin_api_key.deleted", "deleted": True}
        return json_response(body, ADMIN_KEY_DELETED_SCHEMA, headers=success_headers(state, auth))


_PID = r"(?P<project_id>[^/]+)"

register("GET", r"/organization/projects", list_projects)
register("GET", rf"/organization/projects/{_PID}/api_keys", list_project_keys)
register("GET", rf"/organization/projects/{_PID}/api_keys/(?P<key_id>[^/]+)", get_project_key)
register("DELETE", rf"/organization/projects/{_PID}/api_keys/(?P<key_id>[^/]+)",
         delete_project_key)
register("GET", rf"/organization/projects/{_PID}/service_accounts", list_service_accounts)
register("GET", rf"/organization/projects/{_PID}/service_accounts/(?P<sa_id>[^/]+)",
         get_service_account)
register("DELETE", rf"/organization/projects/{_PID}/service_accounts/(?P<sa_id>[^/]+)",
         delete_service_account)
register("GET", r"/organization/admin_api_keys", list_admin_keys)
register("GET", r"/organization/admin_api_keys/(?P<key_id>[^/]+)", get_admin_key)
register("DELETE", r"/organization/admin_api_keys/(?P<key_id>[^/]+)", delete_admin_key)
