"""What revocation works on: leaked keys, the organization's candidates, the plan, outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyscan.errors import KeyscanError
from keyscan.models import Finding, Verification, fingerprint_of, redact
from keyscan.openai_facts import family_of_head
from keyscan.report.json_report import ReportError, read_report, verification_from_json
from keyscan.revoke.matching import KeyShape, parse_redacted

# Plan actions.
DELETE_PROJECT_KEY = "delete-project-key"
DELETE_ADMIN_KEY = "delete-admin-key"
NO_ACTION = "none"

# Why a key gets (or does not get) an action.
UNIQUE = "unique-match"
CHOSEN = "chosen-with-key-id"
AMBIGUOUS = "ambiguous"
NOT_FOUND = "not-found"
DEAD = "dead"
SELF = "refused-self"
DASHBOARD = "revoke-in-dashboard"
PREVIOUSLY = "previously-revoked"
# One candidate agrees with the redaction, but nothing proves it is the leaked key.
UNCONFIRMED = "unconfirmed-match"
# The audit log records a deletion for this key that was never shown to have killed it.
PREVIOUS_UNCONFIRMED = "previously-deleted-unconfirmed"

# Outcomes of execution.
REVOKED = "revoked"
REVOKED_UNCONFIRMED = "revoked-unconfirmed"
# DELETE answered 404 and the raw key is not available to tell whether it is dead.
GONE_UNCONFIRMED = "gone-unconfirmed"
FAILED = "failed"
ALREADY_REVOKED = "already-revoked"
NEEDS_SERVICE_ACCOUNT = "needs-service-account-deletion"
SKIPPED = "skipped"
NOT_RUN = "not-run"

DASHBOARD_HELP = (
    "revoke it in the dashboard: sign in as its owner at https://platform.openai.com/api-keys "
    "(legacy user keys: https://platform.openai.com/account/api-keys), find the key whose "
    "secret ends in {tail}, and delete it"
)


class InputError(KeyscanError):
    """A report or key list that cannot be used."""


@dataclass
class LeakedKey:
    """A key to revoke, as known from a finding or a report (raw value only in memory)."""

    family: str
    redacted: str
    fingerprint: str
    shape: KeyShape
    secret: str | None = field(default=None, repr=False, compare=False)
    verification: Verification | None = None
    where: str = ""

    @property
    def project(self) -> str | None:
        v = self.verification
        return v.project if v is not None and v.project else None

    @property
    def is_dead(self) -> bool:
        v = self.verification
        return v is not None and v.is_dead

    @property
    def tail(self) -> str:
        return self.shape.tail[-4:]


def leaked_from_secret(
    secret: str, family: str = "unknown", verification: Verification | None = None, where: str = ""
) -> LeakedKey:
    shape = KeyShape.of_secret(secret)
    if family in ("unknown", ""):
        family = family_of_head(secret) or family or "unknown"
    return LeakedKey(
        family=family,
        redacted=redact(secret),
        fingerprint=fingerprint_of(secret),
        shape=shape,
        secret=secret,
        verification=verification,
        where=where,
    )


def leaked_from_finding(f: Finding) -> LeakedKey:
    where = ""
    if f.locations:
        loc = f.locations[0]
        where = f"{loc.display_path}:{loc.line}"
    if f.secret:
        return leaked_from_secret(f.secret, f.family, f.verification, where)
    shape = parse_redacted(f.redacted, f.length or None)
    if shape is None:
        raise InputError(f"finding {f.fingerprint[:12]}: cannot read redacted value")
    return LeakedKey(
        family=f.family,
        redacted=f.redacted,
        fingerprint=f.fingerprint,
        shape=shape,
        verification=f.verification,
        where=where,
    )


def leaked_from_report_entry(entry: Any, index: int) -> LeakedKey:
    label = f"report finding #{index + 1}"
    if not isinstance(entry, dict):
        raise InputError(f"{label}: not an object")
    verification = verification_from_json(entry.get("verification"))
    family = str(entry.get("family") or "unknown")
    where = label
    locs = entry.get("locations")
    if isinstance(locs, list) and locs and isinstance(locs[0], dict):
        loc = locs[0]
        where = f"{loc.get('path', '?')}:{loc.get('line', '?')}"
    secret = entry.get("secret")
    fingerprint = entry.get("fingerprint")
    if isinstance(secret, str) and secret:
        if isinstance(fingerprint, str) and fingerprint and fingerprint != fingerprint_of(secret):
            raise InputError(f"{label}: secret does not match its fingerprint")
        # The report's verification is an old answer: the raw key is checked again now (its
        # own answer, not the report, says whether it is live and in which project).
        return leaked_from_secret(secret, family, None, where)
    redacted = entry.get("redacted")
    if not isinstance(redacted, str) or not isinstance(fingerprint, str):
        raise InputError(f"{label}: needs 'redacted' and 'fingerprint'")
    length = entry.get("length")
    shape = parse_redacted(redacted, length if isinstance(length, int) and length > 0 else None)
    if shape is None:
        raise InputError(f"{label}: cannot read redacted value")
    return LeakedKey(
        family=family,
        redacted=redacted,
        fingerprint=fingerprint,
        shape=shape,
        verification=verification,
        where=where,
    )


def leaked_from_report(path: Path) -> list[LeakedKey]:
    """Keys from a keyscan JSON report (``--format json``) or JSON Lines report."""
    try:
        entries = read_report(path)
    except ReportError as exc:
        raise InputError(str(exc)) from None
    keys = [leaked_from_report_entry(e, i) for i, e in enumerate(entries)]
    return dedupe(keys)


def dedupe(keys: list[LeakedKey]) -> list[LeakedKey]:
    """One entry per fingerprint (a key found by two rules is still one key)."""
    seen: dict[str, LeakedKey] = {}
    for k in keys:
        old = seen.get(k.fingerprint)
        if old is None or (old.secret is None and k.secret is not None):
            seen[k.fingerprint] = k
    return list(seen.values())


@dataclass
class Candidate:
    """A key of the organization that may be the leaked one."""

    kind: str  # "project-key" | "admin-key"
    id: str
    name: str | None
    redacted_value: str
    created_at: int | None
    last_used_at: int | None
    owner_type: str  # user | service_account
    owner_id: str | None = None
    owner_name: str | None = None
    project_id: str | None = None
    project_name: str | None = None
    project_archived: bool = False

    @property
    def shape(self) -> KeyShape | None:
        return parse_redacted(self.redacted_value)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
            "redacted_value": self.redacted_value,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "owner_type": self.owner_type,
            "owner_id": self.owner_id,
            "owner_name": self.owner_name,
            "project_id": self.project_id,
            "project_name": self.project_name,
            "project_archived": self.project_archived,
        }


@dataclass
class PlanItem:
    leaked: LeakedKey
    action: str
    reason: str
    message: str = ""
    target: Candidate | None = None
    candidates: list[Candidate] = field(default_factory=list)
    # Service-account keys: how many keys that account holds in the project (all revoked with it).
    service_account_keys: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.leaked.family,
            "redacted": self.leaked.redacted,
            "fingerprint": self.leaked.fingerprint,
            "where": self.leaked.where,
            "verification": (
                self.leaked.verification.status.value if self.leaked.verification else None
            ),
            "action": self.action,
            "reason": self.reason,
            "message": self.message,
            "target": self.target.to_json() if self.target else None,
            "candidates": [c.to_json() for c in self.candidates],
        }


@dataclass
class Outcome:
    item: PlanItem
    status: str
    message: str = ""
    http_status: int | None = None
    request_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = self.item.to_json()
        out.update(
            {
                "status": self.status,
                "message": self.message,
                "http_status": self.http_status,
                "request_id": self.request_id,
            }
        )
        return out
