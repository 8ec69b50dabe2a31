"""``keyscan rules list|check``: show the rules and verify them against their examples."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import click

from keyscan.cli_common import fail
from keyscan.models import Rule


def _load(rule_dirs: tuple[Path, ...]) -> list[Rule]:
    from keyscan.rules import RuleError, load_rules

    try:
        return load_rules(extra_dirs=rule_dirs)
    except RuleError as exc:
        fail(str(exc))


@click.group()
def rules() -> None:
    """List the detection rules or check them against their examples."""


@rules.command("list")
@click.option(
    "--rules",
    "rule_dirs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Extra rule folder or file (repeatable).",
)
def list_rules(rule_dirs: tuple[Path, ...]) -> None:
    """Show every rule: id, confidence, family, description."""
    loaded = _load(rule_dirs)
    width = max(len(r.id) for r in loaded) if loaded else 10
    for r in loaded:
        click.echo(f"{r.id:<{width}}  {r.confidence!s:<6}  {r.family:<15}  {r.description}")
    click.echo(f"{len(loaded)} rules")


def check_rule(rule: Rule, all_rules: list[Rule], rounds: int, seed: int) -> list[str]:
    """Problems with a rule's examples: each positive must be found by this rule (with the
    whole detector running, so overlaps are resolved as in a scan), each negative not at all."""
    from keyscan.detector import Detector
    from keyscan.keygen import generate

    detector = Detector(all_rules)
    rng = random.Random(seed)
    problems: list[str] = []
    for template in rule.examples_positive:
        for _ in range(rounds):
            text = generate(template, rng=rng)
            if not any(m.rule.id == rule.id for m in detector.scan(text.encode())):
                problems.append(f"positive example not found: {template}")
                break
    for template in rule.examples_negative:
        for _ in range(rounds):
            text = generate(template, rng=rng)
            found = [m.rule.id for m in detector.scan(text.encode())]
            if found:
                problems.append(f"negative example reported by {', '.join(found)}: {template}")
                break
    return problems


@rules.command("check")
@click.option(
    "--rules",
    "rule_dirs",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Extra rule folder or file (repeatable).",
)
@click.option(
    "--rounds",
    default=20,
    show_default=True,
    help="How many keys to generate from each example template.",
)
@click.option("--seed", default=0, show_default=True, help="Seed for generated examples.")
def check_rules(rule_dirs: tuple[Path, ...], rounds: int, seed: int) -> None:
    """Check every rule against its positive and negative examples (exit 1 on a failure)."""
    loaded = _load(rule_dirs)
    failed = 0
    for r in loaded:
        problems = check_rule(r, loaded, rounds, seed)
        if not r.examples_positive:
            problems.append("no positive example")
        for p in problems:
            click.echo(f"{r.source}: rule {r.id}: {p}")
        failed += bool(problems)
    click.echo(f"{len(loaded)} rules checked, {failed} with problems")
    from keyscan.exitcodes import decide

    sys.exit(decide(error=False, findings=bool(failed)))
