"""The one module of keyscan that talks HTTP (and imports httpx): a small, careful API client.

Shared by verification (keyscan.verify) and revocation (keyscan.revoke). Import it lazily,
inside the function that needs it: plain scans never load httpx.

Safety
    ``check_base_url(url)`` accepts ``https://`` URLs, and plain ``http://`` only to loopback
    (127.0.0.0/8, ::1, localhost); anything else raises ``UnsafeBaseUrl`` with a one-line
    message. Both clients call it. ``default_base_url()`` is ``OPENAI_BASE_URL`` or
    ``https://api.openai.com/v1``. Requests go to ``base_url + path`` only (``path`` must start
    with ``/``; absolute URLs are refused); redirects are never followed. A bearer never
    appears in an exception message: ``RequestFailed`` texts are scrubbed.

Retries
    Up to ``ClientSettings.retries`` extra attempts on 408, 409, 429 (rate limits, *not*
    ``insufficient_quota`` and the other quota codes: those are final; none at all with
    ``retry_rate_limits=False``), 5xx, timeouts and connection errors. ``x-should-retry: true|false`` overrides that decision. The delay is
    ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date) when the server gives one
    (capped by ``max_retry_after``), else exponential backoff from ``backoff_initial`` to
    ``backoff_max`` with up to 25 % jitter, like OpenAI's own SDK. Every attempt, retries
    included, spends from the requests-per-second budget (``rps``, None = unlimited), which
    all concurrent requests of one client share.

Limits (a slow, huge or hostile server never holds keyscan)
    Each attempt is bounded by ``timeout`` seconds *as a whole* (connect, headers and body:
    a server dripping one byte every few seconds is cut off), and the whole request, retries
    and their pauses included, by ``deadline`` seconds (no retry starts that would end past
    it). Bodies are streamed and reading stops past ``max_body`` bytes (decoded; a
    ``content-length`` above it is refused before reading): ``RequestFailed`` kind
    "too-large", never retried. The sync client runs each attempt in a daemon worker thread
    and stops waiting at the time limit, so even a drip inside the response headers cannot
    block it.

API::

    from keyscan.http import AsyncApiClient, ApiClient, ClientSettings, RequestFailed

    settings = ClientSettings(timeout=10, retries=2, rps=20, transport=None)
    async with AsyncApiClient("https://api.openai.com/v1", settings) as api:
        resp = await api.request("GET", "/models", bearer=secret)   # -> ApiResponse
    with ApiClient(base_url, settings) as api:                       # same, synchronous
        resp = api.request("DELETE", f"/organization/projects/{pid}/api_keys/{kid}",
                           bearer=admin_key)

``ApiResponse`` has ``status``, ``headers`` (lower-case names), ``body`` (parsed JSON or
None), ``attempts`` and helpers ``error_code``/``error_type``/``error_message``. A network
failure that outlasts the retries (or the deadline) raises ``RequestFailed`` (``kind``:
"timeout", "connection", "protocol" or "too-large"; ``attempts``). HTTP error statuses do not raise: the caller
decides what a 401 means. ``settings.transport`` takes an ``httpx.AsyncBaseTransport`` (async
client) or ``httpx.BaseTransport`` (sync client), e.g. the test suite's fake OpenAI API.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from keyscan.errors import KeyscanError
from keyscan.models import redact
from keyscan.version import __version__

# Query parameters; a list is sent as the name repeated (``api_key_ids=a&api_key_ids=b``).
Params = Mapping[str, "str | int | list[str]"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUSES = frozenset({408, 409, 429})
# 429 codes that mean "out of credit": final answers, never retried.
QUOTA_CODES = frozenset({"insufficient_quota", "credit_balance_exhausted", "billing_not_active"})
QUOTA_SUFFIXES = ("_spend_limit_exceeded", "_usage_limit_exceeded")


class UnsafeBaseUrl(KeyscanError, ValueError):
    """The base URL would send keys somewhere keyscan refuses to send them."""


def default_base_url(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return (env.get("OPENAI_BASE_URL") or "").strip() or DEFAULT_BASE_URL


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    """The URL without a trailing slash, or ``UnsafeBaseUrl``."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise UnsafeBaseUrl(f"invalid API base URL {url!r}: {exc}") from None
    if parts.scheme not in ("https", "http") or not host:
        raise UnsafeBaseUrl(f"invalid API base URL {url!r}: expected https://HOST/PATH")
    if parts.username is not None or parts.password is not None:
        raise UnsafeBaseUrl(f"invalid API base URL {url!r}: credentials in the URL")
    if parts.query or parts.fragment:
        raise UnsafeBaseUrl(f"invalid API base URL {url!r}: no query or fragment allowed")
    if parts.scheme == "http" and not _is_loopback(host):
        raise UnsafeBaseUrl(
            f"refusing to send keys over plain http to {host}: use https "
            "(plain http is allowed only to loopback: 127.0.0.0/8, ::1, localhost)"
        )
    return url.strip().rstrip("/")


def _trust_env(base_url: str) -> bool:
    """Proxies and certificates from the environment apply, except to plain-http loopback
    (a proxy in front of 127.0.0.1 would only see the keys)."""
    parts = urlsplit(base_url)
    return not (parts.scheme == "http" and _is_loopback(parts.hostname or ""))


def is_quota_error(body: Any) -> bool:
    """A 429 body that means out of credit (insufficient_quota and kin), not a rate limit."""
    code, type_ = _error_field(body, "code"), _error_field(body, "type")
    if code in QUOTA_CODES or type_ == "insufficient_quota":
        return True
    return code is not None and code.endswith(QUOTA_SUFFIXES)


def _error_field(body: Any, name: str) -> str | None:
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            value = err.get(name)
            return value if isinstance(value, str) else None
    return None


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: Mapping[str, str]
    body: Any
    attempts: int = 1

    @property
    def error_code(self) -> str | None:
        return _error_field(self.body, "code")

    @property
    def error_type(self) -> str | None:
        return _error_field(self.body, "type")

    @property
    def error_message(self) -> str:
        """The server's message. May quote part of the key: never print it as is."""
        return _error_field(self.body, "message") or ""


class RequestFailed(KeyscanError):
    """No HTTP answer after every attempt. The message never contains a bearer."""

    def __init__(self, kind: str, message: str, attempts: int) -> None:
        super().__init__(message)
        self.kind = kind  # timeout | connection | protocol | too-large
        self.attempts = attempts


class AttemptTimeout(KeyscanError, TimeoutError):
    """One attempt did not complete (headers and whole body) within its time limit."""


class ResponseTooLarge(KeyscanError):
    """The body is (or would be) larger than ``ClientSettings.max_body``."""


MAX_BODY = 4 * 1024 * 1024  # the API's own answers are a few KB to a few hundred KB


@dataclass
class ClientSettings:
    timeout: float = 10.0
    retries: int = 2
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    rps: float | None = None
    user_agent: str = f"keyscan/{__version__} (+https://github.com/keyscan/keyscan)"
    # An httpx.AsyncBaseTransport / httpx.BaseTransport (tests), or None for the network.
    transport: Any = None
    # False: a 429 rate limit is a final answer (verification: it already proves the key live).
    retry_rate_limits: bool = True
    # Random source for jitter (a seeded one makes delays reproducible).
    rng: random.Random = field(default_factory=random.Random)
    # Seconds for the whole request: every attempt, and the pauses between them.
    deadline: float = 120.0
    # Largest body read (bytes, after decoding); larger answers are refused.
    max_body: int = MAX_BODY


def should_retry(
    status: int, headers: Mapping[str, str], body: Any, retry_rate_limits: bool = True
) -> bool:
    if status == 429 and not retry_rate_limits:
        return False
    hint = headers.get("x-should-retry", "").strip().lower()
    if hint == "true":
        return True
    if hint == "false":
        return False
    if status == 429:
        return not is_quota_error(body)
    return status in RETRY_STATUSES or status >= 500


def retry_delay(attempt: int, headers: Mapping[str, str] | None, settings: ClientSettings) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based)."""
    if headers:
        hinted = _retry_after(headers)
        if hinted is not None and 0 <= hinted <= settings.max_retry_after:
            return hinted
    base = min(settings.backoff_initial * 2.0 ** (attempt - 1), settings.backoff_max)
    return base * (1 - 0.25 * settings.rng.random())


def _retry_after(headers: Mapping[str, str]) -> float | None:
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, float(when.timestamp()) - time.time())


_Raw = tuple[int, dict[str, str], bytes]


def _parse(raw: _Raw, attempts: int) -> ApiResponse:
    status, headers, content = raw
    body: Any = None
    if content:
        try:
            body = json.loads(content)
        except ValueError:  # (UnicodeDecodeError included)
            body = None
    return ApiResponse(status=status, headers=headers, body=body, attempts=attempts)


def _check_length(response: httpx.Response, limit: int) -> None:
    declared = response.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > limit:
        raise ResponseTooLarge(f"the answer declares {int(declared)} bytes")


def _lower(response: httpx.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items()}


def _too_large(limit: int, attempts: int) -> RequestFailed:
    return RequestFailed(
        "too-large",
        f"the answer is larger than {limit} bytes: stopped reading (not an answer of the "
        "OpenAI API; a proxy or a hostile server?)",
        attempts,
    )


def _past_deadline(deadline: float, attempts: int, last: str = "") -> RequestFailed:
    return RequestFailed(
        "timeout",
        f"no complete answer within the request's {deadline:g} s deadline "
        f"({attempts} attempt{'s' if attempts != 1 else ''}{'; last: ' + last if last else ''})",
        attempts,
    )


def _failure(exc: BaseException, bearer: str | None, attempts: int) -> RequestFailed:
    if isinstance(exc, (httpx.TimeoutException, asyncio.TimeoutError, TimeoutError)):
        kind, what = "timeout", "timed out"
    elif isinstance(exc, httpx.ConnectError):
        kind, what = "connection", "connection failed"
    elif isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)):
        kind, what = "protocol", "connection dropped"
    else:
        kind, what = "connection", "network error"
    detail = str(exc).strip()
    if bearer:
        detail = detail.replace(bearer, redact(bearer))
    detail = detail[:160]
    tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}"
    text = f"{what}{tries}" + (
        f" ({type(exc).__name__}: {detail})" if detail else f" ({type(exc).__name__})"
    )
    return RequestFailed(kind, text, attempts)


RETRY_EXCEPTIONS = (httpx.TransportError, asyncio.TimeoutError, TimeoutError)


def _url(base_url: str, path: str) -> str:
    if not path.startswith("/") or path.startswith("//") or "://" in path:
        raise ValueError(f"API path must be relative to the base URL: {path!r}")
    return base_url + path


def _headers(
    settings: ClientSettings, bearer: str | None, api_key: str | None = None
) -> dict[str, str]:
    headers = {"accept": "application/json", "user-agent": settings.user_agent}
    if bearer is not None:
        headers["authorization"] = f"Bearer {bearer}"
    if api_key is not None:  # Azure OpenAI's data plane: ``api-key: <key>``
        headers["api-key"] = api_key
    return headers


class _AsyncBudget:
    """Requests-per-second budget shared by every task of one async client."""

    def __init__(self, rps: float | None) -> None:
        self.interval = 1.0 / rps if rps else 0.0
        self.next_at = 0.0
        self.lock = asyncio.Lock()

    async def spend(self) -> None:
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


class _SyncBudget:
    def __init__(self, rps: float | None) -> None:
        self.interval = 1.0 / rps if rps else 0.0
        self.next_at = 0.0
        self.lock = threading.Lock()

    def spend(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + self.interval
        if start > now:
            time.sleep(start - now)


class AsyncApiClient:
    """Async client (one per event loop); see the module docstring."""

    def __init__(self, base_url: str, settings: ClientSettings | None = None) -> None:
        self.base_url = check_base_url(base_url)
        self.settings = settings or ClientSettings()
        self._budget = _AsyncBudget(self.settings.rps)
        self._client = httpx.AsyncClient(
            transport=self.settings.transport,
            timeout=httpx.Timeout(self.settings.timeout),
            follow_redirects=False,
            trust_env=_trust_env(self.base_url),
        )

    async def __aenter__(self) -> AsyncApiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        bearer: str | None,
        params: Params | None = None,
        json_body: Any = None,
        api_key: str | None = None,
    ) -> ApiResponse:
        """``bearer``: sent as ``authorization: Bearer``; ``api_key``: as ``api-key`` (Azure).
        Either is scrubbed from every error message."""
        url = _url(self.base_url, path)
        secret = bearer if bearer is not None else api_key
        s = self.settings
        attempt = 0
        deadline: float | None = None
        while True:
            attempt += 1
            await self._budget.spend()
            if deadline is None:  # (waiting for the rps budget is not the server's time)
                deadline = time.monotonic() + s.deadline
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise AttemptTimeout(f"the {s.deadline:g} s deadline passed")
                raw = await asyncio.wait_for(
                    self._attempt(method, url, params, json_body, _headers(s, bearer, api_key)),
                    timeout=min(s.timeout, remaining),
                )
            except ResponseTooLarge:
                raise _too_large(s.max_body, attempt) from None
            except RETRY_EXCEPTIONS as exc:
                if attempt > s.retries:
                    raise _failure(exc, secret, attempt) from None
                delay = retry_delay(attempt, None, s)
                if time.monotonic() + delay >= deadline:
                    raise _past_deadline(s.deadline, attempt) from None
                await asyncio.sleep(delay)
                continue
            result = _parse(raw, attempt)
            if attempt > s.retries or not should_retry(
                result.status, result.headers, result.body, s.retry_rate_limits
            ):
                return result
            delay = retry_delay(attempt, result.headers, s)
            if time.monotonic() + delay >= deadline:
                return result  # no time for another attempt: the caller reads this answer
            await asyncio.sleep(delay)

    async def _attempt(
        self,
        method: str,
        url: str,
        params: Params | None,
        json_body: Any,
        headers: dict[str, str],
    ) -> _Raw:
        """One request, its body streamed and capped at ``max_body``."""
        limit = self.settings.max_body
        async with self._client.stream(
            method, url, params=params, json=json_body, headers=headers
        ) as response:
            _check_length(response, limit)
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise ResponseTooLarge(f"more than {limit} bytes")
            return response.status_code, _lower(response), bytes(body)


class ApiClient:
    """Synchronous client (e.g. for revocation's few requests); see the module docstring."""

    def __init__(self, base_url: str, settings: ClientSettings | None = None) -> None:
        self.base_url = check_base_url(base_url)
        self.settings = settings or ClientSettings()
        self._budget = _SyncBudget(self.settings.rps)
        self._client = httpx.Client(
            transport=self.settings.transport,
            timeout=httpx.Timeout(self.settings.timeout),
            follow_redirects=False,
            trust_env=_trust_env(self.base_url),
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        bearer: str | None,
        params: Params | None = None,
        json_body: Any = None,
        api_key: str | None = None,
    ) -> ApiResponse:
        """``bearer``: sent as ``authorization: Bearer``; ``api_key``: as ``api-key`` (Azure).
        Either is scrubbed from every error message."""
        url = _url(self.base_url, path)
        secret = bearer if bearer is not None else api_key
        s = self.settings
        attempt = 0
        deadline: float | None = None
        while True:
            attempt += 1
            self._budget.spend()
            if deadline is None:
                deadline = time.monotonic() + s.deadline
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise AttemptTimeout(f"the {s.deadline:g} s deadline passed")
                raw = self._attempt(
                    method, url, params, json_body, _headers(s, bearer, api_key), min(s.timeout, remaining)
                )
            except ResponseTooLarge:
                raise _too_large(s.max_body, attempt) from None
            except RETRY_EXCEPTIONS as exc:
                if attempt > s.retries:
                    raise _failure(exc, secret, attempt) from None
                delay = retry_delay(attempt, None, s)
                if time.monotonic() + delay >= deadline:
                    raise _past_deadline(s.deadline, attempt) from None
                time.sleep(delay)
                continue
            result = _parse(raw, attempt)
            if attempt > s.retries or not should_retry(
                result.status, result.headers, result.body, s.retry_rate_limits
            ):
                return result
            delay = retry_delay(attempt, result.headers, s)
            if time.monotonic() + delay >= deadline:
                return result  # no time for another attempt: the caller reads this answer
            time.sleep(delay)

    def _attempt(
        self,
        method: str,
        url: str,
        params: Params | None,
        json_body: Any,
        headers: dict[str, str],
        limit_seconds: float,
    ) -> _Raw:
        """One request in a daemon worker thread, waited for at most ``limit_seconds``.

        httpx's sync timeouts bound each network operation, not the whole: a server that
        drips a byte at a time (even inside the headers) would hold a plain call forever.
        Past the limit the worker is told to stop (it does at its next chunk) and abandoned
        (a daemon thread never holds the process at exit)."""
        limit = self.settings.max_body
        stop = threading.Event()
        done = threading.Event()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                with self._client.stream(
                    method, url, params=params, json=json_body, headers=headers
                ) as response:
                    _check_length(response, limit)
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        if stop.is_set():
                            raise AttemptTimeout("stopped")
                        body += chunk
                        if len(body) > limit:
                            raise ResponseTooLarge(f"more than {limit} bytes")
                    box["raw"] = (response.status_code, _lower(response), bytes(body))
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name="keyscan-http", daemon=True).start()
        if not done.wait(limit_seconds):
            stop.set()
            raise AttemptTimeout(f"no complete answer within {limit_seconds:g} s")
        if "error" in box:
            raise box["error"]
        raw: _Raw = box["raw"]
        return raw


def parse_loopback_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` of a loopback address (127.0.0.0/8, ::1 as ``[::1]:PORT``, localhost),
    or ``UnsafeBaseUrl``."""
    host, sep, port = address.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not _is_loopback(host):
        raise UnsafeBaseUrl(
            f"invalid address {address!r}: expected a loopback HOST:PORT (127.0.0.1:8080)"
        )
    return host, int(port)


class ConnectTo(httpx.AsyncBaseTransport):
    """Every request goes over plain http to one loopback address, its ``Host`` header (and
    so the host keyscan checked) unchanged: curl's ``--connect-to``, for testing a check
    against a local fake (the hidden ``--azure-connect-to`` option; never read from the
    environment or from scanned content)."""

    def __init__(self, address: str) -> None:
        self.host, self.port = parse_loopback_address(address)
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme="http", host=self.host, port=self.port)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
