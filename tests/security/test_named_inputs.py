"""Issue 11, item 11: a path named on the command line is read, or the run fails (exit 2).

``keyscan scan <(cmd)``, ``cmd | keyscan scan /dev/stdin`` and a named FIFO used to be
"skipped, not a regular file" with exit 0: a leak piped in was never looked at. A walk of a
folder still never opens FIFOs or devices.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from keyscan.keygen import key
from keyscan.sources import files

TIMEOUT = 120


def keyscan(
    *args: str, input: bytes | None = None, pass_fds: tuple[int, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        input=input.decode() if input is not None else None,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        pass_fds=pass_fds,
        check=False,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("keyscan: error:")]


def test_process_substitution_is_read(tmp_path: Path) -> None:
    """bash's ``<(cmd)`` names a pipe (/dev/fd/63): its content is scanned."""
    k = key("project", seed=101)
    src = tmp_path / "src.txt"
    src.write_text(f"one\nOPENAI_API_KEY={k}\n")
    proc = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" -m keyscan scan <(cat "$1")', "_", str(src)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert ":2:16" in proc.stdout
    assert k[:8] in proc.stdout and k not in proc.stdout + proc.stderr
    assert "skipped" not in proc.stderr


def test_a_pipe_passed_as_dev_fd_is_read() -> None:
    k = key("svcacct", seed=102)
    r, w = os.pipe()

    def write() -> None:
        with os.fdopen(w, "wb") as fh:
            fh.write(f"x = '{k}'\n".encode())

    writer = threading.Thread(target=write)
    writer.start()
    try:
        proc = keyscan("scan", "-f", "json", f"/dev/fd/{r}", pass_fds=(r,))
    finally:
        os.close(r)
        writer.join()
    assert proc.returncode == 1, proc.stderr
    assert f"/dev/fd/{r}" in proc.stdout and '"line": 1' in proc.stdout


def test_dev_stdin_is_read() -> None:
    """``cmd | keyscan scan /dev/stdin``."""
    k = key("user-none", seed=103)
    proc = keyscan("scan", "/dev/stdin", input=f"a\nb = {k}\n".encode())
    assert proc.returncode == 1, proc.stderr
    assert "/dev/stdin:2:5" in proc.stdout
    clean = keyscan("scan", "/dev/stdin", input=b"nothing here\n")
    assert clean.returncode == 0, clean.stderr
    assert "1 file, 13 B" in clean.stdout


def test_dev_stdin_read_in_the_main_process_when_workers_run(tmp_path: Path) -> None:
    """A scan big enough for worker processes still reads /dev/stdin (workers have none)."""
    k = key("project", seed=104)
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(files.PARALLEL_MIN_FILES * 16 + 10):
        (tree / f"f{i}.txt").write_text("x\n")
    proc = keyscan("scan", "-j", "2", str(tree), "/dev/stdin", input=f"k={k}\n".encode())
    assert proc.returncode == 1, proc.stderr
    assert "/dev/stdin:1:3" in proc.stdout


def test_named_fifo_is_read_once_its_writer_comes(tmp_path: Path) -> None:
    k = key("admin", seed=105)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as fh:  # blocks until keyscan opens the FIFO for reading
            fh.write(f"first line\n  token: {k}\n".encode())

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    proc = keyscan("scan", "-f", "json", str(fifo))
    writer.join(timeout=TIMEOUT)
    assert proc.returncode == 1, proc.stderr
    assert f'"path": "{fifo}"' in proc.stdout
    assert '"line": 2' in proc.stdout and '"column": 10' in proc.stdout


def test_a_named_stream_is_read_in_chunks_like_a_file(tmp_path: Path) -> None:
    """Bigger than a chunk, written in small pieces: the key across the chunk boundary is
    found once, at the right place (the reader fills each chunk whatever the pipe hands it)."""
    k = key("project", seed=106).encode()
    line = b"2026-01-01 INFO a long log line of text, nothing to see here\n"
    before = line * ((files.CHUNK - 40) // len(line))
    data = before + b"token=" + k + b"\n" + line * 150_000
    key_line = before.count(b"\n") + 1
    assert len(data) > 2 * files.CHUNK
    r, w = os.pipe()

    def write() -> None:
        with os.fdopen(w, "wb") as fh:
            for i in range(0, len(data), 60_000):
                fh.write(data[i : i + 60_000])

    writer = threading.Thread(target=write)
    writer.start()
    try:
        proc = keyscan("scan", "-f", "json", f"/dev/fd/{r}", pass_fds=(r,))
    finally:
        os.close(r)
        writer.join()
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.count('"offset"') == 1
    assert f'"offset": {len(before) + 6}' in proc.stdout
    assert f'"line": {key_line}' in proc.stdout
    assert f'"bytes": {len(data)}' in proc.stdout


def test_a_device_that_never_ends_is_an_error_not_a_skip() -> None:
    proc = keyscan("scan", "/dev/zero")
    assert proc.returncode == 2
    assert error_lines(proc.stderr) == [
        "keyscan: error: /dev/zero: cannot scan a device that never ends: "
        "name a file, a folder, a pipe or -"
    ]
    assert "no OpenAI keys found" not in proc.stdout


def test_dev_null_is_read_and_empty() -> None:
    proc = keyscan("scan", "/dev/null")
    assert proc.returncode == 0, proc.stderr
    assert "no OpenAI keys found (1 file, 0 B" in proc.stdout


def test_a_walk_still_never_opens_a_fifo(tmp_path: Path) -> None:
    """No writer will ever come: opening the FIFO would hang. The walk notes it and goes on."""
    (tmp_path / "t").mkdir()
    os.mkfifo(tmp_path / "t" / "pipe")
    (tmp_path / "t" / "a.txt").write_text("x = 1\n")
    proc = keyscan("scan", str(tmp_path / "t"))
    assert proc.returncode == 0, proc.stderr
    assert "pipe: skipped, not a regular file" in proc.stderr
