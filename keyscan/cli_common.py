"""Options shared by every scanning command (scan, git, ci, ...) and how they become a run."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from keyscan.models import Confidence, Rule
from keyscan.pipeline import EXIT_ERROR, OutputOptions, RunOptions

if TYPE_CHECKING:
    from keyscan.config import Config

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_FORMATS = ["text", "json", "jsonl", "sarif", "github", "junit"]


def fail(message: str) -> NoReturn:
    """One clear line on stderr and exit 2."""
    from keyscan.report.text import safe

    click.echo(f"keyscan: error: {safe(message)}", err=True)
    sys.exit(EXIT_ERROR)


def output_options(f: F) -> F:
    options = [
        click.option(
            "--format",
            "-f",
            "fmt",
            type=click.Choice(OUTPUT_FORMATS),
            default="text",
            show_default=True,
            help="Output format.",
        ),
        click.option(
            "--output",
            "-o",
            type=click.Path(dir_okay=False, writable=True),
            help="Write the report to FILE (created with mode 0600).",
        ),
        click.option(
            "--show-secrets",
            is_flag=True,
            help="Print raw keys instead of redacted ones (first 8 ... last 4).",
        ),
        click.option(
            "--color",
            type=click.Choice(["auto", "always", "never"]),
            default="auto",
            show_default=True,
            help="Colour text output (auto: only on a terminal).",
        ),
        click.option("--quiet", "-q", is_flag=True, help="Print nothing when nothing is found."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def detection_options(f: F) -> F:
    options = [
        click.option(
            "--rules",
            "rule_dirs",
            multiple=True,
            type=click.Path(exists=False, path_type=Path),
            help="Extra rule folder or file (repeatable).",
        ),
        click.option(
            "--min-confidence",
            type=click.Choice(["low", "medium", "high"]),
            default="low",
            show_default=True,
            help="Report findings at least this sure.",
        ),
        click.option(
            "--exclude",
            "excludes",
            multiple=True,
            metavar="GLOB",
            help="Skip paths matching GLOB (repeatable).",
        ),
        click.option(
            "--jobs",
            "-j",
            type=click.IntRange(min=1),
            default=None,
            help="Worker processes (default: number of cores, for large scans).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def suppression_options(f: F) -> F:
    options = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Config file (default: .keyscan.yaml here or at the repository root).",
        ),
        click.option("--no-config", is_flag=True, help="Ignore .keyscan.yaml."),
        click.option(
            "--baseline",
            "baseline_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Hide findings recorded in this baseline (keyscan baseline create).",
        ),
        # Set by the pre-commit hooks: short output with advice on false positives.
        click.option("--hook", "hook", is_flag=True, hidden=True),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def scan_options(f: F) -> F:
    """All options of a scanning command: detection, suppression (config, baseline), output."""
    return detection_options(suppression_options(output_options(f)))


@dataclass
class RunContext:
    rules: list[Rule]
    run: RunOptions
    excludes: list[str] = field(default_factory=list)
    jobs: int | None = None
    config: Config | None = None


def load_config_for(params: dict[str, Any]) -> Config | None:
    """``--config FILE``, else ``.keyscan.yaml`` found from the current directory; exit 2 if bad."""
    from keyscan.config import ConfigError, find_config, load_config

    path: Path | None = params.get("config_file")
    if path is None and not params.get("no_config"):
        path = find_config()
    if path is None:
        return None
    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc))


def build_context(params: dict[str, Any], use_baseline: bool = True) -> RunContext:
    """Turn parsed CLI parameters into rules and run options, or exit 2 with one line.

    ``use_baseline=False``: do not hide baseline findings (``keyscan baseline`` itself)."""
    from keyscan.rules import RuleError, load_rules

    config = load_config_for(params)
    extra_dirs = [*(config.rule_dirs if config else ()), *(params.get("rule_dirs") or ())]
    try:
        rules = load_rules(extra_dirs=extra_dirs, disabled=config.disable_rules if config else ())
    except RuleError as exc:
        message = str(exc)
        if config is not None and message.startswith("unknown rule id(s) to disable"):
            message = f"{config.path}: disable_rules: {message}"
        fail(message)
    output = OutputOptions(
        format=params.get("fmt") or "text",
        output=params.get("output"),
        show_secrets=bool(params.get("show_secrets")),
        color=params.get("color") or "auto",
        quiet=bool(params.get("quiet")),
        all_locations=bool(params.get("all_locations")),
        hook=bool(params.get("hook")),
    )
    run = RunOptions(
        output=output,
        min_confidence=Confidence.parse(params.get("min_confidence") or "low"),
    )
    if config is not None:
        run.warnings.extend(config.warnings())
        if config.allow:
            run.suppressors.append(config.suppress)
    baseline_path = params.get("baseline_file") or (config.baseline if config else None)
    if use_baseline and baseline_path is not None:
        from keyscan.baseline import Baseline, BaselineError

        try:
            baseline = Baseline.load(Path(baseline_path))
        except BaselineError as exc:
            fail(str(exc))
        run.warnings.extend(baseline.warnings())
        run.suppressors.append(baseline.suppress)
    return RunContext(
        rules=rules,
        run=run,
        excludes=[*(params.get("excludes") or ()), *(config.exclude if config else ())],
        jobs=params.get("jobs"),
        config=config,
    )
