"""``keyscan verify``: check keys read from stdin (one per line) or from a keyscan JSON report."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from keyscan.cli_common import build_context, fail, finish, output_options, verify_options
from keyscan.models import (
    Confidence,
    Finding,
    Location,
    Rule,
    ScanError,
    ScanResult,
    fingerprint_of,
    redact,
)

REDACTED_REPORT = (
    "{path}: this report is redacted (no `secret` fields), so it holds no key to check: "
    "make one with `keyscan scan --format json --show-secrets -o FILE` (written 0600; "
    "delete it afterwards), or pipe the keys to `keyscan verify`, one per line"
)


@click.command("verify")
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Check the keys of a keyscan JSON/JSONL report made with --show-secrets.",
)
@click.option(
    "--rules",
    "rule_dirs",
    multiple=True,
    type=click.Path(exists=False, path_type=Path),
    help="Extra rule folder or file (repeatable), to recognise key lines.",
)
@verify_options
@output_options
def verify_cmd(report_file: Path | None, **params: Any) -> None:
    """Check whether keys are live: one key per line on stdin, or --report FILE.

    Each line is recognised like in a scan (its family decides the endpoint); a line that
    holds no key is reported as an error (exit 2). Exit 1 if a key fails the run
    (--fail-on any: every key; live: every key not verified dead), else 0.
    """
    started = time.perf_counter()
    params["verify"] = True
    params["no_config"] = True
    ctx = build_context(params, use_baseline=False)
    ctx.run.suppressors = []
    if report_file is not None:
        result = _from_report(report_file)
    else:
        if sys.stdin.isatty():
            click.echo("keyscan: reading keys from stdin, one per line (end with Ctrl-D)", err=True)
        data = sys.stdin.buffer.read()
        result = _from_lines(ctx.rules, data)
    result.duration = time.perf_counter() - started
    sys.exit(finish(result, ctx.run))


def _from_lines(rules: list[Rule], data: bytes) -> ScanResult:
    from keyscan.detector import Detector
    from keyscan.findings import aggregate, hits_from_matches

    result = ScanResult(kind="verify", targets=["<stdin>"], files=1, bytes=len(data))
    detector = Detector(rules)
    hits = []
    for number, raw in enumerate(data.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        matches = detector.scan(line)
        if not matches:
            result.errors.append(
                ScanError(f"<stdin>:{number}", "no OpenAI key recognised on this line")
            )
            continue
        template = Location(path="<stdin>", line=number, column=1, offset=0, source="stdin")
        for hit in hits_from_matches(line, matches, template, base_line=number):
            hit.location.inline_allowed = False
            hits.append(hit)
    result.findings = aggregate(hits)
    return result


def _load_report(path: Path) -> list[dict[str, Any]]:
    from keyscan.report.json_report import ReportError, read_report

    try:
        entries = read_report(path)
    except ReportError as exc:
        fail(str(exc))
    return [f for f in entries if isinstance(f, dict)]


def _from_report(path: Path) -> ScanResult:
    from keyscan.report.json_report import location_from_json

    items = _load_report(path)
    result = ScanResult(kind="verify", targets=[str(path)], files=1)
    with_secret = [f for f in items if isinstance(f.get("secret"), str) and f["secret"]]
    if items and not with_secret:
        fail(REDACTED_REPORT.format(path=path))
    for index, item in enumerate(items, start=1):
        shown = str(item.get("redacted") or "?")
        secret = item.get("secret")
        if not isinstance(secret, str) or not secret:
            result.errors.append(
                ScanError(f"{path}: finding {index} ({shown})", "no `secret` field: not checked")
            )
            continue
        fingerprint = fingerprint_of(secret)
        if item.get("fingerprint") not in (None, fingerprint):
            result.errors.append(
                ScanError(
                    f"{path}: finding {index} ({redact(secret)})",
                    "secret does not match its fingerprint: not checked",
                )
            )
            continue
        try:
            confidence = Confidence.parse(str(item.get("confidence") or "high"))
        except ValueError:
            confidence = Confidence.HIGH
        locations = [
            loc
            for loc in (location_from_json(x) for x in item.get("locations") or [])
            if loc is not None
        ]
        result.findings.append(
            Finding(
                rule_id=str(item.get("rule_id") or "report"),
                family=str(item.get("family") or "unknown"),
                confidence=confidence,
                fingerprint=fingerprint,
                redacted=redact(secret),
                length=len(secret),
                secret=secret,
                locations=locations,
                description=str(item.get("description") or ""),
            )
        )
    return result


# ``--verify`` comes with the shared options; here checking is what the command does.
for _param in verify_cmd.params:
    if isinstance(_param, click.Option) and _param.name == "verify":
        _param.hidden = True
