"""The .keyscan.yaml config file: discovery, every key, expiry, and one-line errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from keyscan.cli import cli
from keyscan.cli_common import finish
from keyscan.config import ConfigError, find_config, load_config
from keyscan.keygen import key
from keyscan.models import (
    Confidence,
    Finding,
    Location,
    ScanResult,
    Verification,
    fingerprint_of,
    redact,
)
from keyscan.pipeline import RunOptions


def run(args: list[str]) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


def scan_json(args: list[str]) -> tuple[int, dict[str, Any], str]:
    code, out, err = run(["scan", "-f", "json", *args])
    return code, json.loads(out), err


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder that looks like a repository root (has .git), as the current directory."""
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_found_in_cwd_or_parents_up_to_the_repo_root(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    sub = tmp_path / "repo" / "a" / "b"
    sub.mkdir(parents=True)
    assert find_config(sub) is None
    cfg = write(tmp_path / "repo" / ".keyscan.yaml", "version: 1\n")
    assert find_config(sub) == cfg
    # Never above the repository root.
    cfg.unlink()
    write(tmp_path / ".keyscan.yaml", "version: 1\n")
    assert find_config(sub) is None


def test_path_allow_suppresses_and_is_counted(repo: Path) -> None:
    secret = key("project")
    write(repo / "tests" / "fixtures" / "k.py", f'K = "{secret}"\n')
    write(repo / "src" / "app.py", "print('hello')\n")
    code, doc, _ = scan_json(["tests", "src"])
    assert code == 1 and doc["scan"]["secrets"] == 1
    write(repo / ".keyscan.yaml", 'allow:\n  - path: "^tests/fixtures/"\n    reason: revoked\n')
    code, doc, _ = scan_json(["tests", "src"])
    assert code == 0
    assert doc["scan"]["suppressed"] == 1 and doc["findings"] == []


def test_path_allow_drops_only_allowed_locations(repo: Path) -> None:
    secret = key("project")
    write(repo / "tests" / "fixtures" / "k.py", f'K = "{secret}"\n')
    write(repo / "src" / "app.py", f'K = "{secret}"\n')
    write(repo / ".keyscan.yaml", 'allow:\n  - path: "^tests/"\n')
    code, doc, _ = scan_json(["tests", "src"])
    assert code == 1
    assert [loc["path"] for loc in doc["findings"][0]["locations"]] == ["src/app.py"]


def test_secret_regex_and_fingerprint_allow(repo: Path) -> None:
    one, two, three = key("project"), key("svcacct"), key("admin")
    write(repo / "a.py", f'A = "{one}"\nB = "{two}"\nC = "{three}"\n')
    cfg = f'allow:\n  - secret: "^{one[:20]}"\n  - fingerprint: {fingerprint_of(two)}\n'
    write(repo / ".keyscan.yaml", cfg)
    code, doc, _ = scan_json(["a.py"])
    assert code == 1
    assert [f["fingerprint"] for f in doc["findings"]] == [fingerprint_of(three)]
    assert doc["scan"]["suppressed"] == 2


def test_allow_scoped_to_a_rule(repo: Path) -> None:
    secret = key("project")
    write(repo / "a.py", f'A = "{secret}"\n')
    write(repo / ".keyscan.yaml", 'allow:\n  - path: "a"\n    rule: openai-admin-key\n')
    assert scan_json(["a.py"])[0] == 1
    write(repo / ".keyscan.yaml", 'allow:\n  - path: "a"\n    rule: openai-project-key\n')
    assert scan_json(["a.py"])[0] == 0


def test_expired_allow_no_longer_suppresses_and_warns(repo: Path) -> None:
    secret = key("project")
    write(repo / "a.py", f'A = "{secret}"\n')
    yesterday = dt.date.today() - dt.timedelta(days=1)
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    write(repo / ".keyscan.yaml", f'allow:\n  - path: "a"\n    expires: {tomorrow}\n')
    assert scan_json(["a.py"])[0] == 0
    write(repo / ".keyscan.yaml", f'allow:\n  - path: "a"\n    expires: {yesterday}\n')
    code, doc, err = scan_json(["a.py"])
    assert code == 1
    assert f"allow[0]: expired on {yesterday}, no longer suppresses" in err
    assert any("expired" in n for n in doc["findings"][0]["notes"])
    assert any("expired" in w for w in doc["scan"]["warnings"])


def test_exclude_disable_rules_and_extra_rules(repo: Path) -> None:
    secret = key("project")
    write(repo / "vendor" / "lib.py", f'A = "{secret}"\n')
    write(repo / "a.py", f'A = "{secret}"\n')
    write(
        repo / "ci" / "rules" / "acme.yaml",
        (
            "rules:\n"
            "  - id: acme-token\n"
            "    description: ACME token\n"
            "    family: unknown\n"
            "    confidence: high\n"
            "    keywords: [acme_]\n"
            "    regex: '(?P<secret>acme_[a-z0-9]{24})'\n"
        ),
    )
    token = "acme_" + "q7" * 12
    write(repo / "b.txt", f"token={token}\n")
    write(
        repo / ".keyscan.yaml",
        ("exclude: [vendor]\ndisable_rules: [openai-project-key]\nrules: [ci/rules]\n"),
    )
    code, doc, _ = scan_json(["."])
    assert code == 1
    rules = {f["rule_id"] for f in doc["findings"]}
    assert "acme-token" in rules and "openai-project-key" not in rules
    paths = {loc["path"] for f in doc["findings"] for loc in f["locations"]}
    assert not any(p.startswith("vendor") for p in paths)
    # --no-config: everything is back.
    code, out, _ = run(["scan", "-f", "json", "--no-config", "."])
    assert "openai-project-key" in {f["rule_id"] for f in json.loads(out)["findings"]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("colour: red\n", "unknown key(s) colour"),
        ("exclude: 3\n", "exclude: must be a list of non-empty strings"),
        ("allow:\n  - path: '('\n", "allow[0]: path: not a valid regular expression"),
        ("allow:\n  - path: a\n    expires: 2026-13-01\n", "allow[0]: expires: must be a date"),
        ("allow:\n  - path: a\n    secret: b\n", "allow[0]: needs exactly one of"),
        ("allow:\n  - reason: x\n", "allow[0]: needs exactly one of"),
        ("allow:\n  - fingerprint: abc\n", "allow[0]: fingerprint: must be 64 hex digits"),
        ("allow:\n  - path: a\n    why: b\n", "allow[0]: unknown key(s) why"),
        ("allow: {path: a}\n", "allow: must be a list"),
        ("rules: [nowhere]\n", "rules: "),
        ("version: 2\n", "version: only version 1"),
        ("baseline: [a]\n", "baseline: must be a file path"),
        ("disable_rules: [no-such-rule]\n", "disable_rules: unknown rule id(s) to disable"),
        ("exclude: [a\n", "invalid YAML"),
        ("- a\n- b\n", "the file must be a mapping"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_key(repo: Path, text: str, expected: str) -> None:
    write(repo / "a.py", "x = 1\n")
    cfg = write(repo / ".keyscan.yaml", text)
    code, out, err = run(["scan", "a.py"])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"keyscan: error: {cfg.resolve()}") or lines[0].startswith(
        f"keyscan: error: {cfg}"
    ), lines[0]
    assert expected in lines[0]
    assert out == ""


def test_config_option_names_a_file_and_a_missing_one_fails(repo: Path, tmp_path: Path) -> None:
    secret = key("project")
    write(repo / "a.py", f'A = "{secret}"\n')
    other = write(tmp_path / "elsewhere" / "conf.yaml", 'allow:\n  - path: "a"\n')
    assert run(["scan", "--config", str(other), "a.py"])[0] == 0
    code, _, err = run(["scan", "--config", str(tmp_path / "missing.yaml"), "a.py"])
    assert code == 2 and "missing.yaml: config file not found" in err


def test_load_config_resolves_paths_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    cfg = write(tmp_path / ".keyscan.yaml", "baseline: b.json\nrules: [r]\n")
    loaded = load_config(cfg)
    assert loaded.baseline == tmp_path / "b.json"
    assert loaded.rule_dirs == [tmp_path / "r"]
    with pytest.raises(ConfigError):
        load_config(tmp_path / "nope.yaml")


def _finding(secret: str, path: str) -> Finding:
    return Finding(
        rule_id="openai-project-key",
        family="project",
        confidence=Confidence.HIGH,
        fingerprint=fingerprint_of(secret),
        redacted=redact(secret),
        length=len(secret),
        secret=secret,
        locations=[Location(path=path, line=1, column=1, offset=0)],
    )


@pytest.mark.parametrize("kind", ["config", "baseline", "inline"])
def test_no_suppression_hides_a_live_key(tmp_path: Path, kind: str) -> None:
    """Verification said live: the finding stays visible, noted live-despite-suppression."""
    from keyscan.baseline import Baseline

    secret = key("project")
    live = _finding(secret, "tests/x.py")
    live.verification = Verification(status="live")
    dead = _finding(key("project"), "tests/y.py")
    dead.verification = Verification(status="invalid")
    opts = RunOptions()
    opts.output.format = "json"
    if kind == "config":
        cfg = write(tmp_path / ".keyscan.yaml", 'allow:\n  - path: "^tests/"\n')
        opts.suppressors.append(load_config(cfg).suppress)
    elif kind == "baseline":
        store = Baseline(tmp_path / "b.json")
        store.add([live, dead])
        opts.suppressors.append(store.suppress)
    else:
        for f in (live, dead):
            f.locations[0].inline_allowed = True
    result = ScanResult(kind="files", targets=["."], findings=[live, dead])

    import io

    out = io.StringIO()
    code = finish(result, opts, out)
    assert code == 1
    doc = json.loads(out.getvalue())
    assert [f["fingerprint"] for f in doc["findings"]] == [live.fingerprint]
    assert doc["findings"][0]["notes"] == ["live-despite-suppression"]
    assert doc["scan"]["suppressed"] == 1
    assert secret not in out.getvalue()
