"""``keyscan audit --scheduler``: the same audit over a Dask cluster (a LocalCluster of two
worker processes here) stores exactly what ``--jobs 2`` stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyscan.keygen import key
from tests.audit_fixtures import db_findings, keyscan, make_repos

distributed = pytest.importorskip(
    "distributed", reason="dask[distributed] is not installed (pip install -e '.[test]')"
)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    lc = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        host="127.0.0.1",
    )
    try:
        yield str(lc.scheduler_address)
    finally:
        lc.close()


def test_dask_same_findings_as_jobs_2(tmp_path: Path, cluster: str) -> None:
    paths, _ = make_repos(tmp_path, 4, shared=key("admin"))
    targets = [*map(str, paths), str(tmp_path / "not-a-repo")]
    via_dask = keyscan(
        "audit", *targets, "--db", str(tmp_path / "dask.db"), "--scheduler", cluster,
        "-f", "json", cwd=tmp_path,
    )
    local = keyscan(
        "audit", *targets, "--db", str(tmp_path / "local.db"), "--jobs", "2", "-f", "json",
        cwd=tmp_path,
    )
    # One repository fails on a worker; the others are stored: exit 2 for both.
    assert via_dask.returncode == 2, via_dask.stderr
    assert local.returncode == 2, local.stderr
    d, lo = json.loads(via_dask.stdout), json.loads(local.stdout)
    assert d["keys"] == lo["keys"] == 5
    assert d["commits_scanned"] == lo["commits_scanned"] > 0
    assert {(r["target"], r["status"]) for r in d["repositories"]} == {
        (r["target"], r["status"]) for r in lo["repositories"]
    }
    found = db_findings(tmp_path / "dask.db")
    assert found and found == db_findings(tmp_path / "local.db")
    # Incremental over Dask too: the coordinator's store decides what workers skip.
    again = json.loads(
        keyscan("audit", *map(str, paths), "--db", str(tmp_path / "dask.db"), "--scheduler",
                cluster, "-f", "json", cwd=tmp_path).stdout
    )
    assert again["commits_scanned"] == 0 and again["commits_skipped"] == d["commits_scanned"]


def test_unreachable_scheduler_is_one_clear_error(tmp_path: Path) -> None:
    paths, _ = make_repos(tmp_path, 1)
    proc = keyscan(
        "audit", str(paths[0]), "--db", str(tmp_path / "a.db"), "--scheduler",
        "tcp://127.0.0.1:9", cwd=tmp_path, env={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"},
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("keyscan: error: cannot reach Dask")
