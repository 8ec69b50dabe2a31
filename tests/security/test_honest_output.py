"""Issue 11, item 18: a run with errors never claims "no OpenAI keys found"; a bad path or a
non-repository prints only the error; a report that cannot be written (/dev/full) is one line
and exit 2, not a traceback."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from keyscan.keygen import key


def keyscan(*args: str, stdout: object = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        stdout=stdout,  # type: ignore[arg-type]
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_bad_path_prints_only_the_error(tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent"
    proc = keyscan("scan", str(missing))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [f"keyscan: error: {missing}: no such file or directory"]


def test_a_non_repository_prints_only_the_error(tmp_path: Path) -> None:
    (tmp_path / "notarepo").mkdir()
    proc = keyscan("git", str(tmp_path / "notarepo"))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"keyscan: error: {tmp_path / 'notarepo'}: not a git repository"
    ]


def test_a_partial_clean_scan_says_what_was_read_and_that_it_is_incomplete(
    tmp_path: Path,
) -> None:
    (tmp_path / "ok.py").write_text("x = 1\n")
    proc = keyscan("scan", str(tmp_path), str(tmp_path / "missing"))
    assert proc.returncode == 2
    assert "no OpenAI keys found" not in proc.stdout
    assert proc.stdout.startswith(
        "keyscan: scan incomplete: no OpenAI keys in what could be read (1 file, 6 B, "
    )
    assert proc.stdout.rstrip().endswith("; 1 error")


def test_github_format_never_claims_clean_with_errors(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text("x = 1\n")
    proc = keyscan("scan", "-f", "github", str(tmp_path), str(tmp_path / "missing"))
    assert proc.returncode == 2
    assert "no OpenAI keys found" not in proc.stdout
    assert proc.stdout.splitlines()[-1] == (
        "keyscan: scan incomplete: no OpenAI keys in what could be read"
    )


@pytest.mark.parametrize("leak", [False, True])
def test_output_file_on_a_full_disk_is_one_line_and_exit_2(tmp_path: Path, leak: bool) -> None:
    (tmp_path / "a.py").write_text(f"k = '{key('project', seed=401)}'\n" if leak else "x = 1\n")
    proc = keyscan("scan", str(tmp_path), "-o", "/dev/full")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "keyscan: error: /dev/full: report not written: cannot write: No space left on device"
    ]
    # Written into, never replaced: as root a rename would put a file where the device was.
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_stdout_on_a_full_disk_is_one_line_and_exit_2(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    with open("/dev/full", "w") as full:
        proc = keyscan("scan", "-f", fmt, str(tmp_path), stdout=full)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "keyscan: error: cannot write the report to standard output: No space left on device"
    ]
