"""The fake Admin API's usage and costs routes (tests/fakeopenai/usage.py): planted usage,
grouping, filters, paging and scopes; every body validates against the spec (fixture)."""

from __future__ import annotations

import time
from typing import Any

from keyscan.keygen import key
from tests.fakeopenai import FakeState, Request, Response, handle


def call(state: FakeState, path: str, bearer: str) -> Response:
    return handle(state, Request.build("GET", "/v1" + path, {"Authorization": f"Bearer {bearer}"}))


def test_usage_groups_by_key_and_model_and_filters(fake_state: FakeState) -> None:
    st = fake_state
    admin = key("admin")
    st.add_admin_key(admin)
    p = st.add_project("P")
    a = st.add_project_key(key("project"), p.id)
    b = st.add_project_key(key("project"), p.id)
    t0 = int(time.time()) - 10 * 86400
    st.plant_usage(a, t0 + 100, requests=2, input_tokens=10, output_tokens=5, cost=0.5)
    st.plant_usage(a, t0 + 200, model="gpt-4.1", requests=1, cost=0.25)
    st.plant_usage(b, t0 + 300, requests=7)
    q = (f"/organization/usage/completions?start_time={t0}&bucket_width=1d"
         f"&group_by=api_key_id&group_by=model&api_key_ids={a.id}")
    resp = call(st, q, admin)
    assert resp.status == 200
    results = [r for bucket in resp.body["data"] for r in bucket["results"]]
    assert {(r["api_key_id"], r["model"], r["num_model_requests"]) for r in results} == {
        (a.id, "gpt-4o-mini", 2), (a.id, "gpt-4.1", 1)}
    costs = call(st, f"/organization/costs?start_time={t0}&group_by[]=api_key_id", admin)
    assert costs.status == 200
    amounts = {r["api_key_id"]: r["amount"]["value"]
               for bucket in costs.body["data"] for r in bucket["results"]}
    assert amounts[a.id] == 0.75 and b.id in amounts
    assert a.last_used_at == t0 + 200


def test_usage_pages_with_next_page(fake_state: FakeState) -> None:
    st = fake_state
    admin = key("admin")
    st.add_admin_key(admin)
    t0 = int(time.time()) - 5 * 86400
    first = call(st, f"/organization/usage/completions?start_time={t0}&bucket_width=1d&limit=2",
                 admin).body
    assert first["has_more"] and first["next_page"] and len(first["data"]) == 2
    buckets: list[Any] = list(first["data"])
    page = first["next_page"]
    while page:
        body = call(st, f"/organization/usage/completions?start_time={t0}&bucket_width=1d"
                    f"&limit=2&page={page}", admin).body
        buckets += body["data"]
        page = body["next_page"]
    assert len(buckets) == 5 or len(buckets) == 6


def test_usage_needs_scope_and_start_time(fake_state: FakeState) -> None:
    st = fake_state
    admin = key("admin")
    st.add_admin_key(admin, lacks_scopes=("api.usage.read",))
    resp = call(st, "/organization/usage/completions?start_time=0", admin)
    assert resp.status == 401 and "api.usage.read" in resp.body["error"]["message"]
    ok = key("admin")
    st.add_admin_key(ok)
    assert call(st, "/organization/usage/completions", ok).status == 400
    assert call(st, "/organization/costs?start_time=0&bucket_width=1h", ok).status == 400


def test_sibling_endpoints_answer_their_own_results(fake_state: FakeState) -> None:
    st = fake_state
    admin = key("admin")
    st.add_admin_key(admin)
    p = st.add_project("P")
    a = st.add_project_key(key("project"), p.id)
    t0 = int(time.time()) - 3 * 86400
    st.plant_usage(a, t0 + 10, endpoint="embeddings", requests=3, input_tokens=40)
    st.plant_usage(a, t0 + 20, endpoint="images", requests=2, units=4)
    st.plant_usage(a, t0 + 30, endpoint="audio_speeches", requests=1, units=120)
    st.plant_usage(a, t0 + 40, endpoint="file_search_calls", requests=6)
    st.plant_usage(a, t0 + 50, endpoint="web_search_calls", requests=2, units=5)
    st.plant_usage(a, t0 + 60, endpoint="vector_stores", units=2048)
    expect = {
        "embeddings": ("organization.usage.embeddings.result", "num_model_requests", 3),
        "images": ("organization.usage.images.result", "images", 4),
        "audio_speeches": ("organization.usage.audio_speeches.result", "characters", 120),
        "file_search_calls": ("organization.usage.file_searches.result", "num_requests", 6),
        "web_search_calls": ("organization.usage.web_searches.result", "num_requests", 5),
        "moderations": ("", "", 0),
    }
    for kind, (obj, fld, value) in expect.items():
        resp = call(st, f"/organization/usage/{kind}?start_time={t0}&bucket_width=1d"
                    f"&group_by=api_key_id&api_key_ids={a.id}", admin)
        assert resp.status == 200, resp.body
        results = [r for b in resp.body["data"] for r in b["results"]]
        if not value:
            assert results == []
            continue
        (r,) = results
        assert r["object"] == obj and r[fld] == value and r["api_key_id"] == a.id
    # No key attribution where the spec has none: vector stores belong to a project.
    bad = call(st, f"/organization/usage/vector_stores?start_time={t0}&api_key_ids={a.id}",
               admin)
    assert bad.status == 400
    assert call(st, f"/organization/usage/code_interpreter_sessions?start_time={t0}"
                "&group_by=api_key_id", admin).status == 400
    vs = call(st, f"/organization/usage/vector_stores?start_time={t0}&group_by=project_id",
              admin)
    (r,) = [r for b in vs.body["data"] for r in b["results"]]
    assert r["usage_bytes"] == 2048 and r["project_id"] == p.id
