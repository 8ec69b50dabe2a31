"""Small histories (issue 16): the fixed costs above the floor of a whole-history scan.

* The pool's pack-order pieces are shared out as the scan goes: this process reads from
  the front of the pack for as long as pieces are left that nobody claimed, the workers
  take pieces from the back, so no process idles while another still has a backlog. The
  report equals the id-order path's.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from keyscan.git import history
from tests.git_helpers import Repo, scan
from tests.test_history_speed import _history, _summary


def test_parent_reads_on_while_the_workers_are_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers that claimed a piece and then stall (a loaded core, a costly PDF): this
    process does not stop at its own share; it claims and reads every piece nobody took
    (here all but the workers' two, from the back), stops at the first one a worker holds,
    and the report is the id-order path's, each object reported once."""
    monkeypatch.setattr(history, "PACKS_IN_PROCESS", False)  # git's pool (pack_order_runs)
    repo, _ = _history(tmp_path)
    monkeypatch.setattr(history, "PACK_ORDER", False)
    by_id = scan(repo.path, jobs=1)
    monkeypatch.setattr(history, "PACK_ORDER", True)
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(history, "PIECES_PER_PROCESS", 4)
    parent = os.getpid()
    flag = tmp_path / "parent-stopped"
    read_here: list[str] = []
    refused: list[int] = []
    cut: list[list[list[str]]] = []
    real_runs, real_scan = history.pack_order_runs, history.scan_object
    real_claim, real_worker = history._claim, history._pack_worker

    def runs(*args: Any) -> list[list[str]]:
        out = real_runs(*args)
        cut.append(out)
        return out

    def wait_for(what: Any) -> None:
        deadline = time.monotonic() + 30
        while not what() and time.monotonic() < deadline:
            time.sleep(0.01)

    def scan_object(detector: Any, oid: str, *rest: Any) -> None:
        if os.getpid() == parent and not refused:  # this process's stream
            if not read_here:  # both workers hold a piece before it reads anything
                wait_for(lambda: len(list(tmp_path.glob("claimed-*"))) >= 2)
            read_here.append(oid)
        real_scan(detector, oid, *rest)

    def claim(claims: Any, piece: int) -> bool:
        taken = real_claim(claims, piece)
        if os.getpid() == parent and not taken:
            refused.append(piece)
            flag.touch()  # the stalled workers may go on
        return taken

    def stalled_worker(*args: Any) -> Any:  # runs in a worker, once it holds its piece
        (tmp_path / f"claimed-{os.getpid()}").touch()
        wait_for(flag.exists)
        return real_worker(*args)

    monkeypatch.setattr(history, "pack_order_runs", runs)
    monkeypatch.setattr(history, "scan_object", scan_object)
    monkeypatch.setattr(history, "_claim", claim)
    monkeypatch.setattr(history, "_pack_worker", stalled_worker)
    packed = scan(repo.path, jobs=2)
    assert packed.stats["workers"] == 2
    (pieces,) = cut
    assert 6 <= len(pieces) <= 4 * 3
    # The workers took the last two pieces; this process read every other one, in pack
    # order, and stopped at the first piece a worker held: far more than a third.
    assert refused == [len(pieces) - 2]
    assert read_here == [oid for run in pieces[:-2] for oid in run]
    assert _summary(packed) == _summary(by_id)


@pytest.mark.parametrize("pieces", [1, 2, 5])
def test_pieces_report_what_the_id_order_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pieces: int
) -> None:
    """However finely the pack is cut, every object in scope is read and reported once."""
    repo, _ = _history(tmp_path)
    monkeypatch.setattr(history, "PACK_ORDER", False)
    by_id = scan(repo.path, jobs=1)
    monkeypatch.setattr(history, "PACK_ORDER", True)
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(history, "PIECES_PER_PROCESS", pieces)
    monkeypatch.setattr(history, "PACKS_IN_PROCESS", False)  # git's pool (PIECES_PER_PROCESS)
    packed = scan(repo.path, jobs=2)
    assert packed.stats["workers"] == 2
    assert _summary(packed) == _summary(by_id)


def test_a_worker_builds_one_detector_for_all_its_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker scans several pieces with ONE Detector (Hyperscan compiles its database
    once per Detector): never one per piece."""
    monkeypatch.setattr(history, "PACKS_IN_PROCESS", False)  # git's pool (pack_order_runs)
    repo, _ = _history(tmp_path)
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(history, "PIECES_PER_PROCESS", 4)
    parent = os.getpid()
    marks = tmp_path / "marks"
    marks.mkdir()
    cut: list[list[list[str]]] = []
    real_runs, real_scan, real_worker = (
        history.pack_order_runs, history.scan_object, history._pack_worker)  # fmt: skip
    real_detector = history.Detector

    class CountedDetector(real_detector):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if os.getpid() != parent:
                (marks / f"detector-{os.getpid()}-{time.monotonic_ns()}").touch()

    def runs(*args: Any) -> list[list[str]]:
        out = real_runs(*args)
        cut.append(out)
        return out

    def piece(*args: Any) -> Any:  # in a worker, per piece it holds
        (marks / f"piece-{os.getpid()}-{time.monotonic_ns()}").touch()
        return real_worker(*args)

    first: list[str] = []

    def scan_object(detector: Any, oid: str, *rest: Any) -> None:
        if os.getpid() == parent and not first:  # the workers take every later piece
            first.append(oid)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (
                cut and len(list(marks.glob("piece-*"))) >= len(cut[0]) - 1
            ):
                time.sleep(0.01)
        real_scan(detector, oid, *rest)

    monkeypatch.setattr(history, "Detector", CountedDetector)
    monkeypatch.setattr(history, "pack_order_runs", runs)
    monkeypatch.setattr(history, "scan_object", scan_object)
    monkeypatch.setattr(history, "_pack_worker", piece)
    packed = scan(repo.path, jobs=2)
    assert packed.stats["workers"] == 2 and not packed.errors
    pieces = [p.name.split("-")[1] for p in marks.glob("piece-*")]
    built = [p.name.split("-")[1] for p in marks.glob("detector-*")]
    assert len(pieces) == len(cut[0]) - 1 >= 4  # the workers read several pieces each...
    assert sorted(set(built)) == sorted(built)  # ...with one Detector per worker
    assert set(built) <= set(pieces)


def test_store_size_without_a_git_process(tmp_path: Path) -> None:
    """The pool's threshold (``estimate_bytes``) is read from the object folder: packs and
    loose objects add up as ``git count-objects -v`` counts them (within the block rounding
    of its KiB), and a scan of every ref no longer starts ``count-objects``."""
    from keyscan.git.plumbing import discover
    from tests.test_git_processes import _counting_git, _run, _subcommands

    repo = Repo(tmp_path / "repo")
    for i in range(30):
        repo.commit(f"c{i}", (f"f{i}.py", f"x = {i}\n" * (50 * i + 1)))
    git = discover(str(repo.path))

    def by_git() -> int:
        out = repo.git("count-objects", "-v")
        fields = dict(line.split(": ") for line in out.splitlines())
        return (int(fields["size"]) + int(fields["size-pack"])) * 1024

    loose = history.estimate_bytes(git)
    assert 0 < loose <= by_git() <= loose + 4096 * 200  # du rounds each file up to a block
    repo.git("gc", "-q")
    packed = history.estimate_bytes(git)
    assert packed > 0 and packed - 1024 < by_git() <= packed  # git rounds down to KiB
    env, log = _counting_git(tmp_path)
    proc = _run(["git", "."], repo.path, env)
    assert proc.returncode == 0, proc.stderr
    assert "count-objects" not in _subcommands(log), _subcommands(log)
