"""JSON and JSON Lines output: a documented, stable schema (see README, "JSON output")."""

from __future__ import annotations

import json
from typing import Any

from keyscan import __version__
from keyscan.models import Finding, Location, ScanResult
from keyscan.pipeline import OutputOptions

SCHEMA_VERSION = 1


def location_to_json(loc: Location) -> dict[str, Any]:
    out: dict[str, Any] = {
        "path": loc.display_path,  # with an archive member: "a.zip!b.txt", as ever
        "line": loc.line,
        "column": loc.column,
        "offset": loc.offset,
        "binary": loc.binary,
        "source": loc.source,
    }
    if loc.member:  # inside an archive: the member names, from the file at "path" inward
        out["member"] = list(loc.member)
    if loc.commit is not None:
        out["commit"] = {
            "sha": loc.commit.sha,
            "author_name": loc.commit.author_name,
            "author_email": loc.commit.author_email,
            "date": loc.commit.date,
            "subject": loc.commit.subject,
        }
    if loc.blob is not None:
        out["blob"] = loc.blob
    if loc.decoded is not None:
        out["decoded"] = loc.decoded
    if loc.extra:
        out["extra"] = loc.extra
    return out


def finding_to_json(f: Finding, show_secrets: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rule_id": f.rule_id,
        "description": f.description,
        "family": f.family,
        "confidence": str(f.confidence),
        "fingerprint": f.fingerprint,
        "redacted": f.redacted,
        "length": f.length,
    }
    if show_secrets:
        out["secret"] = f.secret
    out["verification"] = f.verification.to_json() if f.verification else None
    out["notes"] = list(f.notes)
    out["locations"] = [location_to_json(loc) for loc in f.locations]
    if f.more_locations:  # seen but not listed (keyscan.findings.MAX_LOCATIONS)
        out["more_locations"] = f.more_locations
    extra = {k: v for k, v in f.extra.items() if k != "suppressed_by"}
    if extra:
        out["extra"] = extra
    return out


def summary(result: ScanResult) -> dict[str, Any]:
    return {
        "kind": result.kind,
        "targets": result.targets,
        "files": result.files,
        "bytes": result.bytes,
        "duration_seconds": round(result.duration, 4),
        "complete": result.complete,
        "errors": [{"where": e.where, "message": e.message} for e in result.errors],
        "warnings": list(result.warnings),
        "secrets": len(result.findings),
        "locations": sum(f.location_count for f in result.findings),
        "suppressed": result.suppressed,
        "stats": result.stats,
    }


def document(result: ScanResult, show_secrets: bool = False) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "keyscan", "version": __version__},
        "scan": summary(result),
        "findings": [finding_to_json(f, show_secrets) for f in result.findings],
    }


def render(result: ScanResult, opts: OutputOptions) -> str:
    if opts.format == "jsonl":
        lines = [
            json.dumps({"type": "finding", **finding_to_json(f, opts.show_secrets)})
            for f in result.findings
        ]
        lines.append(json.dumps({"type": "summary", **summary(result)}))
        return "\n".join(lines) + "\n"
    return json.dumps(document(result, opts.show_secrets), indent=2) + "\n"
