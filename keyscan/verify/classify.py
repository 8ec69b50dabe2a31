"""What an answer of the OpenAI API says about the key that asked (openai-facts.md, section 2).

Reasons are built from status codes, error codes and (for restricted keys) the scope names:
never from the server's free-text message, which quotes part of the key.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from keyscan.http import ApiResponse, is_quota_error
from keyscan.models import Verification
from keyscan.models import VerificationStatus as Status

# Every status a check can answer, as written in reports.
STATUSES = tuple(status.value for status in Status)

_SCOPES = re.compile(r"Missing scopes:\s*([A-Za-z0-9_.:, -]{1,200}?)(?:\.\s|\.$|$)")
_HEADER_SAFE = re.compile(r"[^A-Za-z0-9_.:@/ -]")


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _shares_text(value: str, secret: str, width: int = 12) -> bool:
    """Whether ``value`` holds 12 consecutive characters of ``secret`` (an echoed key)."""
    return any(value[i : i + width] in secret for i in range(max(0, len(value) - width + 1)))


def _header(resp: ApiResponse, name: str, secret: str) -> str | None:
    value = resp.headers.get(name)
    if not value:
        return None
    value = _HEADER_SAFE.sub("?", value.strip())[:120]
    if not value or (secret and _shares_text(value, secret)):
        return None
    return value


def classify(resp: ApiResponse, secret: str = "") -> Verification:
    """The verdict for one answer. ``secret``: the key asked about; header values that quote
    it are dropped."""
    status, reason = _verdict(resp)
    if resp.attempts > 1 and status is Status.UNKNOWN:
        reason += f" after {resp.attempts} attempts"
    return Verification(
        status=status,
        reason=reason,
        http_status=resp.status,
        project=_header(resp, "openai-project", secret),
        organization=_header(resp, "openai-organization", secret),
        request_id=_header(resp, "x-request-id", secret),
        checked_at=now_iso(),
    )


def _is_api_list(body: object) -> bool:
    """The JSON list both checked endpoints answer (``ListModelsResponse``, ``ApiKeyList``):
    ``{"object": "list", "data": [...]}``."""
    return (
        isinstance(body, dict) and body.get("object") == "list" and isinstance(body.get("data"), list)
    )


def _verdict(resp: ApiResponse) -> tuple[Status, str]:
    code = resp.error_code
    message = resp.error_message
    s = resp.status
    if 200 <= s < 300:
        if not _is_api_list(resp.body):
            # An HTML login page of a captive portal or a proxy also answers 200.
            what = "not JSON" if resp.body is None else "not the list the API sends"
            return Status.UNKNOWN, (
                f"HTTP {s} but the answer is {what} (a proxy or captive portal?): says nothing "
                "about the key"
            )
        return Status.LIVE, ""
    if s in (401, 403):
        if code == "invalid_api_key":
            return Status.INVALID, "invalid_api_key: unknown, deleted or disabled key"
        if code == "account_deactivated":
            return Status.INVALID_ACCOUNT, "account_deactivated: the key's account is gone"
        if code == "unsupported_country_region_territory":
            return Status.UNKNOWN, (
                "HTTP 403 unsupported_country_region_territory: the API refuses this caller's "
                "region; says nothing about the key"
            )
        scopes = _SCOPES.search(message)
        if "insufficient permissions" in message.lower() or scopes:
            detail = scopes.group(1).strip() if scopes else "unnamed"
            return Status.LIVE_RESTRICTED, f"restricted key; missing scopes: {detail}"
        if re.search(
            r"\bIP\b.*\bnot (authorized|allowed)\b|not (authorized|allowed).*\bIP\b",
            message,
            re.IGNORECASE,
        ):
            return Status.UNKNOWN, (
                f"HTTP {s}: IP not authorized: the key exists but refuses this caller's "
                "address (probably live)"
            )
        return Status.UNKNOWN, f"HTTP {s}" + (f" {code}" if code else " without an error code")
    if s == 429:
        if code is None and resp.error_type is None:
            return Status.UNKNOWN, f"HTTP {s} without the API's JSON error: says nothing about the key"
        if is_quota_error(resp.body):
            return (
                Status.LIVE_NO_QUOTA,
                f"{code or resp.error_type or 'insufficient_quota'}: out of credit",
            )
        return Status.LIVE_RATE_LIMITED, f"{code or 'rate limited'}"
    if 300 <= s < 400:
        return Status.UNKNOWN, f"HTTP {s}: unexpected redirect (not followed)"
    if s >= 500:
        return Status.UNKNOWN, f"HTTP {s}: server error"
    return Status.UNKNOWN, f"HTTP {s}" + (f" {code}" if code else "") + ": unexpected answer"
