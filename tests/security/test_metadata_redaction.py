"""Item 3: keys in metadata (commit subjects, author names, file names, branch and tag names,
arguments, error messages) never appear raw in any output or store, and a key in a file name
is a finding.

Every key is generated at run time (keyscan.keygen); nothing key-shaped is in this file.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from keyscan.keygen import key
from keyscan.models import fingerprint_of, redact
from tests.git_helpers import ENV_TEMPLATE, Repo, cli

FORMATS = ["text", "json", "jsonl", "sarif", "github", "junit"]


# A home of its own for every test (no user git config, caches or state).
pytestmark = pytest.mark.usefixtures("isolated_home")


def leaked(text: str | bytes, keys: dict[str, str]) -> list[str]:
    """Names of the keys whose raw value (or its hidden middle) appears in text."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    return [n for n, k in keys.items() if k.encode() in data or k[8:-4].encode() in data]


def run_every_format(
    args: list[str], cwd: Path, keys: dict[str, str], expect: int = 1
) -> dict[str, str]:
    """Run the command in every format, to stdout and with -o; assert nothing leaks.
    Returns the stdout of each format."""
    outputs: dict[str, str] = {}
    env = dict(os.environ, **ENV_TEMPLATE)
    for fmt in FORMATS:
        code, out, err = cli(*args, "--no-config", "-f", fmt, cwd=cwd, env=env)
        assert code == expect, (fmt, code, err)
        assert leaked(out + err, keys) == [], (fmt, "stdout/stderr")
        outputs[fmt] = out
        report = cwd / f"report.{fmt}"
        code, out, err = cli(*args, "--no-config", "-f", fmt, "-o", str(report), cwd=cwd, env=env)
        assert code == expect, (fmt, "-o", code, err)
        assert leaked(out + err, keys) == [], (fmt, "-o stdout/stderr")
        assert leaked(report.read_bytes(), keys) == [], (fmt, "-o file")
        report.unlink()
    return outputs


def make_leaky_repo(root: Path) -> tuple[Repo, dict[str, str]]:
    """A repository whose metadata holds keys: commit subject, author name, file name,
    branch, tag; its folder name holds one too. The file's content holds another key."""
    keys = {
        "subject": key("project"),
        "author": key("svcacct"),
        "file": key("project"),
        "branch": key("admin"),
        "tag": key("user-none"),
        "content": key("project"),
        "folder": key("project-2024"),
    }
    repo = Repo(root / f"repo-{keys['folder']}")
    repo.commit("readme", ("README.md", "hello\n"))
    repo.write(f"cfg-{keys['file']}.env", f"OPENAI_API_KEY={keys['content']}\n")
    repo.git("add", "--", f"cfg-{keys['file']}.env")
    repo.tick += 60
    env_author = {"GIT_AUTHOR_NAME": f"Eve {keys['author']}"}
    import subprocess

    subprocess.run(
        ["git", "commit", "-q", "-m", f"deploy {keys['subject']} now"],
        cwd=repo.path, env={**repo.env(), **env_author}, check=True, capture_output=True,
    )  # fmt: skip
    repo.git("branch", f"leak/{keys['branch']}")
    repo.git("tag", f"v1-{keys['tag']}")
    return repo, keys


def test_git_metadata_never_raw_in_any_format(tmp_path: Path) -> None:
    repo, keys = make_leaky_repo(tmp_path)
    outputs = run_every_format(["git", str(repo.path)], tmp_path, keys)
    doc = json.loads(outputs["json"])
    found = {f["fingerprint"] for f in doc["findings"]}
    # The key in the file's content, the one in the commit message, the one in the file name.
    for name in ("content", "subject", "file"):
        assert fingerprint_of(keys[name]) in found, name
    by_fp = {f["fingerprint"]: f for f in doc["findings"]}
    content = by_fp[fingerprint_of(keys["content"])]
    loc = content["locations"][0]
    assert loc["path"] == f"cfg-{redact(keys['file'])}.env"
    assert loc["commit"]["subject"] == f"deploy {redact(keys['subject'])} now"
    assert loc["commit"]["author_name"] == f"Eve {redact(keys['author'])}"
    refs = content["extra"]["git"]["refs"]
    assert f"refs/heads/leak/{redact(keys['branch'])}" in refs
    assert f"refs/tags/v1-{redact(keys['tag'])}" in refs
    assert doc["scan"]["targets"] == [str(repo.path).replace(keys["folder"], redact(keys["folder"]))]
    # The key in the file name: a finding at the path itself, line 0 (documented marker).
    name_finding = by_fp[fingerprint_of(keys["file"])]
    name_loc = name_finding["locations"][0]
    assert name_loc["path"] == f"cfg-{redact(keys['file'])}.env"
    assert name_loc["line"] == 0 and name_loc["extra"].get("file_name") is True
    assert name_loc["commit"]["subject"] == f"deploy {redact(keys['subject'])} now"
    assert "(file name)" in outputs["text"]
    # SARIF paths are relative to the scanned repository, whose (redacted) folder is the root.
    sarif = json.loads(outputs["sarif"])
    root_uri = sarif["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert root_uri.endswith(f"/repo-{redact(keys['folder'])}/"), root_uri
    # --show-secrets shows keys (text/json) but never in SARIF, GitHub or JUnit output.
    env = dict(os.environ, **ENV_TEMPLATE)
    code, out, _ = cli("git", "--no-config", "--show-secrets", str(repo.path), env=env)
    assert code == 1 and keys["subject"] in out
    for fmt in ("sarif", "github", "junit"):
        code, out, err = cli(
            "git", "--no-config", "--show-secrets", "-f", fmt, str(repo.path), env=env
        )
        assert code == 1 and leaked(out + err, keys) == [], fmt


def test_staged_file_name_is_a_finding(tmp_path: Path) -> None:
    secret = key("project")
    repo = Repo(tmp_path / "repo")
    repo.commit("readme", ("README.md", "hello\n"))
    repo.write(f"keys/{secret}.txt", "nothing secret inside\n")
    repo.git("add", "--", f"keys/{secret}.txt")
    outputs = run_every_format(["git", "--staged", str(repo.path)], tmp_path, {"k": secret})
    doc = json.loads(outputs["json"])
    assert [f["fingerprint"] for f in doc["findings"]] == [fingerprint_of(secret)]
    loc = doc["findings"][0]["locations"][0]
    assert loc["path"] == f"keys/{redact(secret)}.txt" and loc["line"] == 0


def test_files_scan_metadata_never_raw(tmp_path: Path) -> None:
    keys = {"file": key("project"), "content": key("svcacct"), "folder": key("admin")}
    folder = tmp_path / f"proj-{keys['folder']}"
    folder.mkdir()
    (folder / f"cfg-{keys['file']}.env").write_text(f"OPENAI_API_KEY={keys['content']}\n")
    (folder / "clean.txt").write_text("nothing here\n")
    outputs = run_every_format(["scan", folder.name], tmp_path, keys)
    doc = json.loads(outputs["json"])
    found = {f["fingerprint"]: f for f in doc["findings"]}
    assert set(found) == {fingerprint_of(keys["content"]), fingerprint_of(keys["file"])}
    name_loc = found[fingerprint_of(keys["file"])]["locations"][0]
    assert name_loc["line"] == 0 and name_loc["extra"].get("file_name") is True
    assert name_loc["path"] == (
        f"proj-{redact(keys['folder'])}/cfg-{redact(keys['file'])}.env"
    )
    # The folder's own key is in the argument, not in a scanned name: echoed redacted only.
    assert doc["scan"]["targets"] == [f"proj-{redact(keys['folder'])}"]


def test_errors_and_echoed_arguments_are_redacted(tmp_path: Path) -> None:
    missing = key("project")
    env = dict(os.environ, **ENV_TEMPLATE)
    for fmt in FORMATS:
        code, out, err = cli("scan", "--no-config", "-f", fmt, f"gone-{missing}.env",
                             cwd=tmp_path, env=env)  # fmt: skip
        assert code == 2, (fmt, err)
        assert leaked(out + err, {"k": missing}) == [], fmt
        assert redact(missing) in err


def test_audit_store_and_reports_never_hold_raw_keys(tmp_path: Path) -> None:
    repo, keys = make_leaky_repo(tmp_path)
    # A removal commit whose subject and author carry keys too ("removed by").
    keys["removal"] = key("project")
    repo.git("rm", "-q", "--", f"cfg-{keys['file']}.env")
    repo.tick += 60
    import subprocess

    subprocess.run(
        ["git", "commit", "-q", "-m", f"remove {keys['removal']}"],
        cwd=repo.path, env=repo.env(), check=True, capture_output=True,
    )  # fmt: skip
    env = dict(os.environ, **ENV_TEMPLATE)
    db = tmp_path / "audit.db"
    for fmt in ("text", "json"):
        code, out, err = cli("audit", str(repo.path), "--db", str(db), "-f", fmt,
                             cwd=tmp_path, env=env)  # fmt: skip
        assert code == 1, err
        assert leaked(out + err, keys) == [], fmt
    assert leaked(db.read_bytes(), keys) == []
    con = sqlite3.connect(db)
    paths = {r[0] for r in con.execute("SELECT path FROM locations")}
    con.close()
    assert f"cfg-{redact(keys['file'])}.env" in paths
    for fmt in ("html", "md", "json"):
        code, out, err = cli("report", "--db", str(db), "-f", fmt, cwd=tmp_path, env=env)
        assert code == 1, err
        assert leaked(out + err, keys) == [], fmt
        out_file = tmp_path / f"r.{fmt}"
        code, _, err = cli("report", "--db", str(db), "-f", fmt, "-o", str(out_file),
                           cwd=tmp_path, env=env)  # fmt: skip
        assert code == 1 and leaked(out_file.read_bytes(), keys) == [], fmt


def test_baseline_file_never_holds_a_key_from_a_file_name(tmp_path: Path) -> None:
    secret = key("project")
    (tmp_path / f"cfg-{secret}.env").write_text("nothing inside\n")
    env = dict(os.environ, **ENV_TEMPLATE)
    code, out, err = cli("baseline", "create", "--no-config", ".", cwd=tmp_path, env=env)
    assert code == 0, err
    baseline = tmp_path / ".keyscan-baseline.json"
    doc = json.loads(baseline.read_text())
    assert [e["fingerprint"] for e in doc["findings"]] == [fingerprint_of(secret)]
    assert doc["findings"][0]["path"] == f"cfg-{redact(secret)}.env"
    assert leaked(baseline.read_bytes() + (out + err).encode(), {"k": secret}) == []
    # The baseline hides the finding (identity, not path).
    code, out, err = cli("scan", "--no-config", "--baseline", str(baseline), ".",
                         cwd=tmp_path, env=env)  # fmt: skip
    assert code == 0, out + err
