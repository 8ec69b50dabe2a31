"""Carry out a plan: delete, prove the leaked key is dead, record every action.

Each DELETE is written to the audit log with its HTTP status and ``x-request-id`` (never the
key). A DELETE is only the first half: the leaked key itself must then answer dead.

- After a delete, when the raw key is known, it is checked again until it answers
  ``invalid`` (propagation takes a moment): ``revoked``. Still live (or unanswered) after the
  re-checks: ``failed`` - the deleted key may not have been the leaked one.
- A 404 on DELETE (the key id is gone): the raw key is checked the same way; dead:
  ``already-revoked``; live: ``failed`` (whatever is gone, it was not the leaked key).
- Without the raw value (a redacted report, ``--key-id``), nothing can prove it:
  ``revoked-unconfirmed`` (the id was confirmed gone through the Admin API) or
  ``gone-unconfirmed`` (404); neither counts as done.

An error that will repeat for every key (the admin key is invalid or lacks write scope, rate
limiting after backoff, server errors, network) stops the run; the remaining keys are
reported as ``not-run``, so nothing is left half-done without saying so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from keyscan.models import Verification
from keyscan.revoke.audit import AuditLog
from keyscan.revoke.errors import AdminApiError, explain
from keyscan.revoke.model import (
    ALREADY_REVOKED,
    DELETE_ADMIN_KEY,
    DELETE_PROJECT_KEY,
    FAILED,
    GONE_UNCONFIRMED,
    NEEDS_SERVICE_ACCOUNT,
    NO_ACTION,
    NOT_RUN,
    PREVIOUSLY,
    REVOKED,
    REVOKED_UNCONFIRMED,
    SKIPPED,
    Candidate,
    LeakedKey,
    Outcome,
    PlanItem,
)


@dataclass
class Answer:
    """A successful Admin API answer."""

    status: int
    body: Any
    request_id: str | None = None


class AdminWriter(Protocol):
    def delete_project_key(self, project_id: str, key_id: str) -> Answer: ...

    def delete_service_account(self, project_id: str, service_account_id: str) -> Answer: ...

    def delete_admin_key(self, key_id: str) -> Answer: ...

    def get_project_key(self, project_id: str, key_id: str) -> dict[str, Any] | None: ...

    def get_admin_key(self, key_id: str) -> dict[str, Any] | None: ...


Verifier = Callable[[LeakedKey], Verification]


@dataclass
class ExecOptions:
    delete_service_account: bool = False
    # Re-checks after a delete: how many, and the pause before each (doubling).
    recheck_attempts: int = 4
    recheck_delay: float = 1.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)


class Executor:
    def __init__(
        self,
        client: AdminWriter,
        audit: AuditLog,
        options: ExecOptions,
        verifier: Verifier | None = None,
    ) -> None:
        self.client = client
        self.audit = audit
        self.options = options
        self.verifier = verifier
        self.aborted: AdminApiError | None = None

    def run(self, plan: list[PlanItem]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for item in plan:
            if self.aborted is not None and item.action != NO_ACTION:
                outcomes.append(
                    Outcome(item, NOT_RUN, "not attempted: the run stopped at an earlier error")
                )
                continue
            outcomes.append(self.run_one(item))
        return outcomes

    # -- one item -------------------------------------------------------------------------------
    def run_one(self, item: PlanItem) -> Outcome:
        if item.action == NO_ACTION:
            status = ALREADY_REVOKED if item.reason == PREVIOUSLY else SKIPPED
            return Outcome(item, status, item.message)
        target = item.target
        assert target is not None
        try:
            if item.action == DELETE_ADMIN_KEY:
                return self.delete_admin(item, target)
            if item.action == DELETE_PROJECT_KEY:
                return self.delete_project(item, target)
        except AdminApiError as exc:
            return self.error(item, target, exc, item.action)
        raise ValueError(f"unknown plan action {item.action!r}")

    def _record(
        self,
        action: str,
        result: str,
        item: PlanItem,
        target: Candidate,
        http_status: int | None,
        request_id: str | None,
        message: str = "",
        **extra: Any,
    ) -> None:
        self.audit.record(
            action=action,
            result=result,
            project=target.project_id,
            key_id=target.id,
            redacted=item.leaked.redacted,
            fingerprint=item.leaked.fingerprint,
            family=item.leaked.family,
            http_status=http_status,
            request_id=request_id,
            message=message,
            **extra,
        )

    def error(
        self, item: PlanItem, target: Candidate, exc: AdminApiError, action: str, **extra: Any
    ) -> Outcome:
        message = explain(exc.kind, exc.status or 0, exc.message)
        self._record(
            action, "error", item, target, exc.status, exc.request_id, exc.message, **extra
        )
        if exc.fatal:
            self.aborted = exc
        return Outcome(item, FAILED, message, exc.status, exc.request_id)

    def delete_project(self, item: PlanItem, target: Candidate) -> Outcome:
        project_id = target.project_id or ""
        try:
            answer = self.client.delete_project_key(project_id, target.id)
        except AdminApiError as exc:
            if exc.kind == "not-found":
                return self.gone(DELETE_PROJECT_KEY, item, target, exc, target.id)
            if exc.kind == "bad-request" and target.owner_type == "service_account":
                self._record(
                    DELETE_PROJECT_KEY, "refused", item, target, exc.status, exc.request_id,
                    exc.message,
                )
                return self.service_account_path(item, target, exc)
            raise
        return self.deleted(
            DELETE_PROJECT_KEY, item, target, answer, target.id, f"deleted {target.id}"
        )

    def service_account_path(
        self, item: PlanItem, target: Candidate, refusal: AdminApiError
    ) -> Outcome:
        sa = target.owner_id or "?"
        count = item.service_account_keys
        others = f"all {count} of its keys in this project" if count else "all of its keys"
        if not self.options.delete_service_account:
            return Outcome(
                item,
                NEEDS_SERVICE_ACCOUNT,
                f"the API refuses to delete a service account's key ({refusal.message}). "
                f"Rerun with --delete-service-account to delete service account {sa} "
                f"({target.owner_name or 'unnamed'}) in project {target.project_id}; "
                f"WARNING: that revokes {others}, not only the leaked one",
                refusal.status,
                refusal.request_id,
            )
        try:
            answer = self.client.delete_service_account(target.project_id or "", sa)
        except AdminApiError as exc:
            if exc.kind == "not-found":
                return self.gone(
                    "delete-service-account", item, target, exc, f"service account {sa}",
                    service_account_id=sa,
                )
            return self.error(item, target, exc, "delete-service-account", service_account_id=sa)
        return self.deleted(
            "delete-service-account", item, target, answer, f"service account {sa}",
            f"deleted service account {sa} and with it {others}",
            f"revokes {others}", service_account_id=sa,
        )

    def delete_admin(self, item: PlanItem, target: Candidate) -> Outcome:
        try:
            answer = self.client.delete_admin_key(target.id)
        except AdminApiError as exc:
            if exc.kind == "not-found":
                return self.gone(DELETE_ADMIN_KEY, item, target, exc, f"admin key {target.id}")
            raise
        return self.deleted(
            DELETE_ADMIN_KEY, item, target, answer, target.id, f"deleted admin key {target.id}"
        )

    # -- proof ----------------------------------------------------------------------------------
    def deleted(
        self,
        action: str,
        item: PlanItem,
        target: Candidate,
        answer: Answer,
        what: str,
        done: str,
        message: str = "",
        **extra: Any,
    ) -> Outcome:
        """Record a DELETE's answer; go on to prove it only if the API confirmed it."""
        confirmed = isinstance(answer.body, dict) and answer.body.get("deleted") is True
        self._record(
            action, "deleted" if confirmed else "not-deleted", item, target,
            answer.status, answer.request_id, message, **extra,
        )  # fmt: skip
        if not confirmed:
            return Outcome(
                item, FAILED, f"the API did not confirm deleting {what}",
                answer.status, answer.request_id,
            )  # fmt: skip
        return self.confirm(item, target, answer, done)

    def confirm(self, item: PlanItem, target: Candidate, answer: Answer, done: str) -> Outcome:
        leaked = item.leaked
        if leaked.secret is not None and self.verifier is not None:
            return self.recheck_key(item, target, answer, done)
        return self.recheck_id(item, target, answer, done)

    def _pause(self, attempt: int) -> None:
        if attempt > 0 and self.options.recheck_delay > 0:
            self.options.sleep(self.options.recheck_delay * (2 ** (attempt - 1)))

    def _recheck(self, item: PlanItem) -> tuple[Verification | None, int]:
        """Check the raw leaked key until it answers dead (pausing, doubling, between
        checks); the last answer and how many checks it took."""
        assert self.verifier is not None
        last: Verification | None = None
        attempts = max(1, self.options.recheck_attempts)
        for attempt in range(attempts):
            self._pause(attempt)
            last = self.verifier(item.leaked)
            if last.is_dead:
                return last, attempt + 1
        return last, attempts

    def recheck_key(self, item: PlanItem, target: Candidate, answer: Answer, done: str) -> Outcome:
        last, attempts = self._recheck(item)
        status = last.status if last else "unknown"
        if last is not None and last.is_dead:
            self._record(
                "recheck", REVOKED, item, target, last.http_status, last.request_id,
                f"the leaked key now answers {status}", attempts=attempts,
            )
            return Outcome(
                item, REVOKED,
                f"{done}; the leaked key now answers {status} "
                f"({last.reason or 'invalid_api_key'})",
                answer.status, answer.request_id,
            )
        self._record_not_dead(item, target, last, status, attempts)
        return Outcome(
            item, FAILED,
            f"{done}, but the leaked key still answers {status} after {attempts} checks: "
            f"{target.id} may not have been the leaked key (or the delete has not propagated "
            "yet); check the key again, and the audit log",
            answer.status, answer.request_id,
        )

    def _record_not_dead(
        self, item: PlanItem, target: Candidate, last: Verification | None, status: str,
        attempts: int,
    ) -> None:
        """The audit record of a leaked key that does not answer dead after its re-checks."""
        still = "still-live" if last is not None and last.is_live else "unconfirmed"
        self._record(
            "recheck", still, item, target, last.http_status if last else None,
            last.request_id if last else None,
            f"the leaked key still answers {status} after {attempts} checks", attempts=attempts,
        )

    def gone(
        self, action: str, item: PlanItem, target: Candidate, exc: AdminApiError, what: str,
        **extra: Any,
    ) -> Outcome:
        """DELETE answered 404: the id is gone. Done only if the leaked key answers dead."""
        self._record(
            action, "not-found", item, target, exc.status, exc.request_id,
            f"{what} no longer exists", **extra,
        )
        if item.leaked.secret is None or self.verifier is None:
            return Outcome(
                item, GONE_UNCONFIRMED,
                f"{what} no longer exists (404), but the leaked value itself was not "
                "re-checked (its raw value is not available: redacted input)",
                exc.status, exc.request_id,
            )
        last, attempts = self._recheck(item)
        status = last.status if last else "unknown"
        if last is not None and last.is_dead:
            self._record(
                "recheck", ALREADY_REVOKED, item, target, last.http_status, last.request_id,
                f"the leaked key answers {status}", attempts=attempts,
            )
            return Outcome(
                item, ALREADY_REVOKED,
                f"{what} no longer exists (404) and the leaked key answers {status}: "
                "already deleted",
                exc.status, exc.request_id,
            )
        self._record_not_dead(item, target, last, status, attempts)
        return Outcome(
            item, FAILED,
            f"{what} no longer exists (404), yet the leaked key still answers {status} after "
            f"{attempts} checks: {what} was not the leaked key",
            exc.status, exc.request_id,
        )

    def recheck_id(self, item: PlanItem, target: Candidate, answer: Answer, done: str) -> Outcome:
        attempts = max(1, self.options.recheck_attempts)
        gone = False
        for attempt in range(attempts):
            self._pause(attempt)
            try:
                if target.kind == "admin-key":
                    gone = self.client.get_admin_key(target.id) is None
                else:
                    gone = self.client.get_project_key(target.project_id or "", target.id) is None
            except AdminApiError:
                gone = False
            if gone:
                break
        note = (
            "the key id is gone from the organization, but the leaked value itself was not "
            "re-checked (its raw value is not available: redacted input)"
            if gone
            else f"the key id is still listed after {attempts} checks"
        )
        self._record("recheck", REVOKED_UNCONFIRMED, item, target, None, None, note)
        return Outcome(
            item, REVOKED_UNCONFIRMED, f"{done}; {note}", answer.status, answer.request_id
        )
