"""keyscan.verify: classification of answers, the cache, raw-key checks through the fake."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from keyscan.cli_common import parse_duration
from keyscan.http import ApiResponse
from keyscan.keygen import key
from keyscan.models import Verification, fingerprint_of
from keyscan.verify import VerifyOptions, family_of, verify_key, verify_keys
from keyscan.verify.cache import VerifyCache, default_cache_path
from keyscan.verify.classify import classify
from tests.fakeopenai import AsyncFakeTransport, FakeState


def err(message: str, code: str | None = None, type: str = "invalid_request_error") -> Any:
    return {"error": {"message": message, "type": type, "param": None, "code": code}}


@pytest.mark.parametrize(
    ("status", "body", "expected", "reason_part"),
    [
        (200, {"object": "list", "data": []}, "live", ""),
        (
            401,
            err("Incorrect API key provided: sk-proj-****abcd.", "invalid_api_key"),
            "invalid",
            "invalid_api_key",
        ),
        (
            401,
            err("This key is associated with a deactivated account.", "account_deactivated"),
            "invalid-account",
            "account_deactivated",
        ),
        (
            401,
            err(
                "You have insufficient permissions for this operation. Missing scopes: "
                "api.model.read. Check that you have the correct role."
            ),
            "live-restricted",
            "api.model.read",
        ),
        (401, err("IP not authorized for this organization."), "unknown", "IP not authorized"),
        (
            403,
            err(
                "Country, region, or territory not supported",
                "unsupported_country_region_territory",
                "request_forbidden",
            ),
            "unknown",
            "unsupported_country_region_territory",
        ),
        (
            429,
            err("You exceeded your current quota", "insufficient_quota", "insufficient_quota"),
            "live-no-quota",
            "insufficient_quota",
        ),
        (
            429,
            err("Credit balance exhausted", "credit_balance_exhausted", "insufficient_quota"),
            "live-no-quota",
            "credit_balance_exhausted",
        ),
        (
            429,
            err("Spend limit", "monthly_spend_limit_exceeded", "requests"),
            "live-no-quota",
            "monthly_spend_limit_exceeded",
        ),
        (
            429,
            err("Rate limit reached", "rate_limit_exceeded", "requests"),
            "live-rate-limited",
            "rate_limit_exceeded",
        ),
        (500, err("The server had an error", None, "server_error"), "unknown", "HTTP 500"),
        (503, None, "unknown", "HTTP 503"),
        (302, None, "unknown", "redirect"),
        (404, err("Invalid URL"), "unknown", "HTTP 404"),
        (401, None, "unknown", "HTTP 401"),
    ],
)
def test_classify(status: int, body: Any, expected: str, reason_part: str) -> None:
    headers = {
        "x-request-id": "req_" + "a" * 32,
        "openai-organization": "user-abc",
        "openai-project": "proj_" + "b" * 24,
    }
    v = classify(ApiResponse(status=status, headers=headers, body=body))
    assert v.status == expected
    assert reason_part in v.reason
    assert v.http_status == status
    assert v.request_id == "req_" + "a" * 32
    assert v.project == "proj_" + "b" * 24 and v.organization == "user-abc"
    if body is not None and "error" in body:
        # the server's free text (which quotes part of the key) is never the reason
        assert body["error"]["message"] not in v.reason or expected == "live"


def test_classify_never_echoes_a_key_from_the_message() -> None:
    secret = key("project")
    body = err(f"Incorrect API key provided: {secret}", None)
    v = classify(
        ApiResponse(
            status=401, headers={"x-request-id": secret[:40], "openai-project": secret}, body=body
        ),
        secret,
    )
    assert v.request_id is None and v.project is None
    assert secret not in repr(v)


def test_family_of() -> None:
    assert family_of(key("admin")) == "admin"
    assert family_of(key("svcacct")) == "service_account"
    assert family_of(key("project")) == "project"
    assert family_of(key("user-none")) == "user"
    assert family_of(key("legacy")) == "unknown"
    assert family_of(key("legacy"), "legacy") == "legacy"
    assert family_of(key("admin"), "unknown") == "admin"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("24h", 86400), ("3600s", 3600), ("90m", 5400), ("7d", 604800), ("120", 120), ("0", 0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-5m", "10x", "soon"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_cache_roundtrip_ttl_mode_and_no_key(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "verify.sqlite3"
    secret = key("project")
    fp = fingerprint_of(secret)
    unknown_fp = fingerprint_of(key("project"))
    base = "https://api.openai.com/v1"
    with VerifyCache(path, ttl_seconds=3600) as cache:
        cache.put_many(
            {
                fp: Verification(
                    "live",
                    project="proj_x",
                    request_id="req_1",
                    checked_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                ),
                unknown_fp: Verification("unknown", reason="timed out"),
            },
            base,
        )
        got = cache.get_many([fp, unknown_fp], base)
        assert set(got) == {fp}  # unknown is never cached
        assert got[fp].cached and got[fp].status == "live" and got[fp].project == "proj_x"
        assert cache.get_many([fp], "http://127.0.0.1:1/v1") == {}  # per base URL
        assert cache.get_many([fp], base, now=time.time() + 3601) == {}  # expired
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    data = path.read_bytes()
    assert secret.encode() not in data and secret[8:-4].encode() not in data
    assert fp.encode() in data


def test_default_cache_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KEYSCAN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / "keyscan" / "verify.sqlite3"
    monkeypatch.setenv("KEYSCAN_CACHE_DIR", str(tmp_path / "k"))
    assert default_cache_path() == tmp_path / "k" / "verify.sqlite3"
    monkeypatch.delenv("KEYSCAN_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_path() == tmp_path / "home" / ".cache" / "keyscan" / "verify.sqlite3"


def opts(state: FakeState, tmp_path: Path, **kw: Any) -> VerifyOptions:
    kw.setdefault("cache_path", tmp_path / "cache.sqlite3")
    return VerifyOptions(
        api_base="https://api.openai.com/v1", transport=AsyncFakeTransport(state), **kw
    )


def test_verify_keys_dedupes_and_uses_the_right_endpoint(
    fake_state: FakeState, tmp_path: Path
) -> None:
    project, admin = key("project"), key("admin")
    fake_state.add_key(project)
    fake_state.add_admin_key(admin)
    out = verify_keys(
        [(project, "project"), (project, "project"), (admin, "admin")],
        opts(fake_state, tmp_path, use_cache=False),
    )
    assert {v.status for v in out.values()} == {"live"}
    assert [r.path for r in fake_state.requests("/models")] == ["/v1/models"]
    (adm,) = fake_state.requests("/organization/admin_api_keys")
    assert adm.query == {"limit": ["1"]}
    assert adm.bearer_fingerprint == fingerprint_of(admin)


def test_azure_keys_are_never_sent(fake_state: FakeState, tmp_path: Path) -> None:
    azure = "0123456789abcdef" * 2
    out = verify_keys([(azure, "azure")], opts(fake_state, tmp_path, use_cache=False))
    assert out[fingerprint_of(azure)].status == "unknown"
    assert "Azure" in out[fingerprint_of(azure)].reason
    assert fake_state.log == []


def test_cache_second_run_sends_nothing(fake_state: FakeState, tmp_path: Path) -> None:
    keys = [key("project") for _ in range(5)]
    for k in keys:
        fake_state.add_key(k)
    o = opts(fake_state, tmp_path)
    first = verify_keys([(k, None) for k in keys], o)
    assert len(fake_state.log) == 5 and not any(v.cached for v in first.values())
    second = verify_keys([(k, None) for k in keys], o)
    assert len(fake_state.log) == 5 and all(v.cached for v in second.values())
    # verify_key asks even when cached (revocation's post-delete check must see the truth)
    # and refreshes the cache, so that the next scan does not report a stale "live"
    fake_state.set_state(keys[0], "deleted")
    assert verify_key(keys[0], None, o).status == "invalid"
    assert len(fake_state.log) == 6
    third = verify_keys([(keys[0], None)], o)[fingerprint_of(keys[0])]
    assert third.status == "invalid" and third.cached
    assert len(fake_state.log) == 6


def test_ttl_expiry_sends_again(fake_state: FakeState, tmp_path: Path) -> None:
    secret = key("svcacct")
    fake_state.add_key(secret)
    o = opts(fake_state, tmp_path, ttl_seconds=3600)
    verify_keys([(secret, None)], o)
    db = sqlite3.connect(tmp_path / "cache.sqlite3")
    with db:
        db.execute("UPDATE verdicts SET checked_at = checked_at - 3601")
    db.close()
    assert not verify_keys([(secret, None)], o)[fingerprint_of(secret)].cached
    assert len(fake_state.log) == 2


def test_unusable_cache_is_a_warning(fake_state: FakeState, tmp_path: Path) -> None:
    secret = key("project")
    fake_state.add_key(secret)
    bad = tmp_path / "cache.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    warnings: list[str] = []
    out = verify_keys([(secret, None)], opts(fake_state, tmp_path, cache_path=bad), warnings)
    assert out[fingerprint_of(secret)].status == "live"
    assert len(warnings) == 1 and "not used" in warnings[0]
    assert secret not in warnings[0]
