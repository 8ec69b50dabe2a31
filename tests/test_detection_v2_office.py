"""Issue 15, containers: nested archives to depth 3 by default, Office documents (OOXML and
ODF: the text a person sees, located by part and paragraph, cell or slide). Every document
is built here at run time with zipfile and hand-written minimal XML; every key is generated."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

from keyscan.content import ContentOptions, scan_buffer
from keyscan.detector import Detector
from keyscan.keygen import key
from keyscan.models import Location, ScanError
from keyscan.rules import load_rules

DET = Detector(load_rules())


def make_zip(members: dict[str, bytes | str], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return bio.getvalue()


def scan(data: bytes, path: str, **opts: object) -> tuple[list[tuple[str, str]], list[ScanError]]:
    errors: list[ScanError] = []
    hits = scan_buffer(
        DET, data, Location(path, 0, 0, 0), ContentOptions(**opts), errors=errors  # type: ignore[arg-type]
    )
    return sorted((h.location.display_path, h.secret.decode()) for h in hits), errors


def keyscan(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        timeout=120,
    )


# --- nested archives: depth 3 by default -------------------------------------------------


def nested(levels: int, payload: bytes) -> bytes:
    """A zip holding a zip ... ``levels`` archives deep, the innermost holding conf.env."""
    data = make_zip({"conf.env": payload})
    for i in range(levels - 1, 0, -1):
        data = make_zip({f"l{i}.zip": data})
    return data


def test_key_three_archives_deep_is_found_by_default() -> None:
    k = key("project", seed=1501)
    found, errors = scan(nested(3, f"OPENAI_API_KEY={k}\n".encode()), "app.zip")
    assert found == [("app.zip!l1.zip!l2.zip!conf.env", k)]
    assert errors == []


def test_key_four_archives_deep_is_an_error_by_default(tmp_path: Path) -> None:
    k = key("project", seed=1502)
    data = nested(4, f"OPENAI_API_KEY={k}\n".encode())
    found, errors = scan(data, "app.zip")
    assert found == []
    assert [str(e) for e in errors] == [
        "app.zip!l1.zip!l2.zip!l3.zip: archive nested deeper than --archive-depth 3: "
        "not opened, scanned as raw bytes"
    ]
    path = tmp_path / "app.zip"
    path.write_bytes(data)
    proc = keyscan("scan", str(path))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "nested deeper than --archive-depth 3" in proc.stderr
    assert k not in proc.stdout + proc.stderr
    deeper = keyscan("scan", "--archive-depth", "4", "-f", "json", str(path))
    assert deeper.returncode == 1, deeper.stderr


def test_default_depth_is_three_everywhere() -> None:
    from keyscan.api import ScanOptions

    assert ContentOptions().archive_depth == 3
    assert ScanOptions().archive_depth == 3
    proc = keyscan("scan", "--help")
    assert "--archive-depth" in proc.stdout
    assert "[default: 3;" in " ".join(proc.stdout.split())
