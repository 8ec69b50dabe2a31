"""The revocation plan's exposure line (issue 14): ``keyscan revoke`` (and ``scan --revoke``)
says "used N times after it leaked, last DATE, cost $X" for each key that maps to exactly one
key id, before asking to delete; against the fake OpenAI API over real HTTP."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from keyscan.cli import cli
from keyscan.keygen import key
from keyscan.models import Confidence, Finding, Location, fingerprint_of, redact
from keyscan.report.json_report import finding_to_json

DAY = 86400


@pytest.fixture
def org(fake_state: Any, fake_server: Any, tmp_path: Path) -> dict[str, Any]:
    st = fake_state
    admin = key("admin")
    st.add_admin_key(admin)
    p = st.add_project("Prod")
    now = int(time.time())
    leak = now - 5 * DAY
    keys = {name: key("project") for name in ("after", "never", "twin")}
    recs = {name: st.add_project_key(secret, p.id, created_at=now - 20 * DAY)
            for name, secret in keys.items()}
    st.plant_usage(recs["after"], leak - 3 * DAY, requests=9, cost=2.0)
    st.plant_usage(recs["after"], leak + DAY, requests=2, cost=0.25)
    st.plant_usage(recs["after"], leak + 2 * DAY, model="gpt-4.1", requests=1, cost=0.17)
    env = {"OPENAI_ADMIN_KEY": admin, "OPENAI_BASE_URL": fake_server.base_url,
           "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "KEYSCAN_CACHE_DIR": str(tmp_path / "cache"), "HOME": str(tmp_path / "home")}
    return {"state": st, "admin": admin, "project": p, "keys": keys, "recs": recs,
            "leak": leak, "env": env, "tmp": tmp_path}


def report(org: dict[str, Any], names: list[str]) -> Path:
    """A keyscan JSON report whose findings were introduced by a commit at the leak time."""
    findings = []
    for name in names:
        s = org["keys"][name]
        f = Finding(
            rule_id="openai-project-key", family="project", confidence=Confidence.HIGH,
            fingerprint=fingerprint_of(s), redacted=redact(s), length=len(s), secret=s,
            locations=[Location(path="app/settings.py", line=3, column=1, offset=0)],
        )
        entry = finding_to_json(f, show_secrets=True)
        entry["locations"][0]["commit"] = {
            "sha": "a" * 40, "author_name": "Dev", "author_email": "dev@example.com",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(org["leak"])),
        }
        findings.append(entry)
    path: Path = org["tmp"] / "leaks.json"
    path.write_text(json.dumps({"schema_version": 1, "findings": findings}), encoding="utf-8")
    return path


def run(org: dict[str, Any], *args: str, stdin: str | None = None,
        env: dict[str, str] | None = None) -> Result:
    if stdin is not None:
        args = ("-", *args)
    argv = ["revoke", *args, "--recheck-delay", "0", "--backoff", "0", "--retries", "0"]
    result = CliRunner().invoke(cli, argv, input=stdin, env=env or org["env"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    texts = [result.stdout, result.stderr]
    cache = org["tmp"] / "cache" / "exposure.json"
    if cache.exists():
        texts.append(cache.read_text())
    for secret in [*org["keys"].values(), org["admin"]]:
        for text in texts:
            assert secret not in text
    return result


def test_plan_says_how_the_key_was_used_since_it_leaked(org: dict[str, Any]) -> None:
    res = run(org, "--report", str(report(org, ["after", "never"])))
    assert res.exit_code == 1, res.output  # a dry run: keys left
    out = res.stdout
    last = time.strftime("%Y-%m-%d", time.gmtime(org["recs"]["after"].last_used_at))
    assert f"exposure: used 3 times after it leaked, last {last}, cost $0.42" in out
    assert "exposure: not used since it leaked, cost $0.00" in out
    # The line comes in each key's block, before its action.
    block = out[out.index("exposure: used 3 times"):]
    assert block.index("action:   delete project key") < block.index("\n2. ")
    st = org["state"]
    assert len(st.requests("/organization/usage/completions")) == 1
    assert len(st.requests("/organization/costs")) == 1
    assert not [r for r in st.requests() if r.method == "DELETE"]


def test_plan_shown_before_the_delete_with_yes(org: dict[str, Any]) -> None:
    res = run(org, "--yes", stdin=org["keys"]["after"] + "\n")
    assert res.exit_code == 0, res.output
    out = res.stdout
    # Keys on stdin: exposed since the key's creation (all 12 uses).
    assert "exposure: used 12 times after it leaked" in out
    assert out.index("exposure: used 12 times") < out.index("Results")
    assert "revoked" in out[out.index("Results"):]


def test_ambiguous_key_gets_no_figures_and_says_why(org: dict[str, Any]) -> None:
    st = org["state"]
    twin = org["keys"]["twin"]
    look = twin[:8] + key("project")[8:-4] + twin[-4:]
    st.add_project_key(look, org["project"].id)
    st.send_project_header = False
    res = run(org, stdin=twin + "\n")
    assert "exposure: no exposure figures: 2 keys match" in res.stdout
    assert look not in res.stdout
    assert not st.requests("/organization/usage/completions")


def test_admin_key_without_usage_scope_still_plans_and_deletes(org: dict[str, Any]) -> None:
    st = org["state"]
    writer = key("admin")
    st.add_admin_key(writer, lacks_scopes=("api.usage.read",))
    env = {**org["env"], "OPENAI_ADMIN_KEY": writer}
    res = run(org, "--yes", stdin=org["keys"]["after"] + "\n", env=env)
    assert res.exit_code == 0, res.output
    line = next(x for x in res.stdout.splitlines() if "exposure:" in x)
    assert "no exposure figures" in line and "api.usage.read" in line
    assert writer not in res.output
    assert [r for r in st.requests() if r.method == "DELETE"]


def test_json_plan_carries_the_exposure_line(org: dict[str, Any]) -> None:
    res = run(org, "--format", "json", stdin=org["keys"]["after"] + "\n")
    doc = json.loads(res.stdout)
    (k,) = doc["keys"]
    assert k["exposure"].startswith("used 12 times after it leaked")
