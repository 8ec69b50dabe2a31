"""What happens to findings after detection, the same for every source.

confidence filter → suppressions (inline allow comments, baseline, config) → optional
verification → drop what is suppressed (unless verified live) → optional revocation →
report → exit code (0 clean, 1 findings, 2 error: a partial scan never exits 0).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from keyscan.models import Confidence, Finding, ScanResult

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


@dataclass
class OutputOptions:
    format: str = "text"
    output: str | None = None
    show_secrets: bool = False
    color: str = "auto"  # auto | always | never
    quiet: bool = False
    all_locations: bool = False
    # Extra lines of advice a reporter may print (the pre-commit hook sets this).
    hook: bool = False


@dataclass
class RunOptions:
    output: OutputOptions = field(default_factory=OutputOptions)
    min_confidence: Confidence = Confidence.LOW
    # Validity checks (keyscan.verify). ``verify_options`` is a keyscan.verify.VerifyOptions.
    verify: bool = False
    verify_options: Any = None
    only_live: bool = False
    fail_on: str = "any"  # any | live
    # Suppressions beyond inline comments: functions that name why a finding is suppressed
    # (e.g. "baseline", "config: reason"), or return None.
    suppressors: list[Callable[[Finding], str | None]] = field(default_factory=list)
    # Revocation (keyscan.revoke), run after verification with the visible findings.
    revoke: Callable[[list[Finding]], int] | None = None
    # Warnings known before the scan (expired suppressions, ...), added to the result.
    warnings: list[str] = field(default_factory=list)


def apply_suppressions(findings: list[Finding], opts: RunOptions) -> None:
    """Record in ``finding.extra["suppressed_by"]`` why a finding is hidden, if it is.

    Locations with an inline allow comment are dropped, unless every location has one (the
    finding is then suppressed as a whole and kept aside, in case it is verified live).
    """
    for f in findings:
        reasons: list[str] = []
        allowed = [loc for loc in f.locations if loc.inline_allowed]
        if allowed and len(allowed) == len(f.locations):
            reasons.append("inline allow comment")
        elif allowed:
            f.locations = [loc for loc in f.locations if not loc.inline_allowed]
        for suppressor in opts.suppressors:
            why = suppressor(f)
            if why:
                reasons.append(why)
        if reasons:
            f.extra["suppressed_by"] = reasons


def triage(result: ScanResult, opts: RunOptions) -> None:
    """Filter, suppress and verify ``result.findings`` in place; prints nothing."""
    result.warnings.extend(opts.warnings)
    findings = [f for f in result.findings if f.confidence >= opts.min_confidence]
    apply_suppressions(findings, opts)
    if opts.verify:
        from keyscan.verify import verify_findings

        verify_findings(findings, opts.verify_options, result)
    visible: list[Finding] = []
    for f in findings:
        if f.extra.get("suppressed_by"):
            if f.verification is not None and f.verification.is_live:
                f.notes.append("live-despite-suppression")
                visible.append(f)
            else:
                result.suppressed += 1
            continue
        visible.append(f)
    if opts.only_live:
        visible = [f for f in visible if f.verification is not None and f.verification.is_live]
    result.findings = visible


def finish(result: ScanResult, opts: RunOptions, stream: TextIO | None = None) -> int:
    """Filter, suppress, verify, revoke, report; return the exit code."""
    triage(result, opts)
    visible = result.findings
    revoke_failed = False
    if opts.revoke is not None and visible:
        revoke_failed = opts.revoke(visible) != EXIT_CLEAN
    from keyscan.report import write_report

    write_report(result, opts.output, stream)
    return exit_code(result, opts, revoke_failed)


def exit_code(result: ScanResult, opts: RunOptions, extra_error: bool = False) -> int:
    if result.errors or extra_error:
        return EXIT_ERROR
    failing = result.findings
    if opts.fail_on == "live":
        # Only keys known to be dead stop failing the run: unknown (unchecked) keys still fail.
        failing = [
            f
            for f in failing
            if f.verification is None or not f.verification.status.startswith("invalid")
        ]
    return EXIT_FINDINGS if failing else EXIT_CLEAN


def print_errors(result: ScanResult, stream: TextIO | None = None) -> None:
    """One line per error on stderr, names made safe for a terminal."""
    from keyscan.report.text import safe

    out = stream or sys.stderr
    for err in result.errors:
        print(f"keyscan: error: {safe(err.where)}: {safe(err.message)}", file=out)
    for note in result.warnings:
        print(f"keyscan: warning: {safe(note)}", file=out)
