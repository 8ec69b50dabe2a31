"""The plan: for each leaked key, which key of the organization to delete, if any, and why.

Planning only reads (GET). It never guesses. A redaction (first 8, last 4, length) narrows the
search but cannot prove identity: an innocent key of the organization can share all of it with
a leaked key of another organization, or with one already deleted. So a key is deleted only if

- exactly one key of the organization agrees with the leaked key on everything both
  redactions keep, **and** the raw leaked key, checked now, answers live and ties itself to
  that key: a project key's answer names its project (``openai-project``) and the candidate
  is in it; a leaked admin key can itself see the candidate admin key (same organization);
- or the user named the key with ``--key-id`` (among the candidates).

Anything else (a redacted report, a raw key not checked or not answering, a live key whose
answer names no project) is planned but not deleted; the plan says why and which
``--key-id`` would pick the candidate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from keyscan.models import fingerprint_of
from keyscan.openai_facts import AZURE_REVOKE_HELP, NOT_ADMIN_API, owner_type_for_prefix
from keyscan.revoke.matching import KeyShape, compare
from keyscan.revoke.model import (
    AMBIGUOUS,
    CHOSEN,
    DASHBOARD,
    DASHBOARD_HELP,
    DEAD,
    DELETE_ADMIN_KEY,
    DELETE_PROJECT_KEY,
    NO_ACTION,
    NOT_FOUND,
    PREVIOUS_UNCONFIRMED,
    PREVIOUSLY,
    SELF,
    UNCONFIRMED,
    UNIQUE,
    Candidate,
    LeakedKey,
    PlanItem,
)

PROJECT_FAMILIES = ("project", "service_account", "user")
# Families that may have no Admin API object at all: without a match, the dashboard.
DASHBOARD_FAMILIES = ("legacy", "unknown", "user")
AZURE_HELP = AZURE_REVOKE_HELP


class AdminReader(Protocol):
    """The read side of the Admin API client (keyscan.revoke.client.AdminClient)."""

    def list_projects(self) -> list[dict[str, Any]]: ...

    def list_project_keys(self, project_id: str) -> list[dict[str, Any]] | None: ...

    def list_admin_keys(self) -> list[dict[str, Any]]: ...

    def admin_key_visible_to(self, secret: str, key_id: str) -> bool: ...


@dataclass
class PlanOptions:
    # --key-id: resolves an ambiguous match (must be one of the candidates).
    key_ids: frozenset[str] = frozenset()
    # The admin key making the requests (never deleted).
    admin_key: str = field(default="", repr=False)
    # Audit records of earlier runs (a key revoked before is "already-revoked" now).
    history: list[dict[str, Any]] = field(default_factory=list)


def candidate_from_project_key(
    obj: dict[str, Any], project: dict[str, Any] | None, project_id: str
) -> Candidate:
    owner = obj.get("owner") or {}
    owner_type = str(owner.get("type") or "user")
    who = owner.get(owner_type) or {}
    name = who.get("name") if isinstance(who, dict) else None
    if owner_type == "user" and isinstance(who, dict) and who.get("email"):
        name = f"{name or ''} <{who['email']}>".strip()
    return Candidate(
        kind="project-key",
        id=str(obj.get("id")),
        name=obj.get("name"),
        redacted_value=str(obj.get("redacted_value") or ""),
        created_at=obj.get("created_at"),
        last_used_at=obj.get("last_used_at"),
        owner_type=owner_type,
        owner_id=who.get("id") if isinstance(who, dict) else None,
        owner_name=name,
        project_id=project_id,
        project_name=(project or {}).get("name"),
        project_archived=bool(
            project and (project.get("archived_at") or project.get("status") == "archived")
        ),
    )


def candidate_from_admin_key(obj: dict[str, Any]) -> Candidate:
    owner = obj.get("owner") or {}
    return Candidate(
        kind="admin-key",
        id=str(obj.get("id")),
        name=obj.get("name"),
        redacted_value=str(obj.get("redacted_value") or ""),
        created_at=obj.get("created_at"),
        last_used_at=obj.get("last_used_at"),
        owner_type="user",
        owner_id=owner.get("id"),
        owner_name=owner.get("name"),
    )


class Planner:
    """Builds the plan, reading each list from the Admin API at most once."""

    def __init__(self, client: AdminReader, options: PlanOptions) -> None:
        self.client = client
        self.options = options
        self._projects: list[dict[str, Any]] | None = None
        self._keys: dict[str, list[dict[str, Any]] | None] = {}
        self._admin_keys: list[dict[str, Any]] | None = None
        self.used_key_ids: set[str] = set()

    # -- cached reads -------------------------------------------------------------------------
    def projects(self) -> list[dict[str, Any]]:
        if self._projects is None:
            self._projects = self.client.list_projects()
        return self._projects

    def project(self, project_id: str) -> dict[str, Any] | None:
        for p in self.projects():
            if p.get("id") == project_id:
                return p
        return None

    def project_keys(self, project_id: str) -> list[dict[str, Any]] | None:
        if project_id not in self._keys:
            self._keys[project_id] = self.client.list_project_keys(project_id)
        return self._keys[project_id]

    def admin_keys(self) -> list[dict[str, Any]]:
        if self._admin_keys is None:
            self._admin_keys = self.client.list_admin_keys()
        return self._admin_keys

    # -- planning -----------------------------------------------------------------------------
    def plan(self, keys: Iterable[LeakedKey]) -> list[PlanItem]:
        items = [self.plan_one(k) for k in keys]
        # One key of the organization matched by several leaked keys: it cannot be both, so
        # which one it is stays unknown. Delete nothing for any of them.
        by_target: dict[str, list[PlanItem]] = {}
        for item in items:
            if item.target is not None and item.action != NO_ACTION:
                by_target.setdefault(item.target.id, []).append(item)
        for target_id, group in by_target.items():
            if len(group) < 2:
                continue
            for item in group:
                item.action = NO_ACTION
                item.reason = AMBIGUOUS
                item.message = (
                    f"{target_id} matches {len(group)} different leaked keys: it cannot be "
                    "told which one it is; nothing will be deleted"
                )
                item.candidates = [item.target] if item.target else []
                item.target = None
        for item in items:
            if item.action != NO_ACTION and item.reason == UNIQUE:
                self.require_proof(item)
        return items

    def require_proof(self, item: PlanItem) -> None:
        """A unique match on the redaction alone is not enough: keep the DELETE only if the
        raw key ties itself to the candidate; otherwise plan nothing and say why."""
        target = item.target
        assert target is not None
        why = self.unproven(item.leaked, target)
        if why is None:
            return
        item.action = NO_ACTION
        item.reason = UNCONFIRMED
        item.message = (
            f"{target.id} has the same first 8 and last 4 characters and length, but {why}; "
            "a redacted value cannot prove which key this is (a key of another organization, "
            "or one already deleted, can look the same): nothing will be deleted. If you "
            f"are sure it is this key, rerun with --key-id {target.id}"
        )
        item.candidates = [target]
        item.target = None

    def unproven(self, leaked: LeakedKey, target: Candidate) -> str | None:
        """Why the raw key does not prove that ``target`` is the leaked key (None: it does)."""
        if leaked.secret is None:
            return "only a redacted value is known (the raw key is not available to check)"
        v = leaked.verification
        if v is None:
            return "the key was not checked (--no-check)"
        if not v.is_live:
            return f"the key could not be checked ({v.status}: {v.reason or 'no answer'})"
        if target.kind == "admin-key":
            if self.client.admin_key_visible_to(leaked.secret, target.id):
                return None
            return (
                f"the key cannot see {target.id} through the Admin API (it belongs to another "
                "organization, or lacks read access)"
            )
        if not v.project:
            return (
                f"the key answers {v.status} but its answer did not name its project (no "
                "openai-project header), so nothing ties it to this project key"
            )
        if v.project != target.project_id:
            return f"the key reports project {v.project}, not {target.project_id}"
        return None

    def unused_key_ids(self) -> list[str]:
        return sorted(self.options.key_ids - self.used_key_ids)

    def plan_one(self, leaked: LeakedKey) -> PlanItem:
        if leaked.is_dead:
            status = leaked.verification.status if leaked.verification else "invalid"
            previous = self.previous(leaked)
            if previous is not None:
                return PlanItem(
                    leaked,
                    NO_ACTION,
                    PREVIOUSLY,
                    f"revoked on {previous.get('timestamp')} ({previous.get('key_id')}); "
                    f"the key now answers {status}",
                )
            return PlanItem(
                leaked, NO_ACTION, DEAD, f"the key is not live ({status}): nothing to revoke"
            )
        if leaked.family == "azure":
            return PlanItem(leaked, NO_ACTION, DASHBOARD, AZURE_HELP)
        if leaked.family in NOT_ADMIN_API:
            return PlanItem(leaked, NO_ACTION, DASHBOARD, NOT_ADMIN_API[leaked.family])
        if leaked.family == "admin":
            return self.plan_admin(leaked)
        return self.plan_project(leaked)

    def previous(self, leaked: LeakedKey) -> dict[str, Any] | None:
        """The audit record of an earlier delete of this key (answered 200 or 404), if any."""
        for rec in reversed(self.options.history):
            if (
                rec.get("fingerprint") == leaked.fingerprint
                and str(rec.get("action", "")).startswith("delete-")
                and rec.get("result") in ("deleted", "already-revoked", "not-found")
            ):
                found: dict[str, Any] = rec
                return found
        return None

    def proven_dead_before(self, leaked: LeakedKey) -> bool:
        """Whether an earlier run saw this very key (raw) answer invalid after a delete."""
        return any(
            rec.get("fingerprint") == leaked.fingerprint
            and rec.get("action") == "recheck"
            and rec.get("result") in ("revoked", "already-revoked")
            for rec in self.options.history
        )

    def choose(
        self, leaked: LeakedKey, candidates: list[Candidate], action: str
    ) -> PlanItem:
        chosen = [c for c in candidates if c.id in self.options.key_ids]
        if len(chosen) == 1:
            self.used_key_ids.add(chosen[0].id)
            matches = f"{len(candidates)} keys match; " if len(candidates) > 1 else ""
            return PlanItem(
                leaked,
                action,
                CHOSEN,
                f"{matches}--key-id chose {chosen[0].id}",
                target=chosen[0],
                candidates=candidates,
            )
        if len(candidates) == 1:
            return PlanItem(leaked, action, UNIQUE, target=candidates[0], candidates=candidates)
        return PlanItem(
            leaked,
            NO_ACTION,
            AMBIGUOUS,
            f"{len(candidates)} keys match its first 8 and last 4 characters and length: "
            "nothing will be deleted; pick one with --key-id",
            candidates=candidates,
        )

    def not_found(
        self, leaked: LeakedKey, where: str, near: list[str] | None = None
    ) -> PlanItem:
        previous = self.previous(leaked)
        if previous is not None:
            return self.deleted_before(leaked, previous)
        if leaked.family in DASHBOARD_FAMILIES:
            return PlanItem(
                leaked,
                NO_ACTION,
                DASHBOARD,
                f"no key of this organization matches ({where}); "
                + DASHBOARD_HELP.format(tail=leaked.tail),
            )
        msg = f"not found in this organization ({where})"
        if near:
            shown = ", ".join(near[:5]) + (", ..." if len(near) > 5 else "")
            msg += (
                f"; {len(near)} key(s) share its first and last characters but were ruled "
                f"out: {shown}"
            )
        return PlanItem(leaked, NO_ACTION, NOT_FOUND, msg)

    def deleted_before(self, leaked: LeakedKey, previous: dict[str, Any]) -> PlanItem:
        """No key of the organization matches, and the audit log records deleting one for
        this key: done only if that was proven (the raw key answered invalid after it)."""
        what = f"{previous.get('key_id')} on {previous.get('timestamp')} (audit log)"
        v = leaked.verification
        if leaked.secret is not None and v is not None and v.is_live:
            return PlanItem(
                leaked,
                NO_ACTION,
                PREVIOUS_UNCONFIRMED,
                f"keyscan deleted {what} for this key, but the key still answers {v.status}: "
                "that deletion did not revoke it (it was another key, or it has not "
                "propagated yet); nothing more will be deleted: find the key in the dashboard",
            )
        if self.proven_dead_before(leaked):
            return PlanItem(
                leaked, NO_ACTION, PREVIOUSLY,
                f"revoked: deleted {what}, and the key answered invalid afterwards",
            )  # fmt: skip
        return PlanItem(
            leaked,
            NO_ACTION,
            PREVIOUS_UNCONFIRMED,
            f"keyscan deleted {what} for this key, but never saw the key itself answer "
            "invalid: check it with the raw key (keyscan verify, or keyscan revoke -)",
        )

    def plan_project(self, leaked: LeakedKey) -> PlanItem:
        project_id = leaked.project
        projects = self.projects()
        if project_id:
            # Only the project the key belongs to: a look-alike elsewhere is someone else's.
            project = self.project(project_id)
            keys = self.project_keys(project_id) if project is not None else None
            if keys is None:
                return self.not_found(
                    leaked, f"project {project_id}, reported by verification, is not in it"
                )
            pairs = [(project, project_id, keys)]
            where = f"searched project {project_id}"
        else:
            pairs = []
            for p in projects:
                pid = str(p.get("id"))
                pkeys = self.project_keys(pid)
                if pkeys is not None:
                    pairs.append((p, pid, pkeys))
            where = f"searched {len(pairs)} project(s), archived included"
        expected_owner = owner_type_for_prefix(leaked.shape.head, leaked.family)
        candidates: list[Candidate] = []
        near: list[str] = []
        for project, pid, pkeys in pairs:
            for obj in pkeys:
                cand = candidate_from_project_key(obj, project, pid)
                shape = cand.shape
                if shape is None:
                    continue
                verdict = compare(leaked.shape, shape)
                if not verdict.matches:
                    if verdict.why == "length differs":
                        near.append(f"{cand.id} ({verdict.why})")
                    continue
                if expected_owner is not None and cand.owner_type != expected_owner:
                    near.append(f"{cand.id} (owned by a {cand.owner_type.replace('_', ' ')})")
                    continue
                candidates.append(cand)
        if not candidates:
            return self.not_found(leaked, where, near)
        item = self.choose(leaked, candidates, DELETE_PROJECT_KEY)
        target = item.target
        if target is not None and target.owner_type == "service_account":
            item.service_account_keys = sum(
                1
                for _, pid, pkeys in pairs
                if pid == target.project_id
                for obj in pkeys
                if ((obj.get("owner") or {}).get("service_account") or {}).get("id")
                == target.owner_id
            )
        return item

    def plan_admin(self, leaked: LeakedKey) -> PlanItem:
        admin_key = self.options.admin_key
        if admin_key and fingerprint_of(admin_key) == leaked.fingerprint:
            return PlanItem(
                leaked,
                NO_ACTION,
                SELF,
                "this is the admin key making the request: refusing to delete it; revoke it "
                "with another admin key or in the dashboard (https://platform.openai.com/"
                "settings/organization/admin-keys)",
            )
        candidates: list[Candidate] = []
        for obj in self.admin_keys():
            cand = candidate_from_admin_key(obj)
            shape = cand.shape
            if shape is not None and compare(leaked.shape, shape).matches:
                candidates.append(cand)
        if not candidates:
            return self.not_found(leaked, f"searched {len(self.admin_keys())} admin key(s)")
        item = self.choose(leaked, candidates, DELETE_ADMIN_KEY)
        target = item.target
        if target is not None and admin_key:
            shape = target.shape
            if shape is not None and compare(KeyShape.of_secret(admin_key), shape).matches:
                return PlanItem(
                    leaked,
                    NO_ACTION,
                    SELF,
                    f"the matching admin key {target.id} looks like the admin key making the "
                    "request (same first and last characters): refusing to delete it",
                    candidates=candidates,
                )
        return item
