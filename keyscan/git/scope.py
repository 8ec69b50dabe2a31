"""Which revisions a scan covers: ``resolve_scope`` (refs, HEAD, every stash entry, ranges),
the tips an audit remembers (``repo_heads``), and the scope plans of ``keyscan ci``
(``plan_for``: GitHub Actions, GitLab CI) and of the hooks (``push_scope``, ``push_plan``,
``range_base``).

The plans are pure functions of (repository, environment mapping, stdin lines): they never
read ``os.environ`` or stdin themselves; the commands pass them in. Git runs only through
``keyscan.git.plumbing``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keyscan.errors import KeyscanError
from keyscan.git.plumbing import GitError, GitRepo, ObjectRef, lines_of
from keyscan.models import ScanError
from keyscan.records import dataclass, field

if TYPE_CHECKING:
    from keyscan.git.options import GitScanOptions


@dataclass
class Scope:
    include: list[str]  # commit (or object) ids to walk from
    exclude: list[str]  # ids whose history is left out
    refs: dict[str, str]  # refname -> object id (all refs, for the report)
    head: str | None
    warnings: list[str] = field(default_factory=list)
    # Tips that are not refs but history all the same: older stash entries ("stash@{1}").
    reflog_tips: dict[str, str] = field(default_factory=dict)
    # ``refs`` still being listed (``resolve_scope(..., later_refs=True)``): ``wait_refs``.
    refs_listing: _RefListing | None = None

    def wait_refs(self) -> dict[str, str]:
        """``refs``, once listed (a listing that failed raises its error here)."""
        if self.refs_listing is not None:
            self.refs = self.refs_listing.result()
            self.refs_listing = None
        return self.refs


def _check_rev(rev: str) -> str:
    if not rev or rev.startswith("-") or "\n" in rev or "\0" in rev:
        raise GitError(rev or "''", "not a valid revision")
    return rev


# A revision whose object rev-parse had to read to answer: a walk or a peel at its end.
_NAVIGATED = re.compile(r"(?:~[0-9]*|\^[0-9]*|\^\{[a-z]*\})\Z")


def _read_by_git(repo: GitRepo, rev: str) -> bool:
    """Whether every side of ``rev`` (``A``, ``A..B``, ``A...B``) names an object git has
    read: HEAD (discover verified ``HEAD^{commit}``) or a walk from a revision
    (``HEAD~20``, ``v1^``, ``x^{commit}``). A full-length id or a plain ref name is passed
    through by rev-parse without reading it, so those are still checked."""
    head_ok = repo.head_known and repo.head is not None
    for side in re.split(r"\.{2,3}", rev.lstrip("^")):
        if side in ("", "HEAD", "@"):
            if not head_ok:
                return False
        elif not _NAVIGATED.search(side) or re.search(r"[0-9a-fA-F]{40}", side):
            return False
    return True


def _resolve(repo: GitRepo, rev: str) -> list[str]:
    """``git rev-parse`` of a revision or range: ids, excluded ones prefixed with ^."""
    known = repo.resolved_ids(_check_rev(rev))  # discover's rev-parse answered it
    if known is not None:
        ok, out = True, known
    else:
        proc = repo.run("rev-parse", "--revs-only", "--end-of-options", rev, check=False)
        ok, out = proc.returncode == 0, lines_of(proc.stdout)
    if ok and out and _read_by_git(repo, rev):
        return out  # every id was read by git already: no second process to ask
    if ok and out:
        # rev-parse passes any full-length hex through, and a ref's id unread: check that
        # the objects exist.
        check = repo.run("cat-file", "--batch-check", input="".join(
            f"{o.lstrip('^')}\n" for o in out).encode(), check=False)  # fmt: skip
        if check.returncode == 0 and b" missing" not in check.stdout:
            return out
    raise GitError(rev, "unknown revision (not a commit, branch, tag or range here)")


def list_refs(repo: GitRepo) -> dict[str, str]:
    proc = repo.run("for-each-ref", "--format=%(objectname) %(refname)")
    refs: dict[str, str] = {}
    for line in lines_of(proc.stdout):
        oid, _, name = line.partition(" ")
        refs[name] = oid
    return refs


def head_commit(repo: GitRepo) -> str | None:
    if repo.head_known:  # discover's rev-parse answered it
        return repo.head
    proc = repo.run("rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
    out = lines_of(proc.stdout)
    return out[0] if proc.returncode == 0 and out else None


def stash_entries(repo: GitRepo) -> dict[str, str]:
    """``stash@{n}`` -> commit for every entry of the stash reflog, newest first. Only the
    newest is ``refs/stash``; the others are history that no ref reaches."""
    proc = repo.run("rev-list", "--walk-reflogs", "refs/stash", "--", check=False)
    return {f"stash@{{{n}}}": oid for n, oid in enumerate(lines_of(proc.stdout))}


class _RefListing:
    """``list_refs`` in a thread of its own, while a range is resolved (its git process
    overlaps the other instead of following it). ``result()``: the refs, or the same call
    again in the caller's thread when it failed there (its error is raised as before)."""

    def __init__(self, repo: GitRepo) -> None:
        import threading

        self._repo = repo
        self._out: list[dict[str, str]] = []
        self._thread = threading.Thread(target=self._run, name="keyscan-refs", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # asked again in the caller's thread
            self._out.append(list_refs(self._repo))

    def result(self) -> dict[str, str]:
        self._thread.join()
        return self._out[0] if self._out else list_refs(self._repo)


def _resolve_all(repo: GitRepo, revs: Sequence[str]) -> tuple[list[str], list[str]]:
    """(include, exclude) ids of ``revs`` (revisions or ranges)."""
    include: list[str] = []
    exclude: list[str] = []
    for rev in revs:
        for item in _resolve(repo, rev):
            (exclude if item.startswith("^") else include).append(item.lstrip("^"))
    return include, exclude


def resolve_scope(repo: GitRepo, options: GitScanOptions, later_refs: bool = False) -> Scope:
    """``later_refs``: when discover's rev-parse resolved the revisions already, the refs
    (needed only for the report) are listed beside what comes next (the walk, the scan):
    ``Scope.wait_refs`` before reading ``refs``."""
    head = head_commit(repo)
    listing: _RefListing | None = None
    include: list[str] = []
    exclude: list[str] = []
    reflog_tips: dict[str, str] = {}
    revs: list[str] = []
    if options.range:
        rev_range = options.range
        left, dots, right = rev_range.partition("..")
        if dots and left and set(left) == {"0"}:
            # A pre-push hook's "remote side" of a new branch is the null id: no base.
            rev_range = right.lstrip(".") or "HEAD"
        revs = [rev_range]
    elif options.branch or options.scope:
        revs = ([options.branch] if options.branch else []) + list(options.scope or [])
    if revs and all(repo.resolved_ids(rev) is not None for rev in revs):
        # discover's rev-parse resolved them: no process beside the refs'
        if later_refs:
            listing, refs = _RefListing(repo), {}
        else:  # a failure to list the refs is said first, as it always was
            refs = list_refs(repo)
        include, exclude = _resolve_all(repo, revs)
    elif revs:
        # The refs are listed (for the report) while the revisions are resolved.
        beside = _RefListing(repo)
        try:
            include, exclude = _resolve_all(repo, revs)
        except GitError:
            beside.result()  # a failure to list the refs is said first, as it always was
            raise
        refs = beside.result()
    else:
        refs = list_refs(repo)
        include = list(dict.fromkeys(refs.values()))
        if head is not None and head not in include:
            include.append(head)
        if "refs/stash" in refs:  # every stash entry, with its index and untracked parents
            reflog_tips = {n: c for n, c in stash_entries(repo).items() if n != "stash@{0}"}
            include.extend(c for c in dict.fromkeys(reflog_tips.values()) if c not in include)
    warnings: list[str] = []
    if options.since:
        exclude.extend(i for i in _resolve(repo, options.since) if not i.startswith("^"))
    for rev in options.exclude_commits:
        try:
            exclude.extend(i for i in _resolve(repo, rev) if not i.startswith("^"))
        except GitError:
            # An earlier scan's head that is gone (force-push, gc): what it reached is no
            # longer known, so it is scanned again rather than failing the scan.
            warnings.append(f"{rev}: excluded commit not in the repository any more, ignored")
    return Scope(include=list(dict.fromkeys(include)), exclude=list(dict.fromkeys(exclude)),
                 refs=refs, head=head, warnings=warnings, reflog_tips=reflog_tips,
                 refs_listing=listing)  # fmt: skip


def revs_input(include: Sequence[str], exclude: Sequence[str]) -> bytes:
    return "".join([f"{i}\n" for i in include] + [f"^{e}\n" for e in exclude]).encode()


# --------------------------------------------------------------------------------------------
# The tips an audit remembers


def repo_heads(repo: GitRepo) -> tuple[list[str], str | None]:
    """(commit ids at the tips of every ref, every stash entry and HEAD, HEAD's commit or
    None)."""
    out = repo.run(
        "for-each-ref",
        "--format=%(objecttype) %(objectname) %(*objecttype) %(*objectname)",
    ).stdout.decode("ascii", "replace")
    heads: set[str] = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "commit":
            heads.add(parts[1])
        elif len(parts) >= 4 and parts[2] == "commit":
            heads.add(parts[3])
    has_stash = repo.run("rev-parse", "-q", "--verify", "refs/stash", check=False).returncode == 0
    if has_stash:
        heads.update(stash_entries(repo).values())
    proc = repo.run("rev-parse", "-q", "--verify", "HEAD^{commit}", check=False)
    head = proc.stdout.decode("ascii", "replace").strip()
    if head:
        heads.add(head)
    return sorted(heads), (head or None)


def existing_commits(repo: GitRepo, shas: Sequence[str]) -> list[str]:
    """Those of ``shas`` that are commits in ``repo``."""
    if not shas:
        return []
    proc = repo.run(
        "cat-file",
        "--batch-check=%(objectname) %(objecttype)",
        input="".join(f"{s}\n" for s in shas).encode(),
        check=False,
    )
    found = []
    for line in proc.stdout.decode("ascii", "replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == "commit":
            found.append(parts[0])
    return found


def count_commits(repo: GitRepo, include: Sequence[str], exclude: Sequence[str]) -> int:
    """Commits reachable from ``include`` and not from ``exclude``."""
    if not include:
        return 0
    args = ["rev-list", "--count", "--ignore-missing", *include]
    if exclude:
        args += ["--not", *exclude]
    out = repo.run(*args, check=False).stdout.decode("ascii", "replace").strip()
    return int(out) if out.isdigit() else 0


# --------------------------------------------------------------------------------------------
# CI scope plans (keyscan ci)

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
    import json  # only in CI, for the event's file

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


# --------------------------------------------------------------------------------------------
# Hook scope plans (keyscan hook pre-push, pre-commit with --from-ref/--to-ref)

_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def push_scope(env: Mapping[str, str], stdin_lines: Sequence[str]) -> tuple[list[str], bool]:
    """(revisions to scan, whether to leave out what the remotes hold).

    ``A..B`` items come from a known remote sha; a bare tip means "new branch". A stdin
    line that is not git's pre-push protocol raises ValueError."""
    to_ref = env.get("PRE_COMMIT_TO_REF") or env.get("PRE_COMMIT_ORIGIN")
    from_ref = env.get("PRE_COMMIT_FROM_REF") or env.get("PRE_COMMIT_SOURCE")
    if to_ref:
        if from_ref and not is_zero(from_ref):
            return [f"{from_ref}..{to_ref}"], False
        return [to_ref], True
    revs: list[str] = []
    new_branch = False
    for number, line in enumerate(stdin_lines, 1):
        parts = line.split()
        if len(parts) != 4 or not all(_OID.fullmatch(sha) for sha in parts[1::2]):
            raise ValueError(
                f"pre-push input line {number} is not '<local ref> <local sha> <remote ref> "
                "<remote sha>' (git passes these on stdin): nothing was scanned"
            )
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


def push_plan(repo: GitRepo, revs: Sequence[str], new_branch: bool) -> tuple[list[str], list[str]]:
    """(revisions to scan, commits to exclude) for ``revs`` (``A..B`` or tips), minus what the
    remotes hold for a new branch."""
    exclude = remote_tips(repo) if new_branch else []
    checked: list[str] = []
    for rev in revs:
        base, dots, tip = rev.partition("..")
        if dots and not has_commit(repo, base):
            # The remote's old tip is not here (force push from another clone): scan the
            # pushed tip minus everything the remotes hold.
            checked.append(tip)
            exclude = exclude or remote_tips(repo)
        else:
            checked.append(rev)
    return checked, exclude


def range_base(repo: GitRepo, env: Mapping[str, str]) -> str | None:
    """The base commit of pre-commit's ``PRE_COMMIT_FROM_REF..PRE_COMMIT_TO_REF`` range
    (where the policy comes from): the from-ref, or for a new branch the one commit the range
    grows from."""
    from_ref = env.get("PRE_COMMIT_FROM_REF", "")
    to_ref = env.get("PRE_COMMIT_TO_REF", "")
    base: str | None = from_ref
    if is_zero(from_ref) or not has_commit(repo, from_ref):
        base = range_parent(repo, to_ref, remote_tips(repo))
    return base


@dataclass
class Objects:
    """What a history walk found to scan (``keyscan.git.history.enumerate_objects``)."""

    scan: list[ObjectRef]  # blobs, commits, tags to read, in a read-friendly order
    reachable: set[str]  # reachable blobs, commits and tags (only kept for all_objects)
    unreachable: set[str]  # scanned although unreachable (all_objects)
    unreachable_commits: list[str]
    errors: list[ScanError] = field(default_factory=list)
    # Objects in scope when ``scan`` is not listed (a scan of every ref reads every object
    # in pack order; its walk only says which are reachable): None means ``len(scan)``.
    count: int | None = None


# --------------------------------------------------------------------------------------------
# Server-side plan (keyscan hook pre-receive)


@dataclass
class ReceivePlan:
    """What a push introduces: walk ``tips`` minus everything reachable from ``exclude``
    (commits the repository already had). ``updates`` are the (old, new, ref) lines kept."""

    tips: list[str]
    exclude: list[str]
    updates: list[tuple[str, str, str]]
    new_commits: int = 0


def parse_receive_lines(stdin_lines: Sequence[str]) -> list[tuple[str, str, str]]:
    """git's pre-receive input, ``<old> <new> <ref>`` per line; ValueError on anything else."""
    updates: list[tuple[str, str, str]] = []
    for number, line in enumerate(stdin_lines, 1):
        parts = line.split(" ", 2)
        if len(parts) != 3 or not all(_OID.fullmatch(sha) for sha in parts[:2]) or not parts[2]:
            raise ValueError(
                f"pre-receive input line {number} is not '<old sha> <new sha> <ref>' "
                "(git passes these on stdin): nothing was scanned"
            )
        updates.append((parts[0], parts[1], parts[2]))
    return updates


def receive_plan(repo: GitRepo, updates: Sequence[tuple[str, str, str]]) -> ReceivePlan:
    """The objects a push introduces: the new commits (reachable from a pushed tip and from
    no ref the repository has: inside pre-receive the refs are still the old ones), their
    trees and blobs, and new annotated tag objects. Deletions push nothing."""
    tips = list(dict.fromkeys(new for _, new, _ in updates if not is_zero(new)))
    plan = ReceivePlan(tips=tips, exclude=[], updates=list(updates))
    if not tips:
        return plan
    # One walk: new commits, and the boundary (existing commits they grow from).
    proc = repo.run("rev-list", "--boundary", *tips, "--not", "--all")
    boundary: list[str] = []
    new: set[str] = set()
    for line in lines_of(proc.stdout):
        if line.startswith("-"):
            boundary.append(line[1:])
        else:
            new.add(line)
    plan.new_commits = len(new)
    # A pushed tip that is no new commit (a branch or tag created at an existing commit, an
    # annotated tag of one): leave out what its commit reaches, so only a new tag object is
    # read.
    peeled = repo.run(
        "cat-file", "--batch-check=%(objectname)",
        input="".join(f"{t}^{{commit}}\n" for t in tips).encode(), check=False,
    ).stdout.decode("ascii", "replace").split("\n")  # fmt: skip
    for commit in peeled:
        commit = commit.strip()
        if _OID.fullmatch(commit) and commit not in new:
            boundary.append(commit)
    plan.exclude = list(dict.fromkeys(boundary))
    return plan
