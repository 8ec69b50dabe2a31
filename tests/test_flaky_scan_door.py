"""Why ``tests/test_scan_door.py::test_scan_exits_without_the_teardown_a_library_call_keeps_it``
failed now and then (issue 16, flaky tests): its workers case required a worker's
``os._exit 0`` in the exit log. A ``multiprocessing.Pool`` left by its ``with`` block is
terminated: each worker that has not read the pool's end-of-work sentinel by then (it was
still handing back its last batch, or the parent took the task queue's lock first) is
ended by the pool's SIGTERM and never calls ``os._exit``. About one run in five did so
for both workers on an idle machine.

Here the workers are held after their work (they never read the sentinel), so the pool's
SIGTERM ends every one of them, always: the scan's report, its status and the parent's
normal exit must be the same, and the workers must be seen forked.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from keyscan.redaction import redact
from tests.test_scan_door import WORKERS, _tree, parent_lines
from tests.test_small_jobs import _exit_probe

# Each forked worker takes what its task queue hands it, then, given the end-of-work
# sentinel, waits instead of leaving: only the pool's SIGTERM ends it.
HELD_WORKERS = textwrap.indent(
    textwrap.dedent(
        """\
        import time, multiprocessing.pool as mpp
        real_worker = mpp.worker
        def held_worker(inqueue, *args, **kwargs):
            get = inqueue.get
            def held_get():
                task = get()
                if task is None:
                    time.sleep(60)
                return task
            inqueue.get = held_get
            real_worker(inqueue, *args, **kwargs)
        mpp.worker = held_worker
        """
    ),
    "    ",
).lstrip()


def test_workers_ended_by_the_pools_sigterm_change_nothing(tmp_path: Path) -> None:
    top, one, _ = _tree(tmp_path)
    log = tmp_path / "exit.log"
    call = HELD_WORKERS + "    " + WORKERS + "sys.argv[1:] = ['scan', 'src']; main()"
    proc = subprocess.run(
        [sys.executable, "-c", _exit_probe(tmp_path, call)], cwd=top,
        capture_output=True, text=True, timeout=50,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert redact(one) in proc.stdout and "keyscan: 2 secrets in 3 l" in proc.stdout
    lines = log.read_text().splitlines()
    assert "os._exit 0" not in lines, lines  # no worker left by itself: all were terminated
    assert parent_lines(lines) == ["SystemExit 1", "atexit"], lines
