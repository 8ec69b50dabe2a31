"""``keyscan hook pre-commit|pre-push``: the entries of keyscan's git hooks.

* ``pre-commit``: exactly the staged content of the commit being made (the index, not the
  work tree), as ``keyscan git --staged``.
* ``pre-push``: the commits being pushed. Under the pre-commit framework the range comes from
  ``PRE_COMMIT_FROM_REF``/``PRE_COMMIT_TO_REF`` (``PRE_COMMIT_SOURCE``/``PRE_COMMIT_ORIGIN``
  in older versions); as a plain git hook, from the ``<local ref> <local sha> <remote ref>
  <remote sha>`` lines git writes on stdin. A new branch (no remote sha) is scanned minus
  everything any remote already holds (``TO --not --remotes``).

Output is the short text report with the next step for a refused commit or push; exit 1 blocks
the commit or push. Nothing heavy is imported on this path (no httpx, no GitPython).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from keyscan.cli_common import RunContext, build_context, fail, scan_options
from keyscan.commands.quick import NOTHING_STAGED as NOTHING_STAGED
from keyscan.commands.quick import pre_commit_target, run_pre_commit, run_pre_push, run_revs


@click.group()
def hook() -> None:
    """Entries for git hooks and the pre-commit framework (see .pre-commit-hooks.yaml)."""


@hook.command("pre-commit")
@click.argument("files", nargs=-1, metavar="[FILE]...")
@click.option(
    "--repo",
    default=".",
    show_default=True,
    metavar="DIR",
    help="The repository (the one containing DIR).",
)
@scan_options
def pre_commit(files: tuple[str, ...], repo: str, **params: Any) -> None:
    """Scan the files pre-commit passes (their staged content too, where it differs), or,
    with no FILE, exactly what is staged for the next commit (or, when pre-commit is run with
    --from-ref/--to-ref, e.g. in CI, the commits of that range: the policy then comes from
    the range's base commit, as in keyscan ci, not from the changes being checked).

    Nothing to scan (no FILE, nothing staged) is said, never reported as clean: inside a
    commit it exits 0, elsewhere (pre-commit run with pass_filenames: false) 2."""
    files, repo = pre_commit_target(files, repo)  # also the older form: ... pre-commit REPO
    if os.environ.get("PRE_COMMIT_FROM_REF") and os.environ.get("PRE_COMMIT_TO_REF"):
        import tempfile

        from keyscan.git.scope import push_scope

        revs, new_branch = push_scope(dict(os.environ), [])
        with tempfile.TemporaryDirectory(prefix="keyscan-policy-") as folder:
            ctx = _range_context(repo, params, Path(folder))
            # pre-commit names the remote only in its pre-push stage: commits being pushed;
            # otherwise a range in CI, commits already pushed.
            pushing = bool(os.environ.get("PRE_COMMIT_REMOTE_NAME"))
            run_revs(repo, ctx, revs, new_branch, "push" if pushing else "history")
    # The body the click-free door runs too (keyscan.commands.quick).
    run_pre_commit(files, repo, params)


def _range_context(repo: str, params: dict[str, Any], folder: Path) -> RunContext:
    """The run context of a range scan, with the policy of the range's base commit."""
    from keyscan.commands.ci import ci_policy
    from keyscan.git.plumbing import GitError, discover
    from keyscan.git.scope import Plan, range_base

    try:
        git_repo = discover(repo)
        base = range_base(git_repo, dict(os.environ))
    except GitError as exc:
        fail(f"{exc.where}: {exc.message}")
    plan = Plan("pre-commit", "", policy="commit", policy_rev=base)
    config, where = ci_policy(git_repo, plan, params, folder)
    click.echo(f"keyscan: policy: {where}", err=True)
    return build_context(params, config=config)


@hook.command("pre-push")
@click.argument("repo", default=".", metavar="[REPO]")
@scan_options
def pre_push(repo: str, **params: Any) -> None:
    """Scan the commits being pushed (the range from pre-commit or git, new branches minus
    what the remotes hold)."""
    # The body the click-free door runs too (keyscan.commands.quick).
    run_pre_push(repo, params)


@hook.command("pre-receive")
@click.option(
    "--config",
    "config",
    metavar="FILE",
    help="The server's policy file (suppressions). Default: $KEYSCAN_SERVER_CONFIG. Never "
    "a .keyscan.yaml or allow comment inside the pushed commits.",
)
@click.option(
    "--timeout",
    type=float,
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="Time budget for the whole check (hosting platforms kill slow hooks).",
)
@click.option(
    "--on-timeout",
    type=click.Choice(["reject", "accept"]),
    default="reject",
    show_default=True,
    help="reject: fail closed; accept: fail open (the push goes through unscanned).",
)
@click.option(
    "--allow-bypass",
    "bypass_log",
    metavar="LOG",
    help="Honour `git push -o keyscan.allow=<fingerprint> -o keyscan.reason=...` (never "
    "for a key verified live), each bypass recorded in LOG. Off by default.",
)
@click.option("--verify", is_flag=True, help="Check each key against the OpenAI API.")
@click.option(
    "--api-base",
    metavar="URL",
    help="OpenAI API base URL for --verify (default: $OPENAI_BASE_URL or "
    "https://api.openai.com/v1). https only; plain http only to loopback.",
)
@click.option("--rules", "rule_dirs", multiple=True, metavar="DIR", help="Add rule files.")
def pre_receive(
    config: str | None,
    timeout: float,
    on_timeout: str,
    bypass_log: str | None,
    verify: bool,
    api_base: str | None,
    rule_dirs: tuple[str, ...],
) -> None:
    """Server side: refuse a push that introduces an OpenAI key. Reads git's
    `<old> <new> <ref>` lines on stdin; run in the bare repository (as git runs hooks)."""
    from keyscan.errors import KeyscanError
    from keyscan.exitcodes import EXIT_ERROR
    from keyscan.receive import ReceiveOptions, check_push, refusal

    verify_options = None
    if verify:
        from keyscan.verify import UnsafeBaseUrl, options_from_params

        try:
            verify_options = options_from_params({"api_base": api_base})
        except UnsafeBaseUrl as exc:
            click.echo(f"keyscan: push refused: --api-base: {exc}", err=True)
            sys.exit(EXIT_ERROR)
    elif api_base:
        click.echo("keyscan: push refused: --api-base needs --verify", err=True)
        sys.exit(EXIT_ERROR)
    options = ReceiveOptions(
        config=config,
        timeout=timeout,
        on_timeout="accept" if on_timeout == "accept" else "reject",
        bypass_log=bypass_log,
        verify=verify,
        verify_options=verify_options,
        rule_dirs=rule_dirs,
    )
    lines = sys.stdin.read().splitlines()
    try:
        outcome = check_push(".", lines, dict(os.environ), options)
    except (KeyscanError, ValueError) as exc:
        click.echo(f"keyscan: push refused: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    for line in refusal(outcome, options):
        click.echo(line, err=True)
    sys.exit(outcome.code)


@hook.command("agent")
@click.option(
    "--output",
    "output",
    type=click.Choice(["exit-code", "json"]),
    default="exit-code",
    show_default=True,
    help="exit-code: block with exit 2 and the reason on stderr; json: exit 0 with the "
    "documented JSON decision on stdout.",
)
def agent(output: str) -> None:
    """Coding-agent hook (Claude Code, Codex CLI): reads the hook's JSON on stdin and blocks
    a tool call, prompt or tool output that holds an OpenAI key, with a redacted reason."""
    from keyscan.agent import BAD_INPUT, PayloadError, decide, parse_payload, respond
    from keyscan.api import Scanner

    try:
        payload = parse_payload(sys.stdin.buffer.read())
    except PayloadError as exc:
        # Exit 1: the agent shows the error and goes on (a broken hook never blocks all work).
        click.echo(f"keyscan: {exc}", err=True)
        sys.exit(BAD_INPUT)
    code, out, err = respond(decide(payload, Scanner()), output)
    if out:
        sys.stdout.write(out)
    if err:
        sys.stderr.write(err)
    sys.exit(code)
