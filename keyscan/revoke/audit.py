"""The audit log of revocations: JSON Lines, file mode 0600, never a raw key.

Default location: ``$XDG_DATA_HOME/keyscan/audit.jsonl`` (``~/.local/share/keyscan/...``).
One record per action: when, what, on which project and key id, the leaked key's redacted
value and fingerprint, the HTTP status and ``x-request-id`` of the answer, and the outcome.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from keyscan.errors import KeyscanError

AUDIT_FIELDS = (
    "timestamp",
    "action",
    "result",
    "project",
    "key_id",
    "service_account_id",
    "redacted",
    "fingerprint",
    "http_status",
    "request_id",
    "message",
)


class AuditError(KeyscanError):
    """The audit log cannot be written (nothing is deleted without a record)."""


def default_audit_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "keyscan" / "audit.jsonl"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class AuditLog:
    """Appends records to ``path``; the file is created 0600 and its folder 0700."""

    path: Path
    # Values that must never reach the file (the raw leaked keys, the admin key).
    forbidden: list[str] = field(default_factory=list, repr=False)

    def check_writable(self) -> None:
        """Open (create) the log now, so that a run fails before it deletes anything."""
        self._open().close()

    def _open(self) -> Any:
        try:
            if not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
            from keyscan.privatefile import PrivateFileError, open_private

            # No symlink, a regular file, mode 0600 (tightened if it was wider).
            fd = open_private(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        except PrivateFileError as exc:
            raise AuditError(f"cannot write audit log {exc}") from None
        except OSError as exc:
            raise AuditError(
                f"cannot write audit log {self.path}: {exc.strerror or exc}"
            ) from None
        return os.fdopen(fd, "a", encoding="utf-8")

    def record(self, **values: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"timestamp": now_iso()}
        for name in AUDIT_FIELDS[1:]:
            entry[name] = values.pop(name, None)
        entry.update(values)
        line = json.dumps(entry, sort_keys=False)
        for secret in self.forbidden:
            if secret and secret in line:
                # Defence in depth: a record that would hold a key is not written as is.
                line = line.replace(secret, "[REDACTED]")
        with self._open() as fh:
            fh.write(line + "\n")
        return entry


def read_records(path: Path) -> list[dict[str, Any]]:
    """All well-formed records of an audit log (missing file: none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise AuditError(f"cannot read audit log {path}: {exc.strerror or exc}") from None
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            out.append(item)
    return out
