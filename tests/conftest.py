"""Shared pytest fixtures. Add yours below; keep each fixture small and documented."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """keyscan's caches (compiled rules, verification) go to a folder of this test run, never
    to the real ~/.cache: the suite must not depend on, nor leave, state in the user's home.
    Subprocesses inherit it; tests that check the cache locations set their own."""
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="keyscan-test-cache-")


@pytest.fixture
def isolated_home(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """A HOME of the test's own (no user git config, no ~/.cache), git's system config off,
    keyscan's git deadline at its default. Modules use it with
    ``pytestmark = pytest.mark.usefixtures("isolated_home")``."""
    from pathlib import Path

    home = Path(str(tmp_path)) / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("KEYSCAN_GIT_TIMEOUT", raising=False)


@pytest.fixture
def fake_state() -> Iterator[object]:
    """A fresh fake OpenAI world (tests.fakeopenai.FakeState); teardown asserts that every
    body the fake sent validated against the OpenAI spec."""
    from tests.fakeopenai import FakeState

    state = FakeState()
    yield state
    assert not state.spec_violations, state.spec_violations


@pytest.fixture
def fake_server(fake_state: object) -> Iterator[object]:
    """The fake OpenAI API on http://127.0.0.1:PORT/v1 (``fake_server.base_url``), serving
    ``fake_state``."""
    from tests.fakeopenai import FakeServer

    with FakeServer(fake_state) as server:  # type: ignore[arg-type]
        yield server
