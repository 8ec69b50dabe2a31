"""keyscan's JSON report: a documented, stable schema (see README, "JSON output"), written
(``--format json`` / ``jsonl``, the audit's JSON) and read back (``keyscan verify --report``,
``keyscan revoke --report``) here and nowhere else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from keyscan.errors import KeyscanError
from keyscan.models import STATUS_VALUES, CommitInfo, Finding, Location, ScanResult, Verification
from keyscan.report.options import OutputOptions
from keyscan.version import __version__

SCHEMA_VERSION = 1


class ReportError(KeyscanError, ValueError):
    """A file that cannot be read as a keyscan JSON or JSON Lines report (one line, why)."""


def tool() -> dict[str, Any]:
    return {"name": "keyscan", "version": __version__}


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
    extra = dict(f.extra)
    if f.git is not None:
        extra = {"git": f.git.to_json(), **extra}
    if f.revocation is not None:
        extra["revocation"] = f.revocation.to_json()
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
        "tool": tool(),
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


# -- reading ----------------------------------------------------------------------------------


def read_report(path: Path) -> list[Any]:
    """The ``findings`` entries of a keyscan JSON report (``--format json``, the audit's JSON)
    or JSON Lines report (its ``finding`` lines; the ``summary`` line must be there), as
    written: callers check each entry. Raises :class:`ReportError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot read report {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ReportError(f"report {path}: not a keyscan JSON report (not UTF-8)") from None
    from keyscan.safejson import TooDeep, loads

    try:
        doc = loads(text)
    except TooDeep:
        raise ReportError(
            f"report {path}: not a keyscan JSON report (JSON nested too deeply)"
        ) from None
    except ValueError:
        doc = None  # JSON Lines (or not JSON at all)
    if isinstance(doc, dict) and "type" not in doc:
        findings = doc.get("findings")
        if not isinstance(findings, list):
            raise ReportError(f"report {path}: not a keyscan JSON report (no 'findings' list)")
        return findings
    if doc is not None and not isinstance(doc, dict):
        raise ReportError(f"report {path}: not a keyscan JSON or JSONL report")
    entries: list[Any] = []
    summary_seen = False
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = loads(line)
        except TooDeep:
            raise ReportError(
                f"report {path}: not a keyscan JSON report (JSON nested too deeply)"
            ) from None
        except ValueError:
            raise ReportError(
                f"report {path}: not a keyscan JSON or JSONL report (line {n} is not JSON)"
            ) from None
        if isinstance(item, dict):
            summary_seen = summary_seen or item.get("type") == "summary"
            if item.get("type") == "finding":
                entries.append(item)
    if not summary_seen:
        raise ReportError(f"report {path}: not a keyscan JSON or JSONL report (no summary line)")
    return entries


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def location_from_json(data: Any) -> Location | None:
    """A location as ``location_to_json`` wrote it (None if it is not one)."""
    if not isinstance(data, dict) or not isinstance(data.get("path"), str):
        return None
    commit = None
    c = data.get("commit")
    if isinstance(c, dict):
        commit = CommitInfo(
            sha=str(c.get("sha", "")),
            author_name=str(c.get("author_name", "")),
            author_email=str(c.get("author_email", "")),
            date=str(c.get("date", "")),
            subject=str(c.get("subject", "")),
        )
    # ``path`` is the displayed path (``a.zip!inner/b.txt``); ``member`` the chain inside it.
    path = data["path"]
    member = data.get("member")
    if isinstance(member, list) and member and all(isinstance(m, str) for m in member):
        suffix = "".join(f"!{m}" for m in member)
        member = tuple(member) if path.endswith(suffix) else None
        path = path[: -len(suffix)] if member else path
    return Location(
        path=path,
        line=int(data.get("line") or 0),
        column=int(data.get("column") or 0),
        offset=int(data.get("offset") or 0),
        binary=bool(data.get("binary")),
        source=str(data.get("source") or "file"),
        commit=commit,
        blob=_str_or_none(data.get("blob")),
        decoded=_str_or_none(data.get("decoded")),
        member=member or (),
    )


def verification_from_json(data: Any) -> Verification | None:
    """A verification as ``Verification.to_json`` wrote it (None if it is not one, or its
    status is not one this version knows)."""
    if not isinstance(data, dict):
        return None
    status = data.get("status")
    if not isinstance(status, str) or status not in STATUS_VALUES:
        return None
    http_status = data.get("http_status")
    return Verification(
        status=data["status"],
        reason=str(data.get("reason") or ""),
        http_status=http_status if isinstance(http_status, int) else None,
        project=_str_or_none(data.get("project")),
        organization=_str_or_none(data.get("organization")),
        request_id=_str_or_none(data.get("request_id")),
        checked_at=_str_or_none(data.get("checked_at")),
    )
