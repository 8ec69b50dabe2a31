"""Options shared by every scanning command (scan, git, ci, ...) and how they become a run."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from keyscan.models import Confidence, Rule
from keyscan.pipeline import EXIT_ERROR, OutputOptions, RunOptions

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_FORMATS = ["text", "json", "jsonl"]


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


def scan_options(f: F) -> F:
    """All options of a scanning command: detection, output."""
    return detection_options(output_options(f))


@dataclass
class RunContext:
    rules: list[Rule]
    run: RunOptions
    excludes: list[str] = field(default_factory=list)
    jobs: int | None = None


def build_context(params: dict[str, Any]) -> RunContext:
    """Turn parsed CLI parameters into rules and run options, or exit 2 with one line."""
    from keyscan.rules import RuleError, load_rules

    try:
        rules = load_rules(extra_dirs=params.get("rule_dirs") or ())
    except RuleError as exc:
        fail(str(exc))
    output = OutputOptions(
        format=params.get("fmt") or "text",
        output=params.get("output"),
        show_secrets=bool(params.get("show_secrets")),
        color=params.get("color") or "auto",
        quiet=bool(params.get("quiet")),
        all_locations=bool(params.get("all_locations")),
    )
    run = RunOptions(
        output=output,
        min_confidence=Confidence.parse(params.get("min_confidence") or "low"),
    )
    return RunContext(
        rules=rules,
        run=run,
        excludes=list(params.get("excludes") or ()),
        jobs=params.get("jobs"),
    )
