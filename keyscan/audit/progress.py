"""Progress of an audit on stderr, one redrawn line, only when stderr is a terminal.

``[#########...........]  9/20 repos  41,203 objects  312.4 MiB  3 findings  0:42``
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from keyscan.report.text import human_bytes


class Progress:
    """Counts what finished and redraws one line. Writes nothing unless ``enabled``."""

    def __init__(
        self,
        total: int,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        width: int = 24,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.total = total
        self.width = width
        self.done = 0
        self.failed = 0
        self.objects = 0
        self.bytes = 0
        self.findings = 0
        self.started = time.monotonic()
        self._last_len = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def start(self, interval: float = 1.0) -> None:
        """Draw now, then redraw every ``interval`` seconds (the clock moves even while one
        long repository is being scanned) until ``close``."""
        self.draw()
        if not self.enabled or self._ticker is not None:
            return

        def tick() -> None:
            while not self._stop.wait(interval):
                self.draw()

        self._ticker = threading.Thread(target=tick, name="keyscan-progress", daemon=True)
        self._ticker.start()

    def line(self) -> str:
        filled = self.width * self.done // self.total if self.total else self.width
        bar = "#" * filled + "." * (self.width - filled)
        elapsed = int(time.monotonic() - self.started)
        failed = f"  {self.failed} failed" if self.failed else ""
        return (
            f"[{bar}] {self.done}/{self.total} repos  {self.objects:,} objects  "
            f"{human_bytes(self.bytes)}  {self.findings} finding{'' if self.findings == 1 else 's'}"
            f"{failed}  {elapsed // 60}:{elapsed % 60:02d}"
        )

    def draw(self) -> None:
        if not self.enabled:
            return
        with self._lock:
            if self._stop.is_set():
                return
            text = self.line()
            pad = " " * max(0, self._last_len - len(text))
            self.stream.write("\r" + text + pad)
            self.stream.flush()
            self._last_len = len(text)

    def update(self, objects: int, nbytes: int, findings: int, failed: bool = False) -> None:
        """One repository finished; ``findings`` is the number of unique keys so far."""
        with self._lock:
            self.done += 1
            self.failed += int(failed)
            self.objects += objects
            self.bytes += nbytes
            self.findings = findings
        self.draw()

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        with self._lock:
            if self.enabled and self._last_len:
                self.stream.write("\r" + " " * self._last_len + "\r")
                self.stream.flush()
                self._last_len = 0
