"""`keyscan scan` end to end: file types, positions, chunking, stdin, exit codes, redaction."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from keyscan.cli import cli
from keyscan.content import scan_stream
from keyscan.detector import Detector
from keyscan.keygen import key
from keyscan.models import Location
from keyscan.rules import load_rules
from keyscan.sources import files


def run(*args: str, input: bytes | None = None) -> tuple[int, str, dict | None]:
    result = CliRunner().invoke(cli, list(args), input=input)
    doc = None
    if "json" in args and result.exit_code in (0, 1) and result.stdout.strip():
        doc = json.loads(result.stdout)
    return result.exit_code, result.output, doc


def locations(doc: dict) -> list[tuple[str, int, int]]:
    return sorted(
        (Path(loc["path"]).name, loc["line"], loc["column"])
        for f in doc["findings"]
        for loc in f["locations"]
    )


def file_cases(k: str) -> dict[str, tuple[str, int, int]]:
    """name -> (content, line, column) of the key."""
    return {
        "app.py": (f'import openai\n\nclient = openai.OpenAI(api_key="{k}")\n', 3, 33),
        "index.js": (f"const key = '{k}';\nexport default key;\n", 1, 14),
        ".env": (f"DEBUG=1\nOPENAI_API_KEY={k}\n", 2, 16),
        "config.json": (json.dumps({"openai": {"key": k}}, indent=2) + "\n", 3, 13),
        "settings.yaml": (f"openai:\n  api_key: {k}\n", 2, 12),
        "pyproject.toml": (f'[tool.x]\nkey = "{k}"\n', 2, 8),
        "Dockerfile": (f"FROM python:3.12\nENV OPENAI_API_KEY={k}\n", 2, 20),
        "run.sh": (f'#!/bin/sh\nexport OPENAI_API_KEY="{k}"\n', 2, 24),
        "README.md": (f"# Demo\n\nUse `{k}` to test.\n", 3, 6),
        "bundle.min.js": ("var a=1;" * 500 + f'fetch(u,{{headers:{{Authorization:"Bearer {k}"}}}})', 1, 4041),
        "crlf.txt": (f"one\r\ntwo\r\nkey={k}\r\nfour\r\n", 3, 5),
        "noeol.txt": (f"last line holds {k}", 1, 17),
        "unicode.py": (f'# héllo wörld\nkey = "{k}"  # ключ\n', 2, 8),
    }  # fmt: skip


def test_every_file_type_with_exact_position(tmp_path: Path) -> None:
    k = key("project", seed=11)
    cases = file_cases(k)
    for name, (content, _, _) in cases.items():
        (tmp_path / name).write_bytes(content.encode())
    code, out, doc = run("scan", str(tmp_path), "-f", "json")
    assert code == 1, out
    assert doc is not None
    assert len(doc["findings"]) == 1  # one secret, many locations
    assert locations(doc) == sorted((n, line, col) for n, (_, line, col) in cases.items())
    for content, line, col in cases.values():  # the expected positions are right
        before = content[: content.index(k)]
        assert (before.count("\n") + 1, len(before) - before.rfind("\n")) == (line, col)
    assert doc["scan"]["files"] == len(cases)
    assert k not in out


def test_notebook_json_escaped_key(tmp_path: Path) -> None:
    k = key("svcacct", seed=12)
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["# Setup\n"], "metadata": {}},
            {
                "cell_type": "code",
                "source": ["import openai\n", f'openai.api_key = "{k}"\n'],
                "outputs": [],
                "metadata": {},
                "execution_count": 1,
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (tmp_path / "demo.ipynb").write_text(json.dumps(nb, indent=1))
    code, _out, doc = run("scan", str(tmp_path), "-f", "json")
    assert code == 1
    assert doc is not None
    (finding,) = doc["findings"]
    assert finding["family"] == "service_account"
    assert finding["redacted"] == f"{k[:8]}...{k[-4:]}"


def test_key_across_a_chunk_boundary_is_found_once_at_the_right_place() -> None:
    det = Detector(load_rules())
    k = key("project", seed=13).encode()
    chunk = 4096 * 3
    for where in range(chunk - len(k) - 2, chunk + 3):
        data = b"x\n" * (where // 2) + b"y" * (where % 2) + k + b"\n" + b"z" * 5000
        template = Location(path="f", line=0, column=0, offset=0)
        hits, size = scan_stream(det, io.BytesIO(data), template, chunk=chunk, errors=[])
        assert size == len(data)
        assert [h.location.offset for h in hits] == [where], where
        assert hits[0].location.line == where // 2 + 1
        assert hits[0].location.column == where % 2 + 1


def test_large_file_read_in_bounded_chunks(tmp_path: Path) -> None:
    k = key("admin", seed=14)
    big = tmp_path / "big.log"
    line = b"2026-01-01 INFO nothing to see here, just a long log line of text\n"
    before = line * ((files.CHUNK - 40) // len(line))  # the key straddles the first chunk end
    big.write_bytes(before + f"token={k}\n".encode() + line * 2000)
    code, _, doc = run("scan", str(big), "-f", "json")
    assert code == 1 and doc is not None
    (f,) = doc["findings"]
    (loc,) = f["locations"]
    assert loc["line"] == before.count(b"\n") + 1
    assert loc["offset"] == len(before) + len("token=")


def test_stdin(tmp_path: Path) -> None:
    k = key("user-none", seed=15)
    code, out, doc = run("scan", "-", "-f", "json", input=f"a\nb = '{k}'\n".encode())
    assert code == 1 and doc is not None
    (loc,) = doc["findings"][0]["locations"]
    assert (loc["path"], loc["line"], loc["column"], loc["source"]) == ("<stdin>", 2, 6, "stdin")
    code, out, _ = run("scan", "-", input=b"nothing here\n")
    assert code == 0
    assert "no OpenAI keys found" in out


def test_exit_codes_and_partial_scan(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text("print('hello')\n")
    assert run("scan", str(tmp_path))[0] == 0
    k = key("legacy", seed=16)
    (tmp_path / "leak.py").write_text(f"k = '{k}'\n")
    assert run("scan", str(tmp_path))[0] == 1
    # A wrong path among good ones: one clear line, the rest still scanned and reported, exit 2.
    code, out, _ = run("scan", str(tmp_path), str(tmp_path / "missing"))
    assert code == 2
    assert f"keyscan: error: {tmp_path / 'missing'}: no such file or directory" in out
    assert k[:8] in out  # the finding is still reported
    assert "scan incomplete" in out


def test_vanished_file_makes_the_scan_incomplete(tmp_path: Path) -> None:
    det_rules = load_rules()
    (tmp_path / "a.py").write_text("x = 1\n")
    tasks = [files.FileTask("a.py", str(tmp_path / "a.py"), -1),
             files.FileTask("gone.py", str(tmp_path / "gone.py"), -1)]  # fmt: skip
    out = files.scan_files(det_rules, tasks, jobs=1)
    assert out.files == 1
    assert [e.where for e in out.errors] == ["gone.py"]


@pytest.mark.parametrize("fmt", ["text", "json", "jsonl"])
def test_no_output_format_holds_the_raw_key_unless_asked(tmp_path: Path, fmt: str) -> None:
    keys = [key(f, seed=17) for f in ("project", "svcacct", "admin", "legacy", "user-none")]
    (tmp_path / "keys.txt").write_text("\n".join(keys) + "\n")
    code, out, _ = run("scan", str(tmp_path), "-f", fmt)
    assert code == 1
    for k in keys:
        assert k not in out
        assert f"{k[:8]}...{k[-4:]}" in out
    code, out, _ = run("scan", str(tmp_path), "-f", fmt, "--show-secrets")
    assert code == 1
    for k in keys:
        assert k in out


def test_output_file_is_private_and_redacted(tmp_path: Path) -> None:
    k = key("project", seed=18)
    (tmp_path / "a.env").write_text(f"OPENAI_API_KEY={k}\n")
    report = tmp_path / "out" / "report.json"
    report.parent.mkdir()
    code, out, _ = run("scan", str(tmp_path / "a.env"), "-f", "json", "-o", str(report))
    assert code == 1
    assert out == ""
    assert os.stat(report).st_mode & 0o777 == 0o600
    text = report.read_text()
    assert k not in text
    assert (
        json.loads(text)["findings"][0]["fingerprint"]
        == __import__("hashlib").sha256(k.encode()).hexdigest()
    )


def test_json_schema_fields(tmp_path: Path) -> None:
    k = key("svcacct", seed=19)
    (tmp_path / "a.py").write_text(f"K = '{k}'\n")
    _, _, doc = run("scan", str(tmp_path), "-f", "json")
    assert doc is not None
    assert doc["schema_version"] == 1
    assert set(doc["scan"]) >= {"kind", "targets", "files", "bytes", "duration_seconds",
                                "complete", "errors", "secrets", "locations", "suppressed"}  # fmt: skip
    (f,) = doc["findings"]
    assert set(f) >= {"rule_id", "family", "confidence", "fingerprint", "redacted", "length",
                      "verification", "locations"}  # fmt: skip
    assert (f["rule_id"], f["family"], f["confidence"], f["length"]) == (
        "openai-service-account-key", "service_account", "high", len(k))  # fmt: skip
    assert "secret" not in f


def test_binary_files_are_scanned_and_located_by_offset(tmp_path: Path) -> None:
    k = key("project", seed=20).encode()
    blob = bytes(random.Random(1).randbytes(3000)) + b"\x00" + k + b"\x00\x01\x02"
    (tmp_path / "cache.pyc").write_bytes(blob)
    import sqlite3

    db = sqlite3.connect(tmp_path / "app.sqlite")
    db.execute("create table t (v text)")
    db.execute("insert into t values (?)", (k.decode(),))
    db.commit()
    db.close()
    code, out, doc = run("scan", str(tmp_path), "-f", "json")
    assert code == 1 and doc is not None
    locs = {Path(loc["path"]).name: loc for loc in doc["findings"][0]["locations"]}
    assert set(locs) == {"cache.pyc", "app.sqlite"}
    assert locs["cache.pyc"]["binary"] is True
    assert locs["cache.pyc"]["offset"] == 3001
    code, out, _ = run("scan", str(tmp_path / "cache.pyc"))
    assert "binary, byte offset 3001" in out


def test_inline_allow_comments(tmp_path: Path) -> None:
    rng = random.Random(21)
    keys = [key("project", rng=rng) for _ in range(4)]
    (tmp_path / "a.py").write_text(
        f"a = '{keys[0]}'  # keyscan:allow\n"
        f"b = '{keys[1]}'  # gitleaks:allow\n"
        f"c = '{keys[2]}'  # pragma: allowlist secret\n"
        f"d = '{keys[3]}'\n"
    )
    code, _out, doc = run("scan", str(tmp_path), "-f", "json")
    assert code == 1 and doc is not None
    assert [f["fingerprint"] for f in doc["findings"]] == [
        __import__("hashlib").sha256(keys[3].encode()).hexdigest()
    ]
    assert doc["scan"]["suppressed"] == 3


def test_allowed_on_one_line_still_reported_elsewhere(tmp_path: Path) -> None:
    k = key("project", seed=22)
    (tmp_path / "a.py").write_text(f"a = '{k}'  # keyscan:allow\n")
    (tmp_path / "b.py").write_text(f"b = '{k}'\n")
    _, _, doc = run("scan", str(tmp_path), "-f", "json")
    assert doc is not None
    assert locations(doc) == [("b.py", 1, 6)]


def test_exclude_git_dir_and_symlinks(tmp_path: Path) -> None:
    rng = random.Random(23)
    inside, outside, excluded, gitkey = (key("project", rng=rng) for _ in range(4))
    tree = tmp_path / "tree"
    (tree / "src").mkdir(parents=True)
    (tree / "vendor" / "lib").mkdir(parents=True)
    (tree / ".git").mkdir()
    (tree / "src" / "a.py").write_text(f"k = '{inside}'\n")
    (tree / "vendor" / "lib" / "b.py").write_text(f"k = '{excluded}'\n")
    (tree / "src" / "c.min.js").write_text(f"k = '{excluded}'\n")
    (tree / ".git" / "config").write_text(f"k = '{gitkey}'\n")
    secret_dir = tmp_path / "elsewhere"
    secret_dir.mkdir()
    (secret_dir / "s.txt").write_text(f"k = '{outside}'\n")
    (tree / "link-out").symlink_to(secret_dir)
    (tree / "src" / "file-link.txt").symlink_to(secret_dir / "s.txt")
    (tree / "loop").symlink_to(tree)
    code, _out, doc = run(
        "scan", str(tree), "-f", "json", "--exclude", "vendor", "--exclude", "*.min.js",
        "--show-secrets",
    )  # fmt: skip
    assert code == 1 and doc is not None
    assert [f["secret"] for f in doc["findings"]] == [inside]
    # A symlink named on the command line is followed.
    code, _, doc = run("scan", str(tree / "src" / "file-link.txt"), "-f", "json", "--show-secrets")
    assert doc is not None and [f["secret"] for f in doc["findings"]] == [outside]


def test_min_confidence(tmp_path: Path) -> None:
    k = key("project", seed=24)
    azure = "0123456789abcdef" * 0 + "9f3c2b7a1e5d4c8b0a6f2e9d3c7b1a5e"
    (tmp_path / "a.env").write_text(f"OPENAI_API_KEY={k}\nAZURE_OPENAI_API_KEY={azure}\n")
    _, _, doc = run("scan", str(tmp_path), "-f", "json")
    assert doc is not None
    assert sorted(f["family"] for f in doc["findings"]) == ["azure", "project"]
    _, _, doc = run("scan", str(tmp_path), "-f", "json", "--min-confidence", "high")
    assert doc is not None
    assert [f["family"] for f in doc["findings"]] == ["project"]


def test_text_output_colour_only_when_asked_or_on_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(f"k='{key('project', seed=25)}'\n")
    _, out, _ = run("scan", str(tmp_path))
    assert "\x1b[" not in out
    _, out, _ = run("scan", str(tmp_path), "--color", "always")
    assert "\x1b[31m" in out


def test_hostile_file_name_cannot_forge_terminal_output(tmp_path: Path) -> None:
    name = "evil\x1b[2J\rkeyscan: no OpenAI keys found.py"
    (tmp_path / name).write_text(f"k='{key('project', seed=26)}'\n")
    _, out, _ = run("scan", str(tmp_path))
    assert "\x1b[2J" not in out and "\r" not in out
    assert "evil\\x1b[2J\\x0dkeyscan" in out


def test_worker_processes_give_the_same_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(27)
    planted = {}
    for i in range(300):
        d = tmp_path / f"d{i % 7}"
        d.mkdir(exist_ok=True)
        text = "filler line\n" * rng.randint(1, 50)
        if i % 37 == 0:
            k = key(rng.choice(["project", "admin", "legacy"]), rng=rng)
            planted[f"d{i % 7}/f{i}.txt"] = k
            text += f"key={k}\n"
        (d / f"f{i}.txt").write_text(text)
    monkeypatch.setattr(files, "PARALLEL_MIN_FILES", 2)
    monkeypatch.setattr(files, "BATCH_FILES", 16)
    rules = load_rules()

    def found(jobs: int) -> dict[str, str]:
        errors: list = []
        tasks = files.iter_walk([str(tmp_path)], [], errors, [])
        out = files.scan_files(rules, tasks, jobs=jobs)
        assert out.files == 300 and not errors and not out.errors
        return {
            str(Path(h.location.path).relative_to(tmp_path)): h.secret.decode() for h in out.hits
        }

    assert found(1) == planted
    assert found(2) == planted


def test_plain_scan_imports_nothing_heavy(tmp_path: Path) -> None:
    """Start-up time is a feature: `keyscan scan` never imports httpx, gitpython or sqlite."""
    (tmp_path / "a.py").write_text("x = 1\n")
    code = (
        "import sys\n"
        "from keyscan.cli import main\n"
        "try:\n"
        f"    main(['scan', {str(tmp_path)!r}, '-q'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "heavy = [m for m in ('httpx', 'git', 'sqlite3', 'keyscan.verify', 'jsonschema',\n"
        "                     'tarfile', 'zipfile', 'keyscan.formats.archives', 'hyperscan')\n"
        "         if m in sys.modules]\n"
        "print(','.join(heavy) or 'none')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none"


def test_console_script_and_module_entry_points(tmp_path: Path) -> None:
    from keyscan import __version__

    out = subprocess.run(
        [sys.executable, "-m", "keyscan", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in out.stdout
    k = key("project", seed=28)
    (tmp_path / "a.py").write_text(f"k='{k}'\n")
    proc = subprocess.run(
        [sys.executable, "-m", "keyscan", "scan", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert k not in proc.stdout + proc.stderr
