"""--format sarif: valid SARIF 2.1.0 (the OASIS schema) that meets GitHub code scanning's rules."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from keyscan.cli import cli
from keyscan.keygen import key
from keyscan.models import (
    CommitInfo,
    Confidence,
    Finding,
    Location,
    ScanError,
    ScanResult,
    fingerprint_of,
    redact,
)
from keyscan.report import render
from keyscan.report.options import OutputOptions

REPO_ROOT = Path(__file__).resolve().parents[1]


def schema_path() -> Path:
    """$KEYSCAN_SARIF_SCHEMA, else ../shared/sarif/ beside the repository root."""
    override = os.environ.get("KEYSCAN_SARIF_SCHEMA")
    if override:
        return Path(override)
    return REPO_ROOT.parent / "shared" / "sarif" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def validator() -> Any:
    from jsonschema import Draft4Validator

    path = schema_path()
    if not path.is_file():
        pytest.skip(f"SARIF schema not found at {path} (set KEYSCAN_SARIF_SCHEMA)")
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema)


def check(validator: Any, doc: dict[str, Any]) -> None:
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
    github_rules(doc)


def github_rules(doc: dict[str, Any]) -> None:
    """What GitHub code scanning needs beyond the schema."""
    assert doc["version"] == "2.1.0"
    [run] = doc["runs"]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids))
    for r in rules:
        assert r["name"] and r["shortDescription"]["text"] and r["fullDescription"]["text"]
        assert r["help"]["text"]
        sev = float(r["properties"]["security-severity"])
        assert 0.0 <= sev <= 10.0
        assert "security" in r["properties"]["tags"]
    for res in run["results"]:
        assert res["ruleId"] == ids[res["ruleIndex"]]
        assert res["partialFingerprints"]
        assert res["message"]["text"]
        for loc in res["locations"]:
            phys = loc.get("physicalLocation")
            if phys is None:
                assert loc["logicalLocations"]
                continue
            art = phys["artifactLocation"]
            assert not art["uri"].startswith("/") and ".." not in art["uri"].split("/")
            assert art["uriBaseId"] == "%SRCROOT%"
            reg = phys["region"]
            if "startLine" in reg:
                assert reg["startLine"] >= 1 and reg["startColumn"] >= 1
            else:
                assert reg["byteOffset"] >= 0


def run_sarif(args: list[str]) -> tuple[int, dict[str, Any], str]:
    res = CliRunner().invoke(cli, [*args, "-f", "sarif"], catch_exceptions=False)
    return res.exit_code, json.loads(res.stdout), res.stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_file_scan_is_valid_and_redacted(validator: Any, repo: Path) -> None:
    one, two = key("project"), key("admin")
    (repo / "src").mkdir()
    (repo / "src" / "app.py").write_text(f'A = "{one}"\n\nB = "{one}"\n')
    (repo / "src" / "dir with space").mkdir()
    (repo / "src" / "dir with space" / "c%d#e.txt").write_text(f"x {two}\n")
    (repo / "blob.bin").write_bytes(b"\0\1\2" + two.encode() + b"\0")
    code, doc, text = run_sarif(["scan", "--show-secrets", "."])
    assert code == 1
    check(validator, doc)
    # Redacted even with --show-secrets: SARIF is uploaded and published.
    assert one not in text and two not in text
    assert redact(one) in text
    results = doc["runs"][0]["results"]
    # One result per location.
    assert len(results) == 4
    by_uri = {}
    for r in results:
        phys = r["locations"][0]["physicalLocation"]
        by_uri.setdefault(phys["artifactLocation"]["uri"], []).append(phys["region"])
    assert sorted(by_uri) == ["blob.bin", "src/app.py", "src/dir%20with%20space/c%25d%23e.txt"]
    assert [reg["startLine"] for reg in by_uri["src/app.py"]] == [1, 3]
    assert by_uri["src/app.py"][0]["startColumn"] == 6
    assert by_uri["src/app.py"][0]["endColumn"] == 6 + len(one)
    assert by_uri["blob.bin"] == [{"byteOffset": 3, "byteLength": len(two)}]
    fps = [r["partialFingerprints"]["keyscanFindingHash/v1"] for r in results]
    assert len(set(fps)) == len(fps)
    rules = {r["id"]: r for r in doc["runs"][0]["tool"]["driver"]["rules"]}
    assert rules["openai-admin-key"]["properties"]["security-severity"] == "9.8"
    assert doc["runs"][0]["invocations"][0]["executionSuccessful"] is True


def test_fingerprints_survive_moving_lines(validator: Any, repo: Path) -> None:
    secret = key("project")
    (repo / "a.py").write_text(f'A = "{secret}"\n')
    _, first, _ = run_sarif(["scan", "a.py"])
    (repo / "a.py").write_text(f'import os\n\n\n    A = "{secret}"\n')
    _, second, _ = run_sarif(["scan", "a.py"])
    fp = [d["runs"][0]["results"][0]["partialFingerprints"] for d in (first, second)]
    assert fp[0] == fp[1]
    assert (
        second["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"]
        == 4
    )


def test_absolute_and_nested_targets_are_relative_to_the_repo_root(
    validator: Any, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / "pkg" / "sub").mkdir(parents=True)
    (repo / "pkg" / "sub" / "k.py").write_text(f'K = "{key("svcacct")}"\n')
    monkeypatch.chdir(repo / "pkg")
    for target in (str(repo / "pkg" / "sub"), "sub"):
        _, doc, _ = run_sarif(["scan", target])
        check(validator, doc)
        uri = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
        assert uri["artifactLocation"]["uri"] == "pkg/sub/k.py"


def test_clean_and_failed_scans_are_valid(validator: Any, repo: Path) -> None:
    (repo / "a.py").write_text("x = 1\n")
    code, doc, _ = run_sarif(["scan", "a.py"])
    assert code == 0 and doc["runs"][0]["results"] == []
    check(validator, doc)
    code, doc, _ = run_sarif(["scan", "a.py", "missing.py"])
    assert code == 2
    check(validator, doc)
    inv = doc["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is False
    assert "missing.py" in inv["toolExecutionNotifications"][0]["message"]["text"]


def _finding(secret: str, locations: list[Location]) -> Finding:
    return Finding(
        rule_id="openai-project-key",
        family="project",
        confidence=Confidence.HIGH,
        fingerprint=fingerprint_of(secret),
        redacted=redact(secret),
        length=len(secret),
        secret=secret,
        locations=locations,
        description="OpenAI project API key",
    )


def test_git_locations_carry_the_commit(validator: Any, repo: Path) -> None:
    commit = CommitInfo("a" * 40, "Ann", "ann@example.invalid", "2025-01-02T03:04:05+00:00", "s")
    other = CommitInfo("b" * 40, "Bob", "bob@example.invalid", "2025-02-02T03:04:05+00:00", "t")
    secret = key("project")
    f = _finding(
        secret,
        [
            Location("src/a.py", 3, 7, 40, source="git-blob", commit=commit, blob="c" * 40),
            Location("src/a.py", 3, 7, 40, source="git-blob", commit=other, blob="c" * 40),
            Location("", 1, 1, 0, source="git-message", commit=commit),
        ],
    )
    result = ScanResult(kind="git", targets=["."], findings=[f], errors=[ScanError("x", "y")])
    doc = json.loads(render(result, OutputOptions(format="sarif")))
    check(validator, doc)
    res = doc["runs"][0]["results"]
    assert [r["properties"].get("commit") for r in res] == ["a" * 40, "b" * 40, "a" * 40]
    assert res[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "src/a.py"
    assert "commit aaaaaaaaaaaa" in res[0]["message"]["text"]
    assert res[2]["locations"][0]["logicalLocations"][0]["name"] == "a" * 40
    fps = {r["partialFingerprints"]["keyscanFindingHash/v1"] for r in res}
    assert len(fps) == 3
    assert secret not in json.dumps(doc)


def test_real_git_history_scan_is_valid(validator: Any, tmp_path: Path) -> None:
    repo = tmp_path / "r"
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t.invalid"}  # fmt: skip
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "k.py").write_text(f'K = "{key("project")}"\n')
    subprocess.run(["git", "-C", str(repo), "add", "k.py"], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "k"], check=True, env=env)
    sha = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    cwd = os.getcwd()
    os.chdir(tmp_path)  # scanning another repository: its root is %SRCROOT%
    try:
        code, doc, _ = run_sarif(["git", str(repo)])
    finally:
        os.chdir(cwd)
    assert code == 1
    check(validator, doc)
    assert doc["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"] == repo.resolve().as_uri() + "/"
    [res] = doc["runs"][0]["results"]
    assert res["properties"]["commit"] == sha
    assert res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "k.py"
