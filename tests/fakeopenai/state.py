"""The fake OpenAI API's world: keys with states, the organization model, a request log and
failure injection. Thread-safe: every mutation and read of shared data holds ``state.lock``.

Keys are kept by their raw text (this is test-only data, generated at run time with
``keyscan.keygen``); the request log records only the SHA-256 fingerprint of each bearer.

Key states (``KeyRecord.state``), and what ``/models`` answers for them (see app.py):

=============== ==============================================================
live            200
restricted      401, code null, "You have insufficient permissions ... Missing scopes: ..."
no-quota        429 ``insufficient_quota`` (``KeyRecord.quota_code`` picks the code)
rate-limited    429 ``rate_limit_exceeded`` with ``retry-after-ms``
deleted         401 ``invalid_api_key`` (same as a key the fake never heard of)
deactivated     401 ``account_deactivated``
ip-blocked      401 "IP not authorized ..."
region-blocked  403 ``unsupported_country_region_territory``
=============== ==============================================================

The organization model (for the Admin API routes): ``projects``, ``users``,
``service_accounts`` and the keys themselves. A project API key is a ``KeyRecord`` with a
``project_id`` (and an owner: a user or a service account); an admin key is a ``KeyRecord``
with ``admin=True``. Deleting a key through the Admin API should call ``delete_key`` (state
becomes ``deleted``, so ``/models`` answers ``invalid_api_key`` afterwards, like the real API).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

KEY_STATES = (
    "live",
    "restricted",
    "no-quota",
    "rate-limited",
    "deleted",
    "deactivated",
    "ip-blocked",
    "region-blocked",
)


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def redacted_value(secret: str) -> str:
    """The real API's shape: first 8, one ``*`` per hidden character, last 4."""
    if len(secret) <= 12:
        return "*" * len(secret)
    return secret[:8] + "*" * (len(secret) - 12) + secret[-4:]


def new_id(prefix: str, n: int = 24) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(n))


def request_id() -> str:
    return "req_" + secrets.token_hex(16)


@dataclass
class Project:
    id: str
    name: str
    created_at: int
    archived_at: int | None = None

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


@dataclass
class User:
    id: str
    name: str
    email: str
    created_at: int
    role: str = "owner"


@dataclass
class ServiceAccount:
    id: str
    name: str
    project_id: str
    created_at: int
    role: str = "member"
    deleted: bool = False


@dataclass
class KeyRecord:
    """One secret the fake knows. ``secret`` is the raw key (test-only)."""

    secret: str
    state: str = "live"
    id: str = field(default_factory=lambda: new_id("key_", 16))
    name: str = "Secret key"
    admin: bool = False
    # Read-only admin keys may list but not delete (an org route decides what that means).
    read_only: bool = False
    project_id: str | None = None
    owner_type: str = "user"  # user | service_account
    user_id: str | None = None
    service_account_id: str | None = None
    created_at: int = field(default_factory=lambda: int(time.time()) - 86400)
    last_used_at: int | None = None
    owner_project_access: str = "active"  # active | inactive
    # The 429 code for state "no-quota" (insufficient_quota, credit_balance_exhausted, ...).
    quota_code: str = "insufficient_quota"
    # The scopes named in a "restricted" answer.
    missing_scopes: str = "api.model.read"
    # Admin keys: scopes this key lacks (usage.py answers 401 "Missing scopes" for them).
    lacks_scopes: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.secret)

    @property
    def redacted_value(self) -> str:
        return redacted_value(self.secret)


@dataclass(frozen=True)
class UsageEvent:
    """Planted use of a key (usage.py aggregates these into usage and costs buckets)."""

    key_id: str
    project_id: str | None
    at: int  # Unix seconds
    model: str = "gpt-4o-mini"
    requests: int = 1
    input_tokens: int = 100
    output_tokens: int = 50
    cost: float = 0.01  # USD
    endpoint: str = "completions"  # the /organization/usage/{endpoint} that counts it
    units: int = 0  # images, characters, seconds, sessions, bytes, web search calls


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    bearer_fingerprint: str | None
    at: float


@dataclass
class Failure:
    """One injected failure, consumed by the next request(s)."""

    kind: str  # "status" | "drop" | "hang"
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    code: str | None = None
    message: str = "The server had an error while processing your request. Sorry about that!"


class FakeState:
    """Everything the fake knows and records. Create one per test."""

    def __init__(self, organization: str = "user-fakeorg") -> None:
        self.lock = threading.RLock()
        self.organization = organization  # the openai-organization header (a name, not an id)
        self.keys: dict[str, KeyRecord] = {}
        self.projects: dict[str, Project] = {}
        self.users: dict[str, User] = {}
        self.service_accounts: dict[str, ServiceAccount] = {}
        self.log: list[LoggedRequest] = []
        # Failure injection
        self.latency: float = 0.0  # seconds added to every request
        self.hang_seconds: float = 60.0  # how long a "hang" lasts at most
        self.released = threading.Event()  # set on shutdown: hanging requests end at once
        self._failures: list[Failure] = []
        self.rate_limit_retry_after_ms: int = 20
        # Whether /models reports openai-project for project keys (unconfirmed in reality).
        self.send_project_header = True
        # Admin API lists (org.py): cap on every page, so tests cross pages (None: no cap).
        self.max_page_size: int | None = None
        # Concurrency measurement
        self.in_flight = 0
        self.max_in_flight = 0
        # Test-mode assertion: every JSON body sent is validated against the spec; any
        # violation is recorded here (and raised by the transports). Fixtures assert it empty.
        self.validate_responses = True
        self.spec_violations: list[str] = []
        # Planted usage (usage.py): what the usage and costs endpoints aggregate.
        self.usage: list[UsageEvent] = []

    # -- keys -------------------------------------------------------------------------------
    def add_key(self, secret: str, state: str = "live", **fields: Any) -> KeyRecord:
        """Register a key (any KeyRecord field may be given). Returns the record."""
        if state not in KEY_STATES:
            raise ValueError(f"unknown key state {state!r}; one of {KEY_STATES}")
        with self.lock:
            rec = KeyRecord(secret=secret, state=state, **fields)
            self.keys[secret] = rec
            return rec

    def add_admin_key(self, secret: str, state: str = "live", **fields: Any) -> KeyRecord:
        fields.setdefault("name", "Admin key")
        if "user_id" not in fields:
            fields["user_id"] = self.add_user("Admin", "admin@example.com").id
        return self.add_key(secret, state, admin=True, **fields)

    def key(self, secret: str) -> KeyRecord | None:
        with self.lock:
            return self.keys.get(secret)

    def key_by_id(self, key_id: str) -> KeyRecord | None:
        with self.lock:
            for rec in self.keys.values():
                if rec.id == key_id:
                    return rec
            return None

    def set_state(self, secret: str, state: str) -> None:
        if state not in KEY_STATES:
            raise ValueError(f"unknown key state {state!r}")
        with self.lock:
            self.keys[secret].state = state

    def delete_key(self, key_id: str) -> KeyRecord | None:
        """What a successful Admin API DELETE does: the key answers invalid_api_key after."""
        with self.lock:
            rec = self.key_by_id(key_id)
            if rec is not None:
                rec.state = "deleted"
            return rec

    def admin_keys(self) -> list[KeyRecord]:
        with self.lock:
            return [k for k in self.keys.values() if k.admin and k.state != "deleted"]

    def project_keys(self, project_id: str) -> list[KeyRecord]:
        with self.lock:
            return [
                k
                for k in self.keys.values()
                if not k.admin and k.project_id == project_id and k.state != "deleted"
            ]

    # -- organization -----------------------------------------------------------------------
    def add_project(self, name: str, archived: bool = False, id: str | None = None) -> Project:
        with self.lock:
            now = int(time.time())
            p = Project(
                id=id or new_id("proj_"),
                name=name,
                created_at=now - 30 * 86400,
                archived_at=now - 86400 if archived else None,
            )
            self.projects[p.id] = p
            return p

    def add_user(self, name: str, email: str, role: str = "owner") -> User:
        with self.lock:
            u = User(
                id=new_id("user-"),
                name=name,
                email=email,
                created_at=int(time.time()) - 86400,
                role=role,
            )
            self.users[u.id] = u
            return u

    def add_service_account(self, project_id: str, name: str) -> ServiceAccount:
        with self.lock:
            sa = ServiceAccount(
                id=new_id("svc_acct_"),
                name=name,
                project_id=project_id,
                created_at=int(time.time()) - 86400,
            )
            self.service_accounts[sa.id] = sa
            return sa

    def add_project_key(
        self,
        secret: str,
        project_id: str,
        state: str = "live",
        owner: User | ServiceAccount | None = None,
        **fields: Any,
    ) -> KeyRecord:
        """A project API key owned by a user (default: a new one) or a service account."""
        if owner is None:
            owner = self.add_user("Key Owner", "owner@example.com")
        if isinstance(owner, ServiceAccount):
            fields.update(owner_type="service_account", service_account_id=owner.id)
        else:
            fields.update(owner_type="user", user_id=owner.id)
        return self.add_key(secret, state, project_id=project_id, **fields)

    def plant_usage(self, rec: KeyRecord, at: int, **fields: Any) -> UsageEvent:
        """A use of ``rec`` at ``at`` (Unix seconds); any UsageEvent field may be given."""
        with self.lock:
            event = UsageEvent(key_id=rec.id, project_id=rec.project_id, at=at, **fields)
            self.usage.append(event)
            if rec.last_used_at is None or at > rec.last_used_at:
                rec.last_used_at = at
            return event

    # -- request log and concurrency ----------------------------------------------------------
    def record(
        self, method: str, path: str, query: dict[str, list[str]], bearer: str | None
    ) -> None:
        with self.lock:
            self.log.append(
                LoggedRequest(
                    method=method,
                    path=path,
                    query=query,
                    bearer_fingerprint=fingerprint(bearer) if bearer is not None else None,
                    at=time.monotonic(),
                )
            )

    def requests(self, path_suffix: str | None = None) -> list[LoggedRequest]:
        with self.lock:
            return [r for r in self.log if path_suffix is None or r.path.endswith(path_suffix)]

    def begin(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def end(self) -> None:
        with self.lock:
            self.in_flight -= 1

    # -- failure injection --------------------------------------------------------------------
    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        headers: dict[str, str] | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        """The next ``n`` requests answer ``status`` with an ErrorResponse (and ``headers``)."""
        with self.lock:
            for _ in range(n):
                f = Failure(kind="status", status=status, headers=dict(headers or {}), code=code)
                if message:
                    f.message = message
                self._failures.append(f)

    def drop_next(self, n: int = 1) -> None:
        """The next ``n`` requests see the connection closed without an answer."""
        with self.lock:
            self._failures.extend(Failure(kind="drop") for _ in range(n))

    def hang_next(self, n: int = 1) -> None:
        """The next ``n`` requests never get an answer (until ``hang_seconds`` or shutdown)."""
        with self.lock:
            self._failures.extend(Failure(kind="hang") for _ in range(n))

    def take_failure(self) -> Failure | None:
        with self.lock:
            return self._failures.pop(0) if self._failures else None

    def violation(self, text: str) -> None:
        with self.lock:
            self.spec_violations.append(text)
