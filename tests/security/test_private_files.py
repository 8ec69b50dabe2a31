"""Private files (reports, the verify cache, the audit store, the revoke audit log) are created
0600, never written through a symlink, never left half written."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from keyscan.cli import cli
from keyscan.keygen import key
from keyscan.models import ScanResult
from keyscan.report.options import OutputOptions


def scan_to(tmp_path: Path, output: Path, *extra: str) -> tuple[int, str]:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "app.env").write_text(f"OPENAI_API_KEY={key('project')}\n")
    result = CliRunner().invoke(
        cli, ["scan", str(src), "--no-config", "-f", "json", "-o", str(output), *extra]
    )
    return result.exit_code, result.output


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_output_replaces_a_world_readable_file_with_a_private_one(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    out.write_text("old report\n")
    os.chmod(out, 0o644)
    code, _ = scan_to(tmp_path, out, "--show-secrets")
    assert code == 1
    assert mode(out) == 0o600  # it holds raw keys: never left readable by others
    assert json.loads(out.read_text())["findings"]


def test_output_does_not_follow_a_symlink(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not yours\n")
    os.chmod(elsewhere, 0o644)
    out = tmp_path / "report.json"
    out.symlink_to(elsewhere)
    code, _ = scan_to(tmp_path, out)
    assert code == 1
    assert elsewhere.read_text() == "not yours\n"  # the link's target is untouched
    assert not out.is_symlink() and mode(out) == 0o600
    assert json.loads(out.read_text())["findings"]


def test_interrupted_report_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report is written to a temporary file renamed at the end: an interruption while
    it is written leaves neither a truncated report nor the temporary file."""
    from keyscan.report import write_report

    real_fdopen = os.fdopen

    class Interrupted:
        """A file whose write stops half way, as a Ctrl-C would."""

        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def __getattr__(self, name: str) -> Any:
            return getattr(self.fh, name)

        def __enter__(self) -> Interrupted:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

        def write(self, text: str) -> int:
            self.fh.write(text[: len(text) // 2])
            self.fh.flush()
            raise KeyboardInterrupt

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        fh = real_fdopen(fd, *args, **kwargs)
        return Interrupted(fh) if "w" in (args[0] if args else kwargs.get("mode", "r")) else fh

    monkeypatch.setattr(os, "fdopen", fdopen)
    out = tmp_path / "report.json"
    opts = OutputOptions(format="json", output=str(out))
    with pytest.raises(KeyboardInterrupt):
        write_report(ScanResult(kind="files", targets=["x"]), opts, io.StringIO())
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "no-such-folder" / "report.json"
    code, output = scan_to(tmp_path, out)
    assert code == 2
    assert f"keyscan: error: {out}: report not written: cannot create:" in output
    assert "Traceback" not in output


def test_verify_cache_refuses_a_symlink(tmp_path: Path) -> None:
    from keyscan.verify.cache import VerifyCache

    target = tmp_path / "victim.db"
    link = tmp_path / "cache" / "verify.sqlite3"
    link.parent.mkdir()
    link.symlink_to(target)
    with pytest.raises(OSError, match="symbolic link"):
        VerifyCache(link, 3600)
    assert not target.exists()


def test_verify_cache_tightens_an_open_file(tmp_path: Path) -> None:
    from keyscan.verify.cache import VerifyCache

    path = tmp_path / "verify.sqlite3"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    VerifyCache(path, 3600).close()
    assert mode(path) == 0o600


def test_audit_store_refuses_a_symlink_and_a_fifo(tmp_path: Path) -> None:
    from keyscan.audit.store import AuditStore, StoreError

    target = tmp_path / "victim.db"
    link = tmp_path / "audit.db"
    link.symlink_to(target)
    with pytest.raises(StoreError, match="symbolic link"):
        AuditStore(str(link))
    assert not target.exists()
    fifo = tmp_path / "fifo.db"
    os.mkfifo(fifo)
    with pytest.raises(StoreError, match="not a regular file"):
        AuditStore(str(fifo))


def test_audit_command_refuses_a_symlinked_store(tmp_path: Path) -> None:
    target = tmp_path / "victim.db"
    link = tmp_path / "audit.db"
    link.symlink_to(target)
    repo = tmp_path / "repo"
    repo.mkdir()
    result = CliRunner().invoke(cli, ["audit", str(repo), "--db", str(link)])
    assert result.exit_code == 2
    assert "symbolic link" in result.output
    assert not target.exists()


def test_revoke_audit_log_refuses_a_symlink_and_a_fifo(tmp_path: Path) -> None:
    from keyscan.revoke.audit import AuditError, AuditLog

    target = tmp_path / "victim.jsonl"
    target.write_text("")
    link = tmp_path / "audit.jsonl"
    link.symlink_to(target)
    with pytest.raises(AuditError, match="symbolic link"):
        AuditLog(link).record(action="x", result="y")
    assert target.read_text() == ""
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)  # without O_NONBLOCK, opening it for writing would wait for a reader
    with pytest.raises(AuditError, match="not a regular file"):
        AuditLog(fifo).check_writable()


def test_write_private_units(tmp_path: Path) -> None:
    from keyscan.privatefile import PrivateFileError, write_private

    path = tmp_path / "x.txt"
    write_private(path, "one\n")
    assert path.read_text() == "one\n" and mode(path) == 0o600
    write_private(path, "two\n")
    assert path.read_text() == "two\n" and mode(path) == 0o600
    with pytest.raises(PrivateFileError, match="cannot create"):
        write_private(tmp_path / "missing" / "x.txt", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_report_command_output_does_not_follow_a_symlink(tmp_path: Path) -> None:
    from keyscan.audit.store import AuditStore

    db = tmp_path / "audit.db"
    AuditStore(str(db)).close()
    elsewhere = tmp_path / "elsewhere.html"
    elsewhere.write_text("not yours\n")
    os.chmod(elsewhere, 0o644)
    out = tmp_path / "report.html"
    out.symlink_to(elsewhere)
    result = CliRunner().invoke(cli, ["report", "--db", str(db), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert elsewhere.read_text() == "not yours\n"
    assert not out.is_symlink() and mode(out) == 0o600
    assert "<html" in out.read_text().lower()


def test_output_to_a_pipe_or_dev_stdout_is_written_into_not_replaced(tmp_path: Path) -> None:
    """A device, pipe or socket named with -o is written into: a temporary file renamed over
    it would replace the device node (as root, /dev/null or /dev/full would become files)."""
    import subprocess
    import sys
    import threading

    fifo = tmp_path / "report.pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    src = tmp_path / "src"
    src.mkdir()
    k = key("project")
    (src / "app.env").write_text(f"OPENAI_API_KEY={k}\n")
    run = [sys.executable, "-m", "keyscan", "scan", str(src), "--no-config", "-f", "json"]
    proc = subprocess.run([*run, "-o", str(fifo)], capture_output=True, timeout=60)
    reader.join(30)
    assert proc.returncode == 1, proc.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert json.loads(got[0])["findings"][0]["redacted"] == f"{k[:8]}...{k[-4:]}"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    proc = subprocess.run([*run, "-o", "/dev/stdout"], capture_output=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["findings"][0]["redacted"] == f"{k[:8]}...{k[-4:]}"
    assert os.path.islink("/dev/stdout") or stat.S_ISCHR(os.stat("/dev/stdout").st_mode)
