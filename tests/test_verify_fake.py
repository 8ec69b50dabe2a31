"""The fake OpenAI API tells the truth: its bodies validate against the spec, its failure
injection works over HTTP and through httpx transports."""

from __future__ import annotations

import httpx
import pytest

from keyscan.keygen import key
from tests.fakeopenai import (
    KEY_STATES,
    AsyncFakeTransport,
    FakeServer,
    FakeState,
    FakeTransport,
    Request,
    Response,
    handle,
    register,
    spec,
)
from tests.fakeopenai.app import ROUTES, json_response
from tests.fakeopenai.state import fingerprint, redacted_value

EXPECTED = {
    "live": (200, None),
    "restricted": (401, None),
    "no-quota": (429, "insufficient_quota"),
    "rate-limited": (429, "rate_limit_exceeded"),
    "deleted": (401, "invalid_api_key"),
    "deactivated": (401, "account_deactivated"),
    "ip-blocked": (401, None),
    "region-blocked": (403, "unsupported_country_region_territory"),
}


def get(state: FakeState, path: str, bearer: str | None) -> Response:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return handle(state, Request.build("GET", path, headers))


@pytest.mark.parametrize("key_state", KEY_STATES)
def test_models_answer_per_state_validates(fake_state: FakeState, key_state: str) -> None:
    secret = key("project")
    fake_state.add_key(secret, key_state)
    resp = get(fake_state, "/v1/models", secret)
    status, code = EXPECTED[key_state]
    assert resp.status == status
    schema = "ListModelsResponse" if status == 200 else "ErrorResponse"
    assert resp.schema == schema
    spec.validate(resp.body, schema)
    if status != 200:
        assert resp.body["error"]["code"] == code
        assert secret not in str(resp.body)


def test_unknown_key_and_missing_auth(fake_state: FakeState) -> None:
    resp = get(fake_state, "/v1/models", key("svcacct"))
    assert resp.status == 401 and resp.body["error"]["code"] == "invalid_api_key"
    resp = get(fake_state, "/v1/models", None)
    assert resp.status == 401
    resp = get(fake_state, "/v1/nothing-here", None)
    assert resp.status == 404
    for r in fake_state.requests():
        assert r.bearer_fingerprint is None or len(r.bearer_fingerprint) == 64


def test_admin_keys_endpoint(fake_state: FakeState) -> None:
    admin = key("admin")
    rec = fake_state.add_admin_key(admin)
    for _ in range(3):
        fake_state.add_admin_key(key("admin"))
    resp = get(fake_state, "/v1/organization/admin_api_keys?limit=1", admin)
    assert resp.status == 200
    spec.validate(resp.body, "ApiKeyList")
    assert len(resp.body["data"]) == 1 and resp.body["has_more"] is True
    full = get(fake_state, "/v1/organization/admin_api_keys?limit=100", admin)
    ids = [k["id"] for k in full.body["data"]]
    assert rec.id in ids and len(ids) == 4
    shown = next(k for k in full.body["data"] if k["id"] == rec.id)
    assert shown["redacted_value"] == admin[:8] + "*" * (len(admin) - 12) + admin[-4:]
    nxt = get(fake_state, f"/v1/organization/admin_api_keys?limit=2&after={ids[1]}", admin)
    assert [k["id"] for k in nxt.body["data"]] == ids[2:4]
    # an admin key is refused by /models, an ordinary key by the admin endpoint
    assert get(fake_state, "/v1/models", admin).status == 401
    project = key("project")
    fake_state.add_key(project)
    assert get(fake_state, "/v1/organization/admin_api_keys", project).status == 401


def test_redacted_value_shape() -> None:
    secret = key("project")
    value = redacted_value(secret)
    assert len(value) == len(secret) == 164
    assert value.startswith(secret[:8]) and value.endswith(secret[-4:])
    assert set(value[8:-4]) == {"*"}


def test_spec_violation_is_caught(fake_state: FakeState) -> None:
    def bad(state: FakeState, req: Request, m: object) -> Response:
        return json_response({"object": "list"}, "ListModelsResponse")

    def unnamed(state: FakeState, req: Request, m: object) -> Response:
        return Response(200, {"anything": 1})

    register("GET", r"/test-only-bad", bad)
    register("GET", r"/test-only-unnamed", unnamed)
    try:
        get(fake_state, "/v1/test-only-bad", None)
        get(fake_state, "/v1/test-only-unnamed", None)
        assert len(fake_state.spec_violations) == 2
        assert "'data' is a required property" in fake_state.spec_violations[0]
        assert "without naming" in fake_state.spec_violations[1]
        with pytest.raises(AssertionError):
            httpx.Client(transport=FakeTransport(fake_state)).get("http://x/v1/test-only-bad")
    finally:
        ROUTES[:] = [r for r in ROUTES if not r.pattern.pattern.startswith("/test-only")]
        fake_state.spec_violations.clear()


def test_request_log_has_fingerprints_not_keys(fake_state: FakeState) -> None:
    secret = key("project")
    fake_state.add_key(secret)
    get(fake_state, "/v1/models?x=1", secret)
    (entry,) = fake_state.requests("/models")
    assert entry.bearer_fingerprint == fingerprint(secret)
    assert entry.query == {"x": ["1"]}
    assert secret not in repr(fake_state.log)


def test_http_server_and_failures(fake_state: FakeState, fake_server: FakeServer) -> None:
    secret = key("project")
    project = fake_state.add_project("web")
    fake_state.add_key(secret, project_id=project.id)
    url = fake_server.base_url + "/models"
    auth = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(timeout=2) as client:
        r = client.get(url, headers=auth)
        assert r.status_code == 200
        assert r.headers["openai-project"] == project.id
        assert r.headers["x-request-id"].startswith("req_")
        spec.validate(r.json(), "ListModelsResponse")
        fake_state.fail_next(1, 503, headers={"retry-after": "1"})
        r = client.get(url, headers=auth)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        spec.validate(r.json(), "ErrorResponse")
        fake_state.drop_next(1)
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(url, headers=auth)
        fake_state.hang_next(1)
        with pytest.raises(httpx.ReadTimeout):
            client.get(url, headers=auth, timeout=0.3)
    assert len(fake_state.requests("/models")) == 4


async def _async_calls(state: FakeState, secret: str) -> list[int]:
    async with httpx.AsyncClient(transport=AsyncFakeTransport(state)) as client:
        out = []
        for _ in range(2):
            r = await client.get(
                "https://api.openai.com/v1/models", headers={"Authorization": f"Bearer {secret}"}
            )
            out.append(r.status_code)
        state.drop_next(1)
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("https://api.openai.com/v1/models")
        state.hang_next(1)
        with pytest.raises(httpx.ReadTimeout):
            await client.get("https://api.openai.com/v1/models", timeout=0.2)
        return out


def test_async_transport(fake_state: FakeState) -> None:
    import asyncio

    secret = key("svcacct")
    fake_state.add_key(secret)
    fake_state.fail_next(1, 500)
    assert asyncio.run(_async_calls(fake_state, secret)) == [500, 200]
    assert fake_state.max_in_flight == 1
