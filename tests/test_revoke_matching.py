"""Revocation, unit level: parsing redactions, matching rules, report input, the audit log."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from keyscan.keygen import generate, key
from keyscan.models import fingerprint_of, redact
from keyscan.openai_facts import owner_type_for_prefix
from keyscan.revoke import InputError, admin_key_from, leaked_from_report, leaked_from_secret
from keyscan.revoke.audit import AuditLog, default_audit_path, read_records
from keyscan.revoke.errors import AdminApiError, classify, scrub
from keyscan.revoke.matching import (
    KeyShape,
    compare,
    parse_redacted,
)
from tests.fakeopenai.state import redacted_value


def lookalike(secret: str) -> str:
    """Another key with the same first 8, last 4 and length (a suffix collision)."""
    middle = len(secret) - 12
    half = (middle - 8) // 2
    body = generate(f"{{b64url:{half}}}{{marker}}{{b64url:{middle - 8 - half}}}")
    other = secret[:8] + body + secret[-4:]
    assert len(other) == len(secret) and other != secret
    return other


def test_parse_real_shape_keeps_length() -> None:
    secret = key("project")
    shape = parse_redacted(redacted_value(secret))
    assert shape is not None
    assert shape.head == secret[:8] and shape.tail == secret[-4:]
    assert shape.length == len(secret) == 164


def test_parse_ellipsis_shapes_lose_length() -> None:
    secret = key("svcacct")
    for text in (redact(secret), f"{secret[:8]}****...{secret[-4:]}", f"sk-abc\u2026{secret[-4:]}"):
        shape = parse_redacted(text)
        assert shape is not None and shape.length is None
        assert shape.tail == secret[-4:]
    # The brief's example shape: 7 characters, stars, 4.
    shape = parse_redacted("sk-proj" + "*" * 8 + "abcd")
    assert shape == KeyShape("sk-proj", "abcd", 19)
    # A length given separately (keyscan reports) is kept.
    shape = parse_redacted(redact(secret), 167)
    assert shape is not None and shape.length == 167
    assert parse_redacted("no mask here") is None


def test_compare_needs_prefix_suffix_and_length() -> None:
    secret = key("project")
    leaked = KeyShape.of_secret(secret)
    same = parse_redacted(redacted_value(secret))
    assert same is not None and compare(leaked, same).matches
    other = parse_redacted(redacted_value(key("project")))
    assert other is not None and not compare(leaked, other).matches
    # Same first 8 and last 4 but another length: not the same key.
    longer = secret[:8] + "*" * 160 + secret[-4:]
    shape = parse_redacted(longer)
    assert shape is not None and compare(leaked, shape).why == "length differs"
    # Ellipsis shape: length unknown, so first/last decide.
    ell = parse_redacted(f"{secret[:8]}...{secret[-4:]}")
    assert ell is not None and compare(leaked, ell).matches
    # Too little left to compare: never a match.
    short = parse_redacted(f"sk-abc...{secret[-3:]}")
    assert short is not None and not compare(leaked, short).matches
    assert "too short" in compare(leaked, short).why


def test_redacted_leaked_key_matches_like_raw() -> None:
    secret = key("project")
    leaked = parse_redacted(redact(secret), len(secret))
    assert leaked is not None
    api = parse_redacted(redacted_value(secret))
    assert api is not None and compare(leaked, api).matches
    twin = parse_redacted(redacted_value(lookalike(secret)))
    assert twin is not None and compare(leaked, twin).matches  # why ambiguity exists


def test_owner_type_follows_prefix() -> None:
    assert owner_type_for_prefix(key("svcacct")) == "service_account"
    assert owner_type_for_prefix(key("project")) == "user"
    assert owner_type_for_prefix(key("user-none")) == "user"
    assert owner_type_for_prefix(key("legacy"), "legacy") is None
    assert owner_type_for_prefix("sk-proj-...abcd", "service_account") == "service_account"


def write_report(path: Path, findings: list[dict[str, object]]) -> None:
    path.write_text(json.dumps({"schema_version": 1, "findings": findings}), encoding="utf-8")


def test_report_input_redacted_and_raw(tmp_path: Path) -> None:
    a, b = key("project"), key("admin")
    report = tmp_path / "r.json"
    write_report(
        report,
        [
            {"family": "project", "fingerprint": fingerprint_of(a), "redacted": redact(a),
             "length": len(a), "verification": {"status": "live", "project": "proj_x"},
             "locations": [{"path": "app.py", "line": 3}]},
            {"family": "admin", "fingerprint": fingerprint_of(b), "redacted": redact(b),
             "length": len(b), "secret": b, "verification": None},
            # The same key again (found by two rules): one key.
            {"family": "project", "fingerprint": fingerprint_of(a), "redacted": redact(a),
             "length": len(a)},
        ],
    )
    keys = leaked_from_report(report)
    assert len(keys) == 2
    first, second = keys
    assert first.secret is None and first.project == "proj_x" and first.where == "app.py:3"
    assert first.shape.length == len(a) and first.shape.tail == a[-4:]
    assert second.secret == b and second.family == "admin"
    # JSON Lines reports too.
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text(
        json.dumps({"type": "finding", "family": "project", "fingerprint": fingerprint_of(a),
                    "redacted": redact(a), "length": len(a)}) + "\n"
        + json.dumps({"type": "summary"}) + "\n",
        encoding="utf-8",
    )
    assert [k.fingerprint for k in leaked_from_report(jsonl)] == [fingerprint_of(a)]


def test_report_input_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}", encoding="utf-8")
    with pytest.raises(InputError, match="no 'findings'"):
        leaked_from_report(bad)
    a = key("project")
    write_report(bad, [{"fingerprint": fingerprint_of(key("project")), "secret": a}])
    with pytest.raises(InputError, match="does not match its fingerprint"):
        leaked_from_report(bad)
    with pytest.raises(InputError, match="cannot read report"):
        leaked_from_report(tmp_path / "missing.json")


def test_audit_log_mode_and_content(tmp_path: Path) -> None:
    secret = key("project")
    path = tmp_path / "data" / "keyscan" / "audit.jsonl"
    log = AuditLog(path, forbidden=[secret])
    log.check_writable()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    leaked = leaked_from_secret(secret, "project")
    log.record(action="delete-project-key", result="deleted", project="proj_a", key_id="key_a",
               redacted=leaked.redacted, fingerprint=leaked.fingerprint, http_status=200,
               request_id="req_1", message=f"oops {secret}")
    records = read_records(path)
    assert len(records) == 1
    rec = records[0]
    for name in ("timestamp", "action", "project", "key_id", "redacted", "fingerprint",
                 "http_status", "request_id"):
        assert name in rec
    assert rec["fingerprint"] == fingerprint_of(secret)
    assert secret not in path.read_text(encoding="utf-8")  # the defence in depth


def test_audit_log_tightens_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text("", encoding="utf-8")
    os.chmod(path, 0o644)
    AuditLog(path).record(action="x", result="y")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_default_audit_path() -> None:
    assert default_audit_path({"XDG_DATA_HOME": "/x/data"}) == Path("/x/data/keyscan/audit.jsonl")
    assert default_audit_path({}).parts[-4:] == (".local", "share", "keyscan", "audit.jsonl")
    # A relative XDG_DATA_HOME is ignored, as the XDG spec says.
    assert default_audit_path({"XDG_DATA_HOME": "rel"}) == default_audit_path({})


def test_admin_key_sources(tmp_path: Path) -> None:
    admin = key("admin")
    assert admin_key_from(None, {"OPENAI_ADMIN_KEY": admin}) == (admin, [])
    f = tmp_path / "admin.key"
    f.write_text(admin + "\n", encoding="utf-8")
    os.chmod(f, 0o644)
    got, warnings = admin_key_from(f, {})
    assert got == admin and "readable by others" in warnings[0]
    assert admin not in warnings[0]
    from keyscan.revoke import AdminKeyError

    with pytest.raises(AdminKeyError, match="OPENAI_ADMIN_KEY"):
        admin_key_from(None, {})


def test_errors_are_classified_and_scrubbed() -> None:
    secret = key("admin")
    assert classify(401, "Incorrect API key provided", "invalid_api_key") == "auth"
    assert classify(401, "You have insufficient permissions. Missing scopes: x", None) == "scope"
    assert classify(403, "Forbidden", None) == "scope"
    assert classify(429, "slow down", "rate_limit_exceeded") == "rate-limited"
    assert classify(503, "down", None) == "server"
    assert classify(400, "bad", None) == "bad-request"
    assert classify(404, "gone", None) == "not-found"
    err = AdminApiError("auth", f"Incorrect API key provided: {secret}", 401, "req_1")
    assert secret not in str(err) and secret[-4:] in str(err)
    assert secret not in scrub(f"key={secret}")
