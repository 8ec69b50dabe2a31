"""``keyscan exposure``: was a leaked key used after it leaked, and what did it cost?"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from keyscan.cli_common import fail


@click.command()
@click.argument("keys", required=False, metavar="[-]")
@click.option("--report", "report", type=click.Path(dir_okay=False, path_type=Path),
              help="A keyscan JSON (or JSON Lines) report.")
@click.option("--admin-key-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the admin key (default: $OPENAI_ADMIN_KEY).")
@click.option("--api-base", default=None, metavar="URL",
              help="API base URL (default: $OPENAI_BASE_URL or https://api.openai.com/v1).")
@click.option("--key-id", "key_ids", multiple=True, metavar="KEY_ID",
              help="Pick this key among the candidates (as for keyscan revoke).")
@click.option("--audit-log", type=click.Path(dir_okay=False, path_type=Path),
              help="keyscan's revocation audit log (default: $XDG_DATA_HOME/keyscan/...).")
@click.option("--format", "-f", "fmt", type=click.Choice(["text", "json", "md"]),
              default="text", show_default=True, help="Output format.")
@click.option("--no-cache", is_flag=True, help="Ask the Admin API even if cached.")
@click.option("--retries", type=click.IntRange(min=0), default=3, hidden=True)
@click.option("--backoff", type=click.FloatRange(min=0), default=0.5, hidden=True)
def exposure(keys: str | None, report: Path | None, admin_key_file: Path | None,
             api_base: str | None, key_ids: tuple[str, ...], audit_log: Path | None,
             fmt: str, no_cache: bool, retries: int, backoff: float) -> None:
    """Show whether leaked keys were used after they leaked, and what it cost.

    Reads a keyscan JSON report (--report FILE) or keys on stdin (-), maps each key to one
    key id of the organization like keyscan revoke does, and asks the usage and costs
    endpoints (only GETs). Needs an admin key with scopes api.management.read and
    api.usage.read. Exit codes: 0 no key used after it leaked, 1 a key was, 2 error (or a key
    used after its revocation).
    """
    from keyscan.commands.revoke import _keys_from_stdin
    from keyscan.exitcodes import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS
    from keyscan.exposure import (
        ExposureOptions,
        evidence_from_report,
        measure_exposure,
        render_markdown,
        render_text,
    )
    from keyscan.http import default_base_url
    from keyscan.report.json_report import ReportError
    from keyscan.revoke import AdminKeyError, InputError, admin_key_from, leaked_from_report
    from keyscan.revoke.audit import default_audit_path

    if keys not in (None, "-"):
        fail("unexpected argument: give keys on stdin (-) or --report FILE, never on the "
             "command line")
    if (keys == "-") == (report is not None):
        fail("give either --report FILE or - (keys on stdin)")
    try:
        if report is not None:
            leaked = leaked_from_report(report)
            evidence = evidence_from_report(report)
        else:
            leaked, evidence = _keys_from_stdin(), {}
    except (InputError, ReportError) as exc:
        fail(str(exc))
    try:
        admin_key, warnings = admin_key_from(admin_key_file)
    except AdminKeyError as exc:
        fail(str(exc))
    for w in warnings:
        click.echo(f"keyscan: warning: {w}", err=True)
    options = ExposureOptions(
        admin_key=admin_key, base_url=api_base or default_base_url(),
        key_ids=frozenset(key_ids), audit_path=audit_log or default_audit_path(),
        use_cache=not no_cache, retries=retries, backoff_initial=backoff,
    )
    run = measure_exposure(leaked, evidence, options)
    if fmt == "json":
        click.echo(json.dumps(run.to_json(), indent=2))
    elif fmt == "md":
        click.echo(render_markdown(run), nl=False)
    else:
        click.echo(render_text(run), nl=False)
    for w in run.warnings:
        click.echo(f"keyscan: warning: {w}", err=True)
    if run.scope_line:
        click.echo(f"keyscan: {run.scope_line}", err=True)
    for e in run.errors:
        click.echo(f"keyscan: error: {e}", err=True)
    if run.errors or run.alert:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_FINDINGS if any(r.requests for r in run.reports) else EXIT_CLEAN)
