"""A persistent cache of verification results: SQLite (standard library), keyed by the key's
SHA-256 fingerprint and the API base URL, never by the key itself.

Location: ``VerifyOptions.cache_path``, else ``$KEYSCAN_CACHE_DIR/verify.sqlite3``, else
``$XDG_CACHE_HOME/keyscan/verify.sqlite3``, else ``~/.cache/keyscan/verify.sqlite3``. The folder
is created 0700 and the file 0600. ``unknown`` results are never cached (they are transient).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType

from keyscan.models import STATUS_VALUES, Verification, VerificationStatus

SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    fingerprint TEXT NOT NULL,
    api_base TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    http_status INTEGER,
    project TEXT,
    organization TEXT,
    request_id TEXT,
    checked_at REAL NOT NULL,
    PRIMARY KEY (fingerprint, api_base)
)
"""


def default_cache_path() -> Path:
    explicit = os.environ.get("KEYSCAN_CACHE_DIR")
    if explicit:
        return Path(explicit) / "verify.sqlite3"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "keyscan" / "verify.sqlite3"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str | None) -> float:
    if not text:
        return time.time()
    try:
        return (
            datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        )
    except ValueError:
        return time.time()


class VerifyCache:
    """Open with ``VerifyCache(path, ttl)``; raises OSError or sqlite3.Error if unusable."""

    def __init__(self, path: Path, ttl_seconds: float) -> None:
        self.path = path
        self.ttl = ttl_seconds
        from keyscan.privatefile import ensure_private, private_dir

        private_dir(path.parent)
        ensure_private(path)  # 0600, a regular file, not a symlink
        self._db = sqlite3.connect(str(path), timeout=10)
        self._db.execute(SCHEMA)
        self._db.commit()

    def __enter__(self) -> VerifyCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def get_many(
        self, fingerprints: Iterable[str], api_base: str, now: float | None = None
    ) -> dict[str, Verification]:
        """Fresh (younger than the TTL) results for these fingerprints, marked ``cached``."""
        oldest = (time.time() if now is None else now) - self.ttl
        out: dict[str, Verification] = {}
        fps = list(fingerprints)
        for i in range(0, len(fps), 500):
            chunk = fps[i : i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT fingerprint, status, reason, http_status, project, organization, "
                f"request_id, checked_at FROM verdicts WHERE api_base = ? AND checked_at >= ? "
                f"AND fingerprint IN ({marks})",
                [api_base, oldest, *chunk],
            )
            for fp, status, reason, http_status, project, org, req_id, checked in rows:
                if status not in STATUS_VALUES:
                    continue  # not an answer this version knows: ask again
                out[fp] = Verification(
                    status=status,
                    reason=reason,
                    http_status=http_status,
                    project=project,
                    organization=org,
                    request_id=req_id,
                    checked_at=_iso(checked),
                    cached=True,
                )
        return out

    def put_many(self, verdicts: dict[str, Verification], api_base: str) -> None:
        rows = [
            (
                fp,
                api_base,
                v.status.value,
                v.reason,
                v.http_status,
                v.project,
                v.organization,
                v.request_id,
                _parse_iso(v.checked_at),
            )
            for fp, v in verdicts.items()
            if v.status is not VerificationStatus.UNKNOWN and not v.cached
        ]
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
            self._db.execute(
                "DELETE FROM verdicts WHERE checked_at < ?",
                (time.time() - max(self.ttl, 7 * 86400),),
            )
