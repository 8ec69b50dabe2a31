"""The small jobs' door: ``keyscan hook pre-commit [FILE]...`` (a plain git hook, or the
pre-commit framework passing file names), ``keyscan hook pre-push [REPO]``, ``keyscan git
[--range A..B] [REPO]`` and ``keyscan scan [PATH]...`` (with ``-q``/``--quiet`` and
``-f``/``--format FORMAT`` at most once each) run without click (issue 16: importing click
is a quarter of the hook's whole-process time).

:func:`door` recognises only the plainest command lines of these jobs (no option but
``--range``, or ``-q``/``--format`` for ``scan``; no ``--help``, no shell completion, no
pre-commit range, no other word that starts with ``-``), whose parameters are click's
defaults (``DEFAULTS``; a test compares them with what click parses for the same line).
Every other command line goes through click, so help, usage errors and every option behave
exactly as before. The bodies (:func:`run_pre_commit`, :func:`run_pre_push`,
:func:`run_git`, :func:`run_scan`, :func:`scan_targets`) are the ones the click commands
run, so both doors do the same thing.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

if TYPE_CHECKING:
    from keyscan.cli_common import RunContext
    from keyscan.git.plumbing import GitRepo
    from keyscan.models import ScanResult

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
    from keyscan.git.staged import scan_staged_repository

    ctx.run.output.advice = "commit"  # never committed: unstage or edit
    result = scan_staged_repository(repo, git_options(ctx, staged=True), ctx.rules)
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


def pre_commit_target(files: tuple[str, ...], repo: str) -> tuple[tuple[str, ...], str]:
    """``(files, repo)`` of ``keyscan hook pre-commit``: one folder alone is the older form
    ``keyscan hook pre-commit REPO``."""
    if len(files) == 1 and os.path.isdir(files[0]):
        return (), files[0]
    return files, repo


def run_pre_commit(files: tuple[str, ...], repo: str, params: dict[str, Any]) -> NoReturn:
    """``keyscan hook pre-commit`` once the pre-commit framework's range is ruled out: the
    files given, or exactly what is staged."""
    from keyscan.cli_common import build_context

    ctx = build_context(params)
    if files:
        run_files(repo, ctx, list(files))
    run_staged(repo, ctx)


def scan_targets(targets: list[str], ctx: RunContext) -> ScanResult:
    """Files, folders and ``-`` (stdin) into a result, before suppression and reporting."""
    import time

    from keyscan.models import ScanError, ScanResult
    from keyscan.sources import files

    started = time.perf_counter()
    result = ScanResult(kind="files", targets=targets)
    found = files.FileScan()
    file_targets = [t for t in targets if t != "-"]
    if "-" in targets:
        files.merge_scan(found, files.scan_stdin(ctx.rules, options=ctx.content))
        if not file_targets:
            result.kind = "stdin"
    if file_targets:
        walk_errors: list[ScanError] = []
        notes: list[str] = []
        tasks = files.iter_walk(file_targets, ctx.excludes, walk_errors, notes)
        part = files.scan_files(ctx.rules, tasks, ctx.jobs, ctx.content)
        found.errors.extend(walk_errors)  # complete once the lazy walk is done
        files.merge_scan(found, part)
        result.warnings.extend(notes)
    result.errors.extend(found.errors)
    result.files, result.bytes = found.files, found.bytes
    result.findings = found.findings()
    result.duration = time.perf_counter() - started
    return result


def run_scan(paths: tuple[str, ...], params: dict[str, Any]) -> NoReturn:
    """``keyscan scan [PATH]...``: the paths (default: the current folder)."""
    from keyscan.cli_common import build_context, finish

    ctx = build_context(params)
    result = scan_targets(list(paths) or ["."], ctx)
    sys.exit(finish(result, ctx.run))


def run_files(repo: str, ctx: RunContext, files: list[str]) -> NoReturn:
    """The files pre-commit passes, as they are in the work tree (pre-commit has stashed
    what is not staged during a commit), plus the staged content of those whose index entry
    differs from the file (a partly staged file when nothing was stashed): what would be
    committed is scanned either way."""
    from keyscan.cli_common import fail, finish, git_options
    from keyscan.git.plumbing import GitError, discover
    from keyscan.git.staged import scan_staged_repository

    ctx.run.output.advice = "commit"  # never committed: unstage or edit
    result = scan_targets(files, ctx)
    try:
        git_repo = discover(repo)
        differing = _index_differs(git_repo, files)
    except GitError as exc:
        fail(f"{exc.where}: {exc.message}")
    if differing:
        options = git_options(ctx, staged=True, paths=differing)
        staged = scan_staged_repository(repo, options, ctx.rules)
        _merge(result, staged)
    sys.exit(finish(result, ctx.run))


# Up to this many files, ``ls-files`` is given their names (far below any command-line
# limit); beyond, it lists the whole index.
PATHSPECS_MAX = 256


def _index_differs(repo: GitRepo, files: list[str]) -> list[str]:
    """Index paths of ``files`` whose index entry is not the file's content byte for byte."""
    if repo.work_tree is None:
        return []
    top = os.path.realpath(repo.work_tree)
    wanted: dict[str, str] = {}  # index path -> file
    for name in files:
        full = os.path.abspath(name)  # the folder resolved, not a symlink named last
        rel = os.path.relpath(
            os.path.join(os.path.realpath(os.path.dirname(full)), os.path.basename(full)), top
        )
        if rel != os.pardir and not rel.startswith(os.pardir + os.sep):
            wanted[os.path.normpath(rel).replace(os.sep, "/")] = name
    if not wanted:
        return []
    # A few files (a commit's): only their entries, named as literal pathspecs (no glob, no
    # magic); many (pre-commit run --all-files): the whole index, one entry at a time.
    named = [f":(literal){p}" for p in wanted] if len(wanted) <= PATHSPECS_MAX else []
    proc = repo.run("ls-files", "-s", "-z", "--", *named, keep_index=True)
    differing: list[str] = []
    for entry in proc.stdout.split(b"\0"):
        meta, _, raw = entry.partition(b"\t")
        path = raw.decode("utf-8", "surrogateescape")
        parts = meta.split()
        if path in wanted and len(parts) == 3 and _blob_id(wanted[path], parts[1]) != parts[1]:
            differing.append(path)
    return differing


def _blob_id(path: str, like: bytes) -> bytes | None:
    """git's blob id of a file's bytes (hashed here: no clean filter of the repository runs),
    with the hash of ``like`` (SHA-1 or SHA-256 ids; CPython's own hash modules, not
    OpenSSL's: keyscan.git.staged.hash_function)."""
    from keyscan.git.staged import hash_function

    new = hash_function(like.decode("ascii", "replace"))
    try:
        if os.path.islink(path):
            data = os.fsencode(os.readlink(path))
            digest = new(b"blob %d\0" % len(data) + data)
        else:
            with open(path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                digest = new(b"blob %d\0" % size)
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
    except OSError:
        return None
    text: str = digest.hexdigest()
    return text.encode()


def _merge(into: ScanResult, part: ScanResult) -> None:
    """Add ``part``'s findings (one finding per key: locations joined), errors and counts."""
    by_key = {f.fingerprint: f for f in into.findings}
    for f in part.findings:
        known = by_key.get(f.fingerprint)
        if known is None:
            into.findings.append(f)
            by_key[f.fingerprint] = f
        else:
            known.locations.extend(f.locations)
    into.errors.extend(part.errors)
    into.warnings.extend(part.warnings)
    into.files += part.files
    into.bytes += part.bytes
    into.duration += part.duration


def run_pre_push(repo: str, params: dict[str, Any]) -> NoReturn:
    """``keyscan hook pre-push``: the commits being pushed (the range from pre-commit or
    git's stdin lines, new branches minus what the remotes hold)."""
    from keyscan.cli_common import build_context, fail
    from keyscan.git.scope import push_scope

    ctx = build_context(params)
    env = dict(os.environ)
    lines: list[str] = []
    from_framework = "PRE_COMMIT_TO_REF" in env or "PRE_COMMIT_ORIGIN" in env
    if not from_framework and not sys.stdin.isatty():
        lines = [ln for ln in sys.stdin.read().splitlines() if ln.strip()]
    try:
        revs, new_branch = push_scope(env, lines)
    except ValueError as exc:
        fail(str(exc))
    run_revs(repo, ctx, revs, new_branch, "push")


def run_revs(
    repo: str, ctx: RunContext, revs: list[str], new_branch: bool, advice: str
) -> NoReturn:
    """Scan ``revs`` (``A..B`` or tips), minus what the remotes hold for a new branch."""
    from keyscan.cli_common import fail, finish, git_options
    from keyscan.exitcodes import EXIT_CLEAN
    from keyscan.git.history import scan_repository
    from keyscan.git.plumbing import GitError, discover
    from keyscan.git.scope import push_plan

    if not revs:
        sys.exit(EXIT_CLEAN)  # only deletions
    try:
        checked, exclude = push_plan(discover(repo), revs, new_branch)
    except GitError as exc:
        fail(f"{exc.where}: {exc.message}")
    ctx.run.output.advice = advice
    options = git_options(ctx, scope=checked, exclude_commits=exclude)
    result = scan_repository(repo, options, ctx.rules)
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


def _git_args(rest: list[str]) -> tuple[str | None, str] | None:
    """(range or None, repo) of ``keyscan git [REPO]`` (a whole history) or ``--range A..B
    [REPO]`` / ``[REPO] --range=A..B``, or None."""
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
        elif not arg or arg.startswith("-"):
            return None  # any other option, "-", "--", an empty word: click's business
        else:
            positional.append(arg)
    # An empty or option-like value, several folders: click decides what they mean.
    if rev_range is not None and (not rev_range or rev_range.startswith("-")):
        return None
    if len(positional) > 1:
        return None
    return rev_range, positional[0] if positional else "."


# The options of ``keyscan scan`` the door reads itself: name -> (parameter, takes a value).
_SCAN_OPTIONS: dict[str, tuple[str, bool]] = {
    "-q": ("quiet", False),
    "--quiet": ("quiet", False),
    "-f": ("fmt", True),
    "--format": ("fmt", True),
}


def _scan_args(rest: list[str]) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    """(paths, parameters) of ``keyscan scan [PATH]... [-q] [-f FORMAT]`` in any order, each
    option at most once, or None: anything else (another option, a bundle such as ``-qf``,
    ``-fjson``, ``--format=json``, a format click would refuse, ``-``, ``--``, an empty
    word) is click's."""
    params = dict(DEFAULTS)
    seen: set[str] = set()
    paths: list[str] = []
    it = iter(rest)
    for arg in it:
        if not arg or arg == "-" or arg.startswith("-"):
            known = _SCAN_OPTIONS.get(arg)
            if known is None or known[0] in seen:
                return None
            name, takes_value = known
            seen.add(name)
            if takes_value:
                from keyscan.cli_common import OUTPUT_FORMATS

                value = next(it, None)
                if value not in OUTPUT_FORMATS:
                    return None  # missing or not a choice: click's usage error
                params[name] = value
            else:
                params[name] = True
        else:
            paths.append(arg)
    return tuple(paths), params


def _plain_words(words: list[str]) -> list[str] | None:
    """``words`` if none is an option, "-", "--" or empty (click's business), else None."""
    if any(not w or w.startswith("-") for w in words):
        return None
    return words


class Line:
    """A command line the click-free door runs: which job, on which repository, with which
    parameters (those click would pass to the command's function). A plain class: a
    dataclass costs about 0.4 ms of every run to build."""

    __slots__ = ("files", "job", "params", "repo", "rev_range")

    def __init__(
        self,
        job: str,  # "pre-commit", "pre-push", "git" or "scan"
        repo: str,
        params: dict[str, Any],
        rev_range: str | None = None,
        files: tuple[str, ...] = (),
    ) -> None:
        self.job = job
        self.repo = repo
        self.params = params
        self.rev_range = rev_range
        self.files = files


def parse(args: list[str], env: Mapping[str, str]) -> Line | None:
    """The click-free reading of ``args`` (the words after ``keyscan``), or None for click."""
    if "_KEYSCAN_COMPLETE" in env:  # shell completion: click answers it
        return None
    if args[:2] == ["hook", "pre-commit"]:
        if env.get("PRE_COMMIT_FROM_REF") and env.get("PRE_COMMIT_TO_REF"):
            return None  # pre-commit run --from-ref/--to-ref: the range and its policy
        files = _plain_words(args[2:])  # the names the pre-commit framework passes
        if files is None:
            return None
        return Line("pre-commit", ".", dict(DEFAULTS), files=tuple(files))
    if args[:2] == ["hook", "pre-push"]:
        repos = _plain_words(args[2:])
        if repos is None or len(repos) > 1:
            return None
        return Line("pre-push", repos[0] if repos else ".", dict(DEFAULTS))
    if args[:1] == ["git"]:
        found = _git_args(args[1:])
        if found is None:
            return None
        rev_range, repo = found
        return Line("git", repo, {**DEFAULTS, "all_locations": False}, rev_range)
    if args[:1] == ["scan"]:
        scan = _scan_args(args[1:])
        if scan is None:
            return None
        paths, params = scan
        return Line("scan", ".", params, files=paths)
    return None


def door(args: list[str], env: Mapping[str, str]) -> Callable[[], NoReturn] | None:
    """The click-free job of ``args``, or None: click reads that command line."""
    line = parse(args, env)
    if line is None:
        return None

    def job() -> NoReturn:
        # The bodies import what they need here, inside the caller's signal handling
        # (keyscan.interrupts): a Ctrl-C during the imports ends the run as one anywhere
        # else does.
        assert line is not None
        if line.job == "pre-commit":
            files, repo = pre_commit_target(line.files, line.repo)
            run_pre_commit(files, repo, line.params)
        if line.job == "pre-push":
            run_pre_push(line.repo, line.params)
        if line.job == "scan":
            run_scan(line.files, line.params)
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
