"""The coordinator of an audit: plan one task per repository, run them (processes or Dask),
write each result to the store as it arrives, then check each unique key once (--verify).

Only this process writes the store; workers return results.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from keyscan.audit.progress import Progress
from keyscan.audit.runner import AuditTask, RepoResult, run_local, unique_by_fingerprint
from keyscan.audit.store import AuditStore, ScanRecord
from keyscan.git.remote import public_target
from keyscan.models import Finding, Rule, ScanResult
from keyscan.pipeline import RunOptions, apply_suppressions


@dataclass
class AuditPlan:
    targets: list[str]  # normalized (see runner.normalize_target)
    rules: list[Rule]
    git_options: dict[str, Any] = field(default_factory=dict)
    jobs: int = 1
    scheduler: str | None = None
    full: bool = False  # ignore what earlier audits saw
    run: RunOptions = field(default_factory=RunOptions)


@dataclass
class RepoOutcome:
    target: str
    status: str
    errors: list[str]
    warnings: list[str]
    commits_scanned: int
    commits_skipped: int
    keys: int
    new_keys: int
    suppressed: int


@dataclass
class AuditOutcome:
    audit_id: int
    repos: list[RepoOutcome]
    verified: int = 0
    not_reverified: int = 0
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return sum(r.commits_skipped for r in self.repos)

    @property
    def scanned(self) -> int:
        return sum(r.commits_scanned for r in self.repos)


def _canonical(value: Any) -> Any:
    """A JSON-able, order-stable form of an option value (rules, patterns, dates...)."""
    if isinstance(value, re.Pattern):
        return {"pattern": _canonical(value.pattern), "flags": value.flags}
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name not in ("source", "examples_positive", "examples_negative", "where",
                                  "reason")}  # fmt: skip
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_canonical(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _suppression_state(suppressor: Callable[..., Any], today: dt.date) -> Any:
    """What a suppressor hides today: the allow entries of a config or the entries of a
    baseline that have not expired (an entry that expires changes the state)."""
    from keyscan.config import expired

    owner = getattr(suppressor, "__self__", None)
    allow = getattr(owner, "allow", None)
    if isinstance(allow, list):
        return ["allow", [_canonical(e) for e in allow if not expired(e.expires, today)]]
    entries = getattr(owner, "entries", None)
    if isinstance(entries, dict):
        live = [e for _, e in sorted(entries.items()) if not expired(e.expires, today)]
        return ["baseline", [_canonical(e) for e in live]]
    return ["suppressor", getattr(suppressor, "__qualname__", repr(suppressor))]


def options_hash(plan: AuditPlan, today: dt.date | None = None) -> str:
    """A hash of every option that decides what an audit finds and keeps: rules, scan
    options (excludes, all objects, decoding, archive depth), minimum confidence, the
    suppressions in effect today (allow entries and baseline entries not expired), and
    keyscan's version. Commits scanned under another hash are scanned again."""
    from keyscan.version import __version__

    day = today or dt.date.today()
    git = dict(plan.git_options)
    if isinstance(git.get("excludes"), list):
        git["excludes"] = sorted(git["excludes"])
    doc = {
        "version": __version__,
        "rules": sorted((_canonical(r) for r in plan.rules), key=lambda r: json.dumps(r)),
        "git": _canonical(git),
        "min_confidence": _canonical(plan.run.min_confidence),
        "suppressions": [_suppression_state(s, day) for s in plan.run.suppressors],
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def plan_tasks(
    store: AuditStore, plan: AuditPlan, scanned_under: str | None = None
) -> list[AuditTask]:
    options = tuple(sorted(plan.git_options.items()))
    under = options_hash(plan) if scanned_under is None else scanned_under
    tasks = []
    for target in plan.targets:
        tasks.append(
            AuditTask(
                target=target,
                rules=tuple(plan.rules),
                git_options=options,
                exclude_commits=()
                if plan.full
                else tuple(store.seen_commits(public_target(target), under)),
                known_blobs=tuple(store.known_blobs(public_target(target))),
                keep_secrets=plan.run.verify,
            )
        )
    return tasks


def _filter(findings: list[Finding], run: RunOptions) -> tuple[list[Finding], int]:
    """Confidence filter and suppressions (config, baseline, inline allow comments)."""
    kept = [f for f in findings if f.confidence >= run.min_confidence]
    apply_suppressions(kept, run)
    visible = [f for f in kept if not f.suppressed_by]
    return visible, len(findings) - len(visible)


def run_audit(
    store: AuditStore,
    plan: AuditPlan,
    progress: Progress | None = None,
    runner: Callable[[Sequence[AuditTask]], Iterator[RepoResult]] | None = None,
) -> AuditOutcome:
    under = options_hash(plan)
    tasks = plan_tasks(store, plan, under)
    audit_id = store.start_audit(len(tasks), plan.jobs, plan.scheduler, plan.run.verify)
    outcome = AuditOutcome(audit_id=audit_id, repos=[])
    if not plan.full:
        for t in tasks:
            shown = public_target(t.target)
            if store.seen_under_other_options(shown, under):
                outcome.warnings.append(
                    f"{shown}: scan options changed since the last audit (rules, excludes, "
                    "confidence, allow list or baseline): every commit is scanned again"
                )
    start = progress.start if progress is not None else None
    if runner is None and not plan.scheduler:

        def runner(ts: Sequence[AuditTask]) -> Iterator[RepoResult]:
            return run_local(ts, plan.jobs, on_ready=start)

    else:
        if runner is None:
            from keyscan.audit.dask import run_dask

            def runner(ts: Sequence[AuditTask]) -> Iterator[RepoResult]:
                return run_dask(ts, plan.scheduler or "")

        if start is not None:
            start()
    excluded = {public_target(t.target): bool(t.exclude_commits) for t in tasks}
    running = runner(tasks)
    try:
        results = list(_record_all(store, plan, running, audit_id, outcome, progress,
                                   excluded, under))
    finally:
        # Interrupted (Ctrl-C, SIGTERM) or failed: stop the workers now (closing the runner
        # terminates them and their clones are removed), not whenever it is collected.
        close = getattr(running, "close", None)
        if close is not None:
            close()
        if progress is not None:
            progress.close()
    if plan.run.verify:
        _verify(store, plan, outcome, [f for res in results for f in res])
    store.finish_audit(audit_id)
    outcome.repos.sort(key=lambda r: r.target)
    return outcome


def _record_all(
    store: AuditStore,
    plan: AuditPlan,
    results: Iterator[RepoResult],
    audit_id: int,
    outcome: AuditOutcome,
    progress: Progress | None,
    excluded: dict[str, bool],
    under: str = "",
) -> Iterator[list[Finding]]:
    """Write each result as it arrives; yield the findings kept for --verify."""
    seen_keys: set[str] = set()
    for res in results:
        findings, suppressed = _filter(res.findings, plan.run)
        record = ScanRecord(
            audit_id=audit_id,
            target=res.target,
            status=res.status,
            errors=res.errors,
            warnings=res.warnings,
            findings=findings,
            incremental=excluded.get(res.target, False),
            commits_scanned=res.commits_scanned,
            commits_skipped=res.commits_skipped,
            objects=res.objects,
            bytes=res.bytes,
            duration=res.duration,
            started_at=res.started_at,
            heads=res.heads,
            head=res.head,
            options_hash=under,
            key_states={
                fp: (s.present_at_head, s.head_paths, s.removed_by)
                for fp, s in res.key_states.items()
            },
            stats=res.stats,
        )
        _, new_keys = store.record_scan(record)
        seen_keys.update(f.fingerprint for f in findings)
        outcome.repos.append(
            RepoOutcome(
                target=res.target,
                status=res.status,
                errors=res.errors,
                warnings=res.warnings,
                commits_scanned=res.commits_scanned,
                commits_skipped=res.commits_skipped,
                keys=len(findings),
                new_keys=new_keys,
                suppressed=suppressed,
            )
        )
        if progress is not None:
            progress.update(res.objects, res.bytes, len(seen_keys), res.status == "error")
        yield findings if plan.run.verify else []


def _verify(
    store: AuditStore, plan: AuditPlan, outcome: AuditOutcome, findings: list[Finding]
) -> None:
    """Each unique key once, across every repository of the audit."""
    from keyscan.verify import verify_findings

    unique = unique_by_fingerprint(findings)
    result = ScanResult(kind="audit", targets=[public_target(t) for t in plan.targets])
    verify_findings(unique, plan.run.verify_options, result)
    # Server answers (reasons, error messages) are untrusted too: one redaction step.
    from keyscan.redaction import Redactor, default_redactor

    redactor = Redactor(plan.run.rules) if plan.run.rules else default_redactor()
    for f in unique:
        redactor.finding(f)
    redactor.result(result)
    outcome.verified = store.record_verifications(outcome.audit_id, unique)
    outcome.warnings.extend(result.warnings)
    outcome.errors.extend(str(e) for e in result.errors)
    for f in unique:
        f.secret = ""
    # Keys of these repositories found by earlier audits and not seen again in this
    # (incremental) run cannot be checked: their raw value is not stored.
    checked = {f.fingerprint for f in unique}
    known: set[str] = set()
    for target in plan.targets:
        rows = store.rows(
            "SELECT DISTINCT k.fingerprint FROM repository_keys k JOIN repositories r "
            "ON r.id = k.repository_id WHERE r.target = ?",
            (public_target(target),),
        )
        known.update(str(r[0]) for r in rows)
    outcome.not_reverified = len(known - checked)
