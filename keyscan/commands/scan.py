"""``keyscan scan``: files, directories and stdin."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from keyscan.cli_common import RunContext, build_context, scan_options
from keyscan.findings import aggregate
from keyscan.models import ScanError, ScanResult
from keyscan.pipeline import finish


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
    hits = []
    file_targets = [t for t in targets if t != "-"]
    if "-" in targets:
        part = files.scan_stdin(ctx.rules, options=ctx.content)
        hits.extend(part.hits)
        result.errors.extend(part.errors)
        result.files += part.files
        result.bytes += part.bytes
        if not file_targets:
            result.kind = "stdin"
    if file_targets:
        walk_errors: list[ScanError] = []
        notes: list[str] = []
        tasks = files.iter_walk(file_targets, ctx.excludes, walk_errors, notes)
        part = files.scan_files(ctx.rules, tasks, ctx.jobs, ctx.content)
        result.errors.extend(walk_errors)
        result.warnings.extend(notes)
        hits.extend(part.hits)
        result.errors.extend(part.errors)
        result.files += part.files
        result.bytes += part.bytes
    result.findings = aggregate(hits)
    result.duration = time.perf_counter() - started
    return result
