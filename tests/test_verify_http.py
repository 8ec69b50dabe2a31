"""keyscan.http: base-URL safety, retries (statuses, headers, backoff), rps budget, scrubbing."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

import keyscan.http as kh
from keyscan.http import (
    ApiClient,
    AsyncApiClient,
    ClientSettings,
    RequestFailed,
    UnsafeBaseUrl,
    check_base_url,
    default_base_url,
    retry_delay,
    should_retry,
)
from keyscan.keygen import key
from tests.fakeopenai import AsyncFakeTransport, FakeState, FakeTransport


class Clock:
    """Stands in for keyscan.http's ``time``: sleeps are recorded and advance the clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(kh, "time", c)
    return c


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1",
        "https://api.openai.com/v1/",
        "http://127.0.0.1:8080/v1",
        "http://127.9.9.9/v1",
        "http://[::1]:9/v1",
        "http://localhost:1234/v1",
    ],
)
def test_base_url_accepted(url: str) -> None:
    assert check_base_url(url) == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://api.openai.com/v1", "plain http"),
        ("http://10.0.0.1/v1", "plain http"),
        ("http://localhost.evil.example/v1", "plain http"),
        ("http://128.0.0.1/v1", "plain http"),
        ("ftp://api.openai.com/v1", "expected https"),
        ("api.openai.com/v1", "expected https"),
        ("https://user:pw@api.openai.com/v1", "credentials"),
        ("https://api.openai.com/v1?x=1", "query"),
        ("https://api.openai.com:notaport/v1", "invalid"),
    ],
)
def test_base_url_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeBaseUrl, match=why):
        check_base_url(url)


def test_default_base_url() -> None:
    assert default_base_url({}) == "https://api.openai.com/v1"
    assert default_base_url({"OPENAI_BASE_URL": "https://proxy.example/v1"}) == (
        "https://proxy.example/v1"
    )


def test_relative_paths_only() -> None:
    with ApiClient("https://api.openai.com/v1") as api:
        for path in ("https://evil.example/x", "//evil.example/x", "models"):
            with pytest.raises(ValueError, match="relative"):
                api.request("GET", path, bearer=None)


@pytest.mark.parametrize(
    ("status", "headers", "body", "expected"),
    [
        (500, {}, None, True),
        (503, {}, None, True),
        (408, {}, None, True),
        (409, {}, None, True),
        (429, {}, {"error": {"code": "rate_limit_exceeded"}}, True),
        (429, {}, {"error": {"code": "insufficient_quota"}}, False),
        (429, {}, {"error": {"code": "credit_balance_exhausted"}}, False),
        (429, {}, {"error": {"code": "monthly_spend_limit_exceeded"}}, False),
        (429, {}, {"error": {"code": None, "type": "insufficient_quota"}}, False),
        (401, {}, None, False),
        (200, {}, None, False),
        (500, {"x-should-retry": "false"}, None, False),
        (400, {"x-should-retry": "true"}, None, True),
    ],
)
def test_should_retry(status: int, headers: dict[str, str], body: Any, expected: bool) -> None:
    assert should_retry(status, headers, body) is expected


def test_rate_limits_can_be_final() -> None:
    body = {"error": {"code": "rate_limit_exceeded"}}
    assert should_retry(429, {}, body, retry_rate_limits=False) is False
    assert should_retry(429, {"x-should-retry": "true"}, body, retry_rate_limits=False) is False
    assert should_retry(503, {}, None, retry_rate_limits=False) is True


def test_retry_delay_headers_and_backoff() -> None:
    s = ClientSettings(rng=random.Random(1))
    assert retry_delay(1, {"retry-after-ms": "250"}, s) == 0.25
    assert retry_delay(1, {"retry-after": "3"}, s) == 3.0
    assert retry_delay(1, {"retry-after-ms": "40", "retry-after": "3"}, s) == 0.04
    # too long a hint falls back to backoff; backoff grows, is capped, has jitter <= 25 %
    assert retry_delay(1, {"retry-after": "3600"}, s) <= 0.5
    delays = [retry_delay(n, None, s) for n in range(1, 8)]
    assert 0.375 <= delays[0] <= 0.5
    assert 0.75 <= delays[1] <= 1.0
    assert all(6.0 <= d <= 8.0 for d in delays[5:])


def test_retries_5xx_then_success_honouring_retry_after(clock: Clock) -> None:
    state = FakeState()
    secret = key("project")
    state.add_key(secret)
    state.fail_next(1, 503, headers={"retry-after-ms": "1234"})
    state.fail_next(1, 500, headers={"retry-after": "2"})
    with ApiClient(
        "https://api.openai.com/v1", ClientSettings(transport=FakeTransport(state))
    ) as api:
        resp = api.request("GET", "/models", bearer=secret)
    assert resp.status == 200 and resp.attempts == 3
    assert clock.sleeps == [1.234, 2.0]
    assert len(state.requests("/models")) == 3
    assert not state.spec_violations


def test_retries_give_up_and_no_retry_on_quota(clock: Clock) -> None:
    state = FakeState()
    secret = key("project")
    state.add_key(secret, "no-quota")
    settings = ClientSettings(transport=FakeTransport(state), retries=2)
    with ApiClient("https://api.openai.com/v1", settings) as api:
        assert api.request("GET", "/models", bearer=secret).status == 429
        assert len(state.log) == 1  # insufficient_quota is final
        state.fail_next(3, 502)
        resp = api.request("GET", "/models", bearer=secret)
        assert resp.status == 502 and resp.attempts == 3
        state.fail_next(1, 500, headers={"x-should-retry": "false"})
        assert api.request("GET", "/models", bearer=secret).attempts == 1
    assert len(clock.sleeps) == 2


def test_network_errors_retry_then_fail_without_the_key(clock: Clock) -> None:
    state = FakeState()
    secret = key("svcacct")
    state.add_key(secret)
    state.drop_next(1)
    with ApiClient(
        "https://api.openai.com/v1", ClientSettings(transport=FakeTransport(state))
    ) as api:
        assert api.request("GET", "/models", bearer=secret).status == 200
        state.drop_next(3)
        with pytest.raises(RequestFailed) as info:
            api.request("GET", "/models", bearer=secret)
    assert info.value.kind == "protocol" and info.value.attempts == 3
    assert "after 3 attempts" in str(info.value)
    assert secret not in str(info.value) and secret not in repr(info.value)


def test_rps_budget_spaces_requests(clock: Clock) -> None:
    state = FakeState()
    secret = key("project")
    state.add_key(secret)
    settings = ClientSettings(transport=FakeTransport(state), rps=4)
    with ApiClient("https://api.openai.com/v1", settings) as api:
        for _ in range(5):
            api.request("GET", "/models", bearer=secret)
    assert clock.sleeps == [0.25, 0.25, 0.25, 0.25]


def test_user_agent_and_bearer_sent() -> None:
    state = FakeState()
    secret = key("project")
    state.add_key(secret)
    seen: list[dict[str, str]] = []

    from tests.fakeopenai import app

    def echo(st: FakeState, req: app.Request, m: Any) -> app.Response:
        seen.append(req.headers)
        return app.list_models(st, req, m)

    app.register("GET", r"/models-echo", echo)
    try:
        with ApiClient(
            "https://api.openai.com/v1", ClientSettings(transport=FakeTransport(state))
        ) as api:
            assert api.request("GET", "/models-echo", bearer=secret).status == 200
    finally:
        app.ROUTES[:] = [r for r in app.ROUTES if r.pattern.pattern != "/models-echo"]
    assert seen[0]["user-agent"].startswith("keyscan/")
    assert seen[0]["authorization"] == f"Bearer {secret}"


def test_async_client_timeout_and_retry() -> None:
    state = FakeState()
    secret = key("project")
    state.add_key(secret)

    async def run() -> tuple[int, str]:
        settings = ClientSettings(
            transport=AsyncFakeTransport(state), timeout=0.2, retries=1, backoff_initial=0.01
        )
        async with AsyncApiClient("https://api.openai.com/v1", settings) as api:
            state.hang_next(1)
            ok = await api.request("GET", "/models", bearer=secret)
            state.hang_next(2)
            try:
                await api.request("GET", "/models", bearer=secret)
            except RequestFailed as exc:
                return ok.status, f"{exc.kind}: {exc}"
        return ok.status, "no failure"

    status, failure = asyncio.run(run())
    assert status == 200
    assert failure.startswith("timeout: timed out after 2 attempts")
    assert secret not in failure


def test_loopback_http_never_goes_through_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakeopenai import FakeServer

    state = FakeState()
    secret = key("project")
    state.add_key(secret)
    # a proxy that does not exist: a request through it would fail
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    with FakeServer(state) as server, ApiClient(server.base_url) as api:
        assert api.request("GET", "/models", bearer=secret).status == 200
    assert kh._trust_env("https://api.openai.com/v1") is True
    assert kh._trust_env("http://127.0.0.1:8/v1") is False
