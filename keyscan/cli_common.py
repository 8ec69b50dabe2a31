"""Options shared by every scanning command (scan, git, ci, ...) and how they become a run."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar

from keyscan.content import ContentOptions
from keyscan.exitcodes import EXIT_CLEAN, EXIT_ERROR, for_result
from keyscan.models import Confidence, Finding, Rule, ScanResult
from keyscan.pipeline import RunOptions
from keyscan.records import dataclass, field
from keyscan.report.options import OutputOptions

if TYPE_CHECKING:
    from pathlib import Path

    import click

    from keyscan.config import Config
    from keyscan.git.options import GitScanOptions
    from keyscan.revoke import ExposureHook, RevocationRun, RevokeOptions

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT_FORMATS = ["text", "json", "jsonl", "sarif", "github", "junit"]


def echo_err(message: str) -> None:
    """One line on stderr, as click writes it (click is imported only when a line is said:
    the hook's clean path never imports it)."""
    import click

    click.echo(message, err=True)


def fail(message: str) -> NoReturn:
    """One clear line on stderr and exit 2."""
    from keyscan.terminal import safe

    echo_err(f"keyscan: error: {safe(message)}")
    sys.exit(EXIT_ERROR)


def output_options(f: F) -> F:
    import click

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
    from pathlib import Path

    import click

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
        click.option(
            "--no-decode",
            is_flag=True,
            help="Do not look for keys that are base64, percent-encoded, escaped or UTF-16.",
        ),
        click.option(
            "--archive-depth",
            type=click.IntRange(min=0, max=8),
            default=3,
            show_default=True,
            help="Scan inside zip/tar/gz archives nested this deep (0: do not open archives).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def config_options(f: F) -> F:
    from pathlib import Path

    import click

    options = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Config file (default: .keyscan.yaml here or at the repository root).",
        ),
        click.option("--no-config", is_flag=True, help="Ignore .keyscan.yaml."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def suppression_options(f: F) -> F:
    """--config/--no-config and --baseline."""
    from pathlib import Path

    import click

    f = click.option(
        "--baseline",
        "baseline_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Hide findings recorded in this baseline (keyscan baseline create).",
    )(f)
    return config_options(f)


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``3600s``, ``90m``, ``24h`` or ``7d``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value = text.strip().lower()
    scale = units.get(value[-1:])
    number = value[:-1] if scale is not None else value
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration (e.g. 3600s, 90m, 24h, 7d)") from None
    if seconds < 0:
        raise ValueError(f"{text!r}: a duration cannot be negative")
    return seconds


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    import click

    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def verify_options(f: F) -> F:
    """Validity checks (keyscan.verify): --verify and its tuning."""
    import click

    options = [
        click.option(
            "--verify",
            is_flag=True,
            help="Check whether each key is live (one read-only request per unique key).",
        ),
        click.option(
            "--verify-azure",
            is_flag=True,
            help="Also check Azure OpenAI keys, each only against the Azure OpenAI endpoint "
            "found next to it (https://<resource>.openai.azure.com or "
            ".cognitiveservices.azure.com; .us, .cn). Implies --verify.",
        ),
        click.option(
            "--azure-connect-to",
            metavar="HOST:PORT",
            hidden=True,
            help="Tests: carry the Azure checks over plain http to this loopback address "
            "(Host header and host checks unchanged).",
        ),
        click.option(
            "--only-live",
            is_flag=True,
            help="Show only keys verified live (any live-* status). Implies --verify.",
        ),
        click.option(
            "--fail-on",
            type=click.Choice(["any", "live"]),
            default="any",
            show_default=True,
            help="Exit 1 on any finding, or only on keys not verified dead (live: implies --verify).",
        ),
        click.option(
            "--api-base",
            metavar="URL",
            help="OpenAI API base URL for checks (default: $OPENAI_BASE_URL or "
            "https://api.openai.com/v1). https only; plain http only to loopback.",
        ),
        click.option(
            "--verify-concurrency",
            type=click.IntRange(min=1, max=100),
            default=8,
            show_default=True,
            help="Checks in flight at once.",
        ),
        click.option(
            "--verify-rps",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Requests per second budget for checks, retries included (default: no limit).",
        ),
        click.option(
            "--verify-timeout",
            type=click.FloatRange(min=0, min_open=True),
            default=10.0,
            show_default=True,
            help="Seconds per attempt of a check (2 retries with backoff on 5xx, timeouts...).",
        ),
        click.option(
            "--verify-ttl",
            default="24h",
            show_default=True,
            callback=_duration,
            help="How long a cached result is reused (3600s, 90m, 24h, 7d; 0: never).",
        ),
        click.option(
            "--no-cache",
            is_flag=True,
            help="Do not read or write the verification cache (~/.cache/keyscan).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def scan_options(f: F) -> F:
    """All options of a scanning command: detection, suppression (config, baseline), output,
    verification."""
    return detection_options(
        suppression_options(verify_options(revoke_options(output_options(f))))
    )


def revoke_options(f: F) -> F:
    """Revocation after a scan (keyscan.revoke): --revoke plans, --revoke --yes carries out."""
    import click

    options = [
        click.option(
            "--revoke",
            is_flag=True,
            help="Plan the revocation of live (or unverified) keys through the Admin API "
            "($OPENAI_ADMIN_KEY); see keyscan revoke. Dry run unless --yes.",
        ),
        click.option("--yes", is_flag=True, help="With --revoke: carry out the plan."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def apply_revoke_params(run: RunOptions, params: dict[str, Any]) -> None:
    """Set run.revoke (a callback, keyscan.revoke imported only when it runs). Exit 2 if
    --revoke has no admin key, or --yes comes without --revoke."""
    if not params.get("revoke"):
        if params.get("yes"):
            fail("--yes needs --revoke (it confirms the revocation plan)")
        return
    from keyscan.revoke import AdminKeyError, admin_key_from

    try:
        admin_key, notes = admin_key_from(None)
    except AdminKeyError as exc:
        fail(f"--revoke: {exc}")
    run.warnings.extend(notes)
    yes = bool(params.get("yes"))
    api_base = params.get("api_base")

    def revoke(findings: list[Finding]) -> int:
        from keyscan.http import default_base_url
        from keyscan.revoke import RevokeOptions, revoke_findings

        options = RevokeOptions(admin_key=admin_key, base_url=api_base or default_base_url(),
                                yes=yes)
        options.exposure = exposure_hook(options, findings=findings)
        # The scan's report keeps stdout: the plan and the results go to stderr.
        done = revoke_findings(findings, options, show_revocation_plan(options, sys.stderr))
        show_revocation_end(done, options, sys.stderr)
        return done.code

    run.revoke = revoke


def apply_verify_params(run: RunOptions, params: dict[str, Any]) -> None:
    """Set run.verify/verify_options/only_live/fail_on; keyscan.verify (httpx) is imported only
    when a check is asked for. Exit 2 on an unsafe --api-base."""
    run.only_live = bool(params.get("only_live"))
    run.fail_on = params.get("fail_on") or "any"
    if not (
        params.get("verify") or params.get("verify_azure") or run.only_live or run.fail_on == "live"
    ):
        return
    from keyscan.verify import UnsafeBaseUrl, options_from_params

    try:
        run.verify_options = options_from_params(params)
    except UnsafeBaseUrl as exc:
        fail(str(exc) if str(exc).startswith("--") else f"--api-base: {exc}")
    run.verify = True


@dataclass
class RunContext:
    rules: list[Rule]
    run: RunOptions
    excludes: list[str] = field(default_factory=list)
    jobs: int | None = None
    config: Config | None = None
    # Decoders and archive depth (--no-decode, --archive-depth), for every source.
    content: ContentOptions = field(default_factory=ContentOptions)


def git_options(ctx: RunContext, **kwargs: Any) -> GitScanOptions:
    """The git layer's options of a run (workers, excludes, content) plus ``kwargs``."""
    from keyscan.git.options import GitScanOptions

    content = getattr(ctx, "content", None)
    return GitScanOptions(
        jobs=ctx.jobs,
        excludes=list(ctx.excludes),
        content=content if isinstance(content, ContentOptions) else ContentOptions(),
        **kwargs,
    )


def load_config_for(params: dict[str, Any]) -> Config | None:
    """``--config FILE``, else ``.keyscan.yaml`` found from the current directory; exit 2 if bad."""
    from keyscan.regularfile import find_config

    path: Path | None = params.get("config_file")
    if path is None and not params.get("no_config"):
        path = find_config()
    if path is None:
        return None  # keyscan.config not imported: about 2 ms of every hook run
    from keyscan.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        fail(str(exc))


class _FromParams:
    """``build_context``'s default: the config named by --config, else found from here."""


FROM_PARAMS = _FromParams()


def build_context(
    params: dict[str, Any],
    use_baseline: bool = True,
    config: Config | _FromParams | None = FROM_PARAMS,
) -> RunContext:
    """Turn parsed CLI parameters into rules and run options, or exit 2 with one line.

    ``use_baseline=False``: do not hide baseline findings (``keyscan baseline`` itself).
    ``config``: a policy already decided by the command (``keyscan ci``: the base commit's),
    or None for none; by default ``--config``, else ``.keyscan.yaml`` found from here."""
    from keyscan.rules import RuleError, load_rules

    if isinstance(config, _FromParams):
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
    )
    run = RunOptions(
        output=output,
        min_confidence=Confidence.parse(params.get("min_confidence") or "low"),
        rules=rules,
    )
    apply_verify_params(run, params)
    apply_revoke_params(run, params)
    if config is not None:
        run.warnings.extend(config.warnings())
        if config.allow:
            run.suppressors.append(config.suppress)
    baseline_path = params.get("baseline_file") or (config.baseline if config else None)
    if use_baseline and baseline_path is not None:
        from pathlib import Path

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
        content=ContentOptions(
            decode=not params.get("no_decode"),
            archive_depth=3 if params.get("archive_depth") is None else params["archive_depth"],
        ),
    )


def finish(result: ScanResult, opts: RunOptions, stream: TextIO | None = None) -> int:
    """Filter, suppress, verify (``keyscan.pipeline.triage``), revoke, redact, report; return
    the exit code. The one place a command turns a scan into output."""
    from keyscan.pipeline import redact_result, triage

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


def exposure_hook(
    options: RevokeOptions, report: Path | None = None, findings: list[Finding] | None = None
) -> ExposureHook:
    """The revocation plan's exposure line ("used 3 times after it leaked, last ..., cost
    $X"): keyscan.exposure over the planner's client, with the evidence of the report (or of
    the findings of this scan): when each key was introduced, first seen, verified."""

    def hook(client: Any, plan: list[Any], history: list[dict[str, Any]]) -> Mapping[str, str]:
        from keyscan.exposure import (
            Evidence,
            ExposureOptions,
            evidence_from_entry,
            evidence_from_report,
            plan_hook,
        )

        evidence: dict[str, Evidence] = {}
        if report is not None:
            evidence = evidence_from_report(report)
        elif findings:
            import time

            from keyscan.report.json_report import finding_to_json

            now = int(time.time())
            evidence = {f.fingerprint: evidence_from_entry(finding_to_json(f), now)
                        for f in findings}
        eopts = ExposureOptions(admin_key=options.admin_key, base_url=options.base_url,
                                key_ids=options.key_ids, retries=options.retries,
                                backoff_initial=options.backoff_initial)
        return plan_hook(evidence, eopts)(client, plan, history)

    return hook


def show_revocation_plan(options: RevokeOptions, out: TextIO) -> Callable[[RevocationRun], None]:
    """The ``on_plan`` callback of a revocation: warnings, then the plan, before any DELETE."""
    from keyscan.revoke.render import plan_text
    from keyscan.terminal import safe

    def show(run: RevocationRun) -> None:
        for note in run.warnings:
            echo_err(f"keyscan: warning: {safe(note)}")
        out.write(plan_text(run, options.fmt, options.delete_service_account))
        out.flush()

    return show


def show_revocation_end(run: RevocationRun, options: RevokeOptions, out: TextIO) -> None:
    """The results (or the JSON document) on ``out``, then one line per error on stderr."""
    from keyscan.revoke.render import run_text
    from keyscan.terminal import safe

    out.write(run_text(run, options.fmt, str(options.audit_path)))
    out.flush()
    for line in run.errors:
        echo_err(f"keyscan: error: {safe(line)}")
