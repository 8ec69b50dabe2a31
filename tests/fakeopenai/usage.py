"""Usage and costs routes of the fake Admin API: ``/organization/usage/{kind}`` and
``/organization/costs``. Registered into app.ROUTES when the package is imported.

They aggregate what tests planted with ``FakeState.plant_usage`` (a key used after its leak, a
key never used, a key used only before, usage after revocation...). As the spec says:

- ``start_time`` (required, Unix seconds, inclusive), ``end_time`` (exclusive, default now),
  ``bucket_width`` ``1m``/``1h``/``1d`` (costs: ``1d`` only), ``limit`` buckets per page
  (defaults 60/24/7, maxima 1440/168/31; costs: default 7, max 180), ``page`` (the previous
  answer's ``next_page``); filters ``project_ids``, ``api_key_ids``, ``models`` (costs: the
  first two), ``group_by`` (usage: ``project_id``, ``user_id``, ``api_key_id``, ``model``,
  ``batch``, ``service_tier``; costs: ``project_id``, ``line_item``, ``api_key_id``). Array
  parameters are read as repeated names, with or without ``[]``.
- Buckets start at ``start_time`` and step by the width (the real API's alignment is not
  documented); every bucket of the window is listed, empty ones with ``results: []``.
- Each endpoint answers its own result object (``Usage*Result`` in the spec) from the events
  planted for it (``UsageEvent.endpoint``; ``units`` is its extra count: images, characters,
  seconds, web search calls, sessions, bytes) and accepts only its own ``group_by`` fields;
  ``vector_stores`` and ``code_interpreter_sessions`` refuse key, user and model filters.
- Needs a live admin key with scope ``api.usage.read``: a key planted with
  ``lacks_scopes=("api.usage.read",)`` gets the 401 "Missing scopes" answer.
"""

from __future__ import annotations

import re
from typing import Any

from tests.fakeopenai.app import (
    Request,
    Response,
    error_response,
    json_response,
    now,
    register,
    require_admin,
    success_headers,
)
from tests.fakeopenai.state import FakeState, KeyRecord, UsageEvent

USAGE_SCOPE = "api.usage.read"
WIDTHS = {"1m": 60, "1h": 3600, "1d": 86400}
LIMITS = {"1m": (60, 1440), "1h": (24, 168), "1d": (7, 31)}
COST_LIMITS = (7, 180)
USAGE_GROUPS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier")
_BY_KEY = ("project_id", "user_id", "api_key_id", "model")
# Per endpoint, as the spec says: the group_by fields it accepts, its result object, and
# whether it takes the api_key_ids / user_ids / models filters.
KIND_GROUPS: dict[str, tuple[str, ...]] = {
    "completions": USAGE_GROUPS,
    "embeddings": _BY_KEY,
    "moderations": _BY_KEY,
    "images": (*_BY_KEY, "size", "source"),
    "audio_speeches": _BY_KEY,
    "audio_transcriptions": _BY_KEY,
    "file_search_calls": ("project_id", "user_id", "api_key_id", "vector_store_id"),
    "web_search_calls": (*_BY_KEY, "context_level"),
    "vector_stores": ("project_id",),
    "code_interpreter_sessions": ("project_id",),
}
RESULT_OBJECTS = {
    "file_search_calls": "organization.usage.file_searches.result",
    "web_search_calls": "organization.usage.web_searches.result",
}
NO_KEY_FILTER = ("vector_stores", "code_interpreter_sessions")
COST_GROUPS = ("project_id", "line_item", "api_key_id")
USAGE_KINDS = (
    "completions", "embeddings", "images", "audio_speeches", "audio_transcriptions",
    "moderations", "vector_stores", "code_interpreter_sessions", "file_search_calls",
    "web_search_calls",
)


def _array(req: Request, name: str) -> list[str]:
    return [*req.query.get(name, []), *req.query.get(name + "[]", [])]


def _bad(message: str, param: str) -> Response:
    return error_response(400, message, param=param)


def _auth(state: FakeState, req: Request) -> KeyRecord | Response:
    rec = require_admin(state, req, USAGE_SCOPE)
    if isinstance(rec, Response):
        return rec
    if USAGE_SCOPE in rec.lacks_scopes:
        return error_response(
            401,
            "You have insufficient permissions for this operation. Missing scopes: "
            f"{USAGE_SCOPE}. Check that you have the correct role in your organization.",
        )
    return rec


class _Window:
    def __init__(self, start: int, end: int, width: int, limit: int, first: int) -> None:
        self.start, self.end, self.width, self.limit, self.first = start, end, width, limit, first

    def buckets(self) -> tuple[list[tuple[int, int]], int | None]:
        """This page's buckets and the next page's first bucket index (None: last page)."""
        all_starts = list(range(self.start, self.end, self.width))
        chosen = all_starts[self.first:self.first + self.limit]
        nxt = self.first + self.limit if self.first + self.limit < len(all_starts) else None
        return [(s, min(s + self.width, self.end)) for s in chosen], nxt


def _window(req: Request, widths: tuple[str, ...], limits: tuple[int, int] | None
            ) -> _Window | Response:
    try:
        start = int(req.arg("start_time") or "")
    except ValueError:
        return _bad("start_time is required (Unix seconds)", "start_time")
    try:
        end = int(req.arg("end_time") or now())
    except ValueError:
        return _bad("end_time must be an integer", "end_time")
    width_name = req.arg("bucket_width") or "1d"
    if width_name not in widths:
        return _bad(f"bucket_width must be one of {', '.join(widths)}", "bucket_width")
    default, most = limits or LIMITS[width_name]
    try:
        limit = int(req.arg("limit") or default)
    except ValueError:
        return _bad("limit must be an integer", "limit")
    if not 1 <= limit <= most:
        return _bad(f"limit must be between 1 and {most}", "limit")
    page_arg = req.arg("page")
    first = 0
    if page_arg:
        m = re.fullmatch(r"page_(\d+)", page_arg)
        if m is None:
            return _bad("invalid page cursor", "page")
        first = int(m.group(1))
    return _Window(start, max(start, end), WIDTHS[width_name], limit, first)


def _groups(req: Request, allowed: tuple[str, ...]) -> list[str] | Response:
    groups = _array(req, "group_by")
    for g in groups:
        if g not in allowed:
            return _bad(f"group_by: unsupported field {g!r}", "group_by")
    return groups


def _events(state: FakeState, req: Request, lo: int, hi: int, models: bool) -> list[UsageEvent]:
    keys, projects = _array(req, "api_key_ids"), _array(req, "project_ids")
    wanted_models = _array(req, "models") if models else []
    return [
        e for e in state.usage
        if lo <= e.at < hi
        and (not keys or e.key_id in keys)
        and (not projects or e.project_id in projects)
        and (not wanted_models or e.model in wanted_models)
    ]


def _page(state: FakeState, auth: KeyRecord, data: list[dict[str, Any]], nxt: int | None
          ) -> Response:
    body = {
        "object": "page",
        "data": data,
        "has_more": nxt is not None,
        "next_page": f"page_{nxt}" if nxt is not None else None,
    }
    return json_response(body, "UsageResponse", headers=success_headers(state, auth))


def _result(kind: str, group: dict[str, Any]) -> dict[str, Any]:
    """An empty result object of ``kind`` (the spec's Usage*Result), grouped as ``group``."""
    obj = RESULT_OBJECTS.get(kind, f"organization.usage.{kind}.result")
    r: dict[str, Any] = {"object": obj, "project_id": group.get("project_id")}
    if kind in NO_KEY_FILTER:
        r["usage_bytes" if kind == "vector_stores" else "num_sessions"] = 0
        return r
    r.update({"user_id": None, "api_key_id": group.get("api_key_id")})
    if kind == "file_search_calls":
        r.update({"num_requests": 0, "vector_store_id": None})
        return r
    r.update({"model": group.get("model"), "num_model_requests": 0})
    if kind == "completions":
        r.update({"input_tokens": 0, "output_tokens": 0, "input_cached_tokens": 0,
                  "batch": None})
    elif kind in ("embeddings", "moderations"):
        r["input_tokens"] = 0
    elif kind == "images":
        r.update({"images": 0, "source": None, "size": None})
    elif kind == "audio_speeches":
        r["characters"] = 0
    elif kind == "audio_transcriptions":
        r["seconds"] = 0
    elif kind == "web_search_calls":
        r.update({"num_requests": 0, "context_level": None})
    return r


def _add(kind: str, r: dict[str, Any], e: UsageEvent) -> None:
    if kind == "vector_stores":
        r["usage_bytes"] += e.units
    elif kind == "code_interpreter_sessions":
        r["num_sessions"] += e.units
    elif kind == "file_search_calls":
        r["num_requests"] += e.requests
    else:
        r["num_model_requests"] += e.requests
        if "input_tokens" in r:
            r["input_tokens"] += e.input_tokens
        if "output_tokens" in r:
            r["output_tokens"] += e.output_tokens
        for unit in ("images", "characters", "seconds"):
            if unit in r:
                r[unit] += e.units
        if kind == "web_search_calls":
            r["num_requests"] += e.units


def usage(state: FakeState, req: Request, m: re.Match[str]) -> Response:
    kind = m.group("kind")
    if kind not in USAGE_KINDS:
        return error_response(404, f"Invalid URL ({req.method} {req.path})")
    auth = _auth(state, req)
    if isinstance(auth, Response):
        return auth
    window = _window(req, tuple(WIDTHS), None)
    if isinstance(window, Response):
        return window
    groups = _groups(req, KIND_GROUPS[kind])
    if isinstance(groups, Response):
        return groups
    if kind in NO_KEY_FILTER:
        for name in ("api_key_ids", "user_ids", "models"):
            if _array(req, name):
                return _bad(f"{kind} usage takes no {name} filter", name)
    data: list[dict[str, Any]] = []
    with state.lock:
        buckets, nxt = window.buckets()
        for lo, hi in buckets:
            sums: dict[tuple[Any, ...], dict[str, Any]] = {}
            for e in _events(state, req, lo, hi, models=kind != "file_search_calls"):
                if e.endpoint != kind:
                    continue
                group = {
                    "project_id": e.project_id if "project_id" in groups else None,
                    "api_key_id": e.key_id if "api_key_id" in groups else None,
                    "model": e.model if "model" in groups else None,
                }
                r = sums.get(tuple(group.values()))
                if r is None:
                    r = sums[tuple(group.values())] = _result(kind, group)
                _add(kind, r, e)
            data.append({"object": "bucket", "start_time": lo, "end_time": hi,
                         "results": list(sums.values())})
    return _page(state, auth, data, nxt)


def costs(state: FakeState, req: Request, m: re.Match[str]) -> Response:
    auth = _auth(state, req)
    if isinstance(auth, Response):
        return auth
    window = _window(req, ("1d",), COST_LIMITS)
    if isinstance(window, Response):
        return window
    groups = _groups(req, COST_GROUPS)
    if isinstance(groups, Response):
        return groups
    data: list[dict[str, Any]] = []
    with state.lock:
        buckets, nxt = window.buckets()
        for lo, hi in buckets:
            sums: dict[tuple[Any, ...], dict[str, Any]] = {}
            for e in _events(state, req, lo, hi, models=False):
                group = (
                    e.project_id if "project_id" in groups else None,
                    e.key_id if "api_key_id" in groups else None,
                    f"{e.model}, input" if "line_item" in groups else None,
                )
                r = sums.setdefault(group, {
                    "object": "organization.costs.result",
                    "amount": {"value": 0.0, "currency": "usd"},
                    "line_item": group[2], "project_id": group[0], "api_key_id": group[1],
                })
                r["amount"]["value"] = round(r["amount"]["value"] + e.cost, 6)
            data.append({"object": "bucket", "start_time": lo, "end_time": hi,
                         "results": list(sums.values())})
    return _page(state, auth, data, nxt)


register("GET", r"/organization/usage/(?P<kind>[a-z_]+)", usage)
register("GET", r"/organization/costs", costs)
