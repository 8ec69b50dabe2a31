"""``keyscan baseline create|update|prune``: record known findings so that only new ones fail.

The scan is the same as ``keyscan scan PATH`` (or ``keyscan git`` with ``--git``), with the
config file's excludes, disabled rules and allow list applied; findings the config or an
inline comment already allows are not recorded. A scan that could not read everything never
writes a baseline (exit 2): a partial scan would drop entries on ``prune``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from keyscan.baseline import DEFAULT_FILE, Baseline, BaselineError
from keyscan.cli_common import (
    RunContext,
    build_context,
    config_options,
    detection_options,
    fail,
)
from keyscan.models import Finding, ScanResult
from keyscan.pipeline import apply_suppressions
from keyscan.report import print_errors

F = TypeVar("F", bound=Callable[..., Any])


def baseline_options(f: F) -> F:
    options = [
        click.argument("paths", nargs=-1, type=click.Path()),
        click.option(
            "--file",
            "baseline_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help=f"Baseline file (default: the config's baseline, else {DEFAULT_FILE}).",
        ),
        click.option(
            "--git",
            "use_git",
            is_flag=True,
            help="Scan the git history of the repository (PATH, default .) instead of files.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return detection_options(config_options(f))


def collect(paths: tuple[str, ...], use_git: bool, ctx: RunContext) -> ScanResult:
    """Scan what the baseline covers, or exit 2 if the scan is incomplete."""
    if use_git:
        from keyscan.commands.ci import scan_git_history

        result = scan_git_history(paths[0] if paths else ".", ctx)
    else:
        from keyscan.commands.scan import scan_targets

        result = scan_targets(list(paths) or ["."], ctx)
    if result.errors:
        print_errors(result)
        fail(f"scan incomplete ({len(result.errors)} error(s)): baseline not written")
    return result


def recordable(result: ScanResult, ctx: RunContext) -> list[Finding]:
    """Findings at the wanted confidence that nothing (config, inline comment) allows."""
    findings = [f for f in result.findings if f.confidence >= ctx.run.min_confidence]
    apply_suppressions(findings, ctx.run)
    return [f for f in findings if not f.suppressed_by]


def target_file(params: dict[str, Any], ctx: RunContext) -> Path:
    chosen: Path | None = params.get("baseline_file")
    if chosen is None and ctx.config is not None:
        chosen = ctx.config.baseline
    return chosen or Path(DEFAULT_FILE)


def load_or_fail(path: Path) -> Baseline:
    try:
        return Baseline.load(path)
    except BaselineError as exc:
        fail(str(exc))


def save_or_fail(baseline: Baseline) -> None:
    try:
        baseline.save()
    except OSError as exc:
        fail(f"{baseline.path}: cannot write baseline: {exc.strerror or exc}")


def report(baseline: Baseline, what: str) -> None:
    n = len(baseline.entries)
    click.echo(f"keyscan: baseline {baseline.path}: {n} entr{'y' if n == 1 else 'ies'}; {what}")


@click.group()
def baseline() -> None:
    """Record known findings so that scans fail only on new ones (--baseline FILE).

    Entries are identified by rule and the secret's SHA-256 (no line numbers): moving code
    never changes the file, and a new key is never hidden. The file holds no raw key.
    """


@baseline.command()
@baseline_options
@click.option("--force", is_flag=True, help="Overwrite an existing baseline.")
def create(paths: tuple[str, ...], use_git: bool, force: bool, **params: Any) -> None:
    """Write a new baseline with every current finding."""
    ctx = build_context(params, use_baseline=False)
    path = target_file(params, ctx)
    if path.exists() and not force:
        fail(f"{path}: baseline already exists (use keyscan baseline update, or --force)")
    result = collect(paths, use_git, ctx)
    store = Baseline(path)
    added = store.add(recordable(result, ctx))
    save_or_fail(store)
    report(store, f"{added} recorded")
    sys.exit(0)


@baseline.command()
@baseline_options
def update(paths: tuple[str, ...], use_git: bool, **params: Any) -> None:
    """Add new findings to the baseline; known entries (and their reason, expiry) stay as is."""
    ctx = build_context(params, use_baseline=False)
    path = target_file(params, ctx)
    store = load_or_fail(path) if path.exists() else Baseline(path)
    result = collect(paths, use_git, ctx)
    added = store.add(recordable(result, ctx))
    save_or_fail(store)
    report(store, f"{added} added")
    sys.exit(0)


@baseline.command()
@baseline_options
def prune(paths: tuple[str, ...], use_git: bool, **params: Any) -> None:
    """Drop entries whose secret is no longer found."""
    ctx = build_context(params, use_baseline=False)
    path = target_file(params, ctx)
    store = load_or_fail(path)
    result = collect(paths, use_git, ctx)
    removed = store.prune(result.findings)
    save_or_fail(store)
    report(store, f"{removed} pruned")
    sys.exit(0)
