"""``keyscan scan``: files, directories and stdin."""

from __future__ import annotations

import sys
from typing import Any

import click

from keyscan.cli_common import build_context, finish, scan_options

# The body lives beside the click-free door of the hook, which scans the files the
# pre-commit framework passes without click (keyscan.commands.quick).
from keyscan.commands.quick import scan_targets as scan_targets


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@scan_options
def scan(paths: tuple[str, ...], **params: Any) -> None:
    """Scan files and directories (default: .) for OpenAI keys. Use - for stdin."""
    ctx = build_context(params)
    result = scan_targets(list(paths) or ["."], ctx)
    sys.exit(finish(result, ctx.run))
