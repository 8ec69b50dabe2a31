"""``keyscan baseline create|update|prune``: record known findings so that only new ones fail.

The scan is the same as ``keyscan scan PATH`` (or ``keyscan git`` with ``--git``), with the
config file's excludes, disabled rules and allow list applied; findings the config or an
inline comment already allows are not recorded. A scan that could not read everything never
writes a baseline (exit 2): a partial scan would drop entries on ``prune``.

The baseline records the scope it was made from (``create``, then each ``update``), and
``prune`` scans that scope (plus any PATH or ``--git`` given): an entry whose key is still
somewhere in it is never dropped. ``create`` leaves the repository so that the next plain
``keyscan scan`` and ``keyscan git`` use the baseline: it adds ``baseline:`` to the
``.keyscan.yaml`` scans find (creating it at the repository root if there is none), or, where
it cannot (``--no-config``, a config naming another baseline, a baseline outside the config's
folder), prints the one step that does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from keyscan.baseline import DEFAULT_FILE, Baseline, BaselineError, Scope
from keyscan.cli_common import (
    RunContext,
    build_context,
    config_options,
    detection_options,
    fail,
)
from keyscan.models import Finding
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


def scope_of(paths: tuple[str, ...], use_git: bool, store: Baseline) -> Scope:
    """The scope of this run (PATHs, default ., or --git [REPO]), relative to the baseline."""
    if use_git:
        return Scope.of("git", [paths[0] if paths else "."], store.folder)
    return Scope.of("files", list(paths) or ["."], store.folder)


def collect(scopes: list[Scope], store: Baseline, ctx: RunContext) -> list[Finding]:
    """Scan every scope, or exit 2 if a scan is incomplete."""
    findings: list[Finding] = []
    for scope in scopes:
        targets = scope.resolve(store.folder)
        if scope.kind == "git":
            from keyscan.commands.ci import scan_git_history

            result = scan_git_history(targets[0], ctx)
        else:
            from keyscan.commands.scan import scan_targets

            result = scan_targets(targets, ctx)
        if result.errors:
            print_errors(result)
            fail(f"scan incomplete ({len(result.errors)} error(s)): baseline not written")
        findings.extend(result.findings)
    return findings


def recordable(found: list[Finding], ctx: RunContext) -> list[Finding]:
    """Findings at the wanted confidence that nothing (config, inline comment) allows."""
    findings = [f for f in found if f.confidence >= ctx.run.min_confidence]
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
    """Write a new baseline with every current finding, and make plain scans use it."""
    ctx = build_context(params, use_baseline=False)
    path = target_file(params, ctx)
    if path.exists() and not force:
        fail(f"{path}: baseline already exists (use keyscan baseline update, or --force)")
    store = Baseline(path)
    scope = scope_of(paths, use_git, store)
    store.add_scope(scope)
    added = store.add(recordable(collect([scope], store, ctx), ctx))
    save_or_fail(store)
    report(store, f"{added} recorded")
    click.echo(f"keyscan: {use_in_scans(path, params, ctx)}")
    sys.exit(0)


@baseline.command()
@baseline_options
def update(paths: tuple[str, ...], use_git: bool, **params: Any) -> None:
    """Add new findings to the baseline; known entries (and their reason, expiry) stay as is."""
    ctx = build_context(params, use_baseline=False)
    path = target_file(params, ctx)
    new = not path.exists()
    store = Baseline(path) if new else load_or_fail(path)
    scope = scope_of(paths, use_git, store)
    store.add_scope(scope)
    added = store.add(recordable(collect([scope], store, ctx), ctx))
    save_or_fail(store)
    report(store, f"{added} added")
    if new:
        click.echo(f"keyscan: {use_in_scans(path, params, ctx)}")
    sys.exit(0)


@baseline.command()
@baseline_options
def prune(paths: tuple[str, ...], use_git: bool, **params: Any) -> None:
    """Drop entries whose secret is no longer found anywhere in the scope the baseline was made
    from (recorded in the file), nor in PATH / --git if given."""
    ctx = build_context(params, use_baseline=False)
    path = target_file(params, ctx)
    store = load_or_fail(path)
    scopes = list(store.scopes)
    if paths or use_git or not scopes:  # an older file without a scope: PATH, default .
        extra = scope_of(paths, use_git, store)
        if extra not in scopes:
            scopes.append(extra)
    removed = store.prune(collect(scopes, store, ctx))
    save_or_fail(store)
    report(store, f"{removed} pruned")
    sys.exit(0)


def use_in_scans(path: Path, params: dict[str, Any], ctx: RunContext) -> str:
    """Make the next plain ``keyscan scan`` / ``keyscan git`` use the baseline at ``path``:
    add ``baseline:`` to the config they find (created at the repository root if there is
    none). Returns what was done, or the one step that does it when that cannot be done."""
    from keyscan.config import CONFIG_NAMES, find_config

    flag = f"--baseline {_quote(str(path))}"
    if params.get("no_config"):
        return f"--no-config: scans use this baseline with {flag}"
    config = ctx.config
    if config is not None and config.path is None:  # not from a file: nothing to edit
        return f"scans use this baseline with {flag}"
    config_path = config.path if config is not None else None
    config_path = config_path or _new_config_path(CONFIG_NAMES[0])
    if config is not None and config.baseline is not None:
        if _same(config.baseline, path):
            return f"scans use this baseline ({config.path} names it)"
        return (
            f"{config.path} names another baseline ({config.baseline}): scans use this one "
            f"with {flag}"
        )
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(config_path.parent))
    line = f"baseline: {_quote(Path(rel).as_posix())}"
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return (
            f"the baseline is outside {config_path.parent}: scans use it with {flag} "
            f"(or put `{line}` in {config_path}, with a path inside the repository)"
        )
    found = find_config()
    if config is not None and (found is None or not _same(found, config_path)):
        return f"scans from here do not read {config_path}: scans use this baseline with {flag}"
    problem = _add_line(config_path, line, path)
    if problem:
        return f"{problem}: put `{line}` in {config_path} (or scan with {flag})"
    done = (
        f"added `{line}` to {config_path}"
        if config is not None
        else f"created {config_path} with `{line}`"
    )
    return f"{done}: plain keyscan scan and keyscan git use it now"


def _quote(text: str) -> str:
    """A YAML/shell-safe form of a path (quoted unless plain)."""
    import json
    import re

    return text if re.fullmatch(r"[A-Za-z0-9_./-]+", text) else json.dumps(text)


def _same(a: Path, b: Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def _new_config_path(name: str) -> Path:
    """Where scans look for a config: the repository root (the first folder up from here
    holding .git, as ``keyscan.config.find_config`` stops there), else the current folder."""
    here = Path.cwd()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return Path(os.path.relpath(folder / name))
    return Path(name)


def _add_line(config_path: Path, line: str, baseline: Path) -> str | None:
    """Append ``line`` to the config (created if absent), check that the config loads and
    names ``baseline``; on any problem, put the file back as it was and say what it was."""
    from keyscan.config import ConfigError, load_config
    from keyscan.regularfile import CONFIG_MAX_BYTES, PolicyFileError, read_regular

    existed = config_path.exists()
    try:
        before = read_regular(config_path, CONFIG_MAX_BYTES, "config") if existed else b""
    except (OSError, PolicyFileError) as exc:
        return f"cannot read {config_path}: {exc}"
    text = before.decode("utf-8", "surrogateescape")
    if text and not text.endswith("\n"):
        text += "\n"
    if not existed:
        text = "# keyscan settings (see keyscan's README: Config file)\nversion: 1\n"
    text += line + "\n"
    try:
        with open(config_path, "w", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(text)
        loaded = load_config(config_path)
        if loaded.baseline is not None and _same(loaded.baseline, baseline):
            return None
        problem = f"{config_path} does not name the baseline after the edit"
    except OSError as exc:
        return f"cannot write {config_path}: {exc.strerror or exc}"
    except ConfigError as exc:
        problem = f"{config_path} would not load after the edit ({exc})"
    try:
        if existed:
            config_path.write_bytes(before)
        else:
            config_path.unlink()
    except OSError:
        pass
    return problem
