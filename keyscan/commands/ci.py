"""``keyscan ci``: scan what a CI run is about, worked out from the CI environment.

* GitHub Actions: a pull request's commits (``base.sha..head.sha`` from ``GITHUB_EVENT_PATH``),
  or a push's ``before..after``; a new branch (``before`` all zeros) is scanned minus what the
  other remote branches already hold.
* GitLab CI: a merge request from ``CI_MERGE_REQUEST_DIFF_BASE_SHA``, a push from
  ``CI_COMMIT_BEFORE_SHA``.
* Elsewhere (or ``--full``): the whole history, or what is not reachable from ``--since``.

A shallow checkout is scanned as it is, with a warning that says how to fetch full history.
The scope plan is ``keyscan.git.scope.plan_for`` (a pure function of the repository and the
environment mapping); this module passes ``os.environ`` in and runs the scan.

The policy (``.keyscan.yaml``, the baseline and rule folders it names) never comes from the
changes under review: for a pull/merge request it is read from the base commit's tree, for a
push from the commit before the pushed ones (git plumbing, not the work tree). ``--config``
wins; with no base commit the built-in defaults apply. Outside a recognised CI event (a local
run) the work tree's ``.keyscan.yaml`` is used, as by ``keyscan git``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from keyscan.cli_common import RunContext, build_context, fail, git_options, scan_options

if TYPE_CHECKING:
    from keyscan.config import Config
    from keyscan.git.plumbing import GitRepo
    from keyscan.git.scope import Plan
    from keyscan.models import ScanResult


def scan_git_history(repo: str, ctx: RunContext) -> ScanResult:
    """The whole history of ``repo`` (every ref), before suppression and reporting."""
    from keyscan.git.history import scan_repository

    return scan_repository(repo, git_options(ctx), ctx.rules)


@click.command()
@click.argument("repo", default=".", metavar="[REPO]")
@click.option("--since", metavar="REF", help="Only what is not reachable from REF.")
@click.option("--full", is_flag=True, help="Scan the whole history, whatever the CI says.")
@click.option(
    "--sarif-file",
    metavar="FILE",
    help="Also write the same scan's findings as SARIF to FILE (one scan, two reports).",
)
@scan_options
def ci(repo: str, since: str | None, full: bool, **params: Any) -> None:
    """Scan what this CI run is about: a pull/merge request's commits, a push's new commits,
    else the whole history (GitHub Actions and GitLab CI are recognised from the environment).

    Use --format sarif -o keyscan.sarif for GitHub code scanning, --format github for
    annotations, --format junit for test reports.
    """
    import os
    import tempfile

    from keyscan.git.plumbing import GitError, discover
    from keyscan.git.scope import CiError, plan_for

    try:
        git_repo = discover(repo)
        plan = plan_for(git_repo, os.environ, since, full)
    except GitError as exc:
        fail(f"{exc.where}: {exc.message}")
    except CiError as exc:
        fail(str(exc))
    with tempfile.TemporaryDirectory(prefix="keyscan-policy-") as folder:
        config, where = ci_policy(git_repo, plan, params, Path(folder))
        ctx = build_context(params, config=config)
        click.echo(f"keyscan ci: {plan.provider}: scanning {plan.what}", err=True)
        click.echo(f"keyscan ci: policy: {where}", err=True)
        _scan(repo, plan, ctx, params, where)


def ci_policy(
    git_repo: GitRepo, plan: Plan, params: dict[str, Any], folder: Path
) -> tuple[Config | None, str]:
    """The config for this run and where it came from (for the output); exit 2 if bad.

    ``--config`` wins, ``--no-config`` means none; a local run uses the work tree's; a CI
    event's policy comes from the base commit's tree (copied into ``folder``)."""
    from keyscan.cli_common import load_config_for
    from keyscan.config import ConfigError, policy_from_commit
    from keyscan.git.plumbing import GitError

    if params.get("config_file") is not None:
        return load_config_for(params), f"--config {params['config_file']}"
    if params.get("no_config"):
        return None, "none (--no-config)"
    if plan.policy == "worktree":
        config = load_config_for(params)
        if config is None:
            return None, "none (no .keyscan.yaml found)"
        return config, f"{config.path} (work tree)"
    rev = plan.policy_rev
    if rev is None:
        return None, (
            "built-in defaults: no base commit to read .keyscan.yaml from "
            "(give one with --config)"
        )
    try:
        config = policy_from_commit(git_repo, rev, folder)
    except ConfigError as exc:
        fail(str(exc))
    except GitError as exc:
        fail(f"{rev[:12]}: cannot read the policy of the base commit: {exc.message}")
    if config is None:
        return None, f"none (base commit {rev[:12]} has no .keyscan.yaml)"
    name = config.path.name if config.path else ".keyscan.yaml"
    return config, (
        f"{name} of base commit {rev[:12]} (changes under review do not change the policy)"
    )


def _scan(
    repo: str, plan: Plan, ctx: RunContext, params: dict[str, Any], policy: str
) -> NoReturn:
    from keyscan.cli_common import finish
    from keyscan.git.history import scan_repository

    ctx.run.warnings.extend(plan.warnings)
    if plan.nothing:
        from keyscan.models import ScanResult

        empty = ScanResult(kind="git", targets=[repo])
        code = finish(empty, ctx.run)
        if params.get("sarif_file"):
            code = _write_sarif(empty, params["sarif_file"], code)
        sys.exit(code)
    options = git_options(
        ctx,
        scope=plan.scope,
        since=plan.since,
        exclude_commits=plan.exclude,
        all_locations=bool(params.get("all_locations")),
    )
    result = scan_repository(repo, options, ctx.rules)
    result.stats["ci"] = {"provider": plan.provider, "scope": plan.what, "policy": policy}
    code = finish(result, ctx.run)
    sarif_file = params.get("sarif_file")
    if sarif_file:
        code = _write_sarif(result, sarif_file, code)
    sys.exit(code)


def _write_sarif(result: ScanResult, path: str, code: int) -> int:
    """The SARIF report of the result already reported (triaged and redacted once)."""
    from keyscan.exitcodes import EXIT_ERROR
    from keyscan.privatefile import PrivateFileError, write_private
    from keyscan.report import render
    from keyscan.report.options import OutputOptions
    from keyscan.report.sarif import root_for

    if result.root is None:
        result.root = str(root_for(result))
    try:
        write_private(path, render(result, OutputOptions(format="sarif", output=path)))
    except (PrivateFileError, OSError) as exc:
        click.echo(f"keyscan: error: SARIF report not written to {path}: {exc}", err=True)
        return EXIT_ERROR
    return code
