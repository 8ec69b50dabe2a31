"""A worker pool's workers start from what the parent readied before the fork (issue 16):
the parent's Detector, its Hyperscan database already compiled, and the format readers
already imported; no worker compiles or imports them again (~30 ms of CPU each)."""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from keyscan import detector as detector_module
from keyscan import formats
from keyscan.content import ContentOptions
from keyscan.detector import Detector
from keyscan.git import history, packs
from keyscan.rules import load_rules
from tests.git_helpers import Repo, new_key, scan

pytestmark = pytest.mark.usefixtures("isolated_home")

READERS = ("keyscan.formats.archives", "keyscan.formats.notebooks", "keyscan.formats.pdf")


def _history(tmp_path: Path) -> Repo:
    """Enough bytes that every worker's first piece passes ``ACCELERATE_AFTER``."""
    rng = random.Random(7)
    repo = Repo(tmp_path / "repo")
    for i in range(12):
        text = "\n".join("".join(rng.choice("abcdefgh ") for _ in range(79)) for _ in range(5000))
        repo.commit(f"c{i}", (f"f{i}.txt", f"{text}\n{new_key()}\n"))
    repo.git("repack", "-adf", "-q")
    return repo


@pytest.mark.parametrize("how", ["pack-order-git", "pack-order-reader"])
def test_forked_workers_start_from_the_parents_detector_and_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    repo = _history(tmp_path)
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(history, "PACKS_IN_PROCESS", how == "pack-order-reader")
    if how == "pack-order-reader" and packs.apply_delta_function() is None:
        pytest.skip("dulwich's compiled apply_delta")
    for name in READERS:  # not imported in this process yet: the parent imports them
        monkeypatch.delitem(sys.modules, name, raising=False)
        monkeypatch.delattr(formats, name.rsplit(".", 1)[1], raising=False)
    log = tmp_path / "log.jsonl"
    parent = os.getpid()

    def note(**what: Any) -> None:
        with open(log, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), **what}) + "\n")

    real_init = history._pool_init

    def init(claims: Any, rules: Any, *detector: Detector | None) -> None:
        real_init(claims, rules, *detector)
        note(init=True, detector=history._DETECTOR is not None and history._DETECTOR in detector,
             readers=[name for name in READERS if name in sys.modules])  # fmt: skip

    real_plan = detector_module.keyword_plan

    def plan(*args: Any, **kwargs: Any) -> Any:
        note(compiled=True)
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(history, "_pool_init", init)
    monkeypatch.setattr(detector_module, "keyword_plan", plan)
    result = scan(repo.path, jobs=2)
    assert result.stats["workers"] == 2 and len(result.findings) == 12
    notes = [json.loads(line) for line in log.read_text().splitlines()]
    workers = [n for n in notes if n.get("init")]
    assert len(workers) == 2 and all(n["pid"] != parent for n in workers)
    assert all(n["detector"] and n["readers"] == list(READERS) for n in workers), workers
    # Compiled once, before the fork, by the parent; never by a worker.
    assert [n["pid"] for n in notes if n.get("compiled")] == [parent]


def test_a_spawned_worker_builds_its_own() -> None:
    detector = Detector(load_rules())
    assert history._for_workers(detector, ContentOptions(), "spawn") is None
    assert history._for_workers(detector, ContentOptions(), "fork") is detector
