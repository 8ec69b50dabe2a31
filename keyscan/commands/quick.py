"""The small jobs' door: ``keyscan hook pre-commit`` and ``keyscan git --range A..B [REPO]``
run without click (issue 16: importing click is a quarter of the hook's whole-process time).

:func:`door` recognises only the plainest command lines of these jobs (no option but
``--range``, no ``--help``, no shell completion, no pre-commit range), whose parameters are
click's defaults (``DEFAULTS``; a test compares them with what click parses for the same
line). Every other command line goes through click, so help, usage errors and every option
behave exactly as before. The bodies (:func:`run_staged`, :func:`run_git`) are the ones the
click commands run, so both doors do the same thing.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

if TYPE_CHECKING:
    from keyscan.cli_common import RunContext

# What click passes for the options of ``scan_options`` when none is given.
DEFAULTS: dict[str, Any] = {
    "rule_dirs": (),
    "min_confidence": "low",
    "excludes": (),
    "jobs": None,
    "no_decode": False,
    "archive_depth": 3,
    "baseline_file": None,
    "config_file": None,
    "no_config": False,
    "verify": False,
    "verify_azure": False,
    "azure_connect_to": None,
    "only_live": False,
    "fail_on": "any",
    "api_base": None,
    "verify_concurrency": 8,
    "verify_rps": None,
    "verify_timeout": 10.0,
    "verify_ttl": 86400.0,
    "no_cache": False,
    "revoke": False,
    "yes": False,
    "fmt": "text",
    "output": None,
    "show_secrets": False,
    "color": "auto",
    "quiet": False,
}

NOTHING_STAGED = "nothing to scan: nothing is staged and no file was given"


def run_staged(repo: str, ctx: RunContext) -> NoReturn:
    """The whole index (a plain git hook, or pre-commit with pass_filenames: false)."""
    from keyscan.cli_common import echo_err, fail, finish, git_options
    from keyscan.exitcodes import EXIT_CLEAN
    from keyscan.git.history import scan_repository

    ctx.run.output.advice = "commit"  # never committed: unstage or edit
    result = scan_repository(repo, git_options(ctx, staged=True), ctx.rules)
    if not result.errors and not result.stats.get("staged_files"):
        if os.environ.get("GIT_INDEX_FILE"):
            # git commit runs its hooks with GIT_INDEX_FILE: this commit adds no content.
            echo_err(f"keyscan: {NOTHING_STAGED} (no file checked)")
            sys.exit(EXIT_CLEAN)
        # `pre-commit run --all-files` with pass_filenames: false, pre-commit.ci, a manual
        # run: what the user wants checked is not here. Never pass having checked nothing.
        fail(
            f"{NOTHING_STAGED}: let pre-commit pass file names (do not set "
            "pass_filenames: false), or run keyscan scan / keyscan git"
        )
    sys.exit(finish(result, ctx.run))


def run_git(
    repo: str,
    params: dict[str, Any],
    *,
    all_objects: bool = False,
    since: str | None = None,
    rev_range: str | None = None,
    branch: str | None = None,
    staged: bool = False,
) -> NoReturn:
    """``keyscan git`` once its options are known to go together."""
    from keyscan.cli_common import build_context, finish
    from keyscan.git.history import scan_repository
    from keyscan.git.options import GitScanOptions

    ctx = build_context(params)
    options = GitScanOptions(
        all_objects=all_objects,
        since=since,
        range=rev_range,
        branch=branch,
        staged=staged,
        all_locations=bool(params.get("all_locations")),
        jobs=ctx.jobs,
        content=ctx.content,
        excludes=list(ctx.excludes),
    )
    result = scan_repository(repo, options, ctx.rules)
    sys.exit(finish(result, ctx.run))


def _range_args(rest: list[str]) -> tuple[str, str] | None:
    """(range, repo) of ``--range A..B [REPO]`` / ``[REPO] --range=A..B``, or None."""
    rev_range: str | None = None
    positional: list[str] = []
    it = iter(rest)
    for arg in it:
        if arg == "--range":
            value = next(it, None)
            if value is None or rev_range is not None:
                return None
            rev_range = value
        elif arg.startswith("--range="):
            if rev_range is not None:
                return None
            rev_range = arg[len("--range=") :]
        elif arg.startswith("-"):
            return None  # any other option, "-", "--": click's business
        else:
            positional.append(arg)
    # An empty or option-like value, several folders: click decides what they mean.
    if not rev_range or rev_range.startswith("-") or len(positional) > 1:
        return None
    return rev_range, positional[0] if positional else "."


@dataclass
class Line:
    """A command line the click-free door runs: which job, on which repository, with which
    parameters (those click would pass to the command's function)."""

    job: str  # "pre-commit" or "git"
    repo: str
    params: dict[str, Any]
    rev_range: str | None = None


def parse(args: list[str], env: Mapping[str, str]) -> Line | None:
    """The click-free reading of ``args`` (the words after ``keyscan``), or None for click."""
    if "_KEYSCAN_COMPLETE" in env:  # shell completion: click answers it
        return None
    if args == ["hook", "pre-commit"]:
        if env.get("PRE_COMMIT_FROM_REF") and env.get("PRE_COMMIT_TO_REF"):
            return None  # pre-commit run --from-ref/--to-ref: the range and its policy
        return Line("pre-commit", ".", dict(DEFAULTS))
    if args[:1] == ["git"]:
        found = _range_args(args[1:])
        if found is None:
            return None
        rev_range, repo = found
        return Line("git", repo, {**DEFAULTS, "all_locations": False}, rev_range)
    return None


def door(args: list[str], env: Mapping[str, str]) -> Callable[[], NoReturn] | None:
    """The click-free job of ``args``, or None: click reads that command line."""
    line = parse(args, env)
    if line is None:
        return None

    def job() -> NoReturn:
        # Imported here, inside the caller's signal handling (keyscan.interrupts): a Ctrl-C
        # during the imports ends the run as one anywhere else does.
        from keyscan.cli_common import build_context

        assert line is not None
        if line.job == "pre-commit":
            run_staged(line.repo, build_context(line.params))
        run_git(line.repo, line.params, rev_range=line.rev_range)

    return job


class _PacifyFlush:
    """A closed pipe's stream whose flush at exit says nothing (click's answer to EPIPE)."""

    def __init__(self, wrapped: TextIO) -> None:
        self.wrapped = wrapped

    def flush(self) -> None:
        try:
            self.wrapped.flush()
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


def run(job: Callable[[], NoReturn], fast_exit: bool = False) -> NoReturn:
    """Run a door's job as click's standalone mode runs a command: a closed pipe exits 1
    quietly, an end of input or a KeyboardInterrupt prints "Aborted!" and exits 1.

    ``fast_exit`` (keyscan run as a program, not ``main(argv)`` from Python): the job's exit
    skips the interpreter's teardown of every module (see :func:`leave`)."""
    from keyscan.exitcodes import EXIT_CLICK_ABORT

    try:
        job()
    except SystemExit as exc:
        if fast_exit:
            leave(exc)
        raise
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        sys.stdout = _PacifyFlush(sys.stdout)  # as click does
        sys.stderr = _PacifyFlush(sys.stderr)
        sys.exit(EXIT_CLICK_ABORT)
    except (EOFError, KeyboardInterrupt):
        from keyscan.cli_common import echo_err

        echo_err("")
        echo_err("Aborted!")
        sys.exit(EXIT_CLICK_ABORT)


def leave(exc: SystemExit) -> None:
    """End the process now with ``exc``'s status, as the interpreter would but without
    tearing down every module and object first (about a tenth of the hook's CPU): the
    atexit functions run and stdout/stderr are flushed, as at a normal exit. Returns (the
    caller re-raises ``exc`` for a normal exit) when anything else could still need the
    teardown: a thread it would wait for, worker processes, a status that is not a number, or a stream
    that cannot be flushed (the normal exit then reports that as it always does)."""
    import threading  # already imported by subprocess: costs nothing here

    code = exc.code
    if code is None:
        code = 0
    if not isinstance(code, int) or isinstance(code, bool):
        return
    main = threading.main_thread()
    if "multiprocessing" in sys.modules or any(
        not t.daemon and t is not main for t in threading.enumerate()
    ):
        return  # the interpreter would wait for that thread (daemon ones it never waits for)
    import atexit

    atexit._run_exitfuncs()  # clears them: a normal exit after this does not run them twice
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code & 0xFF)
