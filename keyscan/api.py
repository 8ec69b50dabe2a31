"""keyscan as a library: the same engine as the command line, behind a typed API.

    >>> from keyscan import Scanner
    >>> scanner = Scanner()                      # rules compiled once; reuse it
    >>> result = scanner.scan_text("nothing to see")
    >>> result.findings
    []

* ``Scanner(rules=None, options=ScanOptions())``: loads and compiles the rules once (the
  built-in ones unless ``rules`` is given) and keeps a warm detector for every later call.
* ``Scanner.scan_text(str | bytes)``, ``Scanner.scan_paths([...])``,
  ``Scanner.scan_repo(target, GitScope(...))``: a :class:`ScanResult` whose findings carry
  every location with line and column. Findings are redacted wherever they are shown
  (``repr``, ``to_dict``); the raw key stays in memory on ``Finding.secret`` only.
* ``triage(result, TriageOptions(...))``: suppressions (config allow entries, a baseline,
  inline allow comments), the confidence floor and optional verification. Returns the result;
  prints nothing.
* ``exit_code(result, fail_on="any")``: the command line's exit code for a result
  (0 clean, 1 findings, 2 error).

Nothing here prints, exits or imports click. Problems that stop a call before it starts (a bad
rule file, a bad config, a bad baseline) raise :class:`KeyscanError`; problems met during a
scan (an unreadable file, a corrupt object) land in ``ScanResult.errors`` and make
``exit_code`` answer 2.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from keyscan.content import ContentOptions, scan_buffer
from keyscan.detector import Detector
from keyscan.errors import KeyscanError
from keyscan.exitcodes import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS, for_result
from keyscan.findings import aggregate, is_binary
from keyscan.models import Confidence, Finding, Location, Rule, ScanError, ScanResult
from keyscan.pipeline import RunOptions
from keyscan.pipeline import triage as _triage

__all__ = [
    "EXIT_CLEAN",
    "EXIT_ERROR",
    "EXIT_FINDINGS",
    "Confidence",
    "Finding",
    "GitScope",
    "KeyscanError",
    "Location",
    "ScanError",
    "ScanOptions",
    "ScanResult",
    "Scanner",
    "TriageOptions",
    "exit_code",
    "finding_to_dict",
    "load_rules",
    "scan_text",
    "triage",
]


@dataclass(frozen=True)
class ScanOptions:
    """How to scan. ``min_confidence`` hides less certain findings already at scan time."""

    min_confidence: Confidence = Confidence.LOW
    decode: bool = True  # base64, percent-encoding, string escapes, UTF-16
    archive_depth: int = 3  # zip/tar/gz members, nested up to this depth
    excludes: tuple[str, ...] = ()  # path globs, as --exclude
    jobs: int | None = None  # worker processes for large scans (None: every core)

    def content(self) -> ContentOptions:
        return ContentOptions(decode=self.decode, archive_depth=self.archive_depth)


@dataclass(frozen=True)
class GitScope:
    """What history ``Scanner.scan_repo`` reads (default: every ref plus HEAD)."""

    revisions: tuple[str, ...] | None = None  # these revisions' history only
    range: str | None = None  # "A..B"
    since: str | None = None  # what is not reachable from this revision
    branch: str | None = None
    staged: bool = False  # the index instead of history
    all_objects: bool = False  # also objects no ref reaches
    exclude_commits: tuple[str, ...] = ()  # skip what these commits reach (incremental)


@dataclass
class TriageOptions:
    """What ``triage`` applies. ``config``/``baseline`` are paths (loaded here) or ``None``."""

    min_confidence: Confidence = Confidence.LOW
    config: str | os.PathLike[str] | None = None
    baseline: str | os.PathLike[str] | None = None
    verify: bool = False
    # keyscan.verify.VerifyOptions (API base URL, timeouts, cache); None: the defaults.
    verify_options: Any = None
    only_live: bool = False
    extra_warnings: list[str] = field(default_factory=list)


def load_rules(
    rule_dirs: Iterable[str | os.PathLike[str]] = (),
    disabled: Iterable[str] = (),
    include_builtin: bool = True,
) -> list[Rule]:
    """The built-in rules plus rule folders, as the command line loads them."""
    from keyscan.rules import RuleError
    from keyscan.rules import load_rules as _load

    try:
        return _load(
            extra_dirs=[Path(d) for d in rule_dirs],
            include_builtin=include_builtin,
            disabled=disabled,
        )
    except RuleError as exc:
        raise KeyscanError(str(exc)) from None


class Scanner:
    """Compiled rules and a warm detector. Reuse one scanner for many calls; it holds no
    per-scan state, so calls do not affect each other (one thread at a time per scanner)."""

    def __init__(
        self, rules: Sequence[Rule] | None = None, options: ScanOptions | None = None
    ) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules if rules is not None else load_rules())
        self.options = options or ScanOptions()
        self._content = self.options.content()
        self._detector = Detector(self.rules)

    def _keep(self, findings: list[Finding]) -> list[Finding]:
        floor = self.options.min_confidence
        return [f for f in findings if f.confidence >= floor] if floor > Confidence.LOW else findings

    def scan_text(self, text: str | bytes, path: str = "<text>") -> ScanResult:
        """Keys in one string or buffer (a prompt, a log line, a file's content). ``path``
        names it in locations; a name ending in ``.ipynb`` is read as a notebook."""
        data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else bytes(text)
        template = Location(path=path, line=0, column=0, offset=0, source="text")
        template.binary = is_binary(data)
        result = ScanResult(kind="text", targets=[path], files=1, bytes=len(data))
        hits = scan_buffer(self._detector, data, template, self._content, errors=result.errors)
        result.findings = self._keep(aggregate(hits)) if hits else []
        return result

    def scan_paths(self, paths: Iterable[str | os.PathLike[str]]) -> ScanResult:
        """Files and folders (walked without following symlinks, ``.git`` skipped), as
        ``keyscan scan`` reads them."""
        from keyscan.sources import files

        started = time.perf_counter()
        targets = [os.fspath(p) for p in paths]
        result = ScanResult(kind="files", targets=targets)
        notes: list[str] = []
        tasks = files.iter_walk(targets, list(self.options.excludes), result.errors, notes)
        part = files.scan_files(self.rules, tasks, self.options.jobs, self._content)
        result.errors.extend(part.errors)
        result.warnings.extend(notes)
        result.files, result.bytes = part.files, part.bytes
        result.findings = self._keep(aggregate(part.hits))
        result.duration = time.perf_counter() - started
        return result

    def scan_repo(self, target: str | os.PathLike[str], scope: GitScope | None = None) -> ScanResult:
        """A repository's history (a path, or a URL cloned bare into a temporary folder), each
        unique blob and message read once; or its index with ``GitScope(staged=True)``."""
        from keyscan.git.history import scan_repository
        from keyscan.git.options import GitScanOptions

        s = scope or GitScope()
        options = GitScanOptions(
            scope=list(s.revisions) if s.revisions is not None else None,
            all_objects=s.all_objects,
            since=s.since,
            range=s.range,
            branch=s.branch,
            staged=s.staged,
            jobs=self.options.jobs,
            content=self._content,
            exclude_commits=list(s.exclude_commits),
            excludes=list(self.options.excludes),
        )
        result = scan_repository(os.fspath(target), options, self.rules)
        result.findings = self._keep(result.findings)
        return result


def scan_text(text: str | bytes, path: str = "<text>") -> ScanResult:
    """One-off convenience: ``Scanner().scan_text(text)``. Loading the rules costs tens of
    milliseconds: keep a :class:`Scanner` for repeated calls."""
    return Scanner().scan_text(text, path)


def triage(result: ScanResult, options: TriageOptions | None = None) -> ScanResult:
    """Apply suppressions, the confidence floor and (optionally) verification to ``result``,
    in place, and return it. Suppressed findings are counted in ``result.suppressed``; a
    suppressed key that verification finds live stays visible (``notes``)."""
    opts = options or TriageOptions()
    run = RunOptions(
        min_confidence=opts.min_confidence,
        verify=opts.verify,
        verify_options=opts.verify_options,
        only_live=opts.only_live,
        warnings=list(opts.extra_warnings),
    )
    if opts.config is not None:
        from keyscan.config import ConfigError, load_config

        try:
            config = load_config(Path(opts.config))
        except ConfigError as exc:
            raise KeyscanError(str(exc)) from None
        run.warnings.extend(config.warnings())
        if config.allow:
            run.suppressors.append(config.suppress)
    if opts.baseline is not None:
        from keyscan.baseline import Baseline, BaselineError

        try:
            baseline = Baseline.load(Path(opts.baseline))
        except BaselineError as exc:
            raise KeyscanError(str(exc)) from None
        run.warnings.extend(baseline.warnings())
        run.suppressors.append(baseline.suppress)
    _triage(result, run)
    return result


def exit_code(result: ScanResult, fail_on: Literal["any", "live"] = "any") -> int:
    """0 clean, 1 findings, 2 when anything could not be scanned (a partial scan never
    answers 0). ``fail_on="live"``: keys verified dead no longer fail."""
    return for_result(result, fail_on)


def finding_to_dict(finding: Finding, show_secrets: bool = False) -> dict[str, Any]:
    """A finding as keyscan's JSON report writes it: redacted unless ``show_secrets``."""
    from keyscan.report.json_report import finding_to_json

    return finding_to_json(finding, show_secrets=show_secrets)
