"""Validity checks: is each found key live? (openai-facts.md, section 2)

One read-only request per unique key (by fingerprint): ``GET {base}/models`` for user, project,
service-account, legacy and unknown-family keys, ``GET {base}/organization/admin_api_keys?limit=1``
for admin keys. Azure OpenAI keys are sent only with ``VerifyOptions.azure`` (``--verify-azure``),
and only to the Azure endpoint found next to them (keyscan.verify.azure). Requests
run concurrently (asyncio + httpx via keyscan.http, bounded by ``concurrency`` and the
``rps`` budget), results are cached by fingerprint (keyscan.verify.cache).

Statuses: live, live-restricted, live-no-quota, live-rate-limited, invalid, invalid-account,
unknown (with the reason). See keyscan.verify.classify.

API for other areas (revocation's post-delete check, ``keyscan verify``)::

    verify_findings(findings, VerifyOptions(...), result)   # sets finding.verification
    verify_keys([(secret, family), ...], options) -> dict[fingerprint, Verification]
    verify_key(secret, family=None, options=None) -> Verification   # asks even if cached
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyscan.http import (
    AsyncApiClient,
    ClientSettings,
    ConnectTo,
    RequestFailed,
    UnsafeBaseUrl,
    check_base_url,
    default_base_url,
)
from keyscan.models import Finding, ScanError, ScanResult, Verification, fingerprint_of
from keyscan.models import VerificationStatus as Status
from keyscan.openai_facts import (
    AZURE_API_VERSION,
    CODEX_FAMILIES,
    CODEX_PAT_FAMILY,
    CODEX_PAT_VERIFY_REASON,
    CODEX_VERIFY_REASON,
    family_of_key,
)
from keyscan.verify.classify import STATUSES, classify, now_iso

__all__ = [
    "STATUSES",
    "UnsafeBaseUrl",
    "VerifyOptions",
    "check_base_url",
    "family_of",
    "options_from_params",
    "verify_findings",
    "verify_key",
    "verify_keys",
]

MODELS_PATH = "/models"
ADMIN_PATH = "/organization/admin_api_keys"

@dataclass
class VerifyOptions:
    api_base: str = field(default_factory=default_base_url)
    concurrency: int = 8
    rps: float | None = None  # requests per second for the whole run; None: no limit
    timeout: float = 10.0  # seconds per attempt
    retries: int = 2  # extra attempts on 408/409/429 rate limits/5xx/timeouts/network errors
    ttl_seconds: float = 86400.0
    use_cache: bool = True
    cache_path: Path | None = None
    transport: Any = None  # an httpx.AsyncBaseTransport (tests)
    # Ask again even if the cache knows the answer (the fresh answer is still cached).
    refresh: bool = False
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    # Azure OpenAI keys: checked (against the endpoint next to them only) when True.
    azure: bool = False
    azure_api_version: str = AZURE_API_VERSION
    # An httpx.AsyncBaseTransport for the Azure checks (tests; the CLI's hidden
    # --azure-connect-to): the host checks still apply, the transport only carries the bytes.
    azure_transport: Any = None


def options_from_params(params: dict[str, Any]) -> VerifyOptions:
    """VerifyOptions from the CLI's parsed parameters (see keyscan.cli_common.verify_options).

    Raises ``UnsafeBaseUrl`` for a refused ``--api-base`` / ``OPENAI_BASE_URL``."""
    opts = VerifyOptions()
    if params.get("api_base"):
        opts.api_base = params["api_base"]
    opts.api_base = check_base_url(opts.api_base)
    opts.concurrency = int(params.get("verify_concurrency") or opts.concurrency)
    if params.get("verify_rps"):
        opts.rps = float(params["verify_rps"])
    if params.get("verify_timeout"):
        opts.timeout = float(params["verify_timeout"])
    if params.get("verify_ttl") is not None:
        opts.ttl_seconds = float(params["verify_ttl"])
    opts.use_cache = not params.get("no_cache") and opts.ttl_seconds > 0
    opts.azure = bool(params.get("verify_azure"))
    if params.get("azure_connect_to"):
        try:
            opts.azure_transport = ConnectTo(params["azure_connect_to"])
        except UnsafeBaseUrl as exc:
            raise UnsafeBaseUrl(f"--azure-connect-to: {exc}") from None
    return opts


def family_of(secret: str, family: str | None = None) -> str:
    """The family a scan would report, or one guessed from the prefix."""
    if family and family != "unknown":
        return family
    return family_of_key(secret) or family or "unknown"


def _request_for(family: str) -> tuple[str, dict[str, str | int] | None]:
    if family == "admin":
        return ADMIN_PATH, {"limit": 1}
    return MODELS_PATH, None


async def _check(api: AsyncApiClient, secret: str, family: str) -> Verification:
    if family in CODEX_FAMILIES:
        return Verification(
            status=Status.UNKNOWN, reason=CODEX_VERIFY_REASON, checked_at=now_iso()
        )
    if family == CODEX_PAT_FAMILY:
        return Verification(
            status=Status.UNKNOWN, reason=CODEX_PAT_VERIFY_REASON, checked_at=now_iso()
        )
    if family == "azure":
        from keyscan.verify.azure import NOT_ASKED

        return Verification(status=Status.UNKNOWN, reason=NOT_ASKED, checked_at=now_iso())
    path, params = _request_for(family)
    try:
        resp = await api.request("GET", path, bearer=secret, params=params)
    except RequestFailed as exc:
        return Verification(status=Status.UNKNOWN, reason=str(exc), checked_at=now_iso())
    except Exception as exc:  # never crash a scan on a network oddity; the name is safe
        return Verification(
            status=Status.UNKNOWN, reason=f"request failed ({type(exc).__name__})", checked_at=now_iso()
        )
    return classify(resp, secret)


async def _check_all(
    items: Sequence[tuple[str, str, str]], options: VerifyOptions, base: str
) -> dict[str, Verification]:
    settings = ClientSettings(
        timeout=options.timeout,
        retries=options.retries,
        rps=options.rps,
        transport=options.transport,
        backoff_initial=options.backoff_initial,
        backoff_max=options.backoff_max,
        # A 429 rate limit already proves the key live: asking again only spends its quota.
        retry_rate_limits=False,
    )
    gate = asyncio.Semaphore(max(1, options.concurrency))
    async with AsyncApiClient(base, settings) as api:

        async def one(fp: str, secret: str, family: str) -> tuple[str, Verification]:
            async with gate:
                return fp, await _check(api, secret, family)

        pairs = await asyncio.gather(*(one(fp, s, fam) for fp, s, fam in items))
    return dict(pairs)


def verify_keys(
    keys: Sequence[tuple[str, str | None]],
    options: VerifyOptions | None = None,
    warnings: list[str] | None = None,
) -> dict[str, Verification]:
    """Check ``(secret, family)`` pairs; the result is keyed by fingerprint.

    Raises ``UnsafeBaseUrl`` if ``options.api_base`` is refused. Cache problems become a line
    in ``warnings`` (the run goes on without the cache).
    """
    opts = options or VerifyOptions()
    base = check_base_url(opts.api_base)
    unique: dict[str, tuple[str, str]] = {}
    for secret, family in keys:
        unique.setdefault(fingerprint_of(secret), (secret, family_of(secret, family)))
    verdicts: dict[str, Verification] = {}
    cache = None
    if opts.use_cache and unique:
        from keyscan.verify.cache import VerifyCache, default_cache_path

        path = opts.cache_path or default_cache_path()
        try:
            cache = VerifyCache(path, opts.ttl_seconds)
            if not opts.refresh:
                verdicts.update(cache.get_many(unique, base))
        except (OSError, sqlite3.Error) as exc:
            if warnings is not None:
                warnings.append(f"verification cache {path} not used: {exc}")
            cache = None
    todo = [(fp, s, fam) for fp, (s, fam) in unique.items() if fp not in verdicts]
    try:
        if todo:
            fresh = asyncio.run(_check_all(todo, opts, base))
            verdicts.update(fresh)
            if cache is not None:
                try:
                    cache.put_many(fresh, base)
                except (OSError, sqlite3.Error) as exc:
                    if warnings is not None:
                        warnings.append(f"verification cache {cache.path} not updated: {exc}")
    finally:
        if cache is not None:
            cache.close()
    return verdicts


def verify_key(
    secret: str, family: str | None = None, options: VerifyOptions | None = None
) -> Verification:
    """Check one key now, whatever the cache says (e.g. after revoking it); the answer
    replaces the cached one, so that the next scan does not show a stale ``live``."""
    opts = dataclasses.replace(options or VerifyOptions(), refresh=True)
    return verify_keys([(secret, family)], opts)[fingerprint_of(secret)]


def verify_findings(
    findings: list[Finding], options: VerifyOptions | None, result: ScanResult
) -> None:
    """Set ``finding.verification`` on every finding (called by keyscan.pipeline.triage)."""
    if not findings:
        return
    opts = options or VerifyOptions()
    azure = [f for f in findings if f.family == "azure"] if opts.azure else []
    others = [f for f in findings if f.family != "azure"] if opts.azure else findings
    try:
        verdicts = verify_keys([(f.secret, f.family) for f in others], opts, result.warnings)
    except UnsafeBaseUrl as exc:
        result.errors.append(ScanError("--api-base", str(exc)))
        for f in findings:
            f.verification = Verification(
                status=Status.UNKNOWN, reason="not checked: unsafe API base URL"
            )
        return
    for f in others:
        f.verification = verdicts.get(f.fingerprint) or verdicts[fingerprint_of(f.secret)]
    if azure:
        from keyscan.verify.azure import verify_azure_findings

        by_fingerprint = verify_azure_findings(azure, opts, result.warnings)
        for f in azure:
            f.verification = by_fingerprint[f.fingerprint]
    unknown = {
        f.fingerprint for f in findings if f.verification and f.verification.status is Status.UNKNOWN
    }
    if unknown:
        result.warnings.append(
            f"{len(unknown)} key{'s' if len(unknown) != 1 else ''} could not be verified "
            "(status unknown): treat as live until checked"
        )
    checked = {fp: v for fp, v in verdicts.items()}
    checked.update({f.fingerprint: f.verification for f in azure if f.verification is not None})
    cached = sum(1 for v in checked.values() if v.cached)
    result.stats.setdefault("verify", {}).update(
        {"keys": len(checked), "cached": cached, "checked": len(checked) - cached}
    )
