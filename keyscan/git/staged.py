"""The staged scan (``keyscan git --staged``, the pre-commit hook): what the next commit will
hold that HEAD does not. Git runs only through ``keyscan.git.plumbing``."""

from __future__ import annotations

from collections.abc import Sequence

from keyscan.content import scan_buffer
from keyscan.detector import Detector
from keyscan.findings import Hit, aggregate, is_binary
from keyscan.git.options import GitScanOptions, excluded
from keyscan.git.plumbing import GitError, GitRepo, ObjectReader, lines_of
from keyscan.git.scope import head_commit
from keyscan.models import Location, Rule, ScanError, ScanResult
from keyscan.sources.files import name_hits

EMPTY_TREE_SHA1 = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def scan_staged(
    repo: GitRepo, options: GitScanOptions, rules: Sequence[Rule], result: ScanResult
) -> None:
    """What the next commit will hold that HEAD does not: every added or modified entry of
    the index, scanned whole (line numbers of the staged content, paths as in the index).
    Works before the first commit. Plain plumbing only: no GitPython, no hooks."""
    if repo.bare:
        raise GitError(repo.git_dir, "--staged needs a work tree (this repository is bare)")
    head = head_commit(repo)
    base = head if head is not None else _empty_tree(repo)
    proc = repo.run(
        "diff-index", "--cached", "--raw", "-z", "--no-renames", "--no-abbrev",
        "--ignore-submodules=none", base, keep_index=True,
    )  # fmt: skip
    entries: list[tuple[str, str]] = []  # (blob, path)
    unmerged: list[str] = []
    submodules: list[str] = []
    tokens = iter(proc.stdout.split(b"\0"))
    for tok in tokens:
        if not tok.startswith(b":"):
            continue
        path = next(tokens, b"").decode("utf-8", "surrogateescape")
        fields = tok[1:].split(b" ")
        if len(fields) < 5:
            continue
        mode, oid, status = fields[1], fields[3].decode(), fields[4][:1]
        if status == b"D" or (options.paths is not None and path not in options.paths):
            continue
        if status == b"U" or set(oid) == {"0"}:
            unmerged.append(path)
            continue
        if mode == b"160000":
            submodules.append(path)
            continue
        if excluded(path, options.excludes):
            continue
        entries.append((oid, path))
    detector = Detector(rules)
    hits: list[Hit] = []
    for oid, path in entries:
        hits.extend(name_hits(detector, path, Location(
            path=path, line=0, column=0, offset=0, source="staged", blob=oid)))  # fmt: skip
    for path in unmerged:
        result.warnings.append(f"{path}: unmerged, not scanned (resolve the conflict first)")
    for path in submodules:
        result.warnings.append(f"submodule {path} not entered: scan its repository separately")
    paths: dict[str, list[str]] = {}
    for oid, path in entries:
        paths.setdefault(oid, []).append(path)
    blobs = 0
    for oid, kind, data in ObjectReader(repo).read(list(paths)):
        if kind == "error":
            result.errors.append(ScanError(oid, data.decode("utf-8", "replace")))
            continue
        blobs += 1
        result.bytes += len(data)
        # The content layer reads the name of notebooks (cells); other paths are set below.
        named = next((p for p in paths.get(oid, []) if p.lower().endswith(".ipynb")), "")
        problems: list[ScanError] = []
        found = scan_buffer(detector, data, Location(
            path=named, line=0, column=0, offset=0, source="staged", blob=oid,
            binary=is_binary(data)), options.content, errors=problems)  # fmt: skip
        staged_as = paths.get(oid, [named])[0]
        result.errors.extend(ScanError(f"{staged_as}{e.where[len(named):]}", e.message)
                             for e in problems)  # fmt: skip
        for path in paths.get(oid, []):
            for h in found:
                loc = Location(**{**h.location.__dict__, "extra": dict(h.location.extra)})
                loc.path = path  # an archive member's chain stays in loc.member
                hits.append(Hit(h.rule_id, h.description, h.family, h.confidence, h.secret, loc))
    result.files = len(entries)
    result.findings = aggregate(hits)
    result.stats.update(staged_files=len(entries), blobs=blobs, bytes=result.bytes, head=head)


def _empty_tree(repo: GitRepo) -> str:
    proc = repo.run("hash-object", "-t", "tree", "--stdin", input=b"", check=False)
    out = lines_of(proc.stdout)
    return out[0] if out else EMPTY_TREE_SHA1
