"""Plans and outcomes for people (text) and programs (JSON). Never a raw key."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from keyscan.revoke.model import (
    DELETE_ADMIN_KEY,
    DELETE_PROJECT_KEY,
    NO_ACTION,
    PREVIOUSLY,
    SKIPPED,
    Candidate,
    Outcome,
    PlanItem,
)
from keyscan.terminal import safe

if TYPE_CHECKING:
    from keyscan.revoke import RevocationRun

FAMILY_NAMES = {
    "project": "project key",
    "service_account": "service-account key",
    "user": "user key (sk-None-)",
    "admin": "admin key",
    "legacy": "legacy user key",
    "unknown": "key of unknown type",
}


def when(ts: int | None) -> str:
    if not isinstance(ts, int):
        return "never" if ts is None else "?"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def short_redacted(value: str) -> str:
    """``sk-proj-****...****abcd`` (152 stars) → ``sk-proj-...abcd``."""
    from keyscan.revoke.matching import parse_redacted

    shape = parse_redacted(value)
    if shape is None:
        return "?"
    return f"{shape.head[:8]}...{shape.tail[-4:]}"


def describe_candidate(c: Candidate, indent: str = "   ") -> list[str]:
    project = ""
    if c.project_id:
        project = f" in project {c.project_id}"
        if c.project_name:
            project += f" ({c.project_name})"
        if c.project_archived:
            project += " [archived]"
    owner = "service account" if c.owner_type == "service_account" else "user"
    owner_text = f"{owner} {c.owner_name or ''} {f'({c.owner_id})' if c.owner_id else ''}"
    lines = [
        f"{indent}key:      {c.id} \"{c.name or ''}\" {short_redacted(c.redacted_value)}{project}",
        f"{indent}owner:    {' '.join(owner_text.split())}",
        f"{indent}created:  {when(c.created_at)}   last used: {when(c.last_used_at)}",
    ]
    return [safe(line) for line in lines]


def action_text(item: PlanItem, delete_service_account: bool) -> str:
    t = item.target
    if item.action == NO_ACTION or t is None:
        return f"none: {item.message}"
    if item.action == DELETE_ADMIN_KEY:
        text = f"delete admin key {t.id}"
    elif item.action == DELETE_PROJECT_KEY:
        text = f"delete project key {t.id} from project {t.project_id}"
        if t.owner_type == "service_account":
            n = item.service_account_keys
            keys = f"all {n} of its keys" if n else "all of its keys"
            if delete_service_account:
                text += (
                    f"; if the API refuses (service-account key), delete service account "
                    f"{t.owner_id}, which revokes {keys}"
                )
            else:
                text += (
                    "; if the API refuses (service-account key), stop and offer "
                    "--delete-service-account"
                )
    else:
        text = item.action
    if item.message:
        text += f" ({item.message})"
    return text


def render_plan(plan: list[PlanItem], dry_run: bool, delete_service_account: bool,
                exposure: Mapping[str, str] | None = None) -> str:
    lines: list[str] = []
    head = "Revocation plan" + (" (dry run: nothing is deleted; add --yes to carry it out)"
                               if dry_run else "")
    lines.append(head)
    for n, item in enumerate(plan, 1):
        k = item.leaked
        status = k.verification.status if k.verification else "not verified"
        family = FAMILY_NAMES.get(k.family, k.family)
        where = f", found at {k.where}" if k.where else ""
        lines.append("")
        lines.append(safe(f"{n}. {k.redacted}  {family}  ({status}{where})"))
        if item.target is not None and item.action != NO_ACTION:
            if item.reason != PREVIOUSLY:  # (an id from the audit log: nothing more known)
                lines.extend(describe_candidate(item.target))
        elif item.candidates:
            lines.append(f"   {len(item.candidates)} candidates:")
            for c in item.candidates:
                lines.extend(describe_candidate(c, "     "))
                lines.append("")
            if lines[-1] == "":
                lines.pop()
        seen = (exposure or {}).get(k.fingerprint)
        if seen:
            lines.append(safe(f"   exposure: {seen}"))
        lines.append(safe(f"   action:   {action_text(item, delete_service_account)}"))
    return "\n".join(lines) + "\n"


def render_outcomes(outcomes: list[Outcome]) -> str:
    lines = ["", "Results"]
    counts: dict[str, int] = {}
    for n, o in enumerate(outcomes, 1):
        counts[o.status] = counts.get(o.status, 0) + 1
        rid = f" [request {o.request_id}]" if o.request_id else ""
        status = f"{o.status} ({o.item.reason})" if o.status == SKIPPED else o.status
        lines.append(safe(f"{n}. {o.item.leaked.redacted}  {status}: {o.message}{rid}"))
    summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    lines.append("")
    lines.append(f"Summary: {summary}" if summary else "Summary: nothing to do")
    return "\n".join(lines) + "\n"


def to_json(
    plan: list[PlanItem], outcomes: list[Outcome] | None, dry_run: bool, error: str | None,
    exposure: Mapping[str, str] | None = None,
) -> str:
    keys = [o.to_json() for o in outcomes] if outcomes is not None else [
        p.to_json() for p in plan
    ]
    if exposure:
        for k in keys:
            k["exposure"] = exposure.get(str(k.get("fingerprint")))
    doc: dict[str, Any] = {"dry_run": dry_run, "keys": keys, "error": error}
    return json.dumps(doc, indent=2) + "\n"


def plan_text(run: RevocationRun, fmt: str, delete_service_account: bool) -> str:
    """What to show once the plan is made, before any DELETE (text format only: JSON shows
    the plan with the results, in one document)."""
    if fmt == "json":
        return ""
    return render_plan(run.plan, run.dry_run, delete_service_account, run.exposure)


def run_text(run: RevocationRun, fmt: str, audit_path: str) -> str:
    """What to show when the run is over (stdout); errors and warnings are the caller's to
    print on stderr (``run.errors``, ``run.warnings``)."""
    if run.no_keys:
        return to_json([], None, run.dry_run, None) if fmt == "json" else (
            "keyscan revoke: no keys to revoke\n"
        )
    if run.outcomes is None:
        planned_dry_run = run.dry_run and not run.errors
        return to_json(run.plan, None, True, None, run.exposure) if (
            fmt == "json" and planned_dry_run) else ""
    if fmt == "json":
        return to_json(run.plan, run.outcomes, False, run.error_line, run.exposure)
    return render_outcomes(run.outcomes) + f"Audit log: {audit_path}\n"
