"""The fake OpenAI API as a pure function: ``handle(state, request) -> Response``.

Both the HTTP server (server.py) and the httpx transports (transport.py) call ``handle``; they
only differ in how they apply ``Response.delay`` and ``Response.action`` ("drop": close the
connection without an answer; "hang": never answer).

Extending it (e.g. tests/fakeopenai/org.py for the Admin API)::

    from tests.fakeopenai.app import Request, Response, json_response, error_response, register
    from tests.fakeopenai.state import FakeState

    def list_projects(state: FakeState, req: Request, m: re.Match[str]) -> Response:
        auth = require_admin(state, req)          # a KeyRecord, or an error Response
        if isinstance(auth, Response):
            return auth
        ...
        return json_response(body, "ProjectListResponse")

    register("GET", r"/organization/projects", list_projects)

Paths are matched (``re.fullmatch``) against the request path without the ``/v1`` prefix;
named groups are available in ``m``. Every JSON response must name the spec schema it follows
(a ``components.schemas`` name or a ``#/...`` JSON pointer): ``handle`` validates every body
against the spec and records violations in ``state.spec_violations`` (the transports raise,
the fixtures assert the list is empty), so an extension cannot drift from the spec unnoticed.
Modules listed in ``EXTENSIONS`` are imported (if present) when the package is imported.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from tests.fakeopenai import spec
from tests.fakeopenai.state import FakeState, KeyRecord, request_id

# Optional modules that register more routes when imported (see tests/fakeopenai/__init__.py).
EXTENSIONS = ("tests.fakeopenai.org", "tests.fakeopenai.usage")

API_PREFIX = "/v1"


@dataclass
class Request:
    method: str
    path: str  # as sent, e.g. /v1/models
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    @classmethod
    def build(cls, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> Request:
        path, _, qs = target.partition("?")
        return cls(
            method=method.upper(),
            path=path,
            query=parse_qs(qs, keep_blank_values=True),
            headers={k.lower(): v for k, v in headers.items()},
            body=body,
        )

    @property
    def bearer(self) -> str | None:
        auth = self.headers.get("authorization")
        if auth is None:
            return None
        scheme, _, token = auth.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, or None for an empty body
    headers: dict[str, str] = field(default_factory=dict)
    schema: str | None = None  # the spec schema ``body`` follows
    delay: float = 0.0  # seconds to wait before answering
    action: str | None = None  # None | "drop" | "hang"

    def encoded(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body).encode()


Handler = Callable[[FakeState, Request, "re.Match[str]"], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


ROUTES: list[Route] = []


def register(method: str, path_regex: str, handler: Handler) -> None:
    """Add a route; a later registration for the same method and regex replaces the earlier."""
    method = method.upper()
    for i, route in enumerate(ROUTES):
        if route.method == method and route.pattern.pattern == path_regex:
            ROUTES[i] = Route(method, re.compile(path_regex), handler)
            return
    ROUTES.append(Route(method, re.compile(path_regex), handler))


def json_response(
    body: Any, schema: str, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    hdrs = {"x-request-id": request_id()}
    hdrs.update(headers or {})
    return Response(status=status, body=body, headers=hdrs, schema=schema)


def error_response(
    status: int,
    message: str,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"message": message, "type": type, "param": param, "code": code}}
    return json_response(body, "ErrorResponse", status, headers)


def masked(secret: str) -> str:
    """How OpenAI echoes a wrong key in its 401 message: sk-proj-****...abcd."""
    head = secret[:8] if secret.startswith("sk-") else secret[:3]
    return f"{head}{'*' * 12}{secret[-4:]}"


# -- authentication ---------------------------------------------------------------------------


def invalid_key(secret: str | None) -> Response:
    if not secret:
        return error_response(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
    return error_response(
        401,
        f"Incorrect API key provided: {masked(secret)}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def state_error(state: FakeState, rec: KeyRecord, scopes: str) -> Response | None:
    """The answer a key's state forces on any authenticated endpoint, or None if it may pass."""
    if rec.state == "live":
        return None
    if rec.state == "deleted":
        return invalid_key(rec.secret)
    if rec.state == "restricted":
        return error_response(
            401,
            "You have insufficient permissions for this operation. Missing scopes: "
            f"{scopes}. Check that you have the correct role in your organization (Reader, "
            "Writer, Owner) and project (Member, Owner), and if you're using a restricted "
            "API key, that it has the necessary scopes.",
        )
    if rec.state == "no-quota":
        return error_response(
            429,
            "You exceeded your current quota, please check your plan and billing details. "
            "For more information on this error, read the docs: "
            "https://platform.openai.com/docs/guides/error-codes/api-errors.",
            type="insufficient_quota",
            code=rec.quota_code,
        )
    if rec.state == "rate-limited":
        return error_response(
            429,
            "Rate limit reached for requests in organization on requests per min (RPM): "
            "Limit 3, Used 3, Requested 1. Please try again in 20s.",
            type="requests",
            code="rate_limit_exceeded",
            headers={"retry-after-ms": str(state.rate_limit_retry_after_ms)},
        )
    if rec.state == "deactivated":
        return error_response(
            401,
            "This key is associated with a deactivated account. If you feel this is an error, "
            "contact us through our help center at help.openai.com.",
            code="account_deactivated",
        )
    if rec.state == "ip-blocked":
        return error_response(
            401,
            "IP not authorized: requests from this IP address are not allowed for this API key.",
        )
    if rec.state == "region-blocked":
        return error_response(
            403,
            "Country, region, or territory not supported",
            type="request_forbidden",
            code="unsupported_country_region_territory",
        )
    raise AssertionError(f"unhandled key state {rec.state!r}")


def authenticate(state: FakeState, req: Request, admin: bool, scopes: str) -> KeyRecord | Response:
    """The key record behind the request's bearer, or the error the real API would send.

    ``admin``: the endpoint needs an admin key (an ordinary key gets a 401 "insufficient
    permissions" naming ``scopes``); otherwise admin keys are refused with invalid_api_key.
    """
    rec = state.key(req.bearer) if req.bearer else None
    if rec is None:
        return invalid_key(req.bearer)
    forced = state_error(state, rec, scopes if rec.state != "restricted" else rec.missing_scopes)
    if forced is not None:
        return forced
    if admin and not rec.admin:
        return error_response(
            401,
            "You have insufficient permissions for this operation. Missing scopes: "
            f"{scopes}. Admin API keys are required for this endpoint.",
        )
    if not admin and rec.admin:
        return invalid_key(rec.secret)
    return rec


def require_admin(
    state: FakeState, req: Request, scopes: str = "api.management.read"
) -> KeyRecord | Response:
    """For /organization/... routes: a live admin key, or the error to send."""
    return authenticate(state, req, admin=True, scopes=scopes)


def success_headers(state: FakeState, rec: KeyRecord) -> dict[str, str]:
    headers = {
        "openai-organization": state.organization,
        "openai-processing-ms": "12",
        "openai-version": "2020-10-01",
    }
    if state.send_project_header and rec.project_id:
        headers["openai-project"] = rec.project_id
    return headers


# -- routes -------------------------------------------------------------------------------------

MODELS = ("gpt-4o-mini", "gpt-4.1", "text-embedding-3-small", "whisper-1")


def list_models(state: FakeState, req: Request, m: re.Match[str]) -> Response:
    rec = authenticate(state, req, admin=False, scopes="api.model.read")
    if isinstance(rec, Response):
        return rec
    data = [
        {"id": name, "object": "model", "created": 1700000000 + i, "owned_by": "system"}
        for i, name in enumerate(MODELS)
    ]
    return json_response(
        {"object": "list", "data": data}, "ListModelsResponse", headers=success_headers(state, rec)
    )


def admin_key_json(state: FakeState, rec: KeyRecord) -> dict[str, Any]:
    """An AdminApiKey object for an admin KeyRecord."""
    user = state.users.get(rec.user_id or "")
    owner: dict[str, Any] = {
        "type": "user",
        "object": "organization.user",
        "id": user.id if user else "user-unknown",
        "name": user.name if user else "Unknown",
        "created_at": user.created_at if user else rec.created_at,
        "role": "owner",
    }
    return {
        "object": "organization.admin_api_key",
        "id": rec.id,
        "name": rec.name,
        "redacted_value": rec.redacted_value,
        "created_at": rec.created_at,
        "expires_at": None,
        "last_used_at": rec.last_used_at,
        "owner": owner,
    }


def page(
    items: list[Any], req: Request, id_of: Callable[[Any], str], default_limit: int = 20
) -> tuple[list[Any], bool]:
    """Cursor paging as the Admin API does it: ``limit`` and ``after`` (an id)."""
    try:
        limit = int(req.arg("limit") or default_limit)
    except ValueError:
        limit = default_limit
    limit = max(1, min(limit, 100))
    after = req.arg("after")
    if after:
        ids = [id_of(x) for x in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    return items[:limit], len(items) > limit


def list_admin_keys(state: FakeState, req: Request, m: re.Match[str]) -> Response:
    rec = require_admin(state, req)
    if isinstance(rec, Response):
        return rec
    with state.lock:
        keys = sorted(state.admin_keys(), key=lambda k: (k.created_at, k.id))
        if req.arg("order") == "desc":
            keys.reverse()
        chunk, more = page(keys, req, lambda k: k.id)
        data = [admin_key_json(state, k) for k in chunk]
    body = {
        "object": "list",
        "data": data,
        "has_more": more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
    return json_response(body, "ApiKeyList", headers=success_headers(state, rec))


register("GET", r"/models", list_models)
register("GET", r"/organization/admin_api_keys", list_admin_keys)


# -- dispatch -----------------------------------------------------------------------------------


def not_found(req: Request) -> Response:
    return error_response(404, f"Invalid URL ({req.method} {req.path})", code=None)


def handle(state: FakeState, req: Request) -> Response:
    """Log, apply injected failures and latency, route, and validate the body."""
    state.record(req.method, req.path, req.query, req.bearer)
    failure = state.take_failure()
    if failure is not None and failure.kind in ("drop", "hang"):
        return Response(status=0, action=failure.kind, delay=state.latency)
    if failure is not None:
        resp = error_response(
            failure.status,
            failure.message,
            type="server_error",
            code=failure.code,
            headers=failure.headers,
        )
    else:
        path = req.path[len(API_PREFIX) :] if req.path.startswith(API_PREFIX + "/") else None
        resp = not_found(req)
        if path is not None:
            for route in list(ROUTES):
                if route.method != req.method:
                    continue
                m = route.pattern.fullmatch(path)
                if m:
                    resp = route.handler(state, req, m)
                    break
    resp.delay = max(resp.delay, state.latency)
    check(state, req, resp)
    return resp


def check(state: FakeState, req: Request, resp: Response) -> None:
    """The test-mode assertion: every body must follow the schema its route names."""
    if not state.validate_responses or resp.body is None:
        return
    where = f"{req.method} {req.path} -> {resp.status}"
    if resp.schema is None:
        state.violation(f"{where}: body sent without naming its spec schema")
        return
    problems = spec.errors(resp.body, resp.schema)
    if problems:
        state.violation(f"{where}: not a valid {resp.schema}: {'; '.join(problems[:3])}")


def now() -> int:
    return int(time.time())
