"""Items 7 and 20: every report stays valid and safe whatever the names it carries.

* a file name that is not UTF-8 (``caf\\xe9.env``) holding a key: every format, on stdout and
  with -o, is produced, exit 1; SARIF validates against the 2.1.0 schema, JUnit is XML,
  JSON/JSONL parse;
* ``-f github`` never passes raw ESC, C1 or bidi control characters through;
* a deeply nested baseline / report / store JSON is one clear error line and exit 2.

Keys are generated at run time (keyscan.keygen).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from keyscan.keygen import key
from keyscan.models import fingerprint_of
from tests.git_helpers import ENV_TEMPLATE, Repo

FORMATS = ["text", "json", "jsonl", "sarif", "github", "junit"]
SCHEMA = Path(__file__).resolve().parents[2].parent / "shared" / "sarif" / "sarif-schema-2.1.0.json"
UNSAFE = ["\x1b", "\x9b", "\x7f", "\x00", "\u202e", "\u202a", "\u2066", "\u2069", "\x08"]


# A home of its own for every test (no user git config, caches or state).
pytestmark = pytest.mark.usefixtures("isolated_home")


@pytest.fixture(scope="module")
def validator() -> Any:
    from jsonschema import Draft4Validator

    path = Path(os.environ.get("KEYSCAN_SARIF_SCHEMA") or SCHEMA)
    if not path.is_file():
        pytest.skip(f"SARIF schema not found at {path} (set KEYSCAN_SARIF_SCHEMA)")
    schema = json.loads(path.read_text(encoding="utf-8"))
    return Draft4Validator(schema)


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, bytes, bytes]:
    """The real CLI, output as bytes (a report that is not UTF-8 must fail the test, not
    the decoding)."""
    proc = subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        cwd=cwd, env={**os.environ, **ENV_TEMPLATE, **(env or {})}, capture_output=True,
    )  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def check_valid(fmt: str, data: bytes, validator: Any) -> str:
    """The report is UTF-8 and well-formed for its format; returns its text."""
    text = data.decode("utf-8")  # strict: a report is UTF-8
    if fmt == "json":
        json.loads(text)
    elif fmt == "jsonl":
        lines = [json.loads(line) for line in text.splitlines()]
        assert lines and lines[-1]["type"] == "summary"
    elif fmt == "sarif":
        doc = json.loads(text)
        errors = list(validator.iter_errors(doc))
        assert not errors, [e.message for e in errors[:3]]
        assert doc["runs"][0]["results"]
    elif fmt == "junit":
        root = ET.fromstring(data)
        assert root.tag == "testsuites"
    for ch in ["\x1b", "\x00"]:
        assert ch not in text
    return text


def every_format(args: list[str], cwd: Path, validator: Any) -> dict[str, str]:
    texts: dict[str, str] = {}
    for fmt in FORMATS:
        code, out, err = run(*args, "--no-config", "-f", fmt, cwd=cwd)
        assert code == 1, (fmt, code, err.decode("utf-8", "replace"))
        assert b"Traceback" not in err, err
        texts[fmt] = check_valid(fmt, out, validator)
        target = cwd / f"report-{fmt}.out"
        code, out, err = run(*args, "--no-config", "-f", fmt, "-o", str(target), cwd=cwd)
        assert code == 1, (fmt, "-o", code, err.decode("utf-8", "replace"))
        assert b"Traceback" not in err, err
        check_valid(fmt, target.read_bytes(), validator)
        target.unlink()
    return texts


def test_non_utf8_file_name_every_format_valid(tmp_path: Path, validator: Any) -> None:
    secret = key("project")
    folder = tmp_path / "src"
    folder.mkdir()
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.env"), "wb") as fh:
        fh.write(f"OPENAI_API_KEY={secret}\n".encode())
    texts = every_format(["scan", "src"], tmp_path, validator)
    doc = json.loads(texts["json"])
    assert doc["findings"][0]["fingerprint"] == fingerprint_of(secret)
    # The undecodable byte is written as \xe9.
    assert doc["findings"][0]["locations"][0]["path"] == "src/caf\\xe9.env"
    assert "src/caf\\xe9.env:1:16" in texts["text"]


def test_non_utf8_file_name_in_git_and_ci(tmp_path: Path, validator: Any) -> None:
    secret = key("svcacct")
    repo = Repo(tmp_path / "repo")
    repo.commit("add", (b"caf\xe9.env", f"OPENAI_API_KEY={secret}\n"))
    every_format(["git", str(repo.path)], tmp_path, validator)
    ci_env = {k: "" for k in ("GITHUB_ACTIONS", "GITLAB_CI", "GITHUB_EVENT_PATH", "CI")}
    for fmt in ("sarif", "junit", "github", "text"):
        target = tmp_path / f"ci.{fmt}"
        code, out, err = run("ci", "--full", "--no-config", "-f", fmt, "-o", str(target),
                             cwd=repo.path, env=ci_env)  # fmt: skip
        assert code == 1, err.decode("utf-8", "replace")
        check_valid(fmt, target.read_bytes(), validator)
        code, out, err = run("ci", "--full", "--no-config", "-f", fmt, cwd=repo.path, env=ci_env)
        assert code == 1, err.decode("utf-8", "replace")
        check_valid(fmt, out, validator)


def test_github_annotations_escape_control_characters(tmp_path: Path) -> None:
    secret = key("project")
    folder = tmp_path / "src"
    folder.mkdir()
    hostile = "evil\x1b[31m\u202egnp.\u2066x\x7f\x9b.env"
    (folder / hostile).write_text(f"OPENAI_API_KEY={secret}\n")
    code, out, err = run("scan", "--no-config", "-f", "github", "src", "gone\x1b]0;\u202e",
                         cwd=tmp_path)  # fmt: skip
    assert code == 2, err  # the missing path makes the scan incomplete
    text = out.decode("utf-8")
    assert text.count("::error ") == 2  # the finding and the missing path
    for ch in UNSAFE:
        assert ch not in text, repr(ch)
    assert "\\x1b[31m" in text and "\\u202e" in text
    for ch in UNSAFE:
        assert ch.encode() not in err, repr(ch)


def deep_json(path: Path) -> Path:
    path.write_text("[" * 100_000)
    return path


def assert_one_clear_error(code: int, out: bytes, err: bytes, where: str) -> None:
    text = err.decode("utf-8")
    assert code == 2, (where, code, text)
    assert "Traceback" not in text and "RecursionError" not in text, (where, text)
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("keyscan: error:"), (where, text)
    assert "nested too deeply" in lines[0], (where, text)


def test_deeply_nested_json_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("nothing\n")
    deep = deep_json(tmp_path / "deep.json")
    code, out, err = run("scan", "--no-config", "--baseline", str(deep), "a.txt", cwd=tmp_path)
    assert_one_clear_error(code, out, err, "scan --baseline")
    code, out, err = run("verify", "--report", str(deep), cwd=tmp_path)
    assert_one_clear_error(code, out, err, "verify --report")
    admin = {"OPENAI_ADMIN_KEY": key("admin"), "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    code, out, err = run("revoke", "--report", str(deep), cwd=tmp_path, env=admin)
    assert_one_clear_error(code, out, err, "revoke --report")
    # A baseline whose findings list holds the nesting.
    (tmp_path / "deep2.json").write_text('{"version": 1, "findings": ' + "[" * 100_000)
    code, out, err = run("scan", "--no-config", "--baseline", "deep2.json", "a.txt",
                         cwd=tmp_path)  # fmt: skip
    assert_one_clear_error(code, out, err, "scan --baseline (findings)")


def test_report_on_store_with_deeply_nested_json(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.commit("add", ("k.env", f"OPENAI_API_KEY={key('project')}\n"))
    db = tmp_path / "a.db"
    code, _, err = run("audit", str(repo.path), "--db", str(db), cwd=tmp_path)
    assert code == 1, err
    for column, table in (("errors", "scans"), ("refs", "repository_keys"),
                          ("extra", "locations")):  # fmt: skip
        copy = tmp_path / f"{table}.db"
        copy.write_bytes(db.read_bytes())
        con = sqlite3.connect(copy)
        con.execute(f"UPDATE {table} SET {column} = ?", ("[" * 100_000,))
        con.commit()
        con.close()
        # Locations' extra is read by the JSON report only.
        for fmt in ("json",) if table == "locations" else ("html", "md", "json"):
            code, out, err = run("report", "--db", str(copy), "-f", fmt, cwd=tmp_path)
            assert_one_clear_error(code, out, err, f"report {table}.{column} {fmt}")
