"""``keyscan hook pre-commit|pre-push``: the entries of keyscan's git hooks.

* ``pre-commit``: exactly the staged content of the commit being made (the index, not the
  work tree), as ``keyscan git --staged``.
* ``pre-push``: the commits being pushed. Under the pre-commit framework the range comes from
  ``PRE_COMMIT_FROM_REF``/``PRE_COMMIT_TO_REF`` (``PRE_COMMIT_SOURCE``/``PRE_COMMIT_ORIGIN``
  in older versions); as a plain git hook, from the ``<local ref> <local sha> <remote ref>
  <remote sha>`` lines git writes on stdin. A new branch (no remote sha) is scanned minus
  everything any remote already holds (``TO --not --remotes``).

Output is the short text report with advice on false positives and baselines; exit 1 blocks
the commit or push. Nothing heavy is imported on this path (no httpx, no GitPython).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from keyscan.cli_common import RunContext, build_context, fail, scan_options


def _run(repo: str, ctx: RunContext, **kwargs: Any) -> NoReturn:
    from keyscan.commands.ci import git_options
    from keyscan.pipeline import finish
    from keyscan.sources.git import scan_repository

    ctx.run.output.hook = True
    result = scan_repository(repo, git_options(ctx, **kwargs), ctx.rules)
    sys.exit(finish(result, ctx.run))


@click.group()
def hook() -> None:
    """Entries for git hooks and the pre-commit framework (see .pre-commit-hooks.yaml)."""


@hook.command("pre-commit")
@click.argument("repo", default=".", metavar="[REPO]")
@scan_options
def pre_commit(repo: str, **params: Any) -> None:
    """Scan exactly what is staged for the next commit (or, when pre-commit is run with
    --from-ref/--to-ref, e.g. in CI, the commits of that range: the policy then comes from
    the range's base commit, as in keyscan ci, not from the changes being checked)."""
    if os.environ.get("PRE_COMMIT_FROM_REF") and os.environ.get("PRE_COMMIT_TO_REF"):
        import tempfile

        revs, new_branch = push_scope(os.environ, [])
        with tempfile.TemporaryDirectory(prefix="keyscan-policy-") as folder:
            ctx = _range_context(repo, params, Path(folder))
            _run_revs(repo, ctx, revs, new_branch)
    ctx = build_context(params)
    _run(repo, ctx, staged=True)


def _range_context(repo: str, params: dict[str, Any], folder: Path) -> RunContext:
    """The run context of a range scan, with the policy of the range's base commit."""
    from keyscan.commands.ci import Plan, ci_policy, has_commit, is_zero, range_parent, remote_tips
    from keyscan.sources.gitobjects import GitError, discover

    from_ref = os.environ.get("PRE_COMMIT_FROM_REF", "")
    to_ref = os.environ.get("PRE_COMMIT_TO_REF", "")
    try:
        git_repo = discover(repo)
        base: str | None = from_ref
        if is_zero(from_ref) or not has_commit(git_repo, from_ref):
            base = range_parent(git_repo, to_ref, remote_tips(git_repo))
    except GitError as exc:
        fail(f"{exc.where}: {exc.message}")
    plan = Plan("pre-commit", "", policy="commit", policy_rev=base)
    config, where = ci_policy(git_repo, plan, params, folder)
    click.echo(f"keyscan: policy: {where}", err=True)
    return build_context(params, config=config)


def push_scope(env: Mapping[str, str], stdin_lines: Sequence[str]) -> tuple[list[str], bool]:
    """(revisions to scan, whether to leave out what the remotes hold).

    ``A..B`` items come from a known remote sha; a bare tip means "new branch"."""
    from keyscan.commands.ci import is_zero

    to_ref = env.get("PRE_COMMIT_TO_REF") or env.get("PRE_COMMIT_ORIGIN")
    from_ref = env.get("PRE_COMMIT_FROM_REF") or env.get("PRE_COMMIT_SOURCE")
    if to_ref:
        if from_ref and not is_zero(from_ref):
            return [f"{from_ref}..{to_ref}"], False
        return [to_ref], True
    revs: list[str] = []
    new_branch = False
    for line in stdin_lines:
        parts = line.split()
        if len(parts) != 4:
            continue
        _, local_sha, _, remote_sha = parts
        if is_zero(local_sha):
            continue  # a deleted ref pushes no content
        if is_zero(remote_sha):
            revs.append(local_sha)
            new_branch = True
        else:
            revs.append(f"{remote_sha}..{local_sha}")
    if not revs and not stdin_lines:
        # pre-commit runs a push of a brand-new history without a range: what is not on any
        # remote yet.
        return ["HEAD"], True
    return revs, new_branch


@hook.command("pre-push")
@click.argument("repo", default=".", metavar="[REPO]")
@scan_options
def pre_push(repo: str, **params: Any) -> None:
    """Scan the commits being pushed (the range from pre-commit or git, new branches minus
    what the remotes hold)."""
    ctx = build_context(params)
    env = dict(os.environ)
    lines: list[str] = []
    from_framework = "PRE_COMMIT_TO_REF" in env or "PRE_COMMIT_ORIGIN" in env
    if not from_framework and not sys.stdin.isatty():
        lines = [ln for ln in sys.stdin.read().splitlines() if ln.strip()]
    revs, new_branch = push_scope(env, lines)
    _run_revs(repo, ctx, revs, new_branch)


def _run_revs(repo: str, ctx: RunContext, revs: list[str], new_branch: bool) -> NoReturn:
    """Scan ``revs`` (``A..B`` or tips), minus what the remotes hold for a new branch."""
    from keyscan.commands.ci import has_commit, remote_tips
    from keyscan.sources.gitobjects import GitError, discover

    if not revs:
        sys.exit(0)  # only deletions
    try:
        git_repo = discover(repo)
        exclude = remote_tips(git_repo) if new_branch else []
        checked: list[str] = []
        for rev in revs:
            base, dots, tip = rev.partition("..")
            if dots and not has_commit(git_repo, base):
                # The remote's old tip is not here (force push from another clone): scan the
                # pushed tip minus everything the remotes hold.
                checked.append(tip)
                exclude = exclude or remote_tips(git_repo)
            else:
                checked.append(rev)
    except GitError as exc:
        fail(f"{exc.where}: {exc.message}")
    _run(repo, ctx, scope=checked, exclude_commits=exclude)
