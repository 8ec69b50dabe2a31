"""What happens to findings after detection, the same for every source.

confidence filter → suppressions (inline allow comments, baseline, config) → optional
verification → drop what is suppressed (unless verified live) → optional revocation →
report → exit code (0 clean, 1 findings, 2 error: a partial scan never exits 0).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from keyscan.exitcodes import EXIT_CLEAN, EXIT_ERROR, for_result
from keyscan.models import Confidence, Finding, Rule, ScanResult
from keyscan.report.options import OutputOptions


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
    # The scan's rules: metadata (paths, refs, subjects, errors...) is redacted with them.
    rules: list[Rule] = field(default_factory=list)


def apply_suppressions(findings: list[Finding], opts: RunOptions) -> None:
    """Record in ``finding.suppressed_by`` why a finding is hidden, if it is.

    Locations with an inline allow comment are dropped, unless every location has one (the
    finding is then suppressed as a whole and kept aside, in case it is verified live).
    """
    for f in findings:
        reasons: list[str] = []
        allowed = [loc for loc in f.locations if loc.inline_allowed]
        if len(allowed) == len(f.locations) and f.more_allowed == f.more_locations:
            reasons.append("inline allow comment")
        elif allowed or f.more_allowed:
            f.locations = [loc for loc in f.locations if not loc.inline_allowed]
            f.more_locations -= f.more_allowed
            f.more_allowed = 0
        for suppressor in opts.suppressors:
            why = suppressor(f)
            if why:
                reasons.append(why)
        if reasons:
            f.suppressed_by = reasons


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
        if f.suppressed_by:
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

    redact_result(result, opts)
    try:
        write_report(result, opts.output, stream)
    except OSError as exc:  # a full disk, /dev/full, a closed pipe: one line, exit 2
        _report_not_written(result, opts.output, exc)
        return EXIT_ERROR
    return for_result(result, opts.fail_on, revoke_failed)


def _report_not_written(result: ScanResult, output: OutputOptions, exc: OSError) -> None:
    """Say that the report could not be written (after the scan's own errors), and make sure
    the interpreter does not fail again, with a traceback, flushing stdout at exit."""
    from keyscan.terminal import safe

    to_stdout = not output.output or output.output == "-"
    if to_stdout:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # not a real file (a test runner's capture)
            pass
    where = "standard output" if to_stdout else safe(output.output or "")
    from keyscan.report import print_errors

    print_errors(result)
    print(
        f"keyscan: error: cannot write the report to {where}: {exc.strerror or exc}",
        file=sys.stderr,
    )


# Formats that may carry raw keys with --show-secrets; the others are always redacted.
SHOW_SECRETS_FORMATS = ("text", "json", "jsonl")


def redact_result(result: ScanResult, opts: RunOptions) -> None:
    """The one redaction step for metadata before any report (keyscan.redaction)."""
    from keyscan.redaction import Redactor, default_redactor

    out = opts.output
    keep = out.show_secrets and out.format in SHOW_SECRETS_FORMATS
    if out.format in ("sarif", "github", "junit") and result.root is None:
        from keyscan.report.sarif import root_for

        result.root = str(root_for(result))
    if opts.rules:
        redactor = Redactor(opts.rules, show_secrets=keep)
    else:
        redactor = default_redactor()
        if keep:
            redactor = Redactor(redactor.detector.rules, show_secrets=True)
    redactor.result(result)
