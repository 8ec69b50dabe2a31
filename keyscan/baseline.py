"""Baselines: known findings recorded so that only new ones fail a scan.

An entry is identified by ``Finding.identity`` (rule id + SHA-256 of the secret), never by a
line number or a timestamp, so moving code does not churn the file and a new key on an old
line is never hidden. The file holds no raw key: rule id, family, fingerprint, the redacted
form, and the path where the key was first recorded (for people; it is written once, when the
entry is added, and never rewritten, so later moves do not change the file). Entries are
sorted by identity and written as indented JSON with sorted keys: the file is deterministic.

People may add ``reason`` and ``expires`` (YYYY-MM-DD) to an entry; ``update`` keeps them. An
entry past its expiry date no longer suppresses.

The file also records the scope it was made from (``scope``: files scans of which paths, or a
git history), paths relative to the baseline's own folder, so that ``prune`` scans that same
scope and never drops an entry whose key is still somewhere in it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyscan.config import ConfigError, expired, parse_expiry
from keyscan.errors import KeyscanError
from keyscan.models import Finding
from keyscan.regularfile import BASELINE_MAX_BYTES, PolicyFileError, read_regular

DEFAULT_FILE = ".keyscan-baseline.json"
FORMAT_VERSION = 1
HEX64 = re.compile(r"^[0-9a-f]{64}$")
ENTRY_KEYS = {
    "identity",
    "rule_id",
    "family",
    "fingerprint",
    "redacted",
    "path",
    "reason",
    "expires",
}


class BaselineError(KeyscanError, ValueError):
    """A baseline file that cannot be used: ``<file>: <where>: <what is wrong>``."""


SCOPE_KINDS = ("files", "git")


@dataclass(frozen=True, order=True)
class Scope:
    """What a baseline was made from: ``files`` (``targets``: the paths scanned) or ``git``
    (``targets``: one repository, its whole history). Local paths are relative to the
    baseline's folder (posix separators); a git URL is kept as given."""

    kind: str
    targets: tuple[str, ...]

    @classmethod
    def of(cls, kind: str, targets: Iterable[str], folder: Path) -> Scope:
        """A scope for ``targets`` as named from the current directory."""
        recorded = []
        for target in targets:
            if target == "-" or (kind == "git" and "://" in target):
                recorded.append(target)
                continue
            rel = os.path.relpath(os.path.abspath(target), os.path.abspath(folder))
            recorded.append(Path(rel).as_posix())
        return cls(kind, tuple(recorded))

    def resolve(self, folder: Path) -> list[str]:
        """The targets as named from the current directory."""
        out = []
        for target in self.targets:
            if target == "-" or "://" in target:
                out.append(target)
                continue
            out.append(os.path.relpath(os.path.join(os.path.abspath(folder), target)))
        return out

    def to_json(self) -> dict[str, Any]:
        if self.kind == "git":
            return {"kind": "git", "repo": self.targets[0]}
        return {"kind": "files", "paths": list(self.targets)}


def _scope_from_json(raw: Any, where: str) -> Scope:
    if not isinstance(raw, dict) or raw.get("kind") not in SCOPE_KINDS:
        raise BaselineError(f"{where}: must be an object with kind files or git")
    if raw["kind"] == "git":
        repo = raw.get("repo")
        if set(raw) != {"kind", "repo"} or not isinstance(repo, str) or not repo:
            raise BaselineError(f"{where}: a git scope is {{kind: git, repo: PATH}}")
        return Scope("git", (repo,))
    paths = raw.get("paths")
    if (
        set(raw) != {"kind", "paths"}
        or not isinstance(paths, list)
        or not paths
        or not all(isinstance(p, str) and p for p in paths)
    ):
        raise BaselineError(f"{where}: a files scope is {{kind: files, paths: [PATH, ...]}}")
    return Scope("files", tuple(paths))


def identity_of(rule_id: str, fingerprint: str) -> str:
    """The same value as ``Finding.identity``."""
    return hashlib.sha256(f"{rule_id}:{fingerprint}".encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    identity: str
    rule_id: str
    family: str
    fingerprint: str
    redacted: str
    path: str = ""
    reason: str = ""
    expires: dt.date | None = None

    @classmethod
    def from_finding(cls, f: Finding) -> Entry:
        from keyscan.redaction import default_redactor

        # The path is metadata from the scanned tree: a key in it is redacted (one step).
        first = min((loc.display_path for loc in f.locations), default="")
        first = default_redactor().text(first) if first else first
        return cls(f.identity, f.rule_id, f.family, f.fingerprint, f.redacted, first)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "identity": self.identity,
            "rule_id": self.rule_id,
            "family": self.family,
            "fingerprint": self.fingerprint,
            "redacted": self.redacted,
        }
        if self.path:
            out["path"] = self.path
        if self.reason:
            out["reason"] = self.reason
        if self.expires is not None:
            out["expires"] = self.expires.isoformat()
        return out


def _entry_from_json(raw: Any, where: str) -> Entry:
    if not isinstance(raw, dict):
        raise BaselineError(f"{where}: must be an object")
    unknown = set(raw) - ENTRY_KEYS
    if unknown:
        raise BaselineError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    values: dict[str, str] = {}
    for key in ("rule_id", "fingerprint", "family", "redacted", "path", "reason", "identity"):
        value = raw.get(key, "")
        if not isinstance(value, str):
            raise BaselineError(f"{where}: {key}: must be a string")
        values[key] = value
    if not values["rule_id"]:
        raise BaselineError(f"{where}: rule_id: missing")
    if not HEX64.match(values["fingerprint"]):
        raise BaselineError(f"{where}: fingerprint: must be 64 hex digits (a SHA-256)")
    identity = identity_of(values["rule_id"], values["fingerprint"])
    if values["identity"] and values["identity"] != identity:
        raise BaselineError(f"{where}: identity: does not match rule_id and fingerprint")
    try:
        expires = parse_expiry(raw.get("expires"), where)
    except ConfigError as exc:
        raise BaselineError(str(exc)) from None
    return Entry(
        identity=identity,
        rule_id=values["rule_id"],
        family=values["family"],
        fingerprint=values["fingerprint"],
        redacted=values["redacted"],
        path=values["path"],
        reason=values["reason"],
        expires=expires,
    )


@dataclass
class Baseline:
    path: Path
    entries: dict[str, Entry] = field(default_factory=dict)
    # What the entries were found in (create, then each update); empty in older files.
    scopes: list[Scope] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Baseline:
        source = str(path)
        try:
            text = read_regular(path, BASELINE_MAX_BYTES, "baseline").decode("utf-8")
        except PolicyFileError as exc:  # a FIFO, /dev/zero, a huge file: refused, not read
            raise BaselineError(str(exc)) from None
        except FileNotFoundError:
            raise BaselineError(
                f"{source}: baseline file not found (create it: keyscan baseline create)"
            ) from None
        except OSError as exc:
            raise BaselineError(f"{source}: cannot read baseline: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise BaselineError(f"{source}: baseline is not UTF-8") from None
        from keyscan.safejson import TooDeep, loads

        try:
            doc = loads(text)
        except json.JSONDecodeError as exc:
            raise BaselineError(
                f"{source}: invalid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
            ) from None
        except TooDeep:
            raise BaselineError(f"{source}: invalid baseline: JSON nested too deeply") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("findings"), list):
            raise BaselineError(f"{source}: a baseline is an object with a 'findings' list")
        version = doc.get("version")
        if version != FORMAT_VERSION:
            raise BaselineError(f"{source}: version: expected {FORMAT_VERSION}, not {version!r}")
        baseline = cls(path)
        scopes = doc.get("scope", [])
        if not isinstance(scopes, list):
            raise BaselineError(f"{source}: scope: must be a list")
        for i, raw in enumerate(scopes):
            baseline.add_scope(_scope_from_json(raw, f"{source}: scope[{i}]"))
        for i, raw in enumerate(doc["findings"]):
            entry = _entry_from_json(raw, f"{source}: findings[{i}]")
            baseline.entries[entry.identity] = entry
        return baseline

    def dumps(self) -> str:
        doc: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "tool": "keyscan",
            "findings": [self.entries[k].to_json() for k in sorted(self.entries)],
        }
        if self.scopes:
            doc["scope"] = [scope.to_json() for scope in sorted(self.scopes)]
        return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def save(self) -> None:
        """Write atomically (a temporary file renamed over the old one)."""
        target = self.path
        folder = target.parent if str(target.parent) else Path(".")
        fd, tmp = tempfile.mkstemp(prefix=".keyscan-baseline.", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(self.dumps())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @property
    def folder(self) -> Path:
        """The folder recorded scopes are relative to."""
        return self.path.parent

    def add_scope(self, scope: Scope) -> None:
        if scope not in self.scopes:
            self.scopes.append(scope)

    def add(self, findings: Iterable[Finding]) -> int:
        """Record findings not yet known; known entries (path, reason, expiry) stay as they are."""
        added = 0
        for f in findings:
            if f.identity not in self.entries:
                self.entries[f.identity] = Entry.from_finding(f)
                added += 1
        return added

    def prune(self, findings: Iterable[Finding]) -> int:
        """Drop entries whose finding was not seen in this scan. Returns how many."""
        seen = {f.identity for f in findings}
        gone = [k for k in self.entries if k not in seen]
        for k in gone:
            del self.entries[k]
        return len(gone)

    def expired_entries(self, today: dt.date | None = None) -> list[Entry]:
        return [e for e in self.entries.values() if expired(e.expires, today)]

    def warnings(self, today: dt.date | None = None) -> list[str]:
        return [
            f"{self.path}: entry {e.redacted} ({e.rule_id}) expired on {e.expires}, "
            "no longer suppresses"
            for e in sorted(self.expired_entries(today), key=lambda e: e.identity)
        ]

    def suppress(self, f: Finding, today: dt.date | None = None) -> str | None:
        """A ``RunOptions.suppressors`` function: "baseline" for a known, unexpired finding."""
        entry = self.entries.get(f.identity)
        if entry is None:
            return None
        if expired(entry.expires, today):
            note = f"baseline entry expired on {entry.expires} ({self.path})"
            if note not in f.notes:
                f.notes.append(note)
            return None
        return f"baseline {self.path}" + (f" ({entry.reason})" if entry.reason else "")
