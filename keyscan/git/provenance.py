"""Provenance, only for blobs that hold a key: the commits and paths that introduced them
(``introductions``, one ``git log --raw -c`` pass), the refs that reach them (``RefIndex``),
whether HEAD and other branch tips still hold them (``head_tree``, ``head_blobs``,
``tips_holding``) and which commit on HEAD's history removed them (``removals``).
``attribute`` turns scan hits into findings with a typed ``Finding.git``
(``keyscan.models.GitProvenance``). Git runs only through ``keyscan.git.plumbing``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from keyscan.findings import Hit, aggregate
from keyscan.git.options import excluded
from keyscan.git.plumbing import PIPE, GitError, GitRepo, last_line, lines_of, object_in, split_z
from keyscan.git.scope import Objects, Scope, revs_input
from keyscan.models import BranchTip, CommitInfo, Finding, GitIntroduction, GitProvenance
from keyscan.records import dataclass

if TYPE_CHECKING:
    from keyscan.git.options import GitScanOptions

# Up to this many blobs with hits, provenance asks git to filter (--find-object).
FIND_OBJECT_MAX = 2000


@dataclass(frozen=True)
class Intro:
    """A commit that introduced a blob at a path (differs from every parent there)."""

    commit: str
    path: str
    time: int
    order: int  # position in log output; later = older


def introductions(
    repo: GitRepo,
    blobs: set[str],
    include: Sequence[str],
    exclude: Sequence[str],
    infos: dict[str, CommitInfo],
) -> dict[str, list[Intro]]:
    """Every (commit, path) that introduced one of ``blobs``, from one ``git log`` pass."""
    found: dict[str, list[Intro]] = {}
    if not blobs or not include:
        return found
    proc = repo.popen(
        "log", "--stdin", "--raw", "-c", "--root", "--no-abbrev", "--no-renames", "-z",
        "--no-textconv", "--no-ext-diff", "--no-color", "--no-show-signature",
        "--format=%x01%H%x00%P%x00%an%x00%ae%x00%aI%x00%ct%x00%s",
        # git itself keeps only the commits and paths that add or remove these blobs.
        *([f"--find-object={b}" for b in sorted(blobs)] if len(blobs) <= FIND_OBJECT_MAX else []),
        stdin=PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.send(revs_input(include, exclude))
    tokens = split_z(proc.stdout)
    commit = ""
    ctime = 0
    order = 0
    header: list[bytes] = []
    for tok in tokens:
        if tok.startswith(b"\x01"):
            header = [tok[1:]]
            for _ in range(6):
                header.append(next(tokens, b""))
            commit = header[0].decode()
            ctime = int(header[5] or b"0")
            order += 1
            continue
        tok = tok.lstrip(b"\n")
        if not tok.startswith(b":"):
            continue
        path = next(tokens, b"")
        fields = tok.lstrip(b":").split(b" ")
        # ":m1 m2 o1 o2 S" or "::m1 m2 m3 o1 o2 o3 SS": the last id is the result.
        oid = fields[-2].decode() if len(fields) >= 2 else ""
        if oid in blobs:
            found.setdefault(oid, []).append(
                Intro(commit, path.decode("utf-8", "surrogateescape"), ctime, order)
            )
            if commit not in infos:
                infos[commit] = CommitInfo(
                    sha=commit,
                    author_name=header[2].decode("utf-8", "replace"),
                    author_email=header[3].decode("utf-8", "replace"),
                    date=header[4].decode("utf-8", "replace"),
                    subject=header[6].decode("utf-8", "replace"),
                )
    proc.stdout.close()
    err = proc.stderr.read()
    proc.stderr.close()
    if proc.wait() != 0:
        raise GitError(object_in(err) or "log", last_line(err) or "cannot read history")
    return found


def head_tree(
    repo: GitRepo, head: str | None, listing: bytes | None = None
) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """Blob id -> paths at HEAD, and the submodules (path, commit) HEAD records.
    ``listing``: the output of ``ls-tree -r -z --full-tree HEAD`` when already read."""
    blobs: dict[str, list[str]] = {}
    submodules: list[tuple[str, str]] = []
    if head is None:
        return blobs, submodules
    if listing is None:
        listing = repo.run("ls-tree", "-r", "-z", "--full-tree", head).stdout
    for entry in listing.split(b"\0"):
        meta, _, path = entry.partition(b"\t")
        parts = meta.split(b" ")
        if len(parts) != 3:
            continue
        name = path.decode("utf-8", "surrogateescape")
        if parts[1] == b"blob":
            blobs.setdefault(parts[2].decode(), []).append(name)
        elif parts[1] == b"commit":
            submodules.append((name, parts[2].decode()))
    return blobs, submodules


class RefIndex:
    """Which refs reach which of a few commits, from ONE history walk.

    ``git for-each-ref --contains`` walks the history once per question: with thousands of
    refs (pull-request refs of a mirror) and a few dozen findings that is minutes. Here one
    ``git rev-list --all --topo-order --reverse --parents`` pass (parents before children)
    carries a bitmask of the commits asked about down to every descendant; a ref reaches a
    commit when its (peeled) tip has that commit's bit."""

    def __init__(
        self, repo: GitRepo, commits: set[str], extra_tips: dict[str, str] | None = None
    ) -> None:
        self.by_commit: dict[str, list[str]] = {c: [] for c in commits}
        # Refs whose (peeled) tip is the object itself: a tag on a blob or a tree.
        self.by_object: dict[str, list[str]] = {}
        tips = repo.run(
            "for-each-ref", "--format=%(objectname) %(*objectname) %(refname)", check=False
        )
        peeled_tips: list[tuple[str, str]] = []
        for ref_line in lines_of(tips.stdout):
            oid, peeled, name = [*ref_line.split(" ", 2), "", ""][:3]
            peeled_tips.append((peeled or oid, name))
            self.by_object.setdefault(peeled or oid, []).append(name)
        extra = extra_tips or {}
        peeled_tips.extend((oid, name) for name, oid in extra.items())
        if not commits:
            return
        order = sorted(commits)
        bits = {c: 1 << i for i, c in enumerate(order)}

        proc = repo.popen(
            "rev-list", "--all", "--topo-order", "--reverse", "--parents", "--stdin",
            stdin=PIPE,
        )  # fmt: skip
        proc.send("".join(f"{oid}\n" for oid in dict.fromkeys(extra.values())).encode())
        assert proc.stdout is not None and proc.stderr is not None
        masks: dict[bytes, int] = {}
        bits_b = {c.encode(): bit for c, bit in bits.items()}
        for line in proc.stdout:
            ids = line.split()
            if not ids:
                continue
            mask = bits_b.get(ids[0], 0)
            for parent in ids[1:]:
                mask |= masks.get(parent, 0)
            if mask:
                masks[ids[0]] = mask
        proc.stdout.close()
        proc.stderr.close()
        proc.wait()
        for tip, name in peeled_tips:
            mask = masks.get(tip.encode(), 0)
            if not mask:
                continue
            for commit in order:
                if mask & bits[commit]:
                    self.by_commit[commit].append(name)

    def refs(self, commits: Sequence[str], objects: Sequence[str] = ()) -> list[str]:
        """Refs that reach any of ``commits``, or point right at one of ``objects``."""
        names = {r for c in commits for r in self.by_commit.get(c, [])}
        names.update(r for o in objects for r in self.by_object.get(o, []))
        return sorted(names)


def _introduction(intro: Intro, blob: str, infos: dict[str, CommitInfo]) -> GitIntroduction:
    info = infos.get(intro.commit)
    return GitIntroduction(
        commit=intro.commit,
        path=intro.path,
        blob=blob,
        date=info.date if info else "",
        author=info.author_name if info else "",
    )


def attribute(
    repo: GitRepo,
    hits: list[Hit],
    scope: Scope,
    objects: Objects,
    options: GitScanOptions,
    head_paths_of: dict[str, list[str]],
) -> list[Finding]:
    """Provenance for the hits, then one finding per secret with its ``Finding.git``: where
    it came from, the refs that reach it, whether HEAD and other branch tips still hold it
    and, when HEAD no longer does, the commit that removed it."""
    blob_hits = [h for h in hits if h.location.source == "git-blob"]
    blobs = {h.location.blob for h in blob_hits if h.location.blob}
    infos: dict[str, CommitInfo] = {}
    intros = introductions(repo, blobs, scope.include, scope.exclude, infos)
    lost = {b for b in blobs if b not in intros and b in objects.unreachable}
    if lost and objects.unreachable_commits:
        more = introductions(
            repo, lost, objects.unreachable_commits, scope.include + scope.exclude, infos
        )
        for blob, items in more.items():
            intros[blob] = items
    unreachable_commit_set = set(objects.unreachable_commits)

    kept: list[Hit] = []
    # (commit, path, blob) of the introduction each kept location reports.
    primary: set[tuple[str, str, str]] = set()
    named: set[tuple[bytes, str, str]] = set()  # a name is in many trees: report it once
    for h in hits:
        loc = h.location
        if loc.source == "git-message":
            sha = loc.commit.sha if loc.commit else ""
            loc.extra["unreachable"] = sha in objects.unreachable
            kept.append(h)
            continue
        if loc.extra.get("file_name"):
            if excluded(loc.path, options.excludes):
                continue
            tree = str(loc.extra.pop("tree", ""))
            loc.extra["unreachable"] = tree in objects.unreachable
            base = loc.path.rsplit("/", 1)[-1]
            # The commits that brought this blob in under this name.
            items = [i for i in intros.get(loc.blob or "", [])
                     if i.path.rsplit("/", 1)[-1] == base
                     and not excluded(i.path, options.excludes)]  # fmt: skip
            items.sort(key=lambda i: (i.time, -i.order))
            if items:
                loc.path = items[0].path
                loc.commit = infos.get(items[0].commit)
                primary.add((items[0].commit, items[0].path, loc.blob or ""))
            ident = (h.secret, loc.path, loc.commit.sha if loc.commit else "")
            if ident not in named:
                named.add(ident)
                kept.append(h)
            continue
        blob = loc.blob or ""
        items = [i for i in intros.get(blob, []) if not excluded(i.path, options.excludes)]
        if intros.get(blob) and not items:
            continue  # every path that carried it is excluded
        items.sort(key=lambda i: (i.time, -i.order))
        unreachable = blob in objects.unreachable
        loc.extra["unreachable"] = unreachable
        # Hits inside an archive blob keep their member chain in loc.member.
        if items:
            first = items[0]
            loc.path = first.path
            loc.commit = infos.get(first.commit)
            if first.commit in unreachable_commit_set:
                loc.extra["unreachable"] = True
            primary.add((first.commit, first.path, blob))
        elif unreachable:
            loc.path = f"(unreachable blob {blob[:12]})"
        else:
            loc.path = f"(blob {blob[:12]}, reachable from a tag or tree, no commit)"
        kept.append(h)

    findings = aggregate(kept)
    carried: dict[int, tuple[set[str], list[str]]] = {}  # finding -> (blobs, paths)
    asked = {i.commit for items in intros.values() for i in items}
    asked.update(h.location.commit.sha for h in kept if h.location.commit is not None)
    ref_index = RefIndex(repo, asked, scope.reflog_tips)
    for f in findings:  # oldest introduction first
        f.locations.sort(key=lambda loc: (loc.commit.date if loc.commit else "~", loc.sort_key()))
    for f in findings:
        all_carriers: list[tuple[Intro, str]] = []
        seen_blobs: set[str] = set()
        commits: list[str] = []
        for loc in f.locations:
            if loc.commit is not None:
                commits.append(loc.commit.sha)
        # A key in a file name is carried by that name only, not by the blob's content.
        names = {loc.path.rsplit("/", 1)[-1] for loc in f.locations if loc.extra.get("file_name")}

        def carries(path: str, names: set[str] = names) -> bool:
            return not names or path.rsplit("/", 1)[-1] in names

        for loc in f.locations:
            if loc.blob and loc.blob not in seen_blobs:
                seen_blobs.add(loc.blob)
                all_carriers.extend((i, loc.blob) for i in intros.get(loc.blob, [])
                                    if not excluded(i.path, options.excludes)
                                    and carries(i.path))  # fmt: skip
        others = [(i, b) for i, b in all_carriers if (i.commit, i.path, b) not in primary]
        commits.extend(i.commit for i, _ in all_carriers)
        distinct = list(dict.fromkeys(commits))
        head_paths = sorted(
            {p for b in seen_blobs for p in head_paths_of.get(b, []) if carries(p)}
        )
        f.git = GitProvenance(
            first_commit=_first_commit(f),
            commits=len(distinct),
            other_locations_count=len(others),
            refs=ref_index.refs(distinct, sorted(seen_blobs)),
            present_at_head=bool(head_paths),
            head_paths=head_paths,
            unreachable=all(loc.extra.get("unreachable") for loc in f.locations),
        )
        if options.all_locations:
            f.git.other_locations = [_introduction(i, b, infos) for i, b in others]
        if seen_blobs:
            carried[id(f)] = (seen_blobs, sorted({i.path for i, _ in all_carriers}))
    _where_now(repo, findings, carried, scope)
    return findings


def _where_now(
    repo: GitRepo,
    findings: Sequence[Finding],
    carried: dict[int, tuple[set[str], list[str]]],
    scope: Scope,
) -> None:
    """For findings whose blobs are known: the branches other than HEAD whose tip still
    holds them, and for those HEAD no longer holds, the commit that removed them."""
    gone: dict[str, set[str]] = {}
    tips: dict[str, list[str]] = {}  # ref -> candidate paths to look up at its tip
    for n, f in enumerate(findings):
        if f.git is None or id(f) not in carried:
            continue
        blobs, paths = carried[id(f)]
        if not f.git.present_at_head and scope.head is not None:
            gone[str(n)] = blobs
        for ref in f.git.refs:
            tip = scope.refs.get(ref)
            if _is_branch(ref) and tip is not None and tip != scope.head:
                tips.setdefault(ref, []).extend(paths)
    at_tips = tip_blobs(repo, {ref: scope.refs[ref] for ref in tips}, tips) if tips else {}
    for f in findings:
        if f.git is None or id(f) not in carried:
            continue
        blobs, _ = carried[id(f)]
        for ref in f.git.refs:
            paths = sorted(p for p, b in at_tips.get(ref, {}).items() if b in blobs)
            if paths:
                f.git.branch_tips.append(BranchTip(ref, paths))
    if gone:
        for n_text, commit in removals(repo, gone, scope.exclude).items():
            git = findings[int(n_text)].git
            if git is not None:
                git.removed_in = commit


def _is_branch(ref: str) -> bool:
    """A local or remote-tracking branch (not ``origin/HEAD``, a tag, a note or the stash)."""
    if ref.startswith("refs/heads/"):
        return True
    return ref.startswith("refs/remotes/") and not ref.endswith("/HEAD")


def tip_blobs(
    repo: GitRepo, tips: dict[str, str], paths: dict[str, list[str]]
) -> dict[str, dict[str, str]]:
    """ref -> {path: blob id} at the ref's tip commit, for the given paths only (one
    ``cat-file --batch-check`` for every lookup). Paths a line cannot carry are skipped."""
    asked: list[tuple[str, str]] = []
    for ref in tips:
        for path in dict.fromkeys(paths.get(ref, [])):
            if "\n" not in path and "\r" not in path and "\0" not in path:
                asked.append((ref, path))
    if not asked:
        return {}
    feed = "".join(f"{tips[ref]}:{path}\n" for ref, path in asked)
    proc = repo.run(
        "cat-file", "--batch-check=%(objectname) %(objecttype)",
        input=feed.encode("utf-8", "surrogateescape"), check=False,
    )  # fmt: skip
    found: dict[str, dict[str, str]] = {}
    answers = proc.stdout.decode("utf-8", "surrogateescape").split("\n")
    for (ref, path), answer in zip(asked, answers, strict=False):
        parts = answer.split(" ")
        if len(parts) == 2 and parts[1] == "blob":
            found.setdefault(ref, {})[path] = parts[0]
    return found


def _first_commit(f: Finding) -> str | None:
    dated = [loc.commit for loc in f.locations if loc.commit is not None]
    if not dated:
        return None
    return min(dated, key=lambda c: c.date).sha


def head_blobs(repo: GitRepo, wanted: set[str]) -> dict[str, list[str]]:
    """blob id -> paths in HEAD's tree, for the blobs in ``wanted``."""
    if not wanted:
        return {}
    out = repo.run("ls-tree", "-r", "-z", "--full-tree", "HEAD", check=False).stdout
    found: dict[str, list[str]] = {}
    for entry in out.decode("utf-8", "surrogateescape").split("\0"):
        meta, _, path = entry.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob" and parts[2] in wanted:
            found.setdefault(parts[2], []).append(path)
    return found


def removals(
    repo: GitRepo, blobs_by_key: dict[str, set[str]], exclude: Sequence[str]
) -> dict[str, CommitInfo]:
    """For each key, the newest commit on HEAD's history that replaced or deleted a blob
    holding it with one that does not (only commits not reachable from ``exclude``)."""
    if not blobs_by_key:
        return {}
    args = [
        "log",
        "HEAD",
        "--no-renames",
        "--raw",
        "--no-abbrev",
        "--no-textconv",
        "--no-ext-diff",
        "--no-color",
        "--no-show-signature",
        "--format=@@%H%x1f%an%x1f%ae%x1f%aI%x1f%s",
    ]
    every = set().union(*blobs_by_key.values())
    if len(every) <= FIND_OBJECT_MAX:  # git keeps only the commits that touch these blobs
        args += [f"--find-object={b}" for b in sorted(every)]
    if exclude:
        args += ["--not", *exclude]
    out = repo.run(*args, check=False).stdout.decode("utf-8", "surrogateescape")
    owners: dict[str, set[str]] = {}
    for fp, blobs in blobs_by_key.items():
        for b in blobs:
            owners.setdefault(b, set()).add(fp)
    removed: dict[str, CommitInfo] = {}
    commit: CommitInfo | None = None
    for line in out.splitlines():
        if line.startswith("@@"):
            sha, name, email, date, subject = (line[2:].split("\x1f") + [""] * 5)[:5]
            commit = CommitInfo(sha, name, email, date, subject)
        elif line.startswith(":") and commit is not None:
            parts = line.split("\t", 1)[0].split()
            if len(parts) < 4:
                continue
            old, new = parts[2], parts[3]
            for fp in owners.get(old, ()):
                if fp not in removed and new not in blobs_by_key[fp]:
                    removed[fp] = commit
    return removed


