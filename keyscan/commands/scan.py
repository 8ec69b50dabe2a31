"""``keyscan scan``: files, directories and stdin."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from keyscan.cli_common import RunContext, build_context, finish, scan_options
from keyscan.models import ScanError, ScanResult


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@scan_options
def scan(paths: tuple[str, ...], **params: Any) -> None:
    """Scan files and directories (default: .) for OpenAI keys. Use - for stdin."""
    ctx = build_context(params)
    result = scan_targets(list(paths) or ["."], ctx)
    sys.exit(finish(result, ctx.run))


def scan_targets(targets: list[str], ctx: RunContext) -> ScanResult:
    """Files, folders and ``-`` (stdin) into a result, before suppression and reporting."""
    from keyscan.sources import files

    started = time.perf_counter()
    result = ScanResult(kind="files", targets=targets)
    found = files.FileScan()
    file_targets = [t for t in targets if t != "-"]
    if "-" in targets:
        files.merge_scan(found, files.scan_stdin(ctx.rules, options=ctx.content))
        if not file_targets:
            result.kind = "stdin"
    if file_targets:
        walk_errors: list[ScanError] = []
        notes: list[str] = []
        tasks = files.iter_walk(file_targets, ctx.excludes, walk_errors, notes)
        part = files.scan_files(ctx.rules, tasks, ctx.jobs, ctx.content)
        found.errors.extend(walk_errors)  # complete once the lazy walk is done
        files.merge_scan(found, part)
        result.warnings.extend(notes)
    result.errors.extend(found.errors)
    result.files, result.bytes = found.files, found.bytes
    result.findings = found.findings()
    result.duration = time.perf_counter() - started
    return result
