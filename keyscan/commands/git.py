"""``keyscan git``: every blob and commit message of a repository's history, or the index."""

from __future__ import annotations

from typing import Any

import click

from keyscan.cli_common import scan_options


@click.command()
@click.argument("repo", default=".", metavar="[REPO]")
@click.option(
    "--all-objects",
    is_flag=True,
    help="Also scan objects no ref reaches (dangling blobs, dropped stashes): reported as "
    "unreachable.",
)
@click.option(
    "--since",
    metavar="REF",
    help="Only what is not reachable from REF (e.g. origin/main, a tag, a commit id).",
)
@click.option("--range", "rev_range", metavar="A..B", help="Only commits in A..B (git syntax).")
@click.option("--branch", metavar="REF", help="Only the history of REF instead of all refs.")
@click.option(
    "--staged",
    is_flag=True,
    help="Scan what is staged in the index (the next commit's content) instead of history.",
)
@click.option(
    "--all-locations",
    is_flag=True,
    help="List every location and every other commit/path that carries each key.",
)
@scan_options
def git(
    repo: str,
    all_objects: bool,
    since: str | None,
    rev_range: str | None,
    branch: str | None,
    staged: bool,
    **params: Any,
) -> None:
    """Scan a git repository's history for OpenAI keys: every blob and commit message
    reachable from any ref (branches, tags, remotes, stash, notes) and HEAD, each blob once.

    REPO is a local repository (default: the one containing .; bare ones too) or a URL
    (https://, ssh://, file://), cloned bare into a temporary directory removed afterwards.
    """
    from keyscan.commands.quick import run_git

    if staged and (all_objects or since or rev_range or branch):
        raise click.UsageError("--staged cannot be combined with history options")
    if all_objects and (since or rev_range or branch):
        raise click.UsageError(
            "--all-objects scans every object: not with --since/--range/--branch"
        )
    if rev_range and (branch or since):
        raise click.UsageError("--range cannot be combined with --branch or --since")
    run_git(repo, params, all_objects=all_objects, since=since, rev_range=rev_range,
            branch=branch, staged=staged)  # fmt: skip
