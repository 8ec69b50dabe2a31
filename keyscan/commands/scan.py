"""``keyscan scan``: files, directories and stdin."""

from __future__ import annotations

from typing import Any

import click

from keyscan.cli_common import scan_options

# The body lives beside the click-free door (keyscan.commands.quick), which runs the plain
# forms of ``keyscan scan`` (and the files the pre-commit framework passes) without click.
from keyscan.commands.quick import run_scan
from keyscan.commands.quick import scan_targets as scan_targets


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@scan_options
def scan(paths: tuple[str, ...], **params: Any) -> None:
    """Scan files and directories (default: .) for OpenAI keys. Use - for stdin."""
    run_scan(paths, params)
