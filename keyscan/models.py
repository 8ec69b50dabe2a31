"""The data that flows through keyscan: rules, matches, findings and scan results.

The raw secret lives only in memory (``Match.secret`` / ``Finding.secret``); everything that
is written anywhere uses ``fingerprint`` (SHA-256 hex) and ``redacted``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum, IntEnum
from typing import Any

from keyscan.records import dataclass, field


def _sha256_function() -> Callable[[bytes], Any]:
    """CPython's built-in SHA-256 (``_sha2`` from 3.12, ``_sha256`` before): the same digest
    as hashlib's without loading OpenSSL, which costs the pre-commit hook about 3 ms of
    start-up. hashlib's where there is no built-in one."""
    import importlib

    for name in ("_sha2", "_sha256"):
        try:
            function: Callable[[bytes], Any] = importlib.import_module(name).sha256
            return function
        except (ImportError, AttributeError):
            continue
    import hashlib

    return hashlib.sha256


sha256 = _sha256_function()


def sha256_hex(data: bytes) -> str:
    """SHA-256 hex digest of ``data``."""
    digest: str = sha256(data).hexdigest()
    return digest


class Confidence(IntEnum):
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    @classmethod
    def parse(cls, text: str) -> Confidence:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"confidence must be low, medium or high, not {text!r}") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Rule:
    """A detection rule, loaded from YAML (see keyscan.rules)."""

    id: str
    description: str
    family: str
    confidence: Confidence
    regex: re.Pattern[bytes]
    keywords: tuple[bytes, ...]
    keywords_ignore_case: bool = False
    min_entropy: float | None = None
    min_entropy_hex: float | None = None
    allow: tuple[re.Pattern[bytes], ...] = ()
    deny_secret: tuple[re.Pattern[bytes], ...] = ()
    family_by_prefix: tuple[tuple[bytes, str], ...] = ()
    family_by_context: tuple[tuple[re.Pattern[bytes], str], ...] = ()
    equal_halves: bool = False
    # (before, after): how far a match can reach around a keyword hit. When set, the regex runs
    # only in windows around keyword hits instead of over the whole buffer.
    window: tuple[int, int] | None = None
    # A check of the matched text that a regex cannot make (see keyscan.detector.VALIDATORS):
    # ``codex_jwt`` (a JWT issued by auth.openai.com, family from its claims),
    # ``codex_auth_json`` (the buffer is a Codex CLI auth.json).
    validate: str | None = None
    source: str = ""
    examples_positive: tuple[str, ...] = ()
    examples_negative: tuple[str, ...] = ()


@dataclass(frozen=True)
class Match:
    """One occurrence of a secret in one buffer, straight from the detector."""

    rule: Rule
    start: int  # byte offset of the secret in the buffer
    end: int
    secret: bytes
    family: str
    # An Azure OpenAI key: the host of the Azure endpoint found next to it (checked by
    # keyscan.openai_facts.azure_endpoints_in), the only place --verify-azure may send it.
    endpoint: str | None = None

    @property
    def confidence(self) -> Confidence:
        return self.rule.confidence


def fingerprint_of(secret: bytes | str) -> str:
    """SHA-256 hex of the secret: the only form in which a secret is ever stored."""
    data = secret.encode("utf-8", "surrogateescape") if isinstance(secret, str) else secret
    return sha256_hex(data)


def redact(secret: bytes | str) -> str:
    """OpenAI-style masking: first 8, an ellipsis, last 4 (less for short values)."""
    text = secret.decode("utf-8", "replace") if isinstance(secret, bytes) else secret
    if len(text) >= 20:
        return f"{text[:8]}...{text[-4:]}"
    if len(text) >= 10:
        return f"{text[:3]}...{text[-2:]}"
    return "*" * len(text)


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    author_name: str
    author_email: str
    date: str  # ISO 8601
    subject: str


@dataclass
class Location:
    """Where a secret was seen. ``line``/``column`` are 1-based; ``offset`` is a byte offset."""

    path: str
    line: int
    column: int
    offset: int
    binary: bool = False
    # "file", "stdin", "git-blob", "git-message", "staged"
    source: str = "file"
    commit: CommitInfo | None = None
    blob: str | None = None
    # How the secret was decoded before matching (e.g. "base64"), None for plain text.
    decoded: str | None = None
    # Extra, source-specific detail (notebook cell, archive member, ...), JSON-serialisable.
    extra: dict[str, Any] = field(default_factory=dict)
    # Set when an inline allow comment sits on the same line.
    inline_allowed: bool = False
    # Inside an archive: the chain of member names from the file at ``path`` inward
    # (``("deps/lib.tgz", "pkg/config.py")``); empty for anything else.
    member: tuple[str, ...] = ()

    @property
    def display_path(self) -> str:
        """The path as reported: archive members follow the file, one ``!`` per level
        (``dist/app.whl!pkg/config.py``)."""
        if not self.member:
            return self.path
        return self.path + "".join(f"!{name}" for name in self.member)

    @property
    def name(self) -> str:
        """The innermost name: the archive member's, else the path."""
        return self.member[-1] if self.member else self.path

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.display_path, self.line, self.column, self.commit.sha if self.commit else "")


class VerificationStatus(str, Enum):
    """What a validity check says about a key: a closed set, written as these strings in every
    report, cache and store (openai-facts.md, section 2; see keyscan.verify.classify)."""

    LIVE = "live"
    LIVE_RESTRICTED = "live-restricted"
    LIVE_NO_QUOTA = "live-no-quota"
    LIVE_RATE_LIMITED = "live-rate-limited"
    INVALID = "invalid"
    INVALID_ACCOUNT = "invalid-account"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def is_live(self) -> bool:
        """Any live-* status: the key works (maybe restricted, out of credit, rate-limited)."""
        return self.value.startswith("live")

    @property
    def is_dead(self) -> bool:
        """invalid or invalid-account; ``unknown`` is neither live nor dead."""
        return self.value.startswith("invalid")

    @classmethod
    def parse(cls, text: str) -> VerificationStatus:
        try:
            return cls(text)
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"verification status must be one of {names}, not {text!r}") from None


# The strings a status is written as.
STATUS_VALUES = frozenset(status.value for status in VerificationStatus)


@dataclass
class Verification:
    """The answer of a validity check (see keyscan.verify)."""

    status: VerificationStatus
    reason: str = ""
    http_status: int | None = None
    project: str | None = None
    organization: str | None = None
    request_id: str | None = None
    checked_at: str | None = None
    cached: bool = False

    def __post_init__(self) -> None:
        # Read back from a cache, a store or a report: only the closed set gets in.
        if not isinstance(self.status, VerificationStatus):
            self.status = VerificationStatus.parse(self.status)

    @property
    def is_live(self) -> bool:
        return self.status.is_live

    @property
    def is_dead(self) -> bool:
        """Known dead (invalid, invalid-account); ``unknown`` is neither live nor dead."""
        return self.status.is_dead

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "reason": self.reason,
            "http_status": self.http_status,
            "project": self.project,
            "organization": self.organization,
            "request_id": self.request_id,
            "checked_at": self.checked_at,
            "cached": self.cached,
        }


def commit_to_json(c: CommitInfo) -> dict[str, Any]:
    return {
        "sha": c.sha,
        "author_name": c.author_name,
        "author_email": c.author_email,
        "date": c.date,
        "subject": c.subject,
    }


@dataclass
class GitIntroduction:
    """Another commit/path that carries a key's blob (``--all-locations``)."""

    commit: str
    path: str
    blob: str
    date: str = ""
    author: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "path": self.path,
            "blob": self.blob,
            "date": self.date,
            "author": self.author,
        }


@dataclass
class BranchTip:
    """A branch other than HEAD whose tip still holds the key, and where."""

    ref: str
    paths: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "paths": list(self.paths)}


@dataclass
class GitProvenance:
    """Where a key stands in a repository's history (``keyscan.git.provenance``); written
    as ``extra.git`` in the JSON report (README, "Provenance in the report")."""

    first_commit: str | None = None  # the earliest commit that introduced the key
    commits: int = 0  # distinct commits that introduced a blob holding it
    other_locations_count: int = 0  # other commit/path pairs carrying the same blobs
    refs: list[str] = field(default_factory=list)  # refs from which the key is reachable
    present_at_head: bool = False
    head_paths: list[str] = field(default_factory=list)
    unreachable: bool = False  # only unreachable objects hold it
    # With --all-locations: the other commit/path pairs (None: not asked for).
    other_locations: list[GitIntroduction] | None = None
    # Not at HEAD: the commit on HEAD's history that removed it (None: unknown / not removed).
    removed_in: CommitInfo | None = None
    # Branches other than HEAD whose tip still holds it.
    branch_tips: list[BranchTip] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "first_commit": self.first_commit,
            "commits": self.commits,
            "other_locations_count": self.other_locations_count,
            "refs": list(self.refs),
            "present_at_head": self.present_at_head,
            "head_paths": list(self.head_paths),
            "unreachable": self.unreachable,
        }
        if self.other_locations is not None:
            out["other_locations"] = [o.to_json() for o in self.other_locations]
        if self.removed_in is not None:
            out["removed_in"] = commit_to_json(self.removed_in)
        if self.branch_tips:
            out["branch_tips"] = [t.to_json() for t in self.branch_tips]
        return out


@dataclass
class RevocationOutcome:
    """What ``--revoke`` did about a finding's key (keyscan.revoke): the outcome's status
    (revoked, revoked-unconfirmed, already-revoked, failed, skipped...) and the Admin API ids
    it acted on. Never the key."""

    status: str
    key_id: str | None = None
    project: str | None = None
    request_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "key_id": self.key_id,
            "project": self.project,
            "request_id": self.request_id,
        }


@dataclass
class Finding:
    """One unique secret (per rule) with every place it was seen."""

    rule_id: str
    family: str
    confidence: Confidence
    fingerprint: str
    redacted: str
    length: int
    secret: str = field(repr=False, compare=False)
    locations: list[Location] = field(default_factory=list)
    description: str = ""
    verification: Verification | None = None
    # Why a finding is shown although something suppressed it (e.g. "live-despite-suppression").
    notes: list[str] = field(default_factory=list)
    # Why the finding is hidden ("inline allow comment", "baseline", "config: reason"...);
    # empty: not suppressed (keyscan.pipeline.apply_suppressions). Not reported.
    suppressed_by: list[str] = field(default_factory=list)
    # What --revoke did about the key (keyscan.revoke.revoke_findings), None: not revoked.
    revocation: RevocationOutcome | None = None
    # Source-specific, JSON-serialisable detail about the whole secret .
    extra: dict[str, Any] = field(default_factory=dict)
    # Git provenance (keyscan git, ci, hooks, audit): None for other sources.
    git: GitProvenance | None = None
    # Places seen beyond the locations kept (keyscan.findings.MAX_LOCATIONS): counted, not
    # listed, so that memory follows the input, not the repetitions; ``more_allowed`` of them
    # carry an inline allow comment.
    more_locations: int = 0
    more_allowed: int = 0

    @property
    def location_count(self) -> int:
        """Every place the secret was seen: those listed and those only counted."""
        return len(self.locations) + self.more_locations

    @property
    def identity(self) -> str:
        """Stable identity for baselines: rule id + SHA-256 of the secret."""
        return sha256_hex(f"{self.rule_id}:{self.fingerprint}".encode())


@dataclass
class ScanError:
    """Something that could not be scanned. ``where`` is a path, object id or URL."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class ScanResult:
    kind: str  # "files", "stdin", "git", "staged", ...
    targets: list[str]
    findings: list[Finding] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    duration: float = 0.0
    # Source-specific summary (git: commits, blobs, shallow, ...), JSON-serialisable.
    stats: dict[str, Any] = field(default_factory=dict)
    # Findings hidden by a baseline, config or inline allow comment (counted, not shown).
    suppressed: int = 0
    # The folder report paths are relative to (SARIF %SRCROOT%), fixed before the targets
    # are redacted (a redacted path no longer names the folder). Not reported as such.
    root: str | None = None

    @property
    def complete(self) -> bool:
        return not self.errors
