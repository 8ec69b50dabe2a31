"""``keyscan ci``: scan what a CI run is about, worked out from the CI environment.

* GitHub Actions: a pull request's commits (``base.sha..head.sha`` from ``GITHUB_EVENT_PATH``),
  or a push's ``before..after``; a new branch (``before`` all zeros) is scanned minus what the
  other remote branches already hold.
* GitLab CI: a merge request from ``CI_MERGE_REQUEST_DIFF_BASE_SHA``, a push from
  ``CI_COMMIT_BEFORE_SHA``.
* Elsewhere (or ``--full``): the whole history, or what is not reachable from ``--since``.

A shallow checkout is scanned as it is, with a warning that says how to fetch full history.
The git plumbing is ``keyscan.sources.git``; this module only decides the scope.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from keyscan.cli_common import RunContext, build_context, fail, scan_options

if TYPE_CHECKING:
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


class CiError(ValueError):
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
    else:
        plan = Plan(
            provider,
            f"{what} {head[:12]} (commits not on other remote branches)",
            scope=[head],
            exclude=remote_tips(repo, unless_contains=head),
        )
        if base and not is_zero(base):
            warnings.append(
                f"{base[:12]}: base commit not in the checkout; scanning the history of "
                f"{head[:12]} that no other remote branch holds"
            )
    plan.warnings.extend(warnings)
    return plan


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
    """Decide what to scan from the environment (``since``/``full`` win over it)."""
    plan: Plan | None = None
    if since:
        plan = Plan("local", f"history not reachable from {since}", since=since)
    elif not full:
        if env.get("GITHUB_ACTIONS") == "true":
            plan = github_plan(repo, env)
        elif env.get("GITLAB_CI") == "true":
            plan = gitlab_plan(repo, env)
    if plan is None:
        plan = Plan("local", "full history (every ref)")
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

    from keyscan.pipeline import finish
    from keyscan.sources.git import scan_repository
    from keyscan.sources.gitobjects import GitError, discover

    ctx = build_context(params)
    try:
        git_repo = discover(repo)
        plan = plan_for(git_repo, os.environ, since, full)
    except GitError as exc:
        fail(f"{exc.where}: {exc.message}")
    except CiError as exc:
        fail(str(exc))
    click.echo(f"keyscan ci: {plan.provider}: scanning {plan.what}", err=True)
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
    result.stats["ci"] = {"provider": plan.provider, "scope": plan.what}
    sys.exit(finish(result, ctx.run))
