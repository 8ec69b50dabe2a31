"""Exposure evidence (keyscan.exposure, keyscan exposure, the revoke plan line) against the
fake OpenAI API over real HTTP: a key used after its leak, never used, used only before,
used after its revocation; ambiguity; missing scopes; caching; no raw key anywhere."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from keyscan.exposure import (
    MEASURED,
    NO_SCOPE,
    UNMAPPED,
    Evidence,
    ExposureOptions,
    measure_exposure,
)
from keyscan.keygen import key
from keyscan.revoke import leaked_from_secret

DAY = 86400


def opts(server: Any, admin: str, tmp_path: Path, **kw: Any) -> ExposureOptions:
    kw.setdefault("cache_path", tmp_path / "exposure.json")
    kw.setdefault("audit_path", tmp_path / "audit.jsonl")
    return ExposureOptions(admin_key=admin, base_url=server.base_url, retries=0,
                           backoff_initial=0.0, **kw)


@pytest.fixture
def org(fake_state: Any) -> dict[str, Any]:
    st = fake_state
    admin = key("admin")
    st.add_admin_key(admin)
    p = st.add_project("Prod")
    now = int(time.time())
    leak = now - 5 * DAY
    keys = {name: key("project") for name in ("after", "never", "before")}
    recs = {name: st.add_project_key(secret, p.id, created_at=now - 20 * DAY)
            for name, secret in keys.items()}
    st.plant_usage(recs["before"], leak - 3 * DAY, requests=4, cost=1.0)
    st.plant_usage(recs["after"], leak - 3 * DAY, requests=9, cost=2.0)
    st.plant_usage(recs["after"], leak + DAY, requests=2, input_tokens=30, output_tokens=7,
                   cost=0.25)
    st.plant_usage(recs["after"], leak + 2 * DAY, model="gpt-4.1", requests=1, cost=0.17)
    return {"state": st, "admin": admin, "project": p, "keys": keys, "recs": recs,
            "leak": leak}


def test_usage_since_exposure_by_key(org: dict[str, Any], fake_server: Any,
                                     tmp_path: Path) -> None:
    keys, leak = org["keys"], org["leak"]
    leaked = [leaked_from_secret(s) for s in keys.values()]
    evidence = {k.fingerprint: Evidence(introduced_at=leak, commit="a" * 40,
                                        author="Dev <dev@example.com>") for k in leaked}
    run = measure_exposure(leaked, evidence, opts(fake_server, org["admin"], tmp_path))
    by = {r.key_id: r for r in run.reports}
    after = by[org["recs"]["after"].id]
    assert after.status == MEASURED and after.exposed_source == "commit"
    assert after.requests == 3 and after.input_tokens == 130 and after.output_tokens == 57
    assert set(after.by_model) == {"gpt-4o-mini", "gpt-4.1"}
    assert after.cost == pytest.approx(0.42)
    assert after.summary().startswith("used 3 times after it leaked, last ")
    assert after.summary().endswith("cost $0.42")
    assert after.first_use is not None and after.first_use >= leak
    assert after.last_use == org["recs"]["after"].last_used_at
    never = by[org["recs"]["never"].id]
    assert never.requests == 0 and never.summary() == "not used since it leaked, cost $0.00"
    before = by[org["recs"]["before"].id]
    assert before.requests == 0 and before.cost == 0.0
    kinds = [e.kind for e in after.timeline]
    assert kinds[0] == "introduced" and "last-use" in kinds and "first-use" in kinds
    # Bounded: one usage and one costs query for the three keys of the project.
    st = org["state"]
    assert len(st.requests("/organization/usage/completions")) == 1
    assert len(st.requests("/organization/costs")) == 1
    q = st.requests("/organization/usage/completions")[0].query
    assert sorted(q["api_key_ids"]) == sorted(r.id for r in org["recs"].values())
    text = json.dumps(run.to_json())
    for secret in [*keys.values(), org["admin"]]:
        assert secret not in text


def test_ambiguous_match_gets_no_figures_and_says_why(fake_state: Any, fake_server: Any,
                                                      tmp_path: Path) -> None:
    st = fake_state
    admin = key("admin")
    st.add_admin_key(admin)
    p = st.add_project("P")
    secret = key("project")
    twin = secret[:8] + key("project")[8:-4] + secret[-4:]
    st.add_project_key(secret, p.id)
    st.add_project_key(twin, p.id)
    st.send_project_header = False  # nothing ties the key to one project key either
    leaked = leaked_from_secret(secret)
    run = measure_exposure([leaked], {}, opts(fake_server, admin, tmp_path))
    (r,) = run.reports
    assert r.status == UNMAPPED and r.key_id is None and r.requests == 0
    assert "2 keys match" in r.reason
    assert r.summary().startswith("no exposure figures: 2 keys match")
    assert not st.requests("/organization/usage/completions")


def test_missing_usage_scope_is_one_line_not_a_failure(org: dict[str, Any], fake_server: Any,
                                                       tmp_path: Path) -> None:
    st = org["state"]
    reader = key("admin")
    st.add_admin_key(reader, lacks_scopes=("api.usage.read",))
    leaked = [leaked_from_secret(org["keys"]["after"])]
    run = measure_exposure(leaked, {}, opts(fake_server, reader, tmp_path))
    (r,) = run.reports
    assert r.status == NO_SCOPE and r.key_id == org["recs"]["after"].id
    assert run.scope_line and "api.usage.read" in run.scope_line
    assert "\n" not in run.scope_line and not run.errors


def test_use_after_revocation_is_flagged(org: dict[str, Any], fake_server: Any,
                                         tmp_path: Path) -> None:
    st, rec, secret = org["state"], org["recs"]["after"], org["keys"]["after"]
    revoked = org["leak"] + DAY + 3600  # after the use at leak+1d, before the one at leak+2d
    leaked = leaked_from_secret(secret)
    audit = tmp_path / "audit.jsonl"
    record = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(revoked)),
        "action": "delete-project-key", "result": "deleted", "project": org["project"].id,
        "key_id": rec.id, "redacted": leaked.redacted, "fingerprint": leaked.fingerprint,
    }
    audit.write_text(json.dumps(record) + "\n")
    st.delete_key(rec.id)  # the key answers invalid now; its usage stays on the books
    ev = {leaked.fingerprint: Evidence(introduced_at=org["leak"])}
    run = measure_exposure([leaked], ev, opts(fake_server, org["admin"], tmp_path))
    (r,) = run.reports
    assert r.status == MEASURED and r.key_id == rec.id and r.revoked_at == revoked
    assert r.requests == 3 and r.requests_after_revocation == 1 and run.alert
    assert "AFTER ITS REVOCATION" in r.summary()
    alerts = [e for e in r.timeline if e.alert]
    assert alerts and alerts[0].kind == "used-after-revocation"
    assert [e.kind for e in r.timeline].index("revoked") < [e.kind for e in r.timeline].index(
        "used-after-revocation")


def test_cache_by_fingerprint_skips_the_queries(org: dict[str, Any], fake_server: Any,
                                                tmp_path: Path) -> None:
    leaked = [leaked_from_secret(org["keys"]["after"])]
    ev = {leaked[0].fingerprint: Evidence(introduced_at=org["leak"])}
    o = opts(fake_server, org["admin"], tmp_path)
    first = measure_exposure(leaked, ev, o)
    again = measure_exposure([leaked_from_secret(org["keys"]["after"])], ev, o)
    assert first.reports[0].requests == again.reports[0].requests == 3
    assert again.reports[0].cached and not first.reports[0].cached
    st = org["state"]
    assert len(st.requests("/organization/usage/completions")) == 1
    cache_text = (tmp_path / "exposure.json").read_text()
    assert org["keys"]["after"] not in cache_text and leaked[0].fingerprint in cache_text
    assert (tmp_path / "exposure.json").stat().st_mode & 0o077 == 0


def run_cli(args: list[str], env: dict[str, str], stdin: str) -> Any:
    from click.testing import CliRunner

    from keyscan.cli import cli

    return CliRunner().invoke(cli, args, input=stdin, env=env)


def cli_env(org: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    return {"OPENAI_ADMIN_KEY": org["admin"], "XDG_DATA_HOME": str(tmp_path / "data"),
            "KEYSCAN_CACHE_DIR": str(tmp_path / "cache"), "OPENAI_BASE_URL": ""}


def test_exposure_command_text_json_md(org: dict[str, Any], fake_server: Any,
                                       tmp_path: Path) -> None:
    secret = org["keys"]["after"]
    env = cli_env(org, tmp_path)
    base = ["exposure", "-", "--api-base", fake_server.base_url, "--no-cache"]
    text = run_cli(base, env, secret + "\n")
    assert text.exit_code == 1, text.output
    assert "used 12 times after it leaked" in text.output  # stdin: since its creation
    assert "api.usage.read" in text.output
    doc = run_cli([*base, "--format", "json"], env, secret + "\n")
    data = json.loads(doc.output)
    (k,) = data["keys"]
    assert k["key_id"] == org["recs"]["after"].id and k["requests"] == 12
    assert k["exposed_source"] == "key-created"
    md = run_cli([*base, "--format", "md"], env, secret + "\n")
    assert md.output.startswith("### Leaked key `") and "| when | event | detail |" in md.output
    for out in (text.output, doc.output, md.output):
        assert secret not in out and org["admin"] not in out
    never = run_cli(base, env, org["keys"]["never"] + "\n")
    assert never.exit_code == 0 and "not used since it leaked" in never.output


def test_key_used_through_embeddings_and_images_only(fake_state: Any, fake_server: Any,
                                                    tmp_path: Path) -> None:
    st = fake_state
    admin = key("admin")
    st.add_admin_key(admin)
    p = st.add_project("Prod")
    now = int(time.time())
    leak = now - 5 * DAY
    secret, other = key("project"), key("project")
    rec = st.add_project_key(secret, p.id, created_at=now - 20 * DAY)
    rec2 = st.add_project_key(other, p.id, created_at=now - 20 * DAY)
    st.plant_usage(rec, leak - DAY, endpoint="embeddings", requests=50, cost=1.0)  # before
    st.plant_usage(rec, leak + DAY, endpoint="embeddings", model="text-embedding-3-small",
                   requests=4, input_tokens=800, output_tokens=0, cost=0.01)
    st.plant_usage(rec, leak + 2 * DAY, endpoint="images", model="gpt-image-1", requests=2,
                   units=3, input_tokens=0, output_tokens=0, cost=0.12)
    st.plant_usage(rec, leak + 2 * DAY + 60, endpoint="file_search_calls", requests=5,
                   cost=0.0)
    st.plant_usage(rec, leak + 3 * DAY, endpoint="vector_stores", units=10**6, cost=0.0)
    st.plant_usage(rec2, leak + DAY, endpoint="moderations", requests=6, cost=0.0)
    leaked = [leaked_from_secret(secret), leaked_from_secret(other)]
    ev = {k.fingerprint: Evidence(introduced_at=leak) for k in leaked}
    run = measure_exposure(leaked, ev, opts(fake_server, admin, tmp_path))
    by = {r.key_id: r for r in run.reports}
    r = by[rec.id]
    assert r.status == MEASURED, r.reason
    # Model requests summed across endpoints; the tool calls are kept apart.
    assert r.requests == 6 and r.input_tokens == 800 and r.output_tokens == 0
    assert set(r.by_model) == {"text-embedding-3-small", "gpt-image-1"}
    assert r.summary().startswith("used 6 times after it leaked, last ")
    assert r.cost == pytest.approx(0.13)
    assert r.first_use is not None and leak <= r.first_use <= leak + DAY
    assert r.last_use is not None and r.last_use >= leak + 2 * DAY
    assert "first-use" in [e.kind for e in r.timeline]
    data = run.to_json()
    k = next(x for x in data["keys"] if x["key_id"] == rec.id)
    assert k["by_endpoint"]["embeddings"] == {
        "requests": 4, "requests_are": "model requests", "in_total": True,
        "input_tokens": 800, "output_tokens": 0}
    assert k["by_endpoint"]["images"]["requests"] == 2
    assert k["by_endpoint"]["images"]["images"] == 3
    fsc = k["by_endpoint"]["file_search_calls"]
    assert fsc["requests"] == 5 and fsc["in_total"] is False
    assert "tool calls" in fsc["requests_are"]
    assert "completions" not in k["by_endpoint"]
    assert set(data["not_attributable_to_a_key"]) == {"vector_stores",
                                                      "code_interpreter_sessions"}
    assert by[rec2.id].requests == 6 and set(by[rec2.id].by_endpoint) == {"moderations"}
    # Bounded: one query per attributable endpoint for both keys of the project, each
    # filtered and grouped by key; the endpoints without a key filter are never asked.
    for name in ("completions", "embeddings", "moderations", "images", "audio_speeches",
                 "audio_transcriptions", "file_search_calls", "web_search_calls"):
        (q,) = st.requests(f"/organization/usage/{name}")
        assert sorted(q.query["api_key_ids"]) == sorted([rec.id, rec2.id])
        assert "api_key_id" in q.query["group_by"]
    assert not st.requests("/organization/usage/vector_stores")
    assert not st.requests("/organization/usage/code_interpreter_sessions")
    assert len(st.requests("/organization/costs")) == 1
    text = json.dumps(data)
    for s in (secret, other, admin):
        assert s not in text


def test_sibling_endpoints_are_paged(fake_state: Any, fake_server: Any, tmp_path: Path) -> None:
    st = fake_state
    admin = key("admin")
    st.add_admin_key(admin)
    p = st.add_project("Prod")
    now = int(time.time())
    secret = key("project")
    rec = st.add_project_key(secret, p.id, created_at=now - 60 * DAY)
    leak = now - 50 * DAY  # 1-day buckets, 31 a page: two pages per endpoint
    st.plant_usage(rec, now - DAY, endpoint="images", model="gpt-image-1", requests=1,
                   units=1, cost=0.04)
    leaked = leaked_from_secret(secret)
    run = measure_exposure([leaked], {leaked.fingerprint: Evidence(introduced_at=leak)},
                           opts(fake_server, admin, tmp_path))
    (r,) = run.reports
    assert r.precision == "1d" and r.requests == 1 and r.by_endpoint["images"].units == 1
    pages = st.requests("/organization/usage/images")
    assert len(pages) == 2 and pages[1].query.get("page")


def test_cache_from_before_the_siblings_is_asked_again(org: dict[str, Any], fake_server: Any,
                                                       tmp_path: Path) -> None:
    leaked = [leaked_from_secret(org["keys"]["after"])]
    ev = {leaked[0].fingerprint: Evidence(introduced_at=org["leak"])}
    o = opts(fake_server, org["admin"], tmp_path)
    measure_exposure(leaked, ev, o)
    path = tmp_path / "exposure.json"
    data = json.loads(path.read_text())
    for hit in data.values():
        del hit["figures"]["by_endpoint"]  # as the completions-only version wrote it
    path.write_text(json.dumps(data))
    again = measure_exposure([leaked_from_secret(org["keys"]["after"])], ev, o)
    assert not again.reports[0].cached and again.reports[0].requests == 3
    assert len(org["state"].requests("/organization/usage/completions")) == 2
