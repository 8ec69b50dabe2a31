"""keyscan's exit codes, and every decision of which one a run ends with.

0 clean, 1 findings (or keys left to act on), 2 error (a partial scan never exits 0),
130 interrupted (SIGINT), 143 terminated (SIGTERM). Commands, the pre-commit/pre-push hooks,
``keyscan audit``, ``keyscan revoke`` and the Python API all ask this module; none decides a
code of its own.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keyscan.models import ScanResult

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143
# click's standalone mode exits 1 on a closed stdout pipe or an abort (end of input,
# KeyboardInterrupt); the click-free door of the small jobs (keyscan.commands.quick) too.
EXIT_CLICK_ABORT = 1


def decide(error: bool, findings: bool) -> int:
    """The rule every command follows: an error wins (2), then findings (1), else 0."""
    if error:
        return EXIT_ERROR
    return EXIT_FINDINGS if findings else EXIT_CLEAN


def for_signal(signum: int) -> int:
    """130 for SIGINT, 143 for SIGTERM (128 + the signal number, as a shell reports)."""
    return 128 + signum


def for_result(result: ScanResult, fail_on: str = "any", extra_error: bool = False) -> int:
    """A scan's code: 2 if anything could not be scanned (or ``extra_error``: a revocation
    failed), 1 if a finding fails the run, else 0. ``fail_on="live"``: only keys known to be
    dead stop failing the run; unknown (unchecked) keys still fail."""
    failing = result.findings
    if fail_on == "live":
        failing = [f for f in failing if f.verification is None or not f.verification.is_dead]
    return decide(bool(result.errors) or extra_error, bool(failing))


def for_revocation_after_scan(code: int) -> int:
    """``scan|git --revoke``: only an error of the revocation changes the scan's code (keys
    left unrevoked are already the scan's findings: exit 1)."""
    return EXIT_ERROR if code == EXIT_ERROR else EXIT_CLEAN
