"""What happens to findings after detection, the same for every source, as data.

confidence filter → suppressions (inline allow comments, baseline, config) → optional
verification → drop what is suppressed (unless verified live) → metadata redaction. Nothing
here prints or exits: the command line (``keyscan.cli_common.finish``) revokes, reports and
turns the result into an exit code; the Python API (``keyscan.api.triage``) returns it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keyscan.models import Confidence, Finding, Rule, ScanResult
from keyscan.records import dataclass, field
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
