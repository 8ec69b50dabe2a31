"""Issue 12, item 3: content formats below the scanner, a mandatory error channel, and a typed
location for archive members.

* ``keyscan.formats`` (archives, notebooks, decoders) never imports the scanner: checked in a
  fresh interpreter and in the source (imports under TYPE_CHECKING included).
* Every entry point that can meet a partial read takes ``errors`` with no default; a truncated
  archive reaches the exit code from a file, stdin, a git blob, a commit message and the index.
* ``Location.member`` names the members inside the file at ``Location.path``; reports render
  it (text and JSON ``path`` as before, JSON ``member`` too, SARIF artifact = the archive).
"""

from __future__ import annotations

import ast
import gzip
import inspect
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

import keyscan
from keyscan import content
from keyscan.content import ContentOptions, scan_buffer
from keyscan.detector import Detector
from keyscan.formats import archives
from keyscan.keygen import key
from keyscan.models import Location, ScanError
from keyscan.rules import load_rules
from tests.git_helpers import Repo
from tests.security.test_archive_errors import CASES, TEXT, make_zip

DET = Detector(load_rules())
FORMATS = ("keyscan.formats.archives", "keyscan.formats.notebooks", "keyscan.formats.decoders")
SCANNER = ("keyscan.content", "keyscan.sources", "keyscan.detector", "keyscan.pipeline")


def keyscan_run(
    *args: str, input: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        input=input,
        capture_output=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def error_lines(stderr: bytes) -> list[str]:
    return [ln for ln in stderr.decode().splitlines() if ln.startswith("keyscan: error:")]


def make_tgz(members: dict[str, bytes]) -> bytes:
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w:gz") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return bio.getvalue()


# --- 1. formats are a layer below content --------------------------------------------------


@pytest.mark.parametrize("module", FORMATS)
def test_format_module_imports_no_scanner(module: str) -> None:
    code = (
        "import sys\n"
        f"import {module}\n"
        f"print(','.join(m for m in sys.modules if m.startswith({SCANNER!r})) or 'none')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none"


def test_format_sources_import_nothing_above_them() -> None:
    """Not even for type checking: the formats know the scanner only by the callables and the
    error list they are handed."""
    folder = Path(keyscan.__file__).parent / "formats"
    sources = sorted(folder.glob("*.py"))
    assert {p.name for p in sources} >= {"__init__.py", "archives.py", "notebooks.py", "decoders.py"}
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, (path.name, "relative import")
                names = [node.module or ""]
                names += [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                assert not name.startswith(SCANNER), (path.name, name)


def test_old_module_paths_are_gone() -> None:
    root = Path(keyscan.__file__).parent
    for old in ("notebooks.py", "decoders.py", "sources/archives.py"):
        assert not (root / old).exists(), old


# --- 2. the error channel is mandatory ----------------------------------------------------


@pytest.mark.parametrize(
    "func",
    [
        content.scan_buffer,
        content.scan_stream,
        content.scan_special_file,
        archives.scan_archive_file,
        archives.scan_archive_bytes,
    ],
    ids=lambda f: f.__name__,
)
def test_errors_is_a_required_argument(func: Any) -> None:
    param = inspect.signature(func).parameters["errors"]
    assert param.default is inspect.Parameter.empty, func.__name__


def test_scan_buffer_without_errors_is_refused() -> None:
    with pytest.raises(TypeError):
        scan_buffer(DET, b"x", Location("x", 0, 0, 0))  # type: ignore[call-arg]


def test_truncated_gz_on_stdin_and_as_a_file_exit_2(tmp_path: Path) -> None:
    """The issue's example, both ways (the other archive problems: test_archive_errors)."""
    data = CASES["truncated-gz"][0]()
    path = tmp_path / "trunc.gz"
    path.write_bytes(data)
    for args, stdin in ((["scan", str(path)], None), (["scan", "-"], data)):
        proc = keyscan_run(*args, input=stdin)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        (line,) = error_lines(proc.stderr)
        assert "unreadable archive, scanned as raw bytes" in line, line
        assert b"no OpenAI keys found" not in proc.stdout


@pytest.mark.parametrize("case", ["truncated-gz", "truncated-tgz", "bomb", "nested-too-deep"])
def test_archive_problems_in_a_git_blob_exit_2(case: str, tmp_path: Path) -> None:
    build, expected = CASES[case]
    repo = Repo(tmp_path / "r")
    repo.commit("add an archive", ("dist/blob.bin", build()))
    blob = repo.git("rev-parse", "HEAD:dist/blob.bin")
    proc = keyscan_run("git", str(repo.path))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and expected in lines[0], lines
    assert lines[0].startswith(f"keyscan: error: blob {blob}"), lines  # named, not ": ..."
    assert b"no OpenAI keys found" not in proc.stdout


def test_archive_problem_in_a_commit_message_exits_2(tmp_path: Path) -> None:
    """A commit message is content like any other: one that is a (truncated) archive was
    scanned as raw bytes, and the scan says so (it used to drop the error and exit 0)."""
    repo = Repo(tmp_path / "r")
    head = repo.commit("init", ("a.txt", "hello\n"))
    tree = repo.git("rev-parse", "HEAD^{tree}")
    person = "A <a@example.com> 1700000000 +0000"
    raw = f"tree {tree}\nparent {head}\nauthor {person}\ncommitter {person}\n\n".encode()
    oid = repo.git(
        "hash-object", "-t", "commit", "-w", "--stdin", input=raw + gzip.compress(TEXT)[:-200]
    )
    repo.git("update-ref", "refs/heads/main", oid)
    proc = keyscan_run("git", str(repo.path))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert error_lines(proc.stderr) == [
        f"keyscan: error: commit message {oid}: unreadable archive, scanned as raw bytes: "
        + error_lines(proc.stderr)[0].rsplit("raw bytes: ", 1)[1]
    ]


def test_staged_truncated_archive_fails_the_hook(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "r")
    repo.commit("init", ("a.txt", "hello\n"))
    repo.write("dist/trunc.gz", CASES["truncated-gz"][0]())
    repo.git("add", "dist/trunc.gz")
    proc = keyscan_run("hook", "pre-commit", cwd=repo.path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("keyscan: error: dist/trunc.gz: unreadable archive"), lines


def test_utf16_text_keeps_the_errors_of_what_it_decodes() -> None:
    """UTF-16 text is decoded and scanned again: what that finds unreadable is reported."""
    inner = make_zip({"a.txt": TEXT}).decode("latin-1")  # its high bytes do not survive
    data = b"\xff\xfe" + inner.encode("utf-16le")
    errors: list[ScanError] = []
    scan_buffer(DET, data, Location("w.txt", 0, 0, 0), ContentOptions(), errors=errors)
    assert any("unreadable archive" in e.message for e in errors), errors


# --- 3. archive members are a typed location field ----------------------------------------


def nested_zip(k: str) -> bytes:
    inner = make_tgz({"lib/conf.env": f"\nOPENAI_API_KEY={k}\n".encode()})
    return make_zip({"deps/inner.tgz": inner, "README": b"hello"})


def test_member_is_a_typed_chain_not_packed_into_the_path() -> None:
    k = key("project", seed=301)
    errors: list[ScanError] = []
    hits = scan_buffer(
        DET, nested_zip(k), Location("dist/app.zip", 0, 0, 0), ContentOptions(), errors=errors
    )
    assert not errors
    (hit,) = hits
    loc = hit.location
    assert loc.path == "dist/app.zip"
    assert loc.member == ("deps/inner.tgz", "lib/conf.env")
    assert loc.display_path == "dist/app.zip!deps/inner.tgz!lib/conf.env"
    assert (loc.line, loc.column) == (2, 16)


def test_plain_content_has_no_member() -> None:
    k = key("project", seed=302)
    errors: list[ScanError] = []
    (hit,) = scan_buffer(DET, f"k={k}\n".encode(), Location("a.py", 0, 0, 0), errors=errors)
    assert hit.location.member == () and hit.location.display_path == "a.py"


def test_notebook_inside_an_archive_is_still_read_by_cell() -> None:
    k = key("project", seed=303)
    nb = {
        "cells": [
            {"cell_type": "code", "source": ["x = 1\n", f"key = '{k}'\n"], "outputs": []}
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    data = make_zip({"nb/analysis.ipynb": json.dumps(nb, indent=1).encode()})
    errors: list[ScanError] = []
    (hit,) = scan_buffer(DET, data, Location("n.zip", 0, 0, 0), errors=errors)
    assert hit.location.member == ("nb/analysis.ipynb",)
    assert hit.location.extra == {"cell": 1, "cell_line": 2}


def test_text_and_json_reports(tmp_path: Path) -> None:
    k = key("project", seed=304)
    (tmp_path / "app.zip").write_bytes(nested_zip(k))
    (tmp_path / "plain.py").write_text(f"K = '{k}'\n")
    text = keyscan_run("scan", "app.zip", "plain.py", cwd=tmp_path)
    assert text.returncode == 1, text.stderr
    assert b"app.zip!deps/inner.tgz!lib/conf.env:2:16" in text.stdout
    proc = keyscan_run("scan", "-f", "json", "app.zip", "plain.py", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    (finding,) = json.loads(proc.stdout)["findings"]
    by_path = {loc["path"]: loc for loc in finding["locations"]}
    archived = by_path["app.zip!deps/inner.tgz!lib/conf.env"]  # unchanged for old consumers
    assert archived["member"] == ["deps/inner.tgz", "lib/conf.env"]
    assert "member" not in by_path["plain.py"]
    assert k.encode() not in proc.stdout


def test_sarif_artifact_is_the_archive_and_the_message_names_the_member(tmp_path: Path) -> None:
    k = key("project", seed=305)
    (tmp_path / "app.zip").write_bytes(nested_zip(k))
    proc = keyscan_run("scan", "-f", "sarif", "app.zip", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    (result,) = json.loads(proc.stdout)["runs"][0]["results"]
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "app.zip"
    assert "region" not in physical  # the line is the member's, not the zip's
    assert "in archive member deps/inner.tgz!lib/conf.env, line 2:16" in result["message"]["text"]
    assert result["properties"]["member"] == ["deps/inner.tgz", "lib/conf.env"]


def test_github_annotation_is_on_the_archive_without_a_member_line(tmp_path: Path) -> None:
    k = key("project", seed=306)
    (tmp_path / "app.zip").write_bytes(nested_zip(k))
    proc = keyscan_run("scan", "-f", "github", "app.zip", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    (line,) = [ln for ln in proc.stdout.decode().splitlines() if ln.startswith("::error file=")]
    assert line.startswith("::error file=app.zip,title=")
    assert "archive member deps/inner.tgz!lib/conf.env" in line


def test_member_names_are_redacted_everywhere(tmp_path: Path) -> None:
    """A key in a member's name is metadata like a path: redacted in the member list too."""
    k, named = key("project", seed=307), key("project", seed=308)
    (tmp_path / "a.zip").write_bytes(make_zip({f"conf/{named}.txt": f"k={k}\n".encode()}))
    proc = keyscan_run("scan", "-f", "json", "a.zip", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert named.encode() not in proc.stdout and k.encode() not in proc.stdout
    doc = json.loads(proc.stdout)
    locs = [loc for f in doc["findings"] for loc in f["locations"] if "member" in loc]
    assert locs and all("..." in loc["member"][0] for loc in locs), locs


def test_git_json_keeps_path_and_member(tmp_path: Path) -> None:
    k = key("project", seed=309)
    repo = Repo(tmp_path / "r")
    repo.commit("wheel", ("dist/app.whl", make_zip({"pkg/config.py": f"K='{k}'\n".encode()})))
    repo.rm("dist/app.whl")
    repo.commit("rm")
    proc = keyscan_run("git", "-f", "json", str(repo.path))
    assert proc.returncode == 1, proc.stderr
    (finding,) = json.loads(proc.stdout)["findings"]
    (loc,) = finding["locations"]
    assert loc["path"] == "dist/app.whl!pkg/config.py" and loc["member"] == ["pkg/config.py"]


def test_staged_archive_member_keeps_its_member(tmp_path: Path) -> None:
    k = key("project", seed=310)
    repo = Repo(tmp_path / "r")
    repo.commit("init", ("a.txt", "hello\n"))
    repo.write("dist/app.whl", make_zip({"pkg/config.py": f"K='{k}'\n".encode()}))
    repo.git("add", "dist/app.whl")
    proc = keyscan_run("hook", "pre-commit", cwd=repo.path)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert b"dist/app.whl!pkg/config.py:1:4" in proc.stdout + proc.stderr


def test_verify_reads_the_member_back_from_a_json_report() -> None:
    # keyscan verify and keyscan revoke read reports through the one JSON report module.
    from keyscan.report.json_report import location_from_json as _location

    loc = _location(
        {"path": "a.zip!b.tgz!c.txt", "member": ["b.tgz", "c.txt"], "line": 2, "column": 3}
    )
    assert loc is not None
    assert (loc.path, loc.member, loc.display_path) == ("a.zip", ("b.tgz", "c.txt"), "a.zip!b.tgz!c.txt")
    old = _location({"path": "a.zip!c.txt", "line": 1})  # a report without "member"
    assert old is not None and (old.path, old.member) == ("a.zip!c.txt", ())
