"""Exposure evidence: was a leaked key used after it leaked, and what did it cost? As data.

For every leaked key that maps to exactly one key id of the organization (the revocation
planner's safe matching, ``keyscan.revoke.plan``: same first 8, last 4, length and owner type,
*and* the raw key ties itself to it, or ``--key-id`` picks it; or the audit log proves an
earlier deletion of that very key), the Admin API tells:

- the key object's ``created_at`` and ``last_used_at``;
- usage since the key was first exposed, from every usage endpoint that filters and groups by
  API key (``USAGE_ENDPOINTS``: completions, embeddings, moderations, images, audio speeches
  and transcriptions, file and web search calls; grouped by ``api_key_id``, and ``model``
  where the endpoint has it): requests (model requests summed across endpoints; tool calls
  kept apart, ``by_endpoint`` says what each endpoint counts), input and output tokens, by
  model and by endpoint, with the first and last bucket that saw use; and cost
  (``/organization/costs``, grouped by ``api_key_id``). ``vector_stores`` and
  ``code_interpreter_sessions`` take no key filter: never asked, said in the JSON.

"First exposed" is the author date of the commit that introduced the key (history scans),
else the time keyscan first saw it (``Evidence.detected_at``), else (keys on stdin) the key's
creation. Usage is asked in 1-hour buckets for windows up to 31 days, else 1-day buckets;
costs come in days: figures are exact to the bucket (``ExposureReport.precision``).

Bounded: one query per usage endpoint and one costs query per project and window for all
keys of that project (``api_key_ids`` and ``project_ids`` filters), following ``next_page``; retries and
backoff from ``keyscan.http``. Read only: needs an admin key with ``api.management.read``
(projects and keys) and ``api.usage.read`` (usage and costs). A key without one gets one line
(``ExposureRun.scope_line``) and no figures, not a failed command. Results are cached by
fingerprint and API base (``keyscan.exposure`` never holds a raw key in anything it returns).

API (prints nothing)::

    run = measure_exposure(leaked_keys, evidence_by_fingerprint, ExposureOptions(...))
    run.reports  # one ExposureReport per key; .timeline: list[TimelineEvent]
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keyscan.revoke.errors import AdminApiError, scrub

if TYPE_CHECKING:
    from keyscan.revoke.model import LeakedKey, PlanItem

SCOPES_NEEDED = ("api.management.read", "api.usage.read")
SCOPE_LINE = (
    "the admin key lacks read access to {what} (exposure needs an admin key with scopes "
    "api.management.read and api.usage.read; a read-only admin key is enough): {why}"
)
HOUR, DAY = 3600, 86400
FINE_WINDOW = 31 * DAY  # up to this, usage is asked per hour
USAGE_PATH = "/organization/usage/completions"
USAGE_PREFIX = "/organization/usage/"


@dataclass(frozen=True)
class UsageEndpoint:
    """One ``/organization/usage/{name}`` endpoint that filters and groups by API key."""

    name: str
    requests_field: str  # the result field counted as this endpoint's "requests"
    requests_are: str  # what those requests are (said per endpoint in the JSON)
    in_total: bool  # added to the key's requests (tool calls happen inside model requests)
    group_by: tuple[str, ...]
    unit: str | None = None  # a further count of the result (images, characters, seconds...)

    @property
    def path(self) -> str:
        return USAGE_PREFIX + self.name


_MODEL_REQUESTS = "model requests"
USAGE_ENDPOINTS: tuple[UsageEndpoint, ...] = (
    UsageEndpoint("completions", "num_model_requests",
                  _MODEL_REQUESTS + " (chat, responses, completions, batch)", True,
                  ("api_key_id", "model")),
    UsageEndpoint("embeddings", "num_model_requests", _MODEL_REQUESTS, True,
                  ("api_key_id", "model")),
    UsageEndpoint("moderations", "num_model_requests", _MODEL_REQUESTS, True,
                  ("api_key_id", "model")),
    UsageEndpoint("images", "num_model_requests", _MODEL_REQUESTS, True,
                  ("api_key_id", "model"), "images"),
    UsageEndpoint("audio_speeches", "num_model_requests", _MODEL_REQUESTS, True,
                  ("api_key_id", "model"), "characters"),
    UsageEndpoint("audio_transcriptions", "num_model_requests", _MODEL_REQUESTS, True,
                  ("api_key_id", "model"), "seconds"),
    UsageEndpoint("file_search_calls", "num_requests",
                  "file search tool calls (made inside model requests; not added to requests)",
                  False, ("api_key_id",)),
    UsageEndpoint("web_search_calls", "num_requests",
                  "web search tool calls (made inside model requests; not added to requests)",
                  False, ("api_key_id", "model"), "num_model_requests"),
)
# The spec gives these no ``api_key_ids`` filter and no ``group_by=api_key_id``: their usage
# belongs to a project, never to one key, so exposure does not ask them.
UNATTRIBUTABLE_ENDPOINTS = ("vector_stores", "code_interpreter_sessions")
COSTS_PATH = "/organization/costs"
MAX_PAGES = 200
CACHE_TTL = 3600.0

# ExposureReport.status
MEASURED = "measured"
UNMAPPED = "unmapped"  # no single key id: reason says why (ambiguous, not found, ...)
NO_SCOPE = "no-scope"
ERROR = "error"
NO_USAGE_API = "no-usage-api"  # admin keys, Azure keys: nothing the usage API reports


def iso(ts: int | float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> int | None:
    """Unix seconds from an ISO 8601 text (git dates, audit timestamps) or a number."""
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        return int(text)
    if not isinstance(text, str) or not text.strip():
        return None
    value = text.strip().replace("Z", "+00:00")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp())


@dataclass
class Evidence:
    """What keyscan knows of a key's exposure, from a report or the audit store."""

    introduced_at: int | None = None  # author date of the commit that introduced it
    commit: str | None = None
    author: str | None = None
    pushed: bool | None = None  # reachable from a remote ref (None: unknown)
    pushed_refs: list[str] = field(default_factory=list)
    detected_at: int | None = None  # first seen by keyscan
    verified_live_at: int | None = None


@dataclass
class ModelUsage:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, other: ModelUsage) -> None:
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens

    def to_json(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


@dataclass
class EndpointUsage:
    """Use of one key through one usage endpoint, since it was exposed."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    units: int = 0  # UsageEndpoint.unit (images, characters, seconds, model requests)

    def to_json(self, endpoint: UsageEndpoint | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "requests": self.requests,
            "requests_are": endpoint.requests_are if endpoint else "",
            "in_total": endpoint.in_total if endpoint else True,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }
        if endpoint is not None and endpoint.unit:
            out[endpoint.unit] = self.units
        return out


_ENDPOINTS_BY_NAME = {e.name: e for e in USAGE_ENDPOINTS}


@dataclass
class TimelineEvent:
    kind: str  # introduced | pushed | detected | verified-live | revoked | last-use | ...
    at: int | None
    detail: str = ""
    alert: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": iso(self.at), "detail": self.detail,
                "alert": self.alert}


@dataclass
class ExposureReport:
    fingerprint: str
    redacted: str
    family: str
    where: str = ""
    status: str = UNMAPPED
    reason: str = ""
    key_id: str | None = None
    project_id: str | None = None
    created_at: int | None = None
    last_used_at: int | None = None
    exposed_at: int | None = None
    exposed_source: str = "unknown"  # commit | first-seen | key-created | unknown
    revoked_at: int | None = None
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    by_model: dict[str, ModelUsage] = field(default_factory=dict)
    by_endpoint: dict[str, EndpointUsage] = field(default_factory=dict)
    cost: float | None = None
    currency: str = "usd"
    first_use: int | None = None  # after exposure
    last_use: int | None = None  # after exposure
    requests_after_revocation: int = 0
    precision: str = ""  # "1h" | "1d": the bucket width of the figures
    cached: bool = False
    timeline: list[TimelineEvent] = field(default_factory=list)

    @property
    def used_after_revocation(self) -> bool:
        return self.requests_after_revocation > 0

    def summary(self) -> str:
        """One line: "used 3 times after it leaked, last 2026-11-20, cost $0.42"."""
        if self.status != MEASURED:
            return f"no exposure figures: {self.reason}" if self.reason else "no figures"
        tool_calls = sum(u.requests for name, u in self.by_endpoint.items()
                         if not getattr(_ENDPOINTS_BY_NAME.get(name), "in_total", True))
        if self.requests == 0 and tool_calls == 0:
            text = "not used since it leaked"
        elif self.requests == 0:
            last = iso(self.last_use)
            text = (f"used after it leaked ({tool_calls} tool calls), "
                    f"last {last[:10] if last else '?'}")
        else:
            times = "once" if self.requests == 1 else f"{self.requests} times"
            last = iso(self.last_use)
            text = f"used {times} after it leaked, last {last[:10] if last else '?'}"
        if self.cost is not None:
            text += f", cost ${self.cost:.2f}"
        if self.used_after_revocation:
            text += (
                f"; USED {self.requests_after_revocation} TIMES AFTER ITS REVOCATION: "
                "the revocation did not stop it"
            )
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "redacted": self.redacted,
            "family": self.family,
            "where": self.where,
            "status": self.status,
            "reason": self.reason,
            "key_id": self.key_id,
            "project_id": self.project_id,
            "created_at": iso(self.created_at),
            "last_used_at": iso(self.last_used_at),
            "exposed_at": iso(self.exposed_at),
            "exposed_source": self.exposed_source,
            "revoked_at": iso(self.revoked_at),
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "by_model": {m: u.to_json() for m, u in sorted(self.by_model.items())},
            "by_endpoint": {
                name: u.to_json(_ENDPOINTS_BY_NAME.get(name))
                for name, u in sorted(self.by_endpoint.items())
            },
            "cost": None if self.cost is None else {"value": self.cost,
                                                    "currency": self.currency},
            "first_use": iso(self.first_use),
            "last_use": iso(self.last_use),
            "used_after_revocation": self.used_after_revocation,
            "requests_after_revocation": self.requests_after_revocation,
            "precision": self.precision,
            "summary": self.summary(),
            "timeline": [e.to_json() for e in self.timeline],
        }


@dataclass
class ExposureOptions:
    admin_key: str = field(repr=False)
    base_url: str
    key_ids: frozenset[str] = frozenset()
    audit_path: Path | None = None  # keyscan's revocation audit log (revoked-at marks)
    check_first: bool = True  # verify raw keys first (the proof of which key it is)
    use_cache: bool = True
    cache_path: Path | None = None
    cache_ttl: float = CACHE_TTL
    retries: int = 3
    timeout: float = 20.0
    backoff_initial: float = 0.5
    transport: Any = None
    verify_transport: Any = None
    now: Callable[[], float] = field(default=time.time, repr=False)


@dataclass
class ExposureRun:
    reports: list[ExposureReport] = field(default_factory=list)
    scope_line: str | None = None  # the admin key lacks a read scope (one line)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def alert(self) -> bool:
        return any(r.used_after_revocation for r in self.reports)

    def to_json(self) -> dict[str, Any]:
        return {
            "scopes_needed": list(SCOPES_NEEDED),
            "scope_problem": self.scope_line,
            "usage_endpoints": [e.name for e in USAGE_ENDPOINTS],
            "not_attributable_to_a_key": list(UNATTRIBUTABLE_ENDPOINTS),
            "errors": list(self.errors),
            "used_after_revocation": self.alert,
            "keys": [r.to_json() for r in self.reports],
        }


# -- evidence from a keyscan JSON report --------------------------------------------------------

def evidence_from_entry(entry: Any, report_time: int | None) -> Evidence:
    """Evidence in one finding of a keyscan JSON report (commits, provenance, verification)."""
    ev = Evidence(detected_at=report_time)
    if not isinstance(entry, dict):
        return ev
    earliest: tuple[int, str, str] | None = None
    for loc in entry.get("locations") or []:
        commit = loc.get("commit") if isinstance(loc, dict) else None
        if not isinstance(commit, dict):
            continue
        at = parse_time(commit.get("date"))
        if at is not None and (earliest is None or at < earliest[0]):
            author = f"{commit.get('author_name', '')} <{commit.get('author_email', '')}>"
            earliest = (at, str(commit.get("sha") or ""), author.strip())
    if earliest is not None:
        ev.introduced_at, ev.commit, ev.author = earliest
    extra = entry.get("extra")
    git = extra.get("git") if isinstance(extra, dict) else None
    if isinstance(git, dict):
        refs = [r for r in git.get("refs") or [] if isinstance(r, str)]
        ev.pushed_refs = [r for r in refs if r.startswith("refs/remotes/")]
        ev.pushed = bool(ev.pushed_refs) if refs else None
        if ev.commit is None and isinstance(git.get("first_commit"), str):
            ev.commit = git["first_commit"]
    v = entry.get("verification")
    if isinstance(v, dict) and v.get("status") in ("live", "restricted", "no-quota"):
        ev.verified_live_at = parse_time(v.get("checked_at"))
    first_seen = entry.get("first_seen")  # the audit store's JSON
    if first_seen is not None:
        ev.detected_at = parse_time(first_seen) or ev.detected_at
    return ev


def evidence_from_report(path: Path) -> dict[str, Evidence]:
    """Evidence by fingerprint from a keyscan JSON/JSONL report; ``detected_at`` defaults to
    the time the report was written (its modification time)."""
    from keyscan.report.json_report import read_report

    try:
        written: int | None = int(path.stat().st_mtime)
    except OSError:
        written = None
    out: dict[str, Evidence] = {}
    for entry in read_report(path):
        fp = entry.get("fingerprint") if isinstance(entry, dict) else None
        if isinstance(fp, str):
            out[fp] = evidence_from_entry(entry, written)
    return out


def evidence_from_store(store: Any) -> dict[str, Evidence]:
    """Evidence by fingerprint from an audit store (``keyscan.audit.store.AuditStore``): the
    earliest introducing commit of each key, the refs it is reachable from, when keyscan first
    saw it (the start of the audit that first found it) and its latest live verification."""
    from keyscan.audit.view import load

    out: dict[str, Evidence] = {}
    first_seen = {
        str(r["fingerprint"]): parse_time(r["started_at"])
        for r in store.rows("SELECT k.fingerprint, a.started_at FROM keys k "
                            "LEFT JOIN audits a ON a.id = k.first_audit_id")
    }
    for k in load(store).keys:
        ev = Evidence(detected_at=first_seen.get(k.fingerprint))
        first = k.first
        if first is not None:
            ev.introduced_at = parse_time(first.introduced_date)
            ev.commit = first.introduced_commit
            who = f"{first.introduced_author or ''} <{first.introduced_email or ''}>"
            ev.author = who.strip()
        refs = sorted({ref for r in k.repos for ref in r.refs})
        if refs:
            ev.pushed_refs = [r for r in refs if r.startswith("refs/remotes/")]
            ev.pushed = bool(ev.pushed_refs)
        v = k.verification
        if v is not None and v.is_live:
            ev.verified_live_at = parse_time(v.checked_at)
        out[k.fingerprint] = ev
    return out


# -- the cache ----------------------------------------------------------------------------------

def default_cache_path() -> Path:
    explicit = os.environ.get("KEYSCAN_CACHE_DIR")
    if explicit:
        return Path(explicit) / "exposure.json"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "keyscan" / "exposure.json"


class ExposureCache:
    """Figures by ``fingerprint|api_base|key_id|exposed_at`` (never a raw key), in a private
    JSON file (0600). A figure older than the TTL is asked again."""

    def __init__(self, path: Path, ttl: float, now: Callable[[], float]) -> None:
        self.path, self.ttl, self.now = path, ttl, now
        self.data: dict[str, Any] = {}
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                self.data = loaded
        except (OSError, ValueError):
            self.data = {}

    @staticmethod
    def key(fingerprint: str, base: str, key_id: str, exposed_at: int | None) -> str:
        return f"{fingerprint}|{base}|{key_id}|{exposed_at}"

    def get(self, key: str) -> dict[str, Any] | None:
        hit = self.data.get(key)
        if not isinstance(hit, dict) or self.now() - float(hit.get("at", 0)) > self.ttl:
            return None
        figures = hit.get("figures")
        if not isinstance(figures, dict) or "by_endpoint" not in figures:
            return None  # written before the sibling endpoints were asked: ask again
        return figures

    def put(self, key: str, figures: dict[str, Any]) -> None:
        self.data[key] = {"at": self.now(), "figures": figures}

    def save(self) -> None:
        from keyscan.privatefile import open_private

        self.path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        fd = open_private(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.data, fh)


def _figures(r: ExposureReport) -> dict[str, Any]:
    return {
        "requests": r.requests, "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "by_model": {m: u.to_json() for m, u in r.by_model.items()},
        "by_endpoint": {
            n: {"requests": u.requests, "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens, "units": u.units}
            for n, u in r.by_endpoint.items()
        },
        "cost": r.cost, "currency": r.currency, "first_use": r.first_use,
        "last_use": r.last_use, "requests_after_revocation": r.requests_after_revocation,
        "precision": r.precision,
    }


def _apply_figures(r: ExposureReport, f: Mapping[str, Any]) -> None:
    r.requests = int(f.get("requests") or 0)
    r.input_tokens = int(f.get("input_tokens") or 0)
    r.output_tokens = int(f.get("output_tokens") or 0)
    r.by_model = {
        str(m): ModelUsage(int(u.get("requests", 0)), int(u.get("input_tokens", 0)),
                           int(u.get("output_tokens", 0)))
        for m, u in (f.get("by_model") or {}).items() if isinstance(u, dict)
    }
    r.by_endpoint = {
        str(n): EndpointUsage(int(u.get("requests", 0)), int(u.get("input_tokens", 0)),
                              int(u.get("output_tokens", 0)), int(u.get("units", 0)))
        for n, u in (f.get("by_endpoint") or {}).items() if isinstance(u, dict)
    }
    cost = f.get("cost")
    r.cost = float(cost) if isinstance(cost, (int, float)) else None
    r.currency = str(f.get("currency") or "usd")
    r.first_use = f.get("first_use")
    r.last_use = f.get("last_use")
    r.requests_after_revocation = int(f.get("requests_after_revocation") or 0)
    r.precision = str(f.get("precision") or "")


# -- the Admin API reads ------------------------------------------------------------------------

def _pages(client: Any, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every bucket of a usage/costs answer, following ``next_page``."""
    buckets: list[dict[str, Any]] = []
    seen: set[str] = set()
    page: str | None = None
    for _ in range(MAX_PAGES):
        query = dict(params)
        if page:
            query["page"] = page
        body = client.call("GET", path, query).body
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise AdminApiError("protocol", f"GET {path}: not a usage page")
        buckets.extend(b for b in body["data"] if isinstance(b, dict))
        nxt = body.get("next_page")
        if not body.get("has_more") or not isinstance(nxt, str) or not nxt:
            return buckets
        if nxt in seen:
            raise AdminApiError("protocol", f"GET {path}: next_page loops ({nxt!r} seen before)")
        seen.add(nxt)
        page = nxt
    raise AdminApiError("protocol", f"GET {path}: more than {MAX_PAGES} pages; stopped")


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _add_bucket(endpoint: UsageEndpoint, bucket: Mapping[str, Any],
                by_id: Mapping[str | None, ExposureReport], start: int) -> None:
    """Add one usage bucket of one endpoint to the keys it names (use after exposure only)."""
    lo, hi = _int(bucket.get("start_time")), _int(bucket.get("end_time"))
    for res in bucket.get("results") or []:
        if not isinstance(res, dict):
            continue
        r = by_id.get(res.get("api_key_id"))
        n = _int(res.get(endpoint.requests_field))
        units = _int(res.get(endpoint.unit)) if endpoint.unit else 0
        if r is None or (n == 0 and units == 0):
            continue
        exposed = r.exposed_at or r.created_at or start
        if hi <= exposed:
            continue  # used only before it leaked
        tokens_in, tokens_out = _int(res.get("input_tokens")), _int(res.get("output_tokens"))
        e = r.by_endpoint.setdefault(endpoint.name, EndpointUsage())
        e.requests += n
        e.input_tokens += tokens_in
        e.output_tokens += tokens_out
        e.units += units
        if endpoint.in_total:
            u = ModelUsage(n, tokens_in, tokens_out)
            r.requests += u.requests
            r.input_tokens += u.input_tokens
            r.output_tokens += u.output_tokens
            r.by_model.setdefault(str(res.get("model") or "unknown"), ModelUsage()).add(u)
            if r.revoked_at is not None and lo >= r.revoked_at:
                r.requests_after_revocation += n
        first = max(lo, exposed)
        r.first_use = first if r.first_use is None else min(r.first_use, first)
        r.last_use = hi if r.last_use is None else max(r.last_use, hi)


def _measure_project(
    client: Any, project_id: str, reports: list[ExposureReport], now: int
) -> None:
    """One query per usage endpoint (``USAGE_ENDPOINTS``) and one costs query for every
    mapped key of one project."""
    start = min(r.exposed_at or r.created_at or now for r in reports)
    width = "1h" if now - start <= FINE_WINDOW else "1d"
    ids = sorted({r.key_id for r in reports if r.key_id})
    base = {"start_time": start, "end_time": now + 1, "project_ids": [project_id],
            "api_key_ids": ids}
    usage = {
        endpoint.name: _pages(client, endpoint.path, {
            **base, "bucket_width": width, "group_by": list(endpoint.group_by),
            "limit": 168 if width == "1h" else 31,
        })
        for endpoint in USAGE_ENDPOINTS
    }
    costs = _pages(client, COSTS_PATH, {
        **base, "bucket_width": "1d", "group_by": ["api_key_id"], "limit": 180,
    })
    by_id = {r.key_id: r for r in reports}
    for r in reports:
        r.precision = width
        r.cost = 0.0
    for endpoint in USAGE_ENDPOINTS:
        for bucket in usage[endpoint.name]:
            _add_bucket(endpoint, bucket, by_id, start)
    for bucket in costs:
        hi = _int(bucket.get("end_time"))
        for res in bucket.get("results") or []:
            if not isinstance(res, dict):
                continue
            found = by_id.get(res.get("api_key_id"))
            amount = res.get("amount")
            if found is None or not isinstance(amount, dict):
                continue
            r = found
            exposed = r.exposed_at or r.created_at or start
            value = amount.get("value")
            if hi <= exposed or not isinstance(value, (int, float)):
                continue
            r.cost = round((r.cost or 0.0) + float(value), 6)
            r.currency = str(amount.get("currency") or "usd")
    for r in reports:
        # The key object's last_used_at is exact; the buckets are not.
        if r.last_use is not None and r.last_used_at is not None:
            r.last_use = min(r.last_use, max(r.last_used_at, r.first_use or 0))


# -- mapping and the run ------------------------------------------------------------------------

def _revoked_at(history: list[dict[str, Any]], fingerprint: str) -> tuple[int | None, str | None,
                                                                          str | None]:
    """When keyscan's audit log records this key deleted, and the key id and project."""
    for rec in history:
        if (
            rec.get("fingerprint") == fingerprint
            and str(rec.get("action", "")).startswith("delete-")
            and rec.get("result") in ("deleted", "already-revoked", "not-found")
        ):
            return parse_time(rec.get("timestamp")), rec.get("key_id"), rec.get("project")
    return None, None, None


def _report_for(item: PlanItem, ev: Evidence, history: list[dict[str, Any]]) -> ExposureReport:
    from keyscan.revoke.model import CHOSEN, NO_ACTION, PREVIOUSLY, UNIQUE

    k = item.leaked
    r = ExposureReport(fingerprint=k.fingerprint, redacted=k.redacted, family=k.family,
                       where=k.where)
    r.revoked_at, old_id, old_project = _revoked_at(history, k.fingerprint)
    if item.target is not None and item.action != NO_ACTION and item.reason in (UNIQUE, CHOSEN):
        t = item.target
        r.key_id, r.project_id = t.id, t.project_id
        r.created_at, r.last_used_at = t.created_at, t.last_used_at
        r.status = MEASURED if t.kind == "project-key" else NO_USAGE_API
        if t.kind != "project-key":
            r.reason = "an admin key makes no model requests: the usage API has nothing on it"
    elif item.reason == PREVIOUSLY and old_id and old_project:
        # The audit log proves which key this was: its usage outlives its deletion.
        r.key_id, r.project_id, r.status = old_id, old_project, MEASURED
    else:
        r.reason = item.message or item.reason
    if ev.introduced_at is not None:
        r.exposed_at, r.exposed_source = ev.introduced_at, "commit"
    elif ev.detected_at is not None:
        r.exposed_at, r.exposed_source = ev.detected_at, "first-seen"
    elif r.created_at is not None:
        r.exposed_at, r.exposed_source = r.created_at, "key-created"
    return r


def build_timeline(r: ExposureReport, ev: Evidence) -> list[TimelineEvent]:
    """The incident timeline of one key, in time order (events without a time last)."""
    events: list[TimelineEvent] = []
    if ev.introduced_at is not None or ev.commit:
        short = (ev.commit or "")[:12]
        events.append(TimelineEvent("introduced", ev.introduced_at,
                                    f"commit {short} by {ev.author or '?'}"))
    if ev.pushed:
        events.append(TimelineEvent("pushed", None,
                                    "reachable from " + ", ".join(ev.pushed_refs[:3])))
    if ev.detected_at is not None:
        events.append(TimelineEvent("detected", ev.detected_at, "first seen by keyscan"))
    if ev.verified_live_at is not None:
        events.append(TimelineEvent("verified-live", ev.verified_live_at, "answered live"))
    if r.first_use is not None:
        events.append(TimelineEvent("first-use", r.first_use, "first use after the leak"))
    if r.revoked_at is not None:
        events.append(TimelineEvent("revoked", r.revoked_at,
                                    f"deleted {r.key_id or ''} (audit log)".replace("  ", " ")))
    last = r.last_use if r.last_use is not None else r.last_used_at
    if last is not None:
        events.append(TimelineEvent("last-use", last, "last use"))
    if r.used_after_revocation:
        events.append(TimelineEvent(
            "used-after-revocation", r.last_use,
            f"USED {r.requests_after_revocation} TIMES AFTER ITS REVOCATION", alert=True))
    events.sort(key=lambda e: (e.at is None, e.at or 0))
    return events


def measure_exposure(
    keys: list[LeakedKey],
    evidence: Mapping[str, Evidence],
    options: ExposureOptions,
) -> ExposureRun:
    """Exposure figures and a timeline for each leaked key (only GETs). Prints nothing."""
    from keyscan.revoke.audit import AuditError, read_records
    from keyscan.revoke.client import AdminClient
    from keyscan.revoke.model import dedupe
    from keyscan.revoke.plan import Planner, PlanOptions

    run = ExposureRun()
    keys = dedupe(keys)
    if not keys:
        return run
    history: list[dict[str, Any]] = []
    if options.audit_path is not None:
        try:
            history = read_records(options.audit_path)
        except AuditError as exc:
            run.warnings.append(f"{exc}: revocations are not shown")
    if options.check_first:
        _check(keys, options, run)
    try:
        client = AdminClient.connect(options.base_url, options.admin_key, options.transport,
                                     options.retries, options.timeout, options.backoff_initial)
    except AdminApiError as exc:
        run.errors.append(f"--api-base: {exc.message}")
        return run
    with client:
        planner = Planner(client, PlanOptions(key_ids=options.key_ids,
                                              admin_key=options.admin_key, history=history))
        try:
            plan = planner.plan(keys)
        except AdminApiError as exc:
            line = _failure_line(exc, "projects and keys")
            for k in keys:
                r = ExposureReport(k.fingerprint, k.redacted, k.family, k.where,
                                   status=NO_SCOPE if exc.kind == "scope" else ERROR,
                                   reason=line)
                run.reports.append(r)
            if exc.kind == "scope":
                run.scope_line = line
            else:
                run.errors.append(line)
            return run
        run.reports = measure_plan(client, plan, evidence, history, options, run)
    return run


def measure_plan(
    client: Any,
    plan: list[PlanItem],
    evidence: Mapping[str, Evidence],
    history: list[dict[str, Any]],
    options: ExposureOptions,
    run: ExposureRun,
) -> list[ExposureReport]:
    """Exposure figures and timelines for the items of a revocation plan already made (the
    same safe matching), through an open Admin API client (only GETs)."""
    reports = [_report_for(item, evidence.get(item.leaked.fingerprint, Evidence()), history)
               for item in plan]
    _measure_all(client, reports, options, run)
    for r in reports:
        r.timeline = build_timeline(r, evidence.get(r.fingerprint, Evidence()))
    return reports


def plan_hook(
    evidence: Mapping[str, Evidence], options: ExposureOptions
) -> Callable[[Any, list[PlanItem], list[dict[str, Any]]], dict[str, str]]:
    """The ``RevokeOptions.exposure`` hook: one line per leaked key ("used 3 times after it
    leaked, last 2026-11-20, cost $0.42", or why there are no figures), by fingerprint. Never
    raises: a failure is the line of every key it concerns."""

    def hook(client: Any, plan: list[PlanItem], history: list[dict[str, Any]]
             ) -> dict[str, str]:
        run = ExposureRun()
        try:
            reports = measure_plan(client, plan, evidence, history, options, run)
        except AdminApiError as exc:
            line = "no exposure figures: " + _failure_line(exc, "usage and costs")
            return {item.leaked.fingerprint: line for item in plan}
        return {r.fingerprint: scrub(r.summary()) for r in reports}

    return hook


def _failure_line(exc: AdminApiError, what: str) -> str:
    if exc.kind == "scope":
        return SCOPE_LINE.format(what=what, why=exc.describe())
    return scrub(f"cannot read {what}: {exc.describe()}")


def _measure_all(client: Any, reports: list[ExposureReport], options: ExposureOptions,
                 run: ExposureRun) -> None:
    now = int(options.now())
    cache = None
    if options.use_cache:
        cache = ExposureCache(options.cache_path or default_cache_path(), options.cache_ttl,
                              options.now)
    base = client.api.base_url
    todo: dict[str, list[ExposureReport]] = {}
    for r in reports:
        if r.status != MEASURED or not r.project_id or not r.key_id:
            continue
        hit = cache.get(ExposureCache.key(r.fingerprint, base, r.key_id, r.exposed_at)) \
            if cache else None
        if hit is not None:
            _apply_figures(r, hit)
            r.cached = True
            continue
        todo.setdefault(r.project_id, []).append(r)
    for project_id, group in sorted(todo.items()):
        try:
            _measure_project(client, project_id, group, now)
        except AdminApiError as exc:
            line = _failure_line(exc, "usage and costs")
            for r in group:
                r.status = NO_SCOPE if exc.kind == "scope" else ERROR
                r.reason = line
            if exc.kind == "scope":
                run.scope_line = line
            elif line not in run.errors:
                run.errors.append(line)
            continue
        if cache is not None:
            for r in group:
                assert r.key_id is not None
                cache.put(ExposureCache.key(r.fingerprint, base, r.key_id, r.exposed_at),
                          _figures(r))
    if cache is not None and todo:
        try:
            cache.save()
        except OSError as exc:
            run.warnings.append(f"cannot write the exposure cache: {exc.strerror or exc}")


def _check(keys: list[LeakedKey], options: ExposureOptions, run: ExposureRun) -> None:
    todo = [k for k in keys if k.secret is not None and k.verification is None]
    if not todo:
        return
    from keyscan.verify import VerifyOptions, verify_keys

    vopts = VerifyOptions(api_base=options.base_url, use_cache=False,
                          transport=options.verify_transport, retries=options.retries,
                          timeout=options.timeout, backoff_initial=options.backoff_initial)
    try:
        verdicts = verify_keys([(k.secret or "", k.family) for k in todo], vopts)
    except ValueError as exc:
        run.errors.append(f"--api-base: {exc}")
        return
    for k in todo:
        k.verification = verdicts.get(k.fingerprint)


# -- rendering (strings; the command line prints them) ------------------------------------------

def _day(ts: int | None) -> str:
    text = iso(ts)
    return text.replace("T", " ").replace("Z", " UTC") if text else "?"


def render_text(run: ExposureRun) -> str:
    from keyscan.terminal import safe

    lines = ["Exposure (needs an admin key with scopes " + ", ".join(SCOPES_NEEDED) + ")"]
    for n, r in enumerate(run.reports, 1):
        lines.append("")
        where = f", found at {r.where}" if r.where else ""
        lines.append(safe(f"{n}. {r.redacted}  {r.family}{where}"))
        if r.key_id:
            lines.append(safe(f"   key:      {r.key_id} in project {r.project_id}"))
        lines.append(safe(f"   exposure: {r.summary()}"))
        if r.status == MEASURED:
            lines.append(f"   since:    {_day(r.exposed_at)} ({r.exposed_source}); "
                         f"figures per {r.precision or '?'} bucket")
            lines.append(f"   tokens:   {r.input_tokens} in, {r.output_tokens} out")
            for model, u in sorted(r.by_model.items()):
                lines.append(safe(f"     {model}: {u.requests} requests, {u.input_tokens} in, "
                                  f"{u.output_tokens} out"))
            for name, eu in sorted(r.by_endpoint.items()):
                ep = _ENDPOINTS_BY_NAME.get(name)
                what = "tool calls" if ep is not None and not ep.in_total else "requests"
                extra = f", {eu.units} {ep.unit}" if ep is not None and ep.unit else ""
                lines.append(safe(f"   via {name}: {eu.requests} {what}{extra}"))
        for e in r.timeline:
            mark = "!! " if e.alert else ""
            lines.append(safe(f"   {mark}{_day(e.at) if e.at else '(time unknown)':>20}  "
                              f"{e.kind}: {e.detail}"))
    if run.alert:
        lines += ["", "ALERT: a key was used after keyscan revoked it: the revocation did not "
                  "stop it (a different key was deleted, or the key lives on elsewhere)"]
    return "\n".join(lines) + "\n"


def render_markdown(run: ExposureRun) -> str:
    """A block per key, ready to paste into an incident ticket."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    out: list[str] = []
    for r in run.reports:
        out.append(f"### Leaked key `{r.redacted}`")
        out.append("")
        if r.used_after_revocation:
            out.append(f"> **ALERT: used {r.requests_after_revocation} times after its "
                       "revocation.**")
            out.append("")
        out.append(f"- Key id: {r.key_id or 'not mapped'}"
                   + (f" (project {r.project_id})" if r.project_id else ""))
        out.append(f"- Exposure: {cell(r.summary())}")
        if r.status == MEASURED:
            out.append(f"- Exposed since: {_day(r.exposed_at)} ({r.exposed_source})")
            out.append(f"- Requests: {r.requests}; tokens: {r.input_tokens} in, "
                       f"{r.output_tokens} out")
            if r.by_endpoint:
                out.append("- By endpoint: " + ", ".join(
                    f"{name} {eu.requests}" for name, eu in sorted(r.by_endpoint.items())))
        out.append("")
        out.append("| when | event | detail |")
        out.append("| --- | --- | --- |")
        for e in r.timeline:
            detail = ("**" + cell(e.detail) + "**") if e.alert else cell(e.detail)
            out.append(f"| {_day(e.at) if e.at else '?'} | {e.kind} | {detail} |")
        out.append("")
    if run.scope_line:
        out.append(f"Note: {cell(run.scope_line)}")
    return "\n".join(out) + "\n"
