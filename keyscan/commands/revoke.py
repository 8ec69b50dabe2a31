"""``keyscan revoke``: revoke leaked keys through the OpenAI Admin API (dry run by default)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from keyscan.cli_common import (
    exposure_hook,
    fail,
    show_revocation_end,
    show_revocation_plan,
)

if TYPE_CHECKING:
    from keyscan.revoke import LeakedKey


@click.command()
@click.argument("keys", required=False, metavar="[-]")
@click.option(
    "--report",
    "report",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A keyscan JSON (or JSON Lines) report. A redacted one is enough to plan; deleting "
    "from it needs --key-id (a redacted value cannot prove which key it is).",
)
@click.option(
    "--admin-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the admin key (default: $OPENAI_ADMIN_KEY). Never pass the key itself.",
)
@click.option(
    "--api-base",
    default=None,
    metavar="URL",
    help="API base URL (default: $OPENAI_BASE_URL or https://api.openai.com/v1).",
)
@click.option("--yes", "-y", is_flag=True, help="Carry out the plan (default: dry run).")
@click.option(
    "--key-id",
    "key_ids",
    multiple=True,
    metavar="KEY_ID",
    help="Pick this key among the candidates (repeatable): needed to delete from a redacted "
    "report, or when the key's own answer does not prove which key it is.",
)
@click.option(
    "--delete-service-account",
    is_flag=True,
    help="If the API refuses to delete a service account's key, delete the service account: "
    "this revokes ALL of that account's keys.",
)
@click.option(
    "--audit-log",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Audit log (JSON Lines, mode 0600; default: $XDG_DATA_HOME/keyscan/audit.jsonl).",
)
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--no-check",
    is_flag=True,
    help="Do not check raw keys before planning (then nothing is deleted without --key-id).",
)
@click.option("--recheck-attempts", type=click.IntRange(min=1), default=4, hidden=True)
@click.option("--recheck-delay", type=click.FloatRange(min=0), default=1.0, hidden=True)
@click.option("--retries", type=click.IntRange(min=0), default=3, hidden=True)
@click.option("--backoff", type=click.FloatRange(min=0), default=0.5, hidden=True)
def revoke(
    keys: str | None,
    report: Path | None,
    admin_key_file: Path | None,
    api_base: str | None,
    yes: bool,
    key_ids: tuple[str, ...],
    delete_service_account: bool,
    audit_log: Path | None,
    fmt: str,
    no_check: bool,
    recheck_attempts: int,
    recheck_delay: float,
    retries: int,
    backoff: float,
) -> None:
    """Revoke leaked OpenAI keys through the Admin API.

    Give a keyscan JSON report (--report FILE) or keys on stdin (-). Prints the plan; --yes
    carries it out. A key is deleted only if exactly one key of the organization matches it
    and the raw key, checked now, ties itself to it (its project), or if you pick it with
    --key-id. After a delete the leaked key must answer invalid, or the result is a failure.
    Exit codes: 0 nothing left to do, 1 keys left (dry run, not found, ambiguous,
    unconfirmed), 2 error (or a leaked key still live after its delete).
    """
    from keyscan.http import default_base_url
    from keyscan.revoke import (
        AdminKeyError,
        InputError,
        RevokeOptions,
        admin_key_from,
        leaked_from_report,
        run_revocation,
    )
    from keyscan.revoke.audit import default_audit_path

    if keys not in (None, "-"):
        fail(
            f"unexpected argument {keys[:8]!r}...: give keys on stdin (-) or --report FILE, "
            "never on the command line"
            if keys and keys.startswith("sk-")
            else f"unexpected argument {keys!r}: use - for keys on stdin, or --report FILE"
        )
    if (keys == "-") == (report is not None):
        fail("give either --report FILE or - (keys on stdin)")
    try:
        leaked = leaked_from_report(report) if report is not None else _keys_from_stdin()
    except InputError as exc:
        fail(str(exc))
    try:
        admin_key, warnings = admin_key_from(admin_key_file)
    except AdminKeyError as exc:
        fail(str(exc))
    for w in warnings:
        click.echo(f"keyscan: warning: {w}", err=True)
    options = RevokeOptions(
        admin_key=admin_key,
        base_url=api_base or default_base_url(),
        yes=yes,
        key_ids=frozenset(key_ids),
        delete_service_account=delete_service_account,
        audit_path=audit_log or default_audit_path(),
        fmt=fmt,
        check_first=not no_check,
        recheck_attempts=recheck_attempts,
        recheck_delay=recheck_delay,
        retries=retries,
        backoff_initial=backoff,
    )
    options.exposure = exposure_hook(options, report)
    done = run_revocation(leaked, options, show_revocation_plan(options, sys.stdout))
    show_revocation_end(done, options, sys.stdout)
    sys.exit(done.code)


def _keys_from_stdin() -> list[LeakedKey]:
    """Keys found in whatever text is on stdin (one per line, a .env file, a log...)."""
    from keyscan.detector import Detector
    from keyscan.revoke import InputError, leaked_from_secret
    from keyscan.rules import RuleError, load_rules

    try:
        rules = load_rules()
    except RuleError as exc:
        raise InputError(str(exc)) from None
    try:
        data = sys.stdin.buffer.read()
    except OSError as exc:
        raise InputError(f"cannot read stdin: {exc.strerror or exc}") from None
    keys: dict[bytes, LeakedKey] = {}
    for n, m in enumerate(Detector(rules).scan(data)):
        if m.secret not in keys:
            secret = m.secret.decode("utf-8", "replace")
            keys[m.secret] = leaked_from_secret(secret, m.family, where=f"<stdin> key {n + 1}")
    return list(keys.values())
