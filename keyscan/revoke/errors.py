"""Admin API errors, each with one clear line for the user (never a key in it)."""

from __future__ import annotations

import re

from keyscan.errors import KeyscanError

# Anything shaped like an OpenAI key (even masked by the server) is shortened before display.
# A mask (``*``, ``...``) may sit inside; a trailing full stop is the sentence's, not the key's.
_KEYLIKE = re.compile(r"sk-[A-Za-z0-9_\-]*(?:[*.\u2026]+[A-Za-z0-9_\-]+)*")


def scrub(text: str) -> str:
    """Replace key-shaped text by its first 8 and last 4 characters."""

    def short(m: re.Match[str]) -> str:
        value = m.group()
        if any(c in value for c in "*.\u2026"):  # already masked: only shorten long masks
            return value if len(value) <= 24 else f"{value[:8]}...{value[-4:]}"
        if len(value) < 12:
            return value
        return f"{value[:8]}...{value[-4:]}" if len(value) > 16 else value[:8] + "..."

    return _KEYLIKE.sub(short, text)


class AdminApiError(KeyscanError):
    """A failed Admin API call.

    ``kind``: auth (the admin key is invalid), scope (it lacks a permission), not-found,
    bad-request, rate-limited, server, network, protocol (an answer keyscan cannot read).
    """

    def __init__(
        self,
        kind: str,
        message: str,
        status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
    ) -> None:
        self.kind = kind
        self.message = scrub(message)
        self.status = status
        self.request_id = request_id
        self.code = code
        super().__init__(self.describe())

    def describe(self) -> str:
        where = f"HTTP {self.status}" if self.status else self.kind
        rid = f", request {self.request_id}" if self.request_id else ""
        return f"{self.message} ({where}{rid})"

    @property
    def fatal(self) -> bool:
        """Errors that will not go away for the next key either (stop the run)."""
        return self.kind in ("auth", "scope", "rate-limited", "server", "network", "protocol")


def classify(status: int, message: str, code: str | None) -> str:
    low = message.lower()
    if status == 401 and code in ("invalid_api_key", "account_deactivated"):
        return "auth"
    if status in (401, 403) and ("insufficient permissions" in low or "missing scope" in low):
        return "scope"
    if status == 403:
        return "scope"
    if status == 401:
        return "auth"
    if status == 404:
        return "not-found"
    if status == 429:
        return "rate-limited"
    if status >= 500:
        return "server"
    if status in (400, 409, 422):
        return "bad-request"
    return "protocol"


def explain(kind: str, status: int, message: str) -> str:
    """The user-facing first half of the line for an error kind."""
    if kind == "auth":
        return f"the admin key was rejected: {message}"
    if kind == "scope":
        return (
            "the admin key lacks a permission (revocation needs an admin key with write access "
            f"to organization administration): {message}"
        )
    if kind == "rate-limited":
        return f"rate limited by the Admin API, even after backing off: {message}"
    if kind == "server":
        return f"the Admin API failed (server error, after retries): {message}"
    return message
