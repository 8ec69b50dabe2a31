"""The audit store as a keyscan JSON report (the schema of ``keyscan scan --format json``).

``findings`` has one entry per unique key with every stored location (each location's
``extra.repository`` names its repository) and the latest verification, so that
``keyscan revoke --report FILE`` can act on it: revocation matches a redacted key. The
per-repository view (introduced, still at HEAD, removed by) is under ``audit``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from keyscan.audit.store import AuditStore
from keyscan.audit.view import AuditView, clean, loads, revoke_command, where_now
from keyscan.models import CommitInfo, Confidence, Finding, Location
from keyscan.report.json_report import SCHEMA_VERSION, finding_to_json, tool


def _locations(store: AuditStore, fingerprint: str) -> list[Location]:
    out: list[Location] = []
    for row in store.rows(
        "SELECT l.*, r.target FROM locations l JOIN repositories r ON r.id = l.repository_id "
        "WHERE l.fingerprint = ? ORDER BY r.target, l.commit_date, l.path, l.line",
        (fingerprint,),
    ):
        commit = None
        if row["commit_sha"]:
            commit = CommitInfo(
                sha=row["commit_sha"],
                author_name=clean(row["author_name"]),
                author_email=clean(row["author_email"]),
                date=row["commit_date"],
                subject=clean(row["subject"]),
            )
        extra = loads(row["extra"], {})
        extra = clean(extra) if isinstance(extra, dict) else {}
        out.append(
            Location(
                path=clean(row["path"]),
                line=row["line"],
                column=row["col"],
                offset=row["byte_offset"],
                binary=False,
                source=row["source"],
                commit=commit,
                blob=row["blob"] or None,
                decoded=row["decoded"] or None,
                extra={**extra, "repository": clean(row["target"])},
            )
        )
    return out


def render(view: AuditView, store: AuditStore, db_name: str) -> str:
    findings: list[dict[str, Any]] = []
    for k in view.keys:
        finding = Finding(
            rule_id=k.rule_id,
            family=k.family,
            confidence=Confidence.parse(k.confidence),
            fingerprint=k.fingerprint,
            redacted=k.redacted,
            length=k.length,
            secret="",  # the store holds no raw key
            locations=_locations(store, k.fingerprint),
            description=k.description,
            verification=k.verification,
            extra={
                "audit": {
                    "status": k.status,
                    "still_at_head": k.still_present,
                    "where_now": where_now(k),
                    "revoke_command": revoke_command(k, db_name),
                    "repositories": [asdict(r) for r in k.repos],
                    "exposure": k.exposure,
                }
            },
        )
        findings.append(finding_to_json(finding))
    errors = [
        {"where": r.target, "message": e} for r in view.repositories for e in r.errors
    ]
    doc = {
        "schema_version": SCHEMA_VERSION,
        "tool": tool(),
        "scan": {
            "kind": "audit",
            "targets": [r.target for r in view.repositories],
            "complete": not any(r.status in ("error", "partial") for r in view.repositories),
            "errors": errors,
            "warnings": [],
            "secrets": len(view.keys),
            "locations": sum(len(f["locations"]) for f in findings),
            "suppressed": 0,
            "stats": {
                "generated_at": view.generated_at,
                "audits": view.audits,
                "last_audit": view.last_audit,
                "live": len(view.live),
                "at_head": len(view.at_head),
                "statuses": view.status_counts(),
            },
        },
        "repositories": [asdict(r) for r in view.repositories],
        "findings": findings,
    }
    return json.dumps(doc, indent=2) + "\n"
