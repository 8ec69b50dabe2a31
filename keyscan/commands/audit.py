"""``keyscan audit``: many repositories' full history into one store, for one report."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from keyscan.cli_common import detection_options, fail, suppression_options, verify_options


def read_targets(targets: tuple[str, ...], from_file: str | None) -> list[str]:
    from keyscan.audit.runner import normalize_target

    items = list(targets)
    if from_file:
        try:
            if from_file == "-":
                text = sys.stdin.read()
            else:
                with open(from_file, encoding="utf-8") as fh:
                    text = fh.read()
        except OSError as exc:
            fail(f"{from_file}: {exc.strerror or exc}")
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                items.append(line)
    return list(dict.fromkeys(normalize_target(t) for t in items if t.strip()))


@click.command()
@click.argument("targets", nargs=-1, metavar="TARGET...")
@click.option(
    "--from",
    "from_file",
    metavar="FILE",
    help="Read more targets from FILE, one per line (# comments; - for stdin).",
)
@click.option(
    "--db",
    default="keyscan-audit.db",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The audit store (SQLite, created with mode 0600).",
)
@click.option(
    "--scheduler",
    metavar="tcp://HOST:PORT",
    help="Scan on a Dask cluster instead of local processes (pip install 'keyscan[dask]').",
)
@click.option(
    "--full",
    is_flag=True,
    help="Rescan every commit, even those an earlier audit of the store has seen.",
)
@click.option(
    "--all-objects",
    is_flag=True,
    help="Also scan objects no ref reaches (dangling blobs, dropped stashes).",
)
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Format of the summary on stdout (the findings go to the store: see keyscan report).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress; print only problems and totals.")
@detection_options
@suppression_options
@verify_options
def audit(
    targets: tuple[str, ...],
    from_file: str | None,
    db: str,
    scheduler: str | None,
    full: bool,
    all_objects: bool,
    fmt: str,
    quiet: bool,
    **params: Any,
) -> None:
    """Audit many git repositories (full history, every ref) into one store.

    TARGET is a local repository or a URL (https://, ssh://, file://). Repositories are
    scanned several at a time (--jobs, default: number of cores) or on a Dask cluster
    (--scheduler). A repository that cannot be scanned is reported; the others go on. A
    second audit with the same --db scans only commits it has not seen. Then run
    `keyscan report --db FILE --format html -o report.html`.
    """
    from keyscan.audit.coordinator import AuditPlan, run_audit
    from keyscan.audit.progress import Progress
    from keyscan.audit.store import AuditStore, StoreError
    from keyscan.cli_common import build_context
    from keyscan.content import ContentOptions

    names = read_targets(targets, from_file)
    if not names:
        raise click.UsageError("no repository to audit: give TARGET... or --from FILE")
    ctx = build_context({**params, "quiet": quiet})
    content = getattr(ctx, "content", None)
    git_options: dict[str, Any] = {
        "all_objects": all_objects,
        "excludes": list(ctx.excludes),
        "content": content if isinstance(content, ContentOptions) else ContentOptions(),
    }
    jobs = ctx.jobs or os.cpu_count() or 1
    plan = AuditPlan(
        targets=names,
        rules=ctx.rules,
        git_options=git_options,
        jobs=jobs,
        scheduler=scheduler,
        full=full,
        run=ctx.run,
    )
    try:
        store = AuditStore(db)
    except StoreError as exc:
        fail(str(exc))
    progress = Progress(len(names), enabled=None if not quiet else False)
    with store:
        try:
            outcome = run_audit(store, plan, progress)
        except Exception as exc:
            import sqlite3

            from keyscan.audit.dask import DaskUnavailable

            if isinstance(exc, DaskUnavailable):
                fail(str(exc))
            if isinstance(exc, sqlite3.Error):
                fail(f"{db}: {exc}")
            raise
        from keyscan.audit.view import load

        view = load(store)
    from keyscan.git.remote import public_target

    audited = {public_target(n) for n in names}
    keys = [k for k in view.keys if any(r.repository in audited for r in k.repos)]
    if ctx.run.only_live:  # the store keeps every key; the summary and exit code only live ones
        keys = [k for k in keys if k.is_live]
    failing = keys
    if ctx.run.fail_on == "live":
        failing = [k for k in keys if not k.is_dead]
    live = [k for k in keys if k.is_live]
    at_head = [k for k in keys if any(r.present_at_head and r.repository in audited
                                      for r in k.repos)]  # fmt: skip
    broken = [r for r in outcome.repos if r.status != "ok"]
    from keyscan.terminal import safe

    for r in broken:
        why = "; ".join(r.errors) or r.status
        click.echo(f"keyscan: error: {safe(r.target)}: {safe(why)}", err=True)
    for message in outcome.errors:
        click.echo(f"keyscan: error: {safe(message)}", err=True)
    for note in outcome.warnings:
        click.echo(f"keyscan: warning: {safe(note)}", err=True)
    if fmt == "json":
        doc = {
            "audit_id": outcome.audit_id,
            "db": db,
            "repositories": [
                {
                    "target": r.target,
                    "status": r.status,
                    "errors": r.errors,
                    "commits_scanned": r.commits_scanned,
                    "commits_skipped": r.commits_skipped,
                    "keys": r.keys,
                    "new_keys": r.new_keys,
                    "suppressed": r.suppressed,
                }
                for r in outcome.repos
            ],
            "commits_scanned": outcome.scanned,
            "commits_skipped": outcome.skipped,
            "keys": len(keys),
            "live": len(live),
            "at_head": len(at_head),
            "verified": outcome.verified,
            "not_reverified": outcome.not_reverified,
        }
        click.echo(json.dumps(doc, indent=2))
    elif not quiet or keys or broken:
        ok = sum(1 for r in outcome.repos if r.status == "ok")
        click.echo(
            f"Audited {len(outcome.repos)} repositor{'y' if len(outcome.repos) == 1 else 'ies'}"
            f" ({ok} ok, {len(broken)} with errors): {outcome.scanned:,} commits scanned, "
            f"{outcome.skipped:,} skipped (seen by an earlier audit)."
        )
        if not quiet:
            width = max(len(safe(r.target)) for r in outcome.repos)
            for r in outcome.repos:
                new = f" ({r.new_keys} new)" if r.new_keys else ""
                click.echo(
                    f"  {r.status:<7} {safe(r.target):<{width}}  {r.commits_scanned:>6,} commits"
                    f"  {r.commits_skipped:>6,} skipped  {r.keys} key{'' if r.keys == 1 else 's'}"
                    f"{new}"
                )
        click.echo(
            f"{len(keys)} unique key{'' if len(keys) == 1 else 's'} in these repositories "
            f"({len(live)} live, {len(at_head)} still at HEAD). Store: {safe(db)}"
        )
        if outcome.not_reverified:
            click.echo(
                f"{outcome.not_reverified} key(s) found by earlier audits were not checked "
                "again (no raw key is stored): audit with --full --verify to re-check them."
            )
        if keys:
            click.echo(
                f"Report: keyscan report --db {safe(db)} --format html -o keyscan-report.html"
            )
    from keyscan.exitcodes import decide

    sys.exit(decide(error=bool(broken or outcome.errors), findings=bool(failing)))
