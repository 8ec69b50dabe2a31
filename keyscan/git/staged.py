"""The staged scan (``keyscan git --staged``, the pre-commit hook): what the next commit will
hold that HEAD does not. Git runs only through ``keyscan.git.plumbing``.

A freshly staged blob is a loose object (``objects/xx/yyyy...``, zlib): :func:`read_loose`
reads it here instead of starting ``git cat-file`` (one git process fewer on every commit),
and only when that is safe: a regular file reached without symlinks inside the repository's
own object folder (never a folder from the environment), bounded, a blob whose content hashes
to its id. Anything else (packed objects, a linked worktree, a symlink, a FIFO, a corrupt or
odd object) is read by git as before.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from keyscan.content import scan_buffer
from keyscan.detector import Detector
from keyscan.findings import Hit, aggregate, is_binary
from keyscan.git.options import GitScanOptions, excluded
from keyscan.git.plumbing import GitError, GitRepo, ObjectReader, discover, lines_of
from keyscan.models import Location, Rule, ScanError, ScanResult
from keyscan.sources.files import name_hits

EMPTY_TREE_SHA1 = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def scan_staged_repository(
    target: str, options: GitScanOptions, rules: Sequence[Rule]
) -> ScanResult:
    """``keyscan.git.history.scan_repository`` for a staged scan (``options.staged``), without
    the history machinery (the hook's path imports neither the history walk, provenance nor
    scopes): the same result, errors in ``result.errors``."""
    import time

    from keyscan.git.remote import is_url, public_url, shown_error

    started = time.perf_counter()
    shown = public_url(target)
    result = ScanResult(kind="staged", targets=[shown])
    try:
        if is_url(target):
            raise GitError(target, "--staged needs a local repository")
        scan_staged(discover(target), options, rules, result)
    except GitError as exc:
        result.errors.append(ScanError(*shown_error(exc, target, shown)))
    except OSError as exc:  # cannot start git, no more processes, disk full...
        result.errors.append(ScanError(shown, f"cannot run git: {exc.strerror or exc}"))
    result.duration = time.perf_counter() - started
    return result


def scan_staged(
    repo: GitRepo, options: GitScanOptions, rules: Sequence[Rule], result: ScanResult
) -> None:
    """What the next commit will hold that HEAD does not: every added or modified entry of
    the index, scanned whole (line numbers of the staged content, paths as in the index).
    Works before the first commit. Plain plumbing only: no GitPython, no hooks."""
    if repo.bare:
        raise GitError(repo.git_dir, "--staged needs a work tree (this repository is bare)")
    if repo.head_known:  # discover's rev-parse answered it: no scope machinery to import
        head = repo.head
    else:
        from keyscan.git.scope import head_commit

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
    for oid, kind, data in _contents(repo, list(paths)):
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


def _contents(repo: GitRepo, oids: list[str]) -> Iterator[tuple[str, str, bytes]]:
    """``(oid, type, data)`` of each blob, in order, one at a time: from the loose object
    files while they can be read here, then from one ``git cat-file`` for the rest."""
    for i, oid in enumerate(oids):
        data = read_loose(repo.git_dir, oid)
        if data is None:
            yield from ObjectReader(repo).read(oids[i:])
            return
        yield oid, "blob", data


# A loose object larger than this (compressed) is left to git: bounded memory here.
LOOSE_MAX_BYTES = 64 * 1024 * 1024
_OID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


def hash_function(oid: str) -> Callable[[bytes], Any]:
    """SHA-1 or SHA-256 (by the id's length), CPython's built-in one where there is one."""
    if len(oid) == 64:
        from keyscan.models import sha256

        return sha256
    import importlib

    try:
        function: Callable[[bytes], Any] = importlib.import_module("_sha1").sha1
        return function
    except (ImportError, AttributeError):
        import hashlib

        return hashlib.sha1


def read_loose(git_dir: str, oid: str) -> bytes | None:
    """The content of blob ``oid`` from its loose object file, or None (git reads it): no
    such file, not a regular file, a symlink anywhere below ``git_dir``, larger than
    ``LOOSE_MAX_BYTES``, not zlib, not a blob, a size that disagrees with its header, or
    content that does not hash to ``oid``. Never blocks on a FIFO, never follows a link."""
    import zlib

    if not _OID.fullmatch(oid):
        return None
    objects = os.path.join(git_dir, "objects")
    folder = os.path.join(objects, oid[:2])
    try:
        for path in (objects, folder):
            if not stat.S_ISDIR(os.lstat(path).st_mode):  # a symlink is not followed
                return None
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(os.path.join(folder, oid[2:]), flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > LOOSE_MAX_BYTES:
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            packed = fh.read(LOOSE_MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        inflate = zlib.decompressobj()
        head = inflate.decompress(packed, 64)  # "blob <size>\0" fits in 64 bytes
        end = head.find(b"\0")
        kind, _, size_text = head[:end].partition(b" ")
        if end < 0 or kind != b"blob" or not size_text.isdigit():
            return None
        size = int(size_text)
        body = head[end + 1 :]
        if len(body) > size:
            return None
        # At most what the header says (+1 to see a longer stream): never a zlib bomb.
        body += inflate.decompress(inflate.unconsumed_tail, size - len(body) + 1)
        if len(body) != size or not inflate.eof or inflate.unconsumed_tail or inflate.unused_data:
            return None  # git says what is wrong with it
    except (zlib.error, ValueError):
        return None
    digest = hash_function(oid)(head[: end + 1])
    digest.update(body)
    return body if digest.hexdigest() == oid else None


def _empty_tree(repo: GitRepo) -> str:
    proc = repo.run("hash-object", "-t", "tree", "--stdin", input=b"", check=False)
    out = lines_of(proc.stdout)
    return out[0] if out else EMPTY_TREE_SHA1
