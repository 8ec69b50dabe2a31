"""A fake of the OpenAI API for keyscan's tests: real HTTP on 127.0.0.1, or an httpx transport.

Modules:

- ``state.py``: ``FakeState`` (thread-safe): keys by raw text with a state (live, restricted,
  no-quota, rate-limited, deleted, deactivated, ip-blocked, region-blocked), the organization
  model (projects, users, service accounts, project keys, admin keys), the request log (bearer
  *fingerprints* only), concurrency counters and failure injection (latency, N error answers,
  dropped connections, hangs).
- ``app.py``: the pure handler ``handle(state, Request) -> Response`` and the route table
  ``ROUTES``; extend with ``register(method, path_regex, handler)`` (see its docstring).
  Helpers for routes: ``json_response``, ``error_response``, ``require_admin``, ``page``,
  ``admin_key_json``.
- ``server.py``: ``FakeServer(state)`` context manager, ``.base_url`` = http://127.0.0.1:PORT/v1.
- ``transport.py``: ``FakeTransport(state)`` / ``AsyncFakeTransport(state)`` for httpx.
- ``spec.py``: ``validate(body, schema)`` / ``errors(body, schema)`` against the OpenAI spec.

Fixtures (tests/conftest.py): ``fake_state``, ``fake_server`` (both assert, at teardown, that
no body broke the spec).

To add routes, create a module (e.g. ``tests/fakeopenai/org.py``) that calls ``register`` at
import time, and list it in ``app.EXTENSIONS``: it is imported here, with the package.
"""

from __future__ import annotations

import importlib
import importlib.util

from tests.fakeopenai import app
from tests.fakeopenai.app import ROUTES, Request, Response, handle, register
from tests.fakeopenai.server import FakeServer
from tests.fakeopenai.state import KEY_STATES, FakeState, KeyRecord, redacted_value
from tests.fakeopenai.transport import AsyncFakeTransport, FakeTransport

for _name in app.EXTENSIONS:
    if importlib.util.find_spec(_name) is not None:
        importlib.import_module(_name)

__all__ = [
    "KEY_STATES",
    "ROUTES",
    "AsyncFakeTransport",
    "FakeServer",
    "FakeState",
    "FakeTransport",
    "KeyRecord",
    "Request",
    "Response",
    "handle",
    "redacted_value",
    "register",
]
