"""Issue 11, item 13: memory follows the input, not the repetitions of one key.

One key repeated a million times (169 MB, ~100 KB packed in git) used to hold a Location per
repetition: gigabytes, and a SARIF report of hundreds of megabytes. Now a finding keeps its
first ``MAX_LOCATIONS`` locations and counts the others; every reporter says how many more.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from keyscan.keygen import key

MAX_LOCATIONS = 1000  # keyscan.findings.MAX_LOCATIONS (see the last test)

# Runs keyscan in a fresh interpreter and reports its own peak RSS (KiB on Linux) at exit.
PEAK_RSS_RUNNER = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: sys.stderr.write("
    "'\\npeak_rss_kib=%d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
    "from keyscan.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def repeated(path: Path, times: int, allow_first: int = 0, seed: int = 301) -> str:
    k = key("project", seed=seed)
    line = f"OPENAI_API_KEY={k}\n".encode()
    allowed = f"OPENAI_API_KEY={k}  # keyscan:allow\n".encode()
    path.write_bytes(allowed * allow_first + line * (times - allow_first))
    return k


def keyscan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_one_key_repeated_keeps_memory_and_sarif_bounded(tmp_path: Path) -> None:
    """~21 MB holding one key 125,000 times. Before: about 1.1 GB peak RSS and 140 MB of SARIF
    (measured 2.6 GB and 349 MB for 300,000 repetitions); now a few chunks' worth."""
    times = 125_000
    big = tmp_path / "dump.env"
    k = repeated(big, times)
    assert big.stat().st_size > 20 * 1024 * 1024
    out = tmp_path / "report.sarif"
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_RSS_RUNNER, "scan", "-j", "1", "-f", "sarif", "-o", str(out),
         str(big)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    peak_mib = int(proc.stderr.rsplit("peak_rss_kib=", 1)[1].split()[0]) / 1024
    assert peak_mib < 400, f"peak RSS {peak_mib:.0f} MiB"  # naive: > 1000 MiB
    assert out.stat().st_size < 3 * 1024 * 1024  # naive: ~140 MB
    doc = json.loads(out.read_text())
    (run,) = doc["runs"]
    assert len(run["results"]) == MAX_LOCATIONS
    notes = [n["message"]["text"] for n in run["invocations"][0]["toolExecutionNotifications"]]
    assert notes == [
        f"{k[:8]}...{k[-4:]} (sha256:{run['results'][0]['properties']['fingerprint'][:12]}): "
        f"and {times - MAX_LOCATIONS:,} more locations, not listed"
    ]
    assert k not in out.read_text()


def test_reporters_say_how_many_more_locations(tmp_path: Path) -> None:
    times = 3 * MAX_LOCATIONS
    repeated(tmp_path / "a.env", times)
    proc = keyscan("scan", "-f", "json", str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    (f,) = doc["findings"]
    assert len(f["locations"]) == MAX_LOCATIONS
    assert f["more_locations"] == times - MAX_LOCATIONS
    assert doc["scan"]["locations"] == times
    # The kept locations are the first ones, in order.
    assert [loc["line"] for loc in f["locations"]] == list(range(1, MAX_LOCATIONS + 1))
    text = keyscan("scan", str(tmp_path))
    assert f"... and {times - 20:,} more locations" in text.stdout
    assert f"1 secret in {times} locations" in text.stdout


def test_counted_locations_follow_inline_allow_comments(tmp_path: Path) -> None:
    # Every repetition allowed: the finding is suppressed as a whole, exit 0.
    repeated(tmp_path / "a.env", 2 * MAX_LOCATIONS + 5, allow_first=2 * MAX_LOCATIONS + 5)
    proc = keyscan("scan", "-f", "json", str(tmp_path))
    assert proc.returncode == 0, proc.stdout
    assert json.loads(proc.stdout)["scan"]["suppressed"] == 1
    # Allowed on the first lines only: the others are reported, and counted right.
    allowed = MAX_LOCATIONS + 500
    repeated(tmp_path / "a.env", 3 * MAX_LOCATIONS, allow_first=allowed)
    proc = keyscan("scan", "-f", "json", str(tmp_path))
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    (f,) = doc["findings"]
    assert doc["scan"]["locations"] == 3 * MAX_LOCATIONS - allowed
    assert f["locations"][0]["line"] == allowed + 1
    assert len(f["locations"]) == MAX_LOCATIONS


def test_worker_processes_keep_the_same_first_locations(tmp_path: Path) -> None:
    """Compaction in several processes keeps the same locations as in one: the first ones."""
    k = key("svcacct", seed=302)
    for i in range(1100):  # enough files for worker processes (files.PARALLEL_MIN_FILES)
        (tmp_path / f"f{i:04}.txt").write_text(f"k={k}\n" * 4)
    docs = [
        json.loads(keyscan("scan", "-j", jobs, "-f", "json", str(tmp_path)).stdout)
        for jobs in ("1", "2")
    ]
    for doc in docs:
        (f,) = doc["findings"]
        assert f["more_locations"] == 4400 - MAX_LOCATIONS
    assert docs[0]["findings"][0]["locations"] == docs[1]["findings"][0]["locations"]


def test_the_limit_is_the_engines() -> None:
    from keyscan import findings

    assert findings.MAX_LOCATIONS == MAX_LOCATIONS
