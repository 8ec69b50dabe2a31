"""Rule files: loading, validation errors, user rules, examples, and packaging in the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from keyscan.cli import cli
from keyscan.commands.rules import check_rule
from keyscan.detector import Detector
from keyscan.keygen import generate
from keyscan.rules import RuleError, builtin_rules_dir, load_file, load_rules

REPO = Path(__file__).resolve().parent.parent

GOOD_RULE = """
rules:
  - id: acme-token
    description: ACME token
    family: unknown
    confidence: medium
    keywords: ["acme_"]
    regex: '(?P<secret>acme_[a-f0-9]{32})'
    examples:
      positive: ['token = "acme_{hex:32}"']
      negative: ['acme_{0:32}']
    min_entropy: 3.0
"""


def test_builtin_rules_load_and_pass_their_examples() -> None:
    rules = load_rules()
    ids = {r.id for r in rules}
    assert {
        "openai-project-key",
        "openai-service-account-key",
        "openai-admin-key",
        "openai-user-key",
        "openai-legacy-key",
        "openai-named-key",
        "openai-key",
        "openai-key-no-marker",
        "openai-api-key-assignment",
        "openai-client-api-key",
    } <= ids
    for rule in rules:
        assert rule.examples_positive, rule.id
        assert check_rule(rule, rules, rounds=30, seed=1) == [], rule.id


def test_rules_check_and_list_commands() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["rules", "check", "--rounds", "10"])
    assert result.exit_code == 0, result.output
    assert "0 with problems" in result.output
    result = runner.invoke(cli, ["rules", "list"])
    assert result.exit_code == 0
    assert "openai-project-key" in result.output and "high" in result.output


def test_user_rules_are_added_and_used(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(GOOD_RULE)
    rules = load_rules(extra_dirs=[tmp_path])
    assert "acme-token" in {r.id for r in rules}
    token = generate("acme_{hex:32}", seed=1)
    target = tmp_path / "code"
    target.mkdir()
    (target / "a.py").write_text(f'token = "{token}"\n')
    result = CliRunner().invoke(cli, ["scan", str(target), "--rules", str(tmp_path), "-f", "json"])
    assert result.exit_code == 1, result.output
    assert "acme-token" in result.output
    assert token not in result.output


def test_a_failing_example_is_reported_by_rules_check(tmp_path: Path) -> None:
    broken = GOOD_RULE.replace("negative: ['acme_{0:32}']", "negative: ['acme_{hex:32}']")
    (tmp_path / "acme.yaml").write_text(broken)
    result = CliRunner().invoke(cli, ["rules", "check", "--rules", str(tmp_path)])
    assert result.exit_code == 1
    assert "rule acme-token: negative example reported" in result.output


BAD_RULES = [
    ("rules: [\n  - id: x\n", "invalid YAML"),
    ("rules: {}", "a 'rules' list"),
    (GOOD_RULE.replace("{32})'", "{32}'"),
     "rule acme-token: regex is not a valid regular expression"),
    (GOOD_RULE.replace("(?P<secret>", "("), "rule acme-token: regex needs a named group"),
    (GOOD_RULE.replace("family: unknown", "family: wizard"), "rule acme-token: family 'wizard'"),
    (GOOD_RULE.replace("confidence: medium", "confidence: sure"), "rule acme-token: confidence"),
    (GOOD_RULE.replace("min_entropy: 3.0", "min_entropy: lots"), "rule acme-token: min_entropy"),
    (GOOD_RULE.replace("    min_entropy: 3.0", "    colour: red"), "rule acme-token: unknown key"),
    (GOOD_RULE.replace('keywords: ["acme_"]', "keywords: []"), "rule acme-token: keywords"),
    (GOOD_RULE.replace("id: acme-token", "id: Acme Token"), "rule id 'Acme Token'"),
    (GOOD_RULE.replace("    min_entropy: 3.0", "    window: {before: 1}"), "rule acme-token: window"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD_RULES)
def test_malformed_rule_file_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(RuleError) as exc:
        load_file(path)
    assert str(path) in str(exc.value)
    assert message in str(exc.value)
    result = CliRunner().invoke(cli, ["scan", str(tmp_path), "--rules", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_duplicate_rule_id_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD_RULE)
    (tmp_path / "b.yaml").write_text(GOOD_RULE)
    with pytest.raises(RuleError, match="duplicate id"):
        load_rules(extra_dirs=[tmp_path])


def test_missing_rules_folder_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["scan", str(tmp_path), "--rules", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "rules folder not found" in result.output


def test_disabled_rules(tmp_path: Path) -> None:
    rules = load_rules(disabled=["openai-session-token"])
    assert "openai-session-token" not in {r.id for r in rules}
    with pytest.raises(RuleError, match="unknown rule id"):
        load_rules(disabled=["no-such-rule"])


def test_detector_runs_user_rule_without_window(tmp_path: Path) -> None:
    (tmp_path / "acme.yaml").write_text(GOOD_RULE)
    rules = [r for r in load_rules(extra_dirs=[tmp_path]) if r.id == "acme-token"]
    token = generate("acme_{hex:32}", seed=2)
    (m,) = Detector(rules).scan(f"x {token} y".encode())
    assert m.secret == token.encode()


def test_checkout_reads_top_level_rules() -> None:
    assert builtin_rules_dir() == REPO / "rules"


def test_wheel_ships_the_rules(tmp_path: Path) -> None:
    """One source of truth: the wheel carries rules/ as keyscan/_rules, and an installed
    package reads it from there."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("keyscan_openai-*.whl")  # the distribution name
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        shipped = {n for n in names if n.startswith("keyscan/_rules/")}
        assert {f"keyscan/_rules/{p.name}" for p in (REPO / "rules").glob("*.yaml")} <= shipped
        zf.extractall(tmp_path / "site")
    code = (
        "import keyscan.rules as r; d = r.builtin_rules_dir(); print(d.name, len(r.load_rules()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0] == "_rules"
    assert int(out[1]) == len(load_rules())
