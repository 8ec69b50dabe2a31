"""``keyscan ci``: scan what a CI run is about, worked out from the CI environment.

* GitHub Actions: a pull request's commits (``base.sha..head.sha`` from ``GITHUB_EVENT_PATH``),
  or a push's ``before..after``; a new branch (``before`` all zeros) is scanned minus what the
  other remote branches already hold.
* GitLab CI: a merge request from ``CI_MERGE_REQUEST_DIFF_BASE_SHA``, a push from
  ``CI_COMMIT_BEFORE_SHA``.
* Elsewhere (or ``--full``): the whole history, or what is not reachable from ``--since``.

A shallow checkout is scanned as it is, with a warning that says how to fetch full history.
The git plumbing is ``keyscan.sources.git``; this module only decides the scope.

The policy (``.keyscan.yaml``, the baseline and rule folders it names) never comes from the
changes under review: for a pull/merge request it is read from the base commit's tree, for a
push from the commit before the pushed ones (git plumbing, not the work tree). ``--config``
wins; with no base commit the built-in defaults apply. Outside a recognised CI event (a local
run) the work tree's ``.keyscan.yaml`` is used, as by ``keyscan git``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from keyscan.cli_common import RunContext, build_context, fail, scan_options
from keyscan.errors import KeyscanError

if TYPE_CHECKING:
    from keyscan.config import Config
    from keyscan.models import ScanResult
    from keyscan.sources.git import GitScanOptions
    from keyscan.sources.gitobjects import GitRepo

ZERO_SHA = "0" * 40
SHALLOW_HELP = (
    "shallow clone: only the commits present were scanned. Fetch full history: "
    "`fetch-depth: 0` in actions/checkout, `GIT_DEPTH: 0` in GitLab CI, "
    "or `git fetch --unshallow`"
)


def is_zero(sha: str | None) -> bool:
    return not sha or set(sha) <= {"0"}


@dataclass
class Plan:
    """What to scan: ``scope`` revisions (None: every ref) minus ``exclude`` commits."""

    provider: str
    what: str  # for people: "pull request abc..def"
    scope: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    since: str | None = None
    warnings: list[str] = field(default_factory=list)
    nothing: bool = False  # e.g. a deleted branch: nothing to scan
    # Where the policy comes from: "worktree" (a local run), else the tree of ``policy_rev``
    # (the base of what is scanned; None: no base commit, built-in defaults).
    policy: str = "worktree"
    policy_rev: str | None = None


class CiError(KeyscanError, ValueError):
    """A CI environment that cannot be used (unreadable event file, ...)."""


def git_options(ctx: RunContext, **kwargs: Any) -> GitScanOptions:
    from keyscan.content import ContentOptions
    from keyscan.sources.git import GitScanOptions

    content = getattr(ctx, "content", None)
    return GitScanOptions(
        jobs=ctx.jobs,
        excludes=list(ctx.excludes),
        content=content if isinstance(content, ContentOptions) else ContentOptions(),
        **kwargs,
    )


def scan_git_history(repo: str, ctx: RunContext) -> ScanResult:
    """The whole history of ``repo`` (every ref), before suppression and reporting."""
    from keyscan.sources.git import scan_repository

    return scan_repository(repo, git_options(ctx), ctx.rules)


def has_commit(repo: GitRepo, rev: str) -> bool:
    proc = repo.run("cat-file", "-e", f"{rev}^{{commit}}", check=False)
    return proc.returncode == 0


def remote_tips(repo: GitRepo, unless_contains: str | None = None) -> list[str]:
    """Commit ids of the remote-tracking refs (``--not --remotes``). With ``unless_contains``,
    refs that already hold that commit are kept out of the list: in CI the branch being
    built is itself a remote ref, and must not hide its own commits."""
    args = ["for-each-ref", "--format=%(objectname) %(refname)"]
    if unless_contains:
        args.append(f"--no-contains={unless_contains}")
    proc = repo.run(*args, "refs/remotes")
    tips: list[str] = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        oid, _, ref = line.partition(" ")
        if not ref.endswith("/HEAD"):
            tips.append(oid)
    return sorted(set(tips))


def range_plan(repo: GitRepo, provider: str, what: str, base: str | None, head: str) -> Plan:
    """``base..head`` when both are here; otherwise head minus the other remote branches."""
    warnings: list[str] = []
    if not has_commit(repo, head):
        if not has_commit(repo, "HEAD"):
            raise CiError(f"{head}: commit not in the repository, and no HEAD")
        warnings.append(f"{head[:12]}: commit not in the checkout, scanning HEAD instead")
        head = "HEAD"
    if base and not is_zero(base) and has_commit(repo, base):
        plan = Plan(provider, f"{what} {base[:12]}..{head[:12]}", scope=[f"{base}..{head}"])
        plan.policy, plan.policy_rev = "commit", base
    else:
        exclude = remote_tips(repo, unless_contains=head)
        plan = Plan(
            provider,
            f"{what} {head[:12]} (commits not on other remote branches)",
            scope=[head],
            exclude=exclude,
        )
        plan.policy, plan.policy_rev = "commit", range_parent(repo, head, exclude)
        if base and not is_zero(base):
            warnings.append(
                f"{base[:12]}: base commit not in the checkout; scanning the history of "
                f"{head[:12]} that no other remote branch holds"
            )
    plan.warnings.extend(warnings)
    return plan


def range_parent(repo: GitRepo, head: str, exclude: list[str]) -> str | None:
    """The one commit the scanned commits (``head`` minus ``exclude``) grow from, if there is
    exactly one: where a new branch's policy comes from."""
    if not exclude:
        return None
    proc = repo.run("rev-list", "--boundary", head, "--not", *exclude, check=False)
    if proc.returncode != 0:
        return None
    lines = proc.stdout.decode("ascii", "replace").split()
    boundary = {ln[1:] for ln in lines if ln.startswith("-")}
    return boundary.pop() if len(boundary) == 1 else None


def _event(env: Mapping[str, str]) -> dict[str, Any]:
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except OSError as exc:
        raise CiError(f"{path}: cannot read GITHUB_EVENT_PATH: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CiError(f"{path}: GITHUB_EVENT_PATH is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise CiError(f"{path}: GITHUB_EVENT_PATH is not a JSON object")
    return doc


def _get(doc: Any, *keys: str) -> str | None:
    for k in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(k)
    return doc if isinstance(doc, str) and doc else None


def github_plan(repo: GitRepo, env: Mapping[str, str]) -> Plan | None:
    event_name = env.get("GITHUB_EVENT_NAME", "")
    event = _event(env)
    if event_name.startswith("pull_request"):
        base = _get(event, "pull_request", "base", "sha")
        head = _get(event, "pull_request", "head", "sha") or env.get("GITHUB_SHA") or "HEAD"
        number = event.get("number") or _get(event, "pull_request", "number")
        return range_plan(repo, "github", f"pull request #{number}", base, head)
    if event_name == "merge_group":
        base = _get(event, "merge_group", "base_sha")
        head = _get(event, "merge_group", "head_sha") or env.get("GITHUB_SHA") or "HEAD"
        return range_plan(repo, "github", "merge queue", base, head)
    if event_name == "push":
        after = _get(event, "after") or env.get("GITHUB_SHA") or "HEAD"
        if is_zero(after):
            return Plan("github", "deleted ref", nothing=True)
        return range_plan(repo, "github", "push", _get(event, "before"), after)
    return None


def gitlab_plan(repo: GitRepo, env: Mapping[str, str]) -> Plan | None:
    head = env.get("CI_COMMIT_SHA") or "HEAD"
    mr_base = env.get("CI_MERGE_REQUEST_DIFF_BASE_SHA")
    if mr_base:
        iid = env.get("CI_MERGE_REQUEST_IID", "?")
        return range_plan(repo, "gitlab", f"merge request !{iid}", mr_base, head)
    before = env.get("CI_COMMIT_BEFORE_SHA")
    if env.get("CI_COMMIT_BRANCH") and before is not None:
        return range_plan(repo, "gitlab", "push", before, head)
    return None


def plan_for(repo: GitRepo, env: Mapping[str, str], since: str | None, full: bool) -> Plan:
    """Decide what to scan from the environment (``since``/``full`` win over it). The policy
    follows the CI event even when ``since``/``full`` widen the scope: a pull request must
    not bring its own policy by way of ``--full``."""
    event_plan: Plan | None = None
    if env.get("GITHUB_ACTIONS") == "true" or env.get("GITLAB_CI") == "true":
        try:
            event_plan = (
                github_plan(repo, env) if env.get("GITHUB_ACTIONS") == "true"
                else gitlab_plan(repo, env)
            )
        except CiError:
            if not (since or full):
                raise
            event_plan = Plan("unknown", "", policy="commit")  # no base known: defaults
    plan: Plan | None = None
    if since:
        plan = Plan("local", f"history not reachable from {since}", since=since)
        plan.policy, plan.policy_rev = "commit", since
    elif not full:
        plan = event_plan
    if plan is None:
        plan = Plan("local", "full history (every ref)")
    if event_plan is not None and plan is not event_plan:
        plan.policy, plan.policy_rev = event_plan.policy, event_plan.policy_rev
    if repo.shallow:
        plan.warnings.append(SHALLOW_HELP)
    return plan


@click.command()
@click.argument("repo", default=".", metavar="[REPO]")
@click.option("--since", metavar="REF", help="Only what is not reachable from REF.")
@click.option("--full", is_flag=True, help="Scan the whole history, whatever the CI says.")
@scan_options
def ci(repo: str, since: str | None, full: bool, **params: Any) -> None:
    """Scan what this CI run is about: a pull/merge request's commits, a push's new commits,
    else the whole history (GitHub Actions and GitLab CI are recognised from the environment).

    Use --format sarif -o keyscan.sarif for GitHub code scanning, --format github for
    annotations, --format junit for test reports.
    """
    import os
    import tempfile

    from keyscan.sources.gitobjects import GitError, discover

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
    from keyscan.sources.gitobjects import GitError

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
    from keyscan.pipeline import finish
    from keyscan.sources.git import scan_repository

    ctx.run.warnings.extend(plan.warnings)
    if plan.nothing:
        from keyscan.models import ScanResult

        sys.exit(finish(ScanResult(kind="git", targets=[repo]), ctx.run))
    options = git_options(
        ctx,
        scope=plan.scope,
        since=plan.since,
        exclude_commits=plan.exclude,
        all_locations=bool(params.get("all_locations")),
    )
    result = scan_repository(repo, options, ctx.rules)
    result.stats["ci"] = {"provider": plan.provider, "scope": plan.what, "policy": policy}
    sys.exit(finish(result, ctx.run))
