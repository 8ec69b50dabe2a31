"""Revocation through the OpenAI Admin API: plan, match safely, delete, prove, record.

(openai-facts.md, section 3.) The flow, for ``keyscan revoke`` and ``scan|git --revoke``:

1. leaked keys come from findings, a keyscan JSON report (redacted is enough) or stdin;
   keys known to be dead have nothing to revoke; raw keys not yet checked are checked first;
2. the plan (only GETs): project keys are looked up in the project verification reported
   (``openai-project``), else in every project, archived ones included; admin keys among the
   admin keys. A redaction never proves identity: a key is deleted only if exactly one key of
   the organization agrees with it (first 8, last 4, length, owner type) *and* the raw key,
   checked now, ties itself to it (its answer names that key's project; a leaked admin key
   can itself see the candidate), or the user picked one with ``--key-id``
   (keyscan.revoke.plan);
3. a dry run makes the plan; ``--yes`` carries it out: every DELETE goes to the audit log
   (keyscan.revoke.audit) and the leaked key is checked again until it answers invalid; if
   it does not (after a DELETE or a 404), the outcome is ``failed``.

API (prints nothing; ``keyscan.revoke.render.run_text`` renders a run)::

    options = RevokeOptions(admin_key=..., base_url=..., yes=False, audit_path=...)
    run = run_revocation(leaked_keys, options, on_plan=show)  # run.code: 0 done, 1 keys left,
                                                              # 2 error (or a key still live)
    run = revoke_findings(findings, options, on_plan=show)    # the RunOptions.revoke callback
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyscan.errors import KeyscanError
from keyscan.exitcodes import (
    EXIT_CLEAN,
    EXIT_ERROR,
    decide,
    for_revocation_after_scan,
)
from keyscan.models import Finding, RevocationOutcome, Verification
from keyscan.openai_facts import ADMIN_PREFIX
from keyscan.revoke.audit import AuditError, AuditLog, default_audit_path, read_records
from keyscan.revoke.errors import AdminApiError, explain, scrub
from keyscan.revoke.model import (
    ALREADY_REVOKED,
    DEAD,
    FAILED,
    NO_ACTION,
    NOT_RUN,
    PREVIOUSLY,
    REVOKED,
    REVOKED_UNCONFIRMED,
    InputError,
    LeakedKey,
    Outcome,
    PlanItem,
    dedupe,
    leaked_from_finding,
    leaked_from_report,
    leaked_from_secret,
)


def for_revocation(plan: list[PlanItem], outcomes: list[Outcome] | None) -> int:
    """``keyscan revoke``'s exit code (decided by ``keyscan.exitcodes.decide``): 0 nothing
    left to do, 1 keys left (a dry run, not found, ambiguous, unconfirmed...), 2 an error (a
    deletion failed or did not run). ``outcomes`` is None for a dry run."""
    if outcomes is None:
        done = all(
            item.action == NO_ACTION and item.reason in (DEAD, PREVIOUSLY) for item in plan
        )
        return decide(error=False, findings=not done)
    # Only what the leaked key itself confirmed: unconfirmed outcomes are work left.
    finished = (REVOKED, ALREADY_REVOKED)
    left = [
        o
        for o in outcomes
        if o.status not in finished and not (o.item.reason == DEAD and o.item.action == NO_ACTION)
    ]
    return decide(error=any(o.status in (FAILED, NOT_RUN) for o in outcomes), findings=bool(left))


__all__ = [
    "AdminApiError",
    "InputError",
    "LeakedKey",
    "RevocationRun",
    "RevokeOptions",
    "admin_key_from",
    "leaked_from_finding",
    "leaked_from_report",
    "leaked_from_secret",
    "revoke_findings",
    "run_revocation",
]

class AdminKeyError(KeyscanError):
    """No usable admin key."""


def admin_key_from(
    key_file: Path | None, environ: Mapping[str, str] | None = None
) -> tuple[str, list[str]]:
    """The admin key from ``--admin-key-file`` or ``OPENAI_ADMIN_KEY``, and warnings."""
    env = os.environ if environ is None else environ
    warnings: list[str] = []
    if key_file is not None:
        try:
            text = key_file.read_text(encoding="utf-8")
            mode = stat.S_IMODE(key_file.stat().st_mode)
        except OSError as exc:
            raise AdminKeyError(
                f"cannot read admin key file {key_file}: {exc.strerror or exc}"
            ) from None
        if mode & 0o077:
            warnings.append(
                f"admin key file {key_file} is readable by others (mode {mode:04o}): "
                "chmod 600 it"
            )
        key = text.strip()
        if not key or len(key.split()) != 1:
            raise AdminKeyError(f"admin key file {key_file}: expected one key on one line")
        source = str(key_file)
    else:
        key = (env.get("OPENAI_ADMIN_KEY") or "").strip()
        if not key:
            raise AdminKeyError(
                "no admin key: set OPENAI_ADMIN_KEY or use --admin-key-file FILE "
                "(an organization admin key with write access; never on the command line)"
            )
        source = "OPENAI_ADMIN_KEY"
    if not key.startswith(ADMIN_PREFIX):
        warnings.append(
            f"the key in {source} does not look like an admin key (sk-admin-...): the Admin "
            "API will likely refuse it"
        )
    return key, warnings


ExposureHook = Callable[[Any, list[PlanItem], list[dict[str, Any]]], Mapping[str, str]]


@dataclass
class RevokeOptions:
    admin_key: str = field(repr=False)
    base_url: str
    yes: bool = False
    key_ids: frozenset[str] = frozenset()
    delete_service_account: bool = False
    audit_path: Path = field(default_factory=default_audit_path)
    fmt: str = "text"  # text | json
    # Check raw keys that carry no verification before planning (a dead key is skipped).
    check_first: bool = True
    recheck_attempts: int = 4
    recheck_delay: float = 1.0
    retries: int = 3
    timeout: float = 20.0
    backoff_initial: float = 0.5
    # Tests: an httpx.BaseTransport for the Admin API client and an httpx.AsyncBaseTransport
    # for key checks (keyscan.verify). None: the network.
    transport: Any = None
    verify_transport: Any = None
    sleep: Callable[[float], None] | None = field(default=None, repr=False)
    # Exposure evidence for the plan (filled by the command layer, so that this package never
    # imports keyscan.exposure): called with the Admin API client, the plan and the audit
    # history once the plan is made, before it is shown; answers one line per leaked key
    # ("used 3 times after it leaked, last 2026-11-20, cost $0.42") by fingerprint.
    exposure: ExposureHook | None = field(default=None, repr=False)


def _verify_options(options: RevokeOptions) -> Any:
    from keyscan.verify import VerifyOptions

    return VerifyOptions(
        api_base=options.base_url,
        use_cache=False,
        transport=options.verify_transport,
        retries=options.retries,
        timeout=options.timeout,
        backoff_initial=options.backoff_initial,
    )


def _check_keys(keys: list[LeakedKey], options: RevokeOptions) -> None:
    """Verify raw keys with no verification yet (dead ones will be skipped)."""
    todo = [k for k in keys if k.secret is not None and k.verification is None]
    if not todo:
        return
    from keyscan.verify import verify_keys

    verdicts = verify_keys([(k.secret or "", k.family) for k in todo], _verify_options(options))
    for k in todo:
        k.verification = verdicts.get(k.fingerprint)


def _verifier(options: RevokeOptions) -> Callable[[LeakedKey], Verification]:
    vopts = _verify_options(options)

    def check(leaked: LeakedKey) -> Verification:
        from keyscan.verify import verify_key

        assert leaked.secret is not None
        return verify_key(leaked.secret, leaked.family, vopts)

    return check


@dataclass
class RevocationRun:
    """What a revocation did, as data; ``keyscan.revoke.render.run_text`` shows it.

    ``code``: 0 nothing left to do, 1 keys left (a dry run, not found, ambiguous,
    unconfirmed...), 2 an error. ``outcomes`` is None when nothing was carried out (a dry run,
    or an error before or during the deletions). ``errors`` and ``warnings`` are one line each,
    scrubbed of keys."""

    code: int = EXIT_CLEAN
    dry_run: bool = True
    no_keys: bool = False
    plan: list[PlanItem] = field(default_factory=list)
    outcomes: list[Outcome] | None = None
    error_line: str | None = None  # the summary of a run that stopped or failed (also in errors)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    exposure: dict[str, str] = field(default_factory=dict)  # fingerprint -> one line

    def fail(self, message: str) -> RevocationRun:
        self.errors.append(scrub(message))
        self.code = EXIT_ERROR
        return self


def run_revocation(
    keys: list[LeakedKey],
    options: RevokeOptions,
    on_plan: Callable[[RevocationRun], None] | None = None,
) -> RevocationRun:
    """Plan (and with ``options.yes`` carry out) the revocation of ``keys``. Prints nothing:
    ``on_plan`` is called with the run once the plan is made and before any DELETE, so that a
    caller can show the plan first."""
    from keyscan.revoke.client import AdminClient
    from keyscan.revoke.execute import ExecOptions, Executor
    from keyscan.revoke.plan import Planner, PlanOptions

    run = RevocationRun(dry_run=not options.yes)
    keys = dedupe(keys)
    if not keys:
        run.no_keys = True
        return run
    audit = AuditLog(
        options.audit_path,
        forbidden=[options.admin_key, *[k.secret for k in keys if k.secret]],
    )
    try:
        history = read_records(options.audit_path)
        if options.yes:
            audit.check_writable()
    except AuditError as exc:
        return run.fail(f"{exc}: nothing was deleted")

    if options.check_first:
        try:
            _check_keys(keys, options)
        except ValueError as exc:  # UnsafeBaseUrl
            return run.fail(f"--api-base: {exc}")

    try:
        client = AdminClient.connect(
            options.base_url, options.admin_key, options.transport, options.retries,
            options.timeout, options.backoff_initial,
        )
    except AdminApiError as exc:
        return run.fail(f"--api-base: {exc.message}")
    with client:
        planner = Planner(
            client,
            PlanOptions(
                key_ids=options.key_ids, admin_key=options.admin_key, history=history
            ),
        )
        try:
            plan = planner.plan(keys)
        except AdminApiError as exc:
            return run.fail(
                f"cannot plan the revocation: {explain(exc.kind, exc.status or 0, exc.describe())}"
                "; nothing was deleted"
            )
        unused = planner.unused_key_ids()
        if unused and options.yes:
            # The user meant a key this run would not delete: stop rather than guess.
            return run.fail(
                f"--key-id {', '.join(unused)}: not among the candidates of any leaked key "
                "(see the plan without --yes); nothing was deleted"
            )
        run.warnings.extend(
            f"--key-id {key_id} is not among the candidates of any leaked key"
            for key_id in unused
        )
        run.plan = plan
        if options.exposure is not None:
            try:
                run.exposure = {fp: scrub(line) for fp, line in
                                options.exposure(client, plan, history).items()}
            except (AdminApiError, OSError, ValueError) as exc:
                run.warnings.append(scrub(f"no exposure figures: {exc}"))
        if on_plan is not None:
            on_plan(run)
        if not options.yes:
            run.code = for_revocation(plan, None)
            return run
        executor = Executor(
            client,
            audit,
            ExecOptions(
                delete_service_account=options.delete_service_account,
                recheck_attempts=options.recheck_attempts,
                recheck_delay=options.recheck_delay,
                **({"sleep": options.sleep} if options.sleep is not None else {}),
            ),
            _verifier(options),
        )
        try:
            outcomes = executor.run(plan)
        except AuditError as exc:
            return run.fail(f"{exc}: stopped; see the output above for what was done")
    run.outcomes = outcomes
    if executor.aborted is not None:
        stop = executor.aborted
        done = sum(1 for o in outcomes if o.status in (REVOKED, REVOKED_UNCONFIRMED))
        not_run = sum(1 for o in outcomes if o.status in (NOT_RUN, FAILED))
        run.error_line = (
            f"revocation stopped: {explain(stop.kind, stop.status or 0, stop.describe())}; "
            f"{done} key(s) revoked before it, {not_run} not revoked"
        )
    else:
        failed = sum(1 for o in outcomes if o.status == FAILED)
        if failed:
            run.error_line = (
                f"{failed} deletion(s) did not revoke the leaked key (it still answers, or "
                "could not be checked): see the results and the audit log"
            )
    if run.error_line:
        run.errors.append(scrub(run.error_line))
    run.code = for_revocation(plan, outcomes)
    return run


def revoke_findings(
    findings: list[Finding],
    options: RevokeOptions,
    on_plan: Callable[[RevocationRun], None] | None = None,
) -> RevocationRun:
    """Revoke what a scan found (keys verified live, or not verified; a dead key has nothing
    to revoke); each finding gets ``revocation``. The run's ``code`` is 2 on an error, else 0
    (keys left unrevoked are the scan's findings: exit 1)."""
    keys: list[LeakedKey] = []
    for f in findings:
        v = f.verification
        if v is not None and v.is_dead:
            continue  # a dead key has nothing to revoke
        keys.append(leaked_from_finding(f))
    run = run_revocation(keys, options, on_plan)
    by_fp = {o.item.leaked.fingerprint: o for o in run.outcomes or []}
    for f in findings:
        o = by_fp.get(f.fingerprint)
        if o is None:
            continue
        target = o.item.target
        f.revocation = RevocationOutcome(
            status=o.status,
            key_id=target.id if target else None,
            project=target.project_id if target else None,
            request_id=o.request_id,
        )
        if o.status in (REVOKED, REVOKED_UNCONFIRMED, ALREADY_REVOKED):
            f.notes.append(o.status)
    run.code = for_revocation_after_scan(run.code)
    return run
