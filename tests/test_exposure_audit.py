"""Exposure in the audit store and its reports (issue 14): ``keyscan exposure --db`` keeps
each key's figures and incident timeline; ``keyscan report`` shows them: marks on the HTML
SVG timeline, an incident block in Markdown, ``extra.audit.exposure`` in JSON. Real git
repositories, the fake OpenAI API over real HTTP, no raw key anywhere."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from keyscan.cli import cli
from keyscan.keygen import key
from keyscan.models import fingerprint_of, redact
from tests.audit_fixtures import Repo, keyscan

DAY = 86400


def setup(tmp_path: Path, st: Any) -> dict[str, Any]:
    admin = key("admin")
    st.add_admin_key(admin)
    p = st.add_project("Prod")
    now = int(time.time())
    secret, other = key("project"), key("project")
    rec = st.add_project_key(secret, p.id, created_at=now - 20 * DAY)
    st.add_project_key(other, p.id, created_at=now - 20 * DAY)
    st.plant_usage(rec, now - 4 * DAY, requests=2, cost=0.25)
    st.plant_usage(rec, now - DAY, model="gpt-4.1", requests=1, cost=0.17)
    repo = Repo(tmp_path / "r")
    repo.commit("add key", {"app.env": f"OPENAI_API_KEY={secret}\n"})
    db = tmp_path / "audit.db"
    assert keyscan("audit", str(repo.path), "--db", str(db), cwd=tmp_path).returncode == 1
    # keyscan revoked it two days ago (its audit log), and it was used after that.
    audit = tmp_path / "data" / "keyscan" / "audit.jsonl"
    audit.parent.mkdir(parents=True)
    audit.write_text(json.dumps({
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 2 * DAY)),
        "action": "delete-project-key", "result": "deleted", "project": p.id,
        "key_id": rec.id, "redacted": redact(secret), "fingerprint": fingerprint_of(secret),
    }) + "\n")
    st.delete_key(rec.id)
    return {"admin": admin, "secret": secret, "rec": rec, "db": db, "audit": audit}


def run_exposure(tmp_path: Path, server: Any, o: dict[str, Any], *args: str) -> Any:
    env = {"OPENAI_ADMIN_KEY": o["admin"], "XDG_DATA_HOME": str(tmp_path / "data"),
           "KEYSCAN_CACHE_DIR": str(tmp_path / "cache"), "OPENAI_BASE_URL": ""}
    argv = ["exposure", "-", "--api-base", server.base_url, "--backoff", "0", "--retries", "0",
            *args]
    return CliRunner().invoke(cli, argv, input=o["secret"] + "\n", env=env)


def test_audit_store_keeps_exposure_and_reports_show_it(
    tmp_path: Path, fake_state: Any, fake_server: Any
) -> None:
    o = setup(tmp_path, fake_state)
    db = o["db"]
    res = run_exposure(tmp_path, fake_server, o, "--db", str(db))
    assert res.exit_code == 2, res.output  # used after its revocation: loud
    assert "AFTER ITS REVOCATION" in res.output
    raw = db.read_bytes()
    assert o["secret"].encode() not in raw and o["admin"].encode() not in raw

    doc = json.loads(keyscan("report", "--db", str(db), "--format", "json",
                             cwd=tmp_path).stdout)
    (f,) = doc["findings"]
    e = f["extra"]["audit"]["exposure"]
    assert e["key_id"] == o["rec"].id and e["requests"] == 3
    assert e["used_after_revocation"] and e["requests_after_revocation"] == 1
    kinds = [ev["kind"] for ev in e["timeline"]]
    assert kinds[0] == "introduced" and "revoked" in kinds and "used-after-revocation" in kinds

    html = keyscan("report", "--db", str(db), "--format", "html", cwd=tmp_path).stdout
    svg = html[html.index("<svg"):html.index("</svg>")]
    for mark in ("exposure-first-use", "exposure-last-use", "exposure-revoked",
                 "exposure-alert"):
        assert mark in svg, mark
    assert "Was it used?" in html and "after its revocation" in html

    md = keyscan("report", "--db", str(db), "--format", "md", cwd=tmp_path).stdout
    block = md[md.index("**Incident: was it used?**"):]
    assert "> **ALERT: used 1 times after its revocation" in block
    assert f"- Key id: `{o['rec'].id}`" in block
    assert "| when | event | detail |" in block and "| revoked |" in block
    for out in (html, md, json.dumps(doc), res.output):
        assert o["secret"] not in out and o["admin"] not in out


def test_store_without_exposure_shows_nothing_new(
    tmp_path: Path, fake_state: Any, fake_server: Any
) -> None:
    o = setup(tmp_path, fake_state)
    html = keyscan("report", "--db", str(o["db"]), "--format", "html", cwd=tmp_path).stdout
    assert "exposure-" not in html[html.index("<svg"):html.index("</svg>")]
    md = keyscan("report", "--db", str(o["db"]), "--format", "md", cwd=tmp_path).stdout
    assert "Incident: was it used?" not in md
    # A key the store does not know is not kept there (and says so).
    res = run_exposure(tmp_path, fake_server, o, "--db", str(tmp_path / "missing.db"))
    assert res.exit_code == 2 and "no such audit database" in res.output
