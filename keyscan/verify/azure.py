"""Azure OpenAI liveness, only when asked (``--verify-azure``, ``VerifyOptions.azure``).

An Azure OpenAI key opens one Azure resource: it is checked against the endpoint found next
to it in the scanned text (``Location.extra["azure_endpoint"]``, set by the detector through
``keyscan.openai_facts.azure_endpoints_in``) and nowhere else. The host is checked again here
(``is_azure_host``: a report read back from disk is untrusted too), then asked
``GET https://<host>/openai/models?api-version=2024-10-21`` with an ``api-key`` header: the
documented, read-only "Models - List" call of the data plane
(https://learn.microsoft.com/en-us/rest/api/azureopenai/models/list).

Answers: 200 with the model list: live; 401, or a 403 that is not a network rule: invalid;
a 403 whose error says AccessDenied / firewall / virtual network / private endpoint:
unknown (the resource refuses this caller, which says nothing about the key); 404: unknown
(no such resource at that host); 429, 5xx, redirects, network errors: unknown, retried like the
OpenAI checks (keyscan.http). Verdicts are cached by key fingerprint and host. Azure keys are
never revoked by keyscan (keyscan.openai_facts.AZURE_REVOKE_HELP says how).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from keyscan.http import ApiResponse, AsyncApiClient, ClientSettings, RequestFailed
from keyscan.models import Finding, Verification, fingerprint_of
from keyscan.models import VerificationStatus as Status
from keyscan.openai_facts import AZURE_MODELS_PATH, is_azure_host
from keyscan.verify.classify import now_iso

if TYPE_CHECKING:
    from keyscan.verify import VerifyOptions

# Location.extra key where the detector keeps the endpoint's host (keyscan.findings).
ENDPOINT_KEY = "azure_endpoint"
# Hosts asked per key at most (a key is seen next to several endpoints only in odd files).
MAX_HOSTS = 3
NOT_ASKED = (
    "Azure OpenAI key: not checked (Azure keys are checked against their own endpoint only "
    "with --verify-azure)"
)
NO_ENDPOINT = (
    "Azure OpenAI key: no Azure OpenAI endpoint next to it passed the host checks (https, no "
    "port, no userinfo, <resource>.openai.azure.com or .cognitiveservices.azure.com): not sent "
    "anywhere"
)
_NETWORK_RULE_WORDS = ("firewall", "virtual network", "private endpoint", "ip address", "vnet")


def hosts_of(finding: Finding) -> list[str]:
    """The Azure hosts recorded next to a finding's key, checked again, first seen first."""
    hosts: list[str] = []
    for loc in finding.locations:
        host = loc.extra.get(ENDPOINT_KEY)
        if isinstance(host, str) and is_azure_host(host) and host not in hosts:
            hosts.append(host)
    return hosts[:MAX_HOSTS]


def classify_azure(resp: ApiResponse, host: str) -> Verification:
    status, reason = _verdict(resp, host)
    if resp.attempts > 1 and status is Status.UNKNOWN:
        reason += f" after {resp.attempts} attempts"
    return Verification(status=status, reason=reason, http_status=resp.status, checked_at=now_iso())


def _verdict(resp: ApiResponse, host: str) -> tuple[Status, str]:
    s = resp.status
    code = resp.error_code or ""
    if 200 <= s < 300:
        body = resp.body
        if isinstance(body, dict) and isinstance(body.get("data"), list):
            return Status.LIVE, f"Azure OpenAI resource {host} answered its model list"
        return Status.UNKNOWN, (
            f"HTTP {s} from {host} but not the model list (a proxy or captive portal?): says "
            "nothing about the key"
        )
    if s == 403:
        text = f"{code} {resp.error_message}".lower()
        if code == "AccessDenied" or any(word in text for word in _NETWORK_RULE_WORDS):
            return Status.UNKNOWN, (
                f"HTTP 403{' ' + code if code else ''} from {host}: the resource's network rules "
                "(firewall, virtual network or private endpoint) refuse this caller; says "
                "nothing about the key"
            )
    if s in (401, 403):
        return Status.INVALID, f"HTTP {s} from {host}: the key does not open this resource"
    if s == 404:
        return Status.UNKNOWN, (
            f"HTTP 404 from {host}: no Azure OpenAI resource answers there (deleted, or not an "
            "Azure OpenAI resource); says nothing about the key"
        )
    if s == 429:
        return Status.UNKNOWN, f"HTTP 429 from {host}: rate limited"
    if 300 <= s < 400:
        return Status.UNKNOWN, f"HTTP {s} from {host}: unexpected redirect (not followed)"
    if s >= 500:
        return Status.UNKNOWN, f"HTTP {s} from {host}: server error"
    return Status.UNKNOWN, f"HTTP {s} from {host}: unexpected answer"


async def _check(api: AsyncApiClient, secret: str, host: str, api_version: str) -> Verification:
    try:
        resp = await api.request(
            "GET", AZURE_MODELS_PATH, bearer=None, api_key=secret, params={"api-version": api_version}
        )
    except RequestFailed as exc:
        return Verification(status=Status.UNKNOWN, reason=f"{host}: {exc}", checked_at=now_iso())
    except Exception as exc:  # never crash a scan on a network oddity; the name is safe
        return Verification(
            status=Status.UNKNOWN,
            reason=f"{host}: request failed ({type(exc).__name__})",
            checked_at=now_iso(),
        )
    return classify_azure(resp, host)


async def _check_all(
    items: Sequence[tuple[str, str, str]], options: VerifyOptions
) -> dict[tuple[str, str], Verification]:
    settings = ClientSettings(
        timeout=options.timeout,
        retries=options.retries,
        rps=options.rps,
        transport=options.azure_transport,
        backoff_initial=options.backoff_initial,
        backoff_max=options.backoff_max,
        retry_rate_limits=True,  # a 429 here says nothing about the key: ask again
    )
    gate = asyncio.Semaphore(max(1, options.concurrency))
    clients: dict[str, AsyncApiClient] = {}
    try:
        for _, _, host in items:
            if host not in clients:
                clients[host] = AsyncApiClient(f"https://{host}", settings)

        async def one(fp: str, secret: str, host: str) -> tuple[tuple[str, str], Verification]:
            async with gate:
                return (fp, host), await _check(clients[host], secret, host, options.azure_api_version)

        pairs = await asyncio.gather(*(one(fp, s, h) for fp, s, h in items))
    finally:
        for client in clients.values():
            await client.aclose()
    return dict(pairs)


def verify_azure_keys(
    pairs: Sequence[tuple[str, str]],
    options: VerifyOptions,
    warnings: list[str] | None = None,
) -> dict[tuple[str, str], Verification]:
    """Check ``(secret, host)`` pairs; the result is keyed by ``(fingerprint, host)``. A host
    that is not exactly an Azure OpenAI host is never contacted (its answer: unknown)."""
    verdicts: dict[tuple[str, str], Verification] = {}
    unique: dict[tuple[str, str], str] = {}
    for secret, host in pairs:
        fp = fingerprint_of(secret)
        if not is_azure_host(host):
            verdicts[(fp, host)] = Verification(status=Status.UNKNOWN, reason=NO_ENDPOINT)
            continue
        unique.setdefault((fp, host), secret)
    cache = None
    if options.use_cache and unique:
        from keyscan.verify.cache import VerifyCache, default_cache_path

        path = options.cache_path or default_cache_path()
        try:
            cache = VerifyCache(path, options.ttl_seconds)
            if not options.refresh:
                for host in sorted({h for _, h in unique}):
                    fps = [fp for fp, h in unique if h == host]
                    for fp, v in cache.get_many(fps, f"https://{host}").items():
                        verdicts[(fp, host)] = v
        except (OSError, sqlite3.Error) as exc:
            if warnings is not None:
                warnings.append(f"verification cache {path} not used: {exc}")
            cache = None
    todo = [(fp, s, h) for (fp, h), s in unique.items() if (fp, h) not in verdicts]
    try:
        if todo:
            fresh = asyncio.run(_check_all(todo, options))
            verdicts.update(fresh)
            if cache is not None:
                try:
                    for host in sorted({h for _, h in fresh}):
                        cache.put_many(
                            {fp: v for (fp, h), v in fresh.items() if h == host}, f"https://{host}"
                        )
                except (OSError, sqlite3.Error) as exc:
                    if warnings is not None:
                        warnings.append(f"verification cache {cache.path} not updated: {exc}")
    finally:
        if cache is not None:
            cache.close()
    return verdicts


def combine(verdicts: Sequence[Verification]) -> Verification:
    """One verdict for a key asked on several hosts: live anywhere, else dead everywhere,
    else the first unknown."""
    for v in verdicts:
        if v.is_live:
            return v
    if verdicts and all(v.is_dead for v in verdicts):
        return verdicts[0]
    return next((v for v in verdicts if not v.is_dead), verdicts[0])


def verify_azure_findings(
    findings: Sequence[Finding], options: VerifyOptions, warnings: list[str] | None = None
) -> dict[str, Verification]:
    """Verdicts for Azure-family findings, by fingerprint."""
    pairs = [(f.secret, host) for f in findings for host in hosts_of(f)]
    verdicts = verify_azure_keys(pairs, options, warnings) if pairs else {}
    out: dict[str, Verification] = {}
    for f in findings:
        hosts = hosts_of(f)
        if not hosts:
            out[f.fingerprint] = Verification(
                status=Status.UNKNOWN, reason=NO_ENDPOINT, checked_at=now_iso()
            )
            continue
        out[f.fingerprint] = combine([verdicts[(fingerprint_of(f.secret), h)] for h in hosts])
    return out
