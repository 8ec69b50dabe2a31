"""The audit store: one SQLite file (stdlib ``sqlite3``), written by the coordinator alone.

Tables: ``audits`` (one row per ``keyscan audit`` run), ``repositories``, ``scans`` (one per
repository per audit, with counts of commits scanned and skipped), ``seen_commits`` (the ref
tips already scanned, each with a hash of the options it was scanned under: the next audit
with the same options skips everything reachable from them), ``keys`` (one row
per unique key: fingerprint and redacted value, never the key), ``locations`` (every place a
key was seen, with commit provenance), ``repository_keys`` (per repository: first
introduction, still at HEAD?, removed by which commit), ``verifications`` and ``exposures``
(``keyscan exposure --db``: usage and cost since the leak, and the incident timeline, as the
JSON of ``keyscan.exposure.ExposureReport``).

The file is created with mode 0600: although it holds no key, it maps where keys leaked.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from keyscan.errors import KeyscanError
from keyscan.models import STATUS_VALUES, CommitInfo, Finding, Location, Verification

DEFAULT_DB = "keyscan-audit.db"
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audits (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    targets INTEGER NOT NULL,
    jobs INTEGER,
    scheduler TEXT,
    verify INTEGER NOT NULL DEFAULT 0,
    version TEXT
);
CREATE TABLE IF NOT EXISTS repositories (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL UNIQUE,
    first_audit_id INTEGER,
    last_scan_id INTEGER
);
CREATE TABLE IF NOT EXISTS scans (
    id INTEGER PRIMARY KEY,
    audit_id INTEGER NOT NULL REFERENCES audits(id),
    repository_id INTEGER NOT NULL REFERENCES repositories(id),
    started_at TEXT,
    status TEXT NOT NULL,
    errors TEXT NOT NULL DEFAULT '[]',
    warnings TEXT NOT NULL DEFAULT '[]',
    incremental INTEGER NOT NULL DEFAULT 0,
    commits_scanned INTEGER NOT NULL DEFAULT 0,
    commits_skipped INTEGER NOT NULL DEFAULT 0,
    objects INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    keys_found INTEGER NOT NULL DEFAULT 0,
    new_keys INTEGER NOT NULL DEFAULT 0,
    duration REAL NOT NULL DEFAULT 0,
    head TEXT,
    stats TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS seen_commits (
    repository_id INTEGER NOT NULL REFERENCES repositories(id),
    sha TEXT NOT NULL,
    scan_id INTEGER NOT NULL,
    options_hash TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (repository_id, sha)
);
CREATE TABLE IF NOT EXISTS keys (
    fingerprint TEXT PRIMARY KEY,
    rule_id TEXT NOT NULL,
    family TEXT NOT NULL,
    confidence TEXT NOT NULL,
    redacted TEXT NOT NULL,
    length INTEGER NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    first_audit_id INTEGER
);
CREATE TABLE IF NOT EXISTS locations (
    id INTEGER PRIMARY KEY,
    repository_id INTEGER NOT NULL REFERENCES repositories(id),
    fingerprint TEXT NOT NULL REFERENCES keys(fingerprint),
    scan_id INTEGER NOT NULL,
    source TEXT NOT NULL,
    path TEXT NOT NULL,
    line INTEGER NOT NULL,
    col INTEGER NOT NULL,
    byte_offset INTEGER NOT NULL,
    blob TEXT NOT NULL DEFAULT '',
    commit_sha TEXT NOT NULL DEFAULT '',
    author_name TEXT,
    author_email TEXT,
    commit_date TEXT,
    subject TEXT,
    decoded TEXT,
    extra TEXT NOT NULL DEFAULT '{}',
    UNIQUE (repository_id, fingerprint, source, path, line, col, commit_sha, blob)
);
CREATE INDEX IF NOT EXISTS locations_key ON locations (fingerprint);
CREATE TABLE IF NOT EXISTS repository_keys (
    repository_id INTEGER NOT NULL REFERENCES repositories(id),
    fingerprint TEXT NOT NULL REFERENCES keys(fingerprint),
    introduced_commit TEXT,
    introduced_date TEXT,
    introduced_author TEXT,
    introduced_email TEXT,
    introduced_subject TEXT,
    introduced_path TEXT,
    introduced_line INTEGER,
    present_at_head INTEGER,
    head_paths TEXT NOT NULL DEFAULT '[]',
    removed_commit TEXT,
    removed_date TEXT,
    removed_author TEXT,
    removed_subject TEXT,
    refs TEXT NOT NULL DEFAULT '[]',
    first_scan_id INTEGER,
    last_scan_id INTEGER,
    PRIMARY KEY (repository_id, fingerprint)
);
CREATE TABLE IF NOT EXISTS verifications (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL REFERENCES keys(fingerprint),
    audit_id INTEGER,
    status TEXT NOT NULL,
    reason TEXT,
    http_status INTEGER,
    project TEXT,
    organization TEXT,
    request_id TEXT,
    checked_at TEXT,
    cached INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS exposures (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL REFERENCES keys(fingerprint),
    measured_at TEXT NOT NULL,
    status TEXT NOT NULL,
    key_id TEXT,
    doc TEXT NOT NULL
);
"""


class StoreError(KeyscanError):
    pass


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _create_private(path: str) -> None:
    """Create the file with mode 0600 (or tighten an existing one that we own)."""
    from keyscan.privatefile import PrivateFileError, ensure_private

    try:
        ensure_private(path)  # refuses a symlink or a non-regular file
    except PrivateFileError as exc:
        raise StoreError(str(exc)) from None


@dataclass
class ScanRecord:
    """What the coordinator writes for one repository after its scan."""

    audit_id: int
    target: str
    status: str
    errors: list[str]
    warnings: list[str]
    findings: list[Finding]
    incremental: bool = False
    commits_scanned: int = 0
    commits_skipped: int = 0
    objects: int = 0
    bytes: int = 0
    duration: float = 0.0
    started_at: str = ""
    heads: list[str] = field(default_factory=list)
    head: str | None = None
    # What the tips were scanned under (see keyscan.audit.coordinator.options_hash).
    options_hash: str = ""
    # fingerprint -> (present_at_head or None, head paths, removing commit or None)
    key_states: dict[str, tuple[bool | None, list[str], CommitInfo | None]] = field(
        default_factory=dict
    )
    stats: dict[str, Any] = field(default_factory=dict)


class AuditStore:
    def __init__(self, path: str, create: bool = True) -> None:
        self.path = path
        if not create and not os.path.exists(path):
            raise StoreError(f"{path}: no such audit database (run keyscan audit first)")
        try:
            if create:
                _create_private(path)
            self.db = sqlite3.connect(path, timeout=30)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA foreign_keys = ON")
            with self.db:
                self.db.executescript(SCHEMA)
                self.db.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
                columns = {r[1] for r in self.db.execute("PRAGMA table_info(seen_commits)")}
                if "options_hash" not in columns:  # a store of an earlier keyscan
                    self.db.execute(
                        "ALTER TABLE seen_commits ADD COLUMN options_hash TEXT NOT NULL "
                        "DEFAULT ''"
                    )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{path}: {exc}") from None
        version = self.meta("schema_version")
        if version != str(SCHEMA_VERSION):
            raise StoreError(f"{path}: unsupported audit database schema {version}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.db:
            yield self.db

    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # -- audits and repositories -------------------------------------------------------------

    def start_audit(
        self, targets: int, jobs: int | None, scheduler: str | None, verify: bool
    ) -> int:
        from keyscan.version import __version__

        with self.db:
            cur = self.db.execute(
                "INSERT INTO audits (started_at, targets, jobs, scheduler, verify, version) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (_now(), targets, jobs, scheduler, int(verify), __version__),
            )
        return int(cur.lastrowid or 0)

    def finish_audit(self, audit_id: int) -> None:
        with self.db:
            self.db.execute("UPDATE audits SET finished_at = ? WHERE id = ?", (_now(), audit_id))

    def repository_id(self, target: str, audit_id: int | None = None) -> int:
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO repositories (target, first_audit_id) VALUES (?, ?)",
                (target, audit_id),
            )
        row = self.db.execute("SELECT id FROM repositories WHERE target = ?", (target,))
        return int(row.fetchone()[0])

    def seen_commits(self, target: str, options_hash: str = "") -> list[str]:
        """Tips scanned under the options whose hash is ``options_hash``: commits reachable
        from them need no new scan with these options (with others, they may)."""
        rows = self.db.execute(
            "SELECT s.sha FROM seen_commits s JOIN repositories r ON r.id = s.repository_id "
            "WHERE r.target = ? AND s.options_hash = ? ORDER BY s.sha",
            (target, options_hash),
        )
        return [str(r[0]) for r in rows]

    def seen_under_other_options(self, target: str, options_hash: str) -> bool:
        """Was this repository scanned before, but never under these options?"""
        row = self.db.execute(
            "SELECT count(*), sum(s.options_hash = ?) FROM seen_commits s "
            "JOIN repositories r ON r.id = s.repository_id WHERE r.target = ?",
            (options_hash, target),
        ).fetchone()
        return bool(row[0]) and not row[1]

    def known_blobs(self, target: str) -> list[tuple[str, str]]:
        rows = self.db.execute(
            "SELECT DISTINCT l.fingerprint, l.blob FROM locations l "
            "JOIN repositories r ON r.id = l.repository_id "
            "WHERE r.target = ? AND l.blob != '' ORDER BY 1, 2",
            (target,),
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    # -- one repository's scan ---------------------------------------------------------------

    def record_scan(self, rec: ScanRecord) -> tuple[int, int]:
        """Write one repository's scan in one transaction; return (scan id, new keys)."""
        with self.db:
            repo_id = self.repository_id(rec.target, rec.audit_id)
            cur = self.db.execute(
                "INSERT INTO scans (audit_id, repository_id, started_at, status, errors, "
                "warnings, incremental, commits_scanned, commits_skipped, objects, bytes, "
                "keys_found, duration, head, stats) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.audit_id,
                    repo_id,
                    rec.started_at,
                    rec.status,
                    json.dumps(rec.errors),
                    json.dumps(rec.warnings),
                    int(rec.incremental),
                    rec.commits_scanned,
                    rec.commits_skipped,
                    rec.objects,
                    rec.bytes,
                    len(rec.findings),
                    rec.duration,
                    rec.head,
                    json.dumps(rec.stats, default=str),
                ),
            )
            scan_id = int(cur.lastrowid or 0)
            new_keys = 0
            for f in rec.findings:
                new_keys += self._record_finding(repo_id, scan_id, rec.audit_id, f)
            for fp, (present, paths, removed) in rec.key_states.items():
                self._record_state(repo_id, scan_id, fp, present, paths, removed)
            # Only a scan that read everything marks its tips as seen: a partial or failed
            # scan is done again in full next time.
            # A tip is remembered with the options of its latest full scan.
            if rec.status == "ok":
                self.db.executemany(
                    "INSERT OR REPLACE INTO seen_commits (repository_id, sha, scan_id, "
                    "options_hash) VALUES (?, ?, ?, ?)",
                    [(repo_id, sha, scan_id, rec.options_hash) for sha in rec.heads],
                )
            self.db.execute(
                "UPDATE scans SET new_keys = ? WHERE id = ?", (new_keys, scan_id)
            )
            self.db.execute(
                "UPDATE repositories SET last_scan_id = ? WHERE id = ?", (scan_id, repo_id)
            )
        return scan_id, new_keys

    def _record_finding(self, repo_id: int, scan_id: int, audit_id: int, f: Finding) -> int:
        self.db.execute(
            "INSERT OR IGNORE INTO keys (fingerprint, rule_id, family, confidence, redacted, "
            "length, description, first_audit_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                f.fingerprint,
                f.rule_id,
                f.family,
                str(f.confidence),
                f.redacted,
                f.length,
                f.description,
                audit_id,
            ),
        )
        self.db.executemany(
            "INSERT OR IGNORE INTO locations (repository_id, fingerprint, scan_id, source, "
            "path, line, col, byte_offset, blob, commit_sha, author_name, author_email, "
            "commit_date, subject, decoded, extra) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [_location_row(repo_id, f.fingerprint, scan_id, loc) for loc in f.locations],
        )
        first = _earliest(f.locations)
        refs = list(f.git.refs) if f.git is not None else []
        row = self.db.execute(
            "SELECT introduced_date, refs FROM repository_keys "
            "WHERE repository_id = ? AND fingerprint = ?",
            (repo_id, f.fingerprint),
        ).fetchone()
        c = first.commit if first is not None else None
        intro = (
            c.sha if c else None,
            c.date if c else None,
            c.author_name if c else None,
            c.author_email if c else None,
            c.subject if c else None,
            first.path if first is not None else None,
            first.line if first is not None else None,
        )
        if row is None:
            self.db.execute(
                "INSERT INTO repository_keys (repository_id, fingerprint, introduced_commit, "
                "introduced_date, introduced_author, introduced_email, introduced_subject, "
                "introduced_path, introduced_line, refs, first_scan_id, last_scan_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (repo_id, f.fingerprint, *intro, json.dumps(sorted(map(str, refs))), scan_id,
                 scan_id),
            )
            return 1
        merged_refs = sorted(set(json.loads(row["refs"] or "[]")) | set(map(str, refs)))
        self.db.execute(
            "UPDATE repository_keys SET refs = ?, last_scan_id = ? "
            "WHERE repository_id = ? AND fingerprint = ?",
            (json.dumps(merged_refs), scan_id, repo_id, f.fingerprint),
        )
        old_date = row["introduced_date"]
        if intro[1] and (old_date is None or _date_key(intro[1]) < _date_key(old_date)):
            self.db.execute(
                "UPDATE repository_keys SET introduced_commit = ?, introduced_date = ?, "
                "introduced_author = ?, introduced_email = ?, introduced_subject = ?, "
                "introduced_path = ?, introduced_line = ? "
                "WHERE repository_id = ? AND fingerprint = ?",
                (*intro, repo_id, f.fingerprint),
            )
        return 0

    def _record_state(
        self,
        repo_id: int,
        scan_id: int,
        fp: str,
        present: bool | None,
        paths: list[str],
        removed: CommitInfo | None,
    ) -> None:
        exists = self.db.execute(
            "SELECT removed_commit FROM repository_keys WHERE repository_id = ? "
            "AND fingerprint = ?",
            (repo_id, fp),
        ).fetchone()
        if exists is None:
            return
        params: list[Any] = [None if present is None else int(present), json.dumps(paths)]
        sql = "UPDATE repository_keys SET present_at_head = ?, head_paths = ?"
        if present:
            sql += (
                ", removed_commit = NULL, removed_date = NULL, removed_author = NULL,"
                " removed_subject = NULL"
            )
        elif removed is not None:
            sql += (
                ", removed_commit = ?, removed_date = ?, removed_author = ?,"
                " removed_subject = ?"
            )
            params += [removed.sha, removed.date, removed.author_name, removed.subject]
        sql += ", last_scan_id = ? WHERE repository_id = ? AND fingerprint = ?"
        params += [scan_id, repo_id, fp]
        self.db.execute(sql, params)

    # -- verification ------------------------------------------------------------------------

    def record_verifications(self, audit_id: int, findings: Iterable[Finding]) -> int:
        rows = [
            (
                f.fingerprint,
                audit_id,
                v.status.value,
                v.reason,
                v.http_status,
                v.project,
                v.organization,
                v.request_id,
                v.checked_at or _now(),
                int(v.cached),
            )
            for f in findings
            if (v := f.verification) is not None
        ]
        with self.db:
            self.db.executemany(
                "INSERT INTO verifications (fingerprint, audit_id, status, reason, "
                "http_status, project, organization, request_id, checked_at, cached) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def latest_verification(self, fingerprint: str) -> Verification | None:
        row = self.db.execute(
            "SELECT * FROM verifications WHERE fingerprint = ? ORDER BY id DESC LIMIT 1",
            (fingerprint,),
        ).fetchone()
        if row is None or row["status"] not in STATUS_VALUES:
            return None  # never checked, or an answer this version does not know
        return Verification(
            status=row["status"],
            reason=row["reason"] or "",
            http_status=row["http_status"],
            project=row["project"],
            organization=row["organization"],
            request_id=row["request_id"],
            checked_at=row["checked_at"],
            cached=bool(row["cached"]),
        )

    # -- exposure evidence (keyscan exposure --db) -------------------------------------------

    def record_exposures(self, docs: Iterable[dict[str, Any]]) -> int:
        """Keep each key's exposure figures and timeline (``ExposureReport.to_json()``: never a
        raw key); keys this store does not know are left out. Returns how many were kept."""
        known = {str(r[0]) for r in self.db.execute("SELECT fingerprint FROM keys")}
        rows = [
            (d["fingerprint"], _now(), str(d.get("status") or ""), d.get("key_id"),
             json.dumps(d, sort_keys=True))
            for d in docs
            if isinstance(d.get("fingerprint"), str) and d["fingerprint"] in known
        ]
        with self.db:
            self.db.executemany(
                "INSERT INTO exposures (fingerprint, measured_at, status, key_id, doc) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def latest_exposure(self, fingerprint: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT measured_at, doc FROM exposures WHERE fingerprint = ? "
            "ORDER BY id DESC LIMIT 1",
            (fingerprint,),
        ).fetchone()
        if row is None:
            return None
        from keyscan.safejson import loads as safe_loads

        try:
            doc = safe_loads(row["doc"])
        except ValueError:
            return None
        if not isinstance(doc, dict):
            return None
        doc["measured_at"] = row["measured_at"]
        return doc

    # -- reading, for reports ----------------------------------------------------------------

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return list(self.db.execute(sql, params))


def _location_row(repo_id: int, fp: str, scan_id: int, loc: Location) -> tuple[Any, ...]:
    c = loc.commit
    return (
        repo_id,
        fp,
        scan_id,
        loc.source,
        loc.display_path,
        loc.line,
        loc.column,
        loc.offset,
        loc.blob or "",
        c.sha if c else "",
        c.author_name if c else None,
        c.author_email if c else None,
        c.date if c else None,
        c.subject if c else None,
        loc.decoded,
        json.dumps(loc.extra, default=str, sort_keys=True),
    )


def _date_key(date: str) -> str:
    """ISO 8601 dates with offsets, comparable as UTC strings."""
    from datetime import datetime, timezone

    try:
        return datetime.fromisoformat(date.replace("Z", "+00:00")).astimezone(
            timezone.utc
        ).strftime("%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return date


def _earliest(locations: list[Location]) -> Location | None:
    """The location of the earliest commit (the first location when none has a date)."""
    dated = [loc for loc in locations if loc.commit is not None and loc.commit.date]
    if dated:
        return min(dated, key=lambda loc: _date_key(loc.commit.date if loc.commit else ""))
    return locations[0] if locations else None
