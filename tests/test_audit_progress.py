"""Progress of an audit: a redrawn line on a terminal (a real pseudo-terminal here), nothing
on a pipe or with --quiet."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from keyscan.audit.progress import Progress
from tests.audit_fixtures import make_repos


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_counts_and_bar() -> None:
    out = FakeTty()
    p = Progress(4, stream=out, width=8)
    p.update(objects=1200, nbytes=3 * 1024 * 1024, findings=2)
    assert p.line().startswith("[##......] 1/4 repos  1,200 objects  3.0 MiB  2 findings")
    p.update(objects=10, nbytes=10, findings=3, failed=True)
    assert "[####....] 2/4 repos  1,210 objects" in p.line() and "1 failed" in p.line()
    p.close()
    written = out.getvalue()
    assert written.count("\r") >= 3 and written.endswith("\r")


def test_clock_ticks_while_a_repository_is_scanned_and_stops_on_close() -> None:
    out = FakeTty()
    p = Progress(1, stream=out)
    p.start(interval=0.01)
    deadline = time.monotonic() + 10
    while out.getvalue().count("\r") < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert out.getvalue().count("0/1 repos") >= 4
    p.close()
    written = out.getvalue()
    time.sleep(0.05)
    assert out.getvalue() == written and written.endswith("\r")


def test_no_progress_when_not_a_terminal() -> None:
    out = io.StringIO()
    p = Progress(2, stream=out)
    p.update(1, 1, 1)
    p.close()
    assert out.getvalue() == ""
    quiet = FakeTty()
    p = Progress(2, stream=quiet, enabled=False)
    p.update(1, 1, 1)
    assert quiet.getvalue() == ""


def _run_on_pty(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal and stdout on a pipe; return (rc, out, err)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=slave,
                            stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    out = proc.stdout.read().decode() if proc.stdout else ""
    rc = proc.wait(timeout=300)
    os.close(master)
    return rc, out, b"".join(chunks).decode("utf-8", "replace")


def test_progress_on_a_real_terminal_and_quiet(tmp_path: Path) -> None:
    paths, _ = make_repos(tmp_path, 3)
    base = [sys.executable, "-m", "keyscan", "audit", *map(str, paths), "--jobs", "2"]
    rc, out, err = _run_on_pty([*base, "--db", str(tmp_path / "a.db")], tmp_path)
    assert rc == 1
    assert "3/3 repos" in err and "[" in err and "objects" in err and "3 findings" in err
    assert "/3 repos" not in out and "\r" not in out  # progress never goes to stdout
    rc, out, err = _run_on_pty([*base, "--db", str(tmp_path / "b.db"), "--quiet"], tmp_path)
    assert rc == 1
    assert "/3 repos" not in err and "\r" not in err
