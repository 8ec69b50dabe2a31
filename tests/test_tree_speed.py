"""Issue 16, the working-tree job: workers start only where they pay, and answer the same.

With the Hyperscan keyword plan a file costs mostly its open/read/Python, which worker
processes do not share out: a default scan stays in one process until it has read
``files.PARALLEL_MIN_BYTES_ACCELERATED`` bytes, then hands the rest to workers. The
pure-Python plan and an explicit ``--jobs N`` keep the look-ahead trigger (1,024 files or
32 MB). These tests count worker pools and compare answers; they never time anything.
"""

from __future__ import annotations

import multiprocessing
import random
from pathlib import Path
from typing import Any

import pytest

from keyscan.detector import accelerated_plan
from keyscan.keygen import key
from keyscan.rules import load_rules
from keyscan.sources import files

RULES = load_rules()


def needs_hyperscan(monkeypatch: pytest.MonkeyPatch, load: float = 0.0) -> None:
    """The Hyperscan plan, on a machine whose load average is ``load`` (the hand-off to
    workers looks at it)."""
    monkeypatch.delenv("KEYSCAN_PURE_PYTHON", raising=False)
    pytest.importorskip("hyperscan", reason="no hyperscan wheel for this platform")
    assert accelerated_plan()
    monkeypatch.setattr(files, "free_cores", lambda jobs: jobs - load)


def count_pools(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every worker pool the scan creates appends its size."""
    pools: list[int] = []
    real = multiprocessing.get_context

    def get_context(method: str | None = None) -> Any:
        ctx = real(method)

        class Counted:
            def __getattr__(self, name: str) -> Any:
                return getattr(ctx, name)

            def Pool(self, processes: int, *args: Any, **kwargs: Any) -> Any:
                pools.append(processes)
                return ctx.Pool(processes, *args, **kwargs)

        return Counted()

    monkeypatch.setattr(multiprocessing, "get_context", get_context)
    return pools


def small_tree(root: Path, n: int) -> dict[str, str]:
    """n small files (more than the look-ahead trigger's 1,024), a few holding keys."""
    rng = random.Random(16)
    planted: dict[str, str] = {}
    for i in range(n):
        d = root / f"d{i % 9}"
        d.mkdir(exist_ok=True)
        text = "filler line of code\n" * rng.randint(1, 30)
        if i % 97 == 5:
            k = key(rng.choice(["project", "svcacct", "admin", "legacy"]), rng=rng)
            planted[f"d{i % 9}/f{i}.txt"] = k
            text += f"OPENAI_API_KEY={k}\n"
        (d / f"f{i}.txt").write_text(text)
    return planted


def found(root: Path, jobs: int | None) -> tuple[dict[str, str], int, int]:
    errors: list[Any] = []
    tasks = files.iter_walk([str(root)], [], errors, [])
    out = files.scan_files(RULES, tasks, jobs=jobs)
    assert not errors and not out.errors
    hits = {str(Path(h.location.path).relative_to(root)): h.secret.decode() for h in out.hits}
    return hits, out.files, out.bytes


N = files.PARALLEL_MIN_FILES * 16 + 76  # past the look-ahead trigger


def test_default_scan_of_small_files_stays_in_one_process_with_hyperscan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    needs_hyperscan(monkeypatch)
    monkeypatch.setattr(files, "default_jobs", lambda: 2)
    planted = small_tree(tmp_path, N)
    pools = count_pools(monkeypatch)
    hits, count, _ = found(tmp_path, None)
    assert pools == []
    assert hits == planted and count == N


def test_default_scan_hands_the_rest_to_workers_past_the_byte_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past PARALLEL_MIN_BYTES_ACCELERATED read here, the rest goes to the workers: every
    file is scanned once, keys before and after the hand-off are all found."""
    needs_hyperscan(monkeypatch)
    planted = small_tree(tmp_path, N)
    one, count_one, bytes_one = found(tmp_path, 1)
    monkeypatch.setattr(files, "PARALLEL_MIN_BYTES_ACCELERATED", 64 * 1024)
    monkeypatch.setattr(files, "BATCH_FILES", 32)
    monkeypatch.setattr(files, "default_jobs", lambda: 2)
    pools = count_pools(monkeypatch)
    hits, count, size = found(tmp_path, None)
    assert pools == [2]
    assert hits == one == planted
    assert (count, size) == (count_one, bytes_one) == (N, bytes_one)


def test_default_scan_hands_off_once_it_has_spent_its_cpu_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Content that costs more than its bytes: the CPU spent here also hands the rest to
    workers (a budget of 0: at the first look at the clock, after HAND_OFF_CHECK_FILES files),
    with the same answers."""
    needs_hyperscan(monkeypatch)
    planted = small_tree(tmp_path, N)
    monkeypatch.setattr(files, "PARALLEL_AFTER_CPU", 0.0)
    monkeypatch.setattr(files, "default_jobs", lambda: 2)
    pools = count_pools(monkeypatch)
    hits, count, _ = found(tmp_path, None)
    assert pools == [2]
    assert hits == planted and count == N


def test_no_hand_off_while_other_work_keeps_the_cores_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past both thresholds, but the load average leaves less than HAND_OFF_MIN_FREE_CORES:
    the whole scan stays in this process, and finds the same."""
    needs_hyperscan(monkeypatch, load=1.0)
    planted = small_tree(tmp_path, N)
    monkeypatch.setattr(files, "PARALLEL_MIN_BYTES_ACCELERATED", 64 * 1024)
    monkeypatch.setattr(files, "PARALLEL_AFTER_CPU", 0.0)
    monkeypatch.setattr(files, "default_jobs", lambda: 2)
    pools = count_pools(monkeypatch)
    hits, count, _ = found(tmp_path, None)
    assert pools == []
    assert hits == planted and count == N
    assert files.free_cores(2) == 1.0 < files.HAND_OFF_MIN_FREE_CORES


def test_free_cores_reads_the_load_average(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setattr(os, "getloadavg", lambda: (0.25, 3.0, 3.0))
    assert files.free_cores(4) == 3.75


def test_hand_off_scans_every_file_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same key in every file: as many locations (counted, past the kept ones) with the
    hand-off as in one process: none lost, none scanned twice."""
    needs_hyperscan(monkeypatch)
    k = key("project", seed=1601)
    for i in range(N):
        (tmp_path / f"f{i:04}.env").write_text(f"OPENAI_API_KEY={k}\n" + "x = 1\n" * 50)
    monkeypatch.setattr(files, "PARALLEL_MIN_BYTES_ACCELERATED", 100 * 1024)
    monkeypatch.setattr(files, "BATCH_FILES", 40)
    monkeypatch.setattr(files, "default_jobs", lambda: 2)
    pools = count_pools(monkeypatch)
    errors: list[Any] = []
    out = files.scan_files(RULES, files.iter_walk([str(tmp_path)], [], errors, []))
    assert pools == [2]
    (finding,) = out.findings()
    assert len(finding.locations) + finding.more_locations == N
    assert out.files == N


def test_explicit_jobs_start_workers_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--jobs 2`` keeps the look-ahead trigger, whatever the keyword plan."""
    planted = small_tree(tmp_path, N)
    pools = count_pools(monkeypatch)
    hits, count, _ = found(tmp_path, 2)
    assert pools == [2]
    assert hits == planted and count == N


def test_pure_python_plan_keeps_the_look_ahead_trigger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEYSCAN_PURE_PYTHON", "1")
    monkeypatch.setattr(files, "default_jobs", lambda: 2)
    assert not accelerated_plan()
    planted = small_tree(tmp_path, N)
    pools = count_pools(monkeypatch)
    hits, count, _ = found(tmp_path, None)
    assert pools == [2]
    assert hits == planted and count == N


def test_below_every_threshold_no_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    planted = small_tree(tmp_path, 200)
    pools = count_pools(monkeypatch)
    for jobs in (None, 1, 2):
        hits, count, _ = found(tmp_path, jobs)
        assert hits == planted and count == 200
    assert pools == []


def test_a_file_grown_since_fstat_is_read_whole_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-read path for small files: a file longer than fstat said (it grew in between)
    is read on to its end, its keys found, and reported as changed (as before)."""
    import os

    k = key("project", seed=1602)
    path = tmp_path / "grows.env"
    path.write_bytes(b"x = 1\n" * 20_000 + f"OPENAI_API_KEY={k}\n".encode())
    real = os.fstat
    calls = []

    def stale_fstat(fd: int) -> os.stat_result:
        st = real(fd)
        calls.append(fd)
        if len(calls) == 1:  # the size seen before the read: 100 bytes
            fields = list(st)
            fields[6] = 100
            return os.stat_result(fields)
        return st

    monkeypatch.setattr(os, "fstat", stale_fstat)
    out = files.scan_tasks(files.Detector(RULES), files.walk([str(path)])[0])
    monkeypatch.undo()
    assert [h.secret.decode() for h in out.hits] == [k]
    assert [e.message for e in out.errors] == ["changed while being scanned: scan again"]
