"""Why ``tests/security/test_interrupts.py::test_audit_with_workers`` failed now and then
(issue 16, flaky tests): an interrupted ``keyscan audit -j2`` left its process pool's
manager thread running (``shutdown(wait=False)``) and exited. At the exit, CPython's
``concurrent.futures.process._python_exit`` wakes that thread through a pipe without the
pool's lock, while the thread, seeing its workers gone, closes that pipe: when the close
falls between the check and the write, the exit prints ``Exception ignored in: <module
'threading'> ... OSError: [Errno 9] Bad file descriptor`` (and, had the descriptor been
reused by then, the byte would go to whatever file got it). The run still exits 130/143,
but its stderr is no longer the one line. Seen about once in 60 runs beside another.

Here the probe forces that order with events (no sleep): the manager thread closes its
pipe only once the interpreter's exit has begun or the main thread waits for it, and the
exit's wake-up waits for that close before it writes (the traceback then ends in
``OSError: handle is closed``: the same write, found closed a moment earlier). keyscan
must wait for the manager thread once the workers are terminated, so that nothing is left
to race the exit. Without that wait this test fails every time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.git_helpers import ENV_TEMPLATE
from tests.security.test_interrupts import (
    BOTH,
    HangingRemote,
    assert_interrupted,
    interrupt,
    wait_for,
)

PROBE = textwrap.dedent(
    """\
    import sys, threading, time
    import concurrent.futures.process as cfp

    waited = threading.Event()  # the main thread waits for the manager thread
    closed = threading.Event()  # the manager thread closed its wake-up pipe

    real_shutdown = cfp.ProcessPoolExecutor.shutdown
    def shutdown(self, wait=True, *, cancel_futures=False):
        if wait:
            waited.set()
        return real_shutdown(self, wait, cancel_futures=cancel_futures)
    cfp.ProcessPoolExecutor.shutdown = shutdown

    real_join = cfp._ExecutorManagerThread.join_executor_internals
    def join_executor_internals(self):
        deadline = time.monotonic() + 30
        while not (cfp._global_shutdown or waited.is_set()) and time.monotonic() < deadline:
            time.sleep(0.01)
        real_join(self)
    cfp._ExecutorManagerThread.join_executor_internals = join_executor_internals

    real_close = cfp._ThreadWakeup.close
    def close(self):
        real_close(self)
        closed.set()
    cfp._ThreadWakeup.close = close

    def wakeup(self):
        # CPython's own, with the exit's call held between its check and its write until
        # the manager thread has closed the pipe (the order that loses the race).
        if not self._closed:
            if cfp._global_shutdown:
                closed.wait(30)
            self._writer.send_bytes(b"")
    cfp._ThreadWakeup.wakeup = wakeup

    from keyscan.cli import main
    main()
    """
)


@pytest.mark.parametrize("how", BOTH)
def test_interrupted_audit_leaves_no_pool_thread_to_race_the_exit(
    how: tuple[signal.Signals, bool, int], tmp_path: Path
) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    hanging = HangingRemote()
    try:
        args = ["audit", hanging.url("a"), hanging.url("b"), "-j2", "--no-config",
                "--db", str(tmp_path / "audit.db")]  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-c", PROBE, *args], cwd=tmp_path,
            env=dict(os.environ, **ENV_TEMPLATE, TMPDIR=str(tmpdir)),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )  # fmt: skip
        wait_for(lambda: len(hanging.connections) >= 2 and len(os.listdir(tmpdir)) >= 2, proc)
        assert_interrupted(interrupt(proc, how), how, tmpdir)
    finally:
        hanging.close()
