"""Ctrl-C and SIGTERM: an exception in the main process, a quiet end in workers.

* The command line (``keyscan.cli.main``) turns SIGINT and SIGTERM into :class:`Interrupted`,
  so that every ``finally`` runs on the way out: temporary clones are removed, worker
  processes terminated, ``git`` processes killed. It then prints one line and exits 130
  (SIGINT) or 143 (SIGTERM). Once the first signal is taken, further ones are ignored so that
  the cleanup itself is not cut short.
* Worker processes ignore SIGINT (a Ctrl-C reaches the whole process group: the parent
  decides) and end on the parent's SIGTERM: at once (:func:`worker_signals`), or, for workers
  that hold a temporary clone, after their ``finally`` blocks (:func:`cleanup_worker_signals`
  with :func:`run_in_worker`).

Engine code: no output, no exit, no click.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TypeVar

from keyscan.exitcodes import for_signal

T = TypeVar("T")
R = TypeVar("R")

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived. A BaseException: ``except Exception`` does not stop it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """130 for SIGINT, 143 for SIGTERM (keyscan.exitcodes)."""
        return for_signal(self.signum)


def _ignore_more() -> None:
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _raise(signum: int, frame: FrameType | None) -> None:
    _ignore_more()  # the cleanup that follows runs to its end
    raise Interrupted(signum)


@contextmanager
def signals_raise() -> Iterator[None]:
    """Within: SIGINT and SIGTERM raise :class:`Interrupted` in the main thread. A signal the
    process was started ignoring (``nohup``, a background job) stays ignored. The previous
    handlers are restored afterwards. Outside the main thread: nothing changes."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread can set handlers (keyscan run from a library's thread)
        return
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def worker_signals() -> None:
    """Initializer of a worker process that holds nothing to clean up: Ctrl-C is the
    parent's business, the parent's SIGTERM ends it at once (no traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


_busy = False


def _worker_term(signum: int, frame: FrameType | None) -> None:
    if not _busy:
        os._exit(for_signal(signum))  # idle: nothing to clean up
    _ignore_more()
    raise Interrupted(signum)


def cleanup_worker_signals() -> None:
    """Initializer of a worker process whose tasks hold resources (a temporary clone): Ctrl-C
    is ignored, the parent's SIGTERM raises :class:`Interrupted` inside the running task (see
    :func:`run_in_worker`) so that its ``finally`` blocks run, then the worker exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_term)


def run_in_worker(fn: Callable[[T], R], arg: T) -> R:
    """``fn(arg)`` in a worker set up by :func:`cleanup_worker_signals`: on SIGTERM the task's
    cleanup runs, then the process exits 143 without a traceback."""
    global _busy
    try:
        _busy = True
        return fn(arg)
    except Interrupted as exc:
        os._exit(exc.exit_code)
    finally:
        _busy = False
