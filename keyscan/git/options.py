"""What a git scan covers (``GitScanOptions``) and the path filter it applies."""

from __future__ import annotations

from collections.abc import Sequence

from keyscan.content import ContentOptions
from keyscan.records import dataclass, field


@dataclass
class GitScanOptions:
    """What to scan in a repository. Picklable."""

    # Revisions whose history is scanned; None: all refs plus HEAD.
    scope: list[str] | None = None
    all_objects: bool = False  # also objects no ref reaches (reported as unreachable)
    since: str | None = None  # only what is not reachable from this revision
    range: str | None = None  # "A..B" (or "A...B")
    branch: str | None = None  # only this revision's history
    staged: bool = False  # the index instead of history
    paths: list[str] | None = None  # staged: only these paths (as in the index); None: all
    all_locations: bool = False  # list every commit/path carrying a key in Finding.extra
    jobs: int | None = None  # worker processes (None: every core, for large repositories)
    content: ContentOptions = field(default_factory=ContentOptions)
    # Skip everything reachable from these commits (incremental re-scans: pass the previous
    # scan's stats["heads"]).
    exclude_commits: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)  # path globs (as --exclude)



def excluded(path: str, patterns: Sequence[str]) -> bool:
    """Whether ``path`` (as in a tree) matches an ``--exclude`` glob, as the file walker
    prunes folders."""
    if not patterns or not path:
        return False
    from keyscan.sources.files import _glob_match

    # As the file walker prunes folders: each leading folder, then the path itself.
    parts = path.split("/")
    return any(_glob_match("/".join(parts[: i + 1]), parts[i], patterns) for i in range(len(parts)))
