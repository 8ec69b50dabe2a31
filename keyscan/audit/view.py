"""The audit store read back as one structure that every report format renders.

Keys are ordered as a person should read them: live keys first, then keys whose status is
unknown or that were not checked, then dead keys; within a group, keys still present at HEAD
first, then the oldest leak first.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from typing import Any

from keyscan.audit.store import AuditStore
from keyscan.models import Verification

UNVERIFIED = "unverified"


@dataclass
class RepoKey:
    """One key in one repository."""

    repository: str
    introduced_commit: str | None
    introduced_date: str | None
    introduced_author: str | None
    introduced_email: str | None
    introduced_subject: str | None
    introduced_path: str | None
    introduced_line: int | None
    present_at_head: bool | None
    head_paths: list[str]
    removed_commit: str | None
    removed_date: str | None
    removed_author: str | None
    removed_subject: str | None
    refs: list[str]
    locations: int
    in_messages: int


@dataclass
class KeyView:
    fingerprint: str
    rule_id: str
    family: str
    confidence: str
    redacted: str
    length: int
    description: str
    verification: Verification | None
    repos: list[RepoKey] = field(default_factory=list)
    # The latest ``keyscan exposure --db`` figures and incident timeline (ExposureReport JSON).
    exposure: dict[str, Any] | None = None

    @property
    def exposure_events(self) -> list[dict[str, Any]]:
        events = (self.exposure or {}).get("timeline")
        return [e for e in events if isinstance(e, dict)] if isinstance(events, list) else []

    @property
    def used_after_revocation(self) -> bool:
        return bool((self.exposure or {}).get("used_after_revocation"))

    @property
    def status(self) -> str:
        return self.verification.status if self.verification else UNVERIFIED

    @property
    def is_live(self) -> bool:
        return self.verification is not None and self.verification.is_live

    @property
    def is_dead(self) -> bool:
        return self.status.startswith("invalid")

    @property
    def short(self) -> str:
        return self.fingerprint[:12]

    @property
    def first(self) -> RepoKey | None:
        dated = [r for r in self.repos if r.introduced_date]
        if dated:
            return min(dated, key=lambda r: _utc(r.introduced_date or ""))
        return self.repos[0] if self.repos else None

    @property
    def still_present(self) -> bool:
        return any(r.present_at_head for r in self.repos)

    def rank(self) -> tuple[int, int, str]:
        group = 0 if self.is_live else 2 if self.is_dead else 1
        first = self.first
        return (group, 0 if self.still_present else 1, _utc(first.introduced_date or "")
                if first else "")


@dataclass
class RepoView:
    target: str
    status: str  # of the last scan: ok | partial | error | never
    errors: list[str]
    scanned_at: str | None
    commits_scanned: int
    commits_skipped: int
    keys: int
    keys_at_head: int


@dataclass
class AuditView:
    db: str
    generated_at: str
    audits: int
    last_audit: str | None
    repositories: list[RepoView]
    keys: list[KeyView]

    @property
    def live(self) -> list[KeyView]:
        return [k for k in self.keys if k.is_live]

    @property
    def at_head(self) -> list[KeyView]:
        return [k for k in self.keys if k.still_present]

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for k in self.keys:
            counts[k.status] = counts.get(k.status, 0) + 1
        return counts


def _utc(date: str) -> str:
    from datetime import datetime, timezone

    try:
        return (
            datetime.fromisoformat(date.replace("Z", "+00:00"))
            .astimezone(timezone.utc)
            .strftime("%Y-%m-%dT%H:%M:%SZ")
        )
    except ValueError:
        return date


def clean(value: Any) -> Any:
    """Store values pass the metadata redaction step again on the way out: a store written
    by an older keyscan may hold a key in a path, subject or name."""
    from keyscan.redaction import default_redactor

    return default_redactor().value(value)


def loads(text: str | None, default: Any) -> Any:
    """A JSON column of the store; a value nested too deeply is a ValueError, not a crash."""
    from keyscan.safejson import loads as safe_loads

    return default if not text else safe_loads(text)


def load(store: AuditStore, key_prefix: str | None = None) -> AuditView:
    """Everything the store knows, as the latest scans of each repository see it.
    Raises ValueError on a JSON column nested too deeply."""
    repos: list[RepoView] = []
    for r in store.rows(
        "SELECT r.id, r.target, s.status, s.errors, s.started_at, s.commits_scanned, "
        "s.commits_skipped, "
        "(SELECT COUNT(*) FROM repository_keys k WHERE k.repository_id = r.id) AS keys, "
        "(SELECT COUNT(*) FROM repository_keys k WHERE k.repository_id = r.id "
        " AND k.present_at_head = 1) AS at_head "
        "FROM repositories r LEFT JOIN scans s ON s.id = r.last_scan_id ORDER BY r.target"
    ):
        repos.append(
            RepoView(
                target=clean(r["target"]),
                status=r["status"] or "never",
                errors=clean(loads(r["errors"], [])),
                scanned_at=r["started_at"],
                commits_scanned=r["commits_scanned"] or 0,
                commits_skipped=r["commits_skipped"] or 0,
                keys=r["keys"],
                keys_at_head=r["at_head"],
            )
        )
    keys: dict[str, KeyView] = {}
    sql = "SELECT * FROM keys"
    params: tuple[Any, ...] = ()
    if key_prefix:
        sql += " WHERE fingerprint LIKE ?"
        params = (key_prefix.lower() + "%",)
    for k in store.rows(sql + " ORDER BY fingerprint", params):
        keys[k["fingerprint"]] = KeyView(
            fingerprint=k["fingerprint"],
            rule_id=k["rule_id"],
            family=k["family"],
            confidence=k["confidence"],
            redacted=k["redacted"],
            length=k["length"],
            description=k["description"],
            verification=_verification(store.latest_verification(k["fingerprint"])),
            exposure=clean(store.latest_exposure(k["fingerprint"])),
        )
    for rk in store.rows(
        "SELECT k.*, r.target, "
        "(SELECT COUNT(*) FROM locations l WHERE l.repository_id = k.repository_id "
        " AND l.fingerprint = k.fingerprint) AS n, "
        "(SELECT COUNT(*) FROM locations l WHERE l.repository_id = k.repository_id "
        " AND l.fingerprint = k.fingerprint AND l.source = 'git-message') AS n_msg "
        "FROM repository_keys k JOIN repositories r ON r.id = k.repository_id "
        "ORDER BY r.target"
    ):
        view = keys.get(rk["fingerprint"])
        if view is None:
            continue
        present = rk["present_at_head"]
        view.repos.append(
            RepoKey(
                repository=clean(rk["target"]),
                introduced_commit=rk["introduced_commit"],
                introduced_date=rk["introduced_date"],
                introduced_author=clean(rk["introduced_author"]),
                introduced_email=clean(rk["introduced_email"]),
                introduced_subject=clean(rk["introduced_subject"]),
                introduced_path=clean(rk["introduced_path"]),
                introduced_line=rk["introduced_line"],
                present_at_head=None if present is None else bool(present),
                head_paths=clean(loads(rk["head_paths"], [])),
                removed_commit=rk["removed_commit"],
                removed_date=rk["removed_date"],
                removed_author=clean(rk["removed_author"]),
                removed_subject=clean(rk["removed_subject"]),
                refs=clean(loads(rk["refs"], [])),
                locations=rk["n"],
                in_messages=rk["n_msg"],
            )
        )
    audits = store.rows("SELECT COUNT(*), MAX(started_at) FROM audits")[0]
    ordered = sorted(keys.values(), key=lambda k: k.rank())
    return AuditView(
        db=store.path,
        generated_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        audits=int(audits[0]),
        last_audit=audits[1],
        repositories=repos,
        keys=ordered,
    )


def _verification(v: Verification | None) -> Verification | None:
    if v is not None:
        v.reason = clean(v.reason)
        v.project, v.organization = clean(v.project), clean(v.organization)
    return v


def revoke_command(key: KeyView, db: str) -> str:
    """The exact commands that revoke this key: a one-key report, then ``keyscan revoke``.

    ``keyscan revoke`` matches a key from its redacted form (first 8, last 4, length, family,
    project), so the report it reads holds no secret. Without ``--yes`` it only shows the plan.
    """
    report = f"keyscan-key-{key.short}.json"
    return (
        f"keyscan report --db {shlex.quote(db)} --format json --key {key.short} "
        f"-o {report}; keyscan revoke --report {report}"
    )


def next_steps(key: KeyView, db: str) -> list[tuple[str, str | None]]:
    """What to do, in order: (advice, command or None)."""
    steps: list[tuple[str, str | None]] = []
    if key.is_dead:
        steps.append(("The key no longer works: nothing to revoke.", None))
    else:
        urgency = "Revoke it now: it works." if key.is_live else (
            "Revoke it (it was not checked, or its status is unknown): show the plan, "
            "then add --yes."
        )
        steps.append((urgency, revoke_command(key, db)))
        if key.family == "legacy":
            steps.append(
                ("Legacy user keys may not be visible to the Admin API: if revoke finds no "
                 "match, delete it at https://platform.openai.com/api-keys.", None)
            )
    present = [r for r in key.repos if r.present_at_head]
    for r in present:
        paths = ", ".join(r.head_paths) or "HEAD"
        steps.append(
            (f"Remove it from {paths} in {r.repository} and load the key from the "
             "environment or a secret manager instead.", None)
        )
    steps.append(
        (
            "Then purge history (after revoking: a rewrite does not un-leak a key). In a fresh "
            "mirror clone, put the key in replacements.txt as one line KEY==>REMOVED, run the "
            "command, force-push every ref, ask your Git host to drop cached views and pull "
            "request refs, and have everyone re-clone.",
            "git filter-repo --sensitive-data-removal --replace-text replacements.txt"
            + (" --replace-message replacements.txt" if any(r.in_messages for r in key.repos)
               else ""),
        )
    )
    return steps


def where_now(key: KeyView) -> str:
    """A short sentence: where the key still is."""
    present = [r for r in key.repos if r.present_at_head]
    if present:
        return "; ".join(
            f"{r.repository}: {', '.join(r.head_paths) or 'HEAD'}" for r in present
        )
    if any(r.present_at_head is None for r in key.repos) and not any(
        r.present_at_head is False for r in key.repos
    ):
        return "in commit messages (history only)"
    return "history only (not at HEAD)"
