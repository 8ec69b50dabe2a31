"""``keyscan report``: render the audit store as HTML, Markdown or JSON."""

from __future__ import annotations

import re
import sys

import click

from keyscan.cli_common import fail


@click.command()
@click.option(
    "--db",
    default="keyscan-audit.db",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The audit store written by keyscan audit.",
)
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(["html", "md", "json"]),
    default="html",
    show_default=True,
    help="html: one self-contained file for a browser; md: to paste into a ticket; json: the "
    "keyscan JSON report schema (input of keyscan revoke --report).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Write to FILE (mode 0600) instead of stdout.",
)
@click.option(
    "--key",
    "key_prefix",
    metavar="FINGERPRINT",
    help="Only the key whose SHA-256 fingerprint starts with this (at least 8 hex digits).",
)
def report(db: str, fmt: str, output: str | None, key_prefix: str | None) -> None:
    """Render what keyscan audit stored: a summary (live keys first), one table per key
    (family, status, first commit, author, where it still is, what to do next) and a
    timeline of keys introduced and removed per repository. Keys are always redacted.

    Exit codes: 0 no keys, 1 keys reported, 2 error.
    """
    from keyscan.audit.store import AuditStore, StoreError
    from keyscan.audit.view import load

    if key_prefix is not None and not re.fullmatch(r"[0-9a-fA-F]{8,64}", key_prefix):
        raise click.BadParameter("give at least 8 hex digits of a fingerprint", param_hint="--key")
    try:
        store = AuditStore(db, create=False)
    except StoreError as exc:
        fail(str(exc))
    with store:
        try:
            view = load(store, key_prefix)
            if key_prefix and not view.keys:
                fail(f"--key {key_prefix}: no key with this fingerprint in {db}")
            if fmt == "html":
                from keyscan.audit import html

                text = html.render(view, db)
            elif fmt == "md":
                from keyscan.audit import markdown

                text = markdown.render(view, db)
            else:
                from keyscan.audit import json_doc

                text = json_doc.render(view, store, db)
        except ValueError as exc:  # a damaged store: JSON nested too deeply, ...
            fail(f"{db}: cannot read the audit store: {exc}")
    if output and output != "-":
        from keyscan.privatefile import write_private

        try:
            write_private(output, text)  # 0600, replaces a symlink, never half written
        except OSError as exc:
            fail(str(exc))
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    from keyscan.exitcodes import decide

    sys.exit(decide(error=False, findings=bool(view.keys)))
