"""The public Python API: what it exports, what it finds, and that it never prints or exits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import keyscan
from keyscan import (
    Confidence,
    GitScope,
    KeyscanError,
    Scanner,
    ScanOptions,
    TriageOptions,
    exit_code,
    finding_to_dict,
    scan_text,
    triage,
)
from keyscan.keygen import generate, key
from tests.git_helpers import Repo

EXPORTED = {
    "EXIT_CLEAN",
    "EXIT_ERROR",
    "EXIT_FINDINGS",
    "Confidence",
    "Finding",
    "GitScope",
    "KeyscanError",
    "Location",
    "ScanError",
    "ScanOptions",
    "ScanResult",
    "Scanner",
    "TriageOptions",
    "__version__",
    "exit_code",
    "finding_to_dict",
    "load_rules",
    "scan_text",
    "triage",
}


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner()


def test_exported_names_are_the_documented_ones() -> None:
    # A name added to or dropped from the public API is a decision: update this list with it.
    assert set(keyscan.__all__) == EXPORTED
    for name in EXPORTED:
        assert getattr(keyscan, name) is not None
    with pytest.raises(AttributeError):
        _ = keyscan.not_a_name  # type: ignore[attr-defined]


def test_import_keyscan_stays_light_and_the_engine_never_imports_click() -> None:
    code = (
        "import sys, keyscan\n"
        "light = sorted(m for m in sys.modules if m.startswith('keyscan'))\n"
        "from keyscan import Scanner\n"
        "Scanner().scan_text('x')\n"
        "print(light, 'click' in sys.modules, 'httpx' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['keyscan', 'keyscan.version'] False False"


def test_scan_text_finds_keys_with_line_and_column_redacted_by_default(
    scanner: Scanner, capsys: pytest.CaptureFixture[str]
) -> None:
    project, legacy = key("project"), key("legacy")
    text = f'client = OpenAI(api_key="{project}")\n\nOPENAI_API_KEY={legacy}\n'
    result = scanner.scan_text(text, path="prompt.txt")
    assert [f.secret for f in result.findings] == [project, legacy]
    first, second = result.findings
    assert (first.locations[0].path, first.locations[0].line, first.locations[0].column) == (
        "prompt.txt",
        1,
        26,
    )
    assert (second.locations[0].line, second.locations[0].column) == (3, 16)
    assert first.redacted == f"{project[:8]}...{project[-4:]}"
    # Shown anywhere (repr, dict), a finding is redacted; the raw key only on request.
    for shown in (repr(first), repr(result), json.dumps(finding_to_dict(first))):
        assert project not in shown
    assert finding_to_dict(first, show_secrets=True)["secret"] == project
    assert exit_code(result) == 1
    assert capsys.readouterr() == ("", "")


def test_scan_text_bytes_placeholders_and_other_vendors(scanner: Scanner) -> None:
    assert scanner.scan_text(b"OPENAI_API_KEY=sk-your-key-here").findings == []
    assert scanner.scan_text("sk-ant-api03-" + "a1B2" * 20).findings == []
    assert exit_code(scanner.scan_text("")) == 0
    one = scan_text(key("admin").encode())
    assert [f.family for f in one.findings] == ["admin"]


def test_scan_text_is_independent_between_calls(scanner: Scanner) -> None:
    k = key("svcacct")
    assert len(scanner.scan_text(k).findings) == 1
    assert scanner.scan_text("nothing").findings == []
    assert len(scanner.scan_text(k).findings) == 1


def test_options_min_confidence_and_decoding() -> None:
    import base64

    k = key("project")
    encoded = base64.b64encode(k.encode()).decode()
    assert [f.secret for f in Scanner().scan_text(f"token: {encoded}").findings] == [k]
    assert Scanner(options=ScanOptions(decode=False)).scan_text(f"token: {encoded}").findings == []
    low = "AZURE_OPENAI_API_KEY=" + generate("{hex:32}")
    assert Scanner().scan_text(low).findings
    high_only = Scanner(options=ScanOptions(min_confidence=Confidence.HIGH))
    assert high_only.scan_text(low).findings == []


def test_scan_paths_and_errors_reach_the_exit_code(tmp_path: Path, scanner: Scanner) -> None:
    k = key("project")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(f"KEY = '{k}'\n")
    (tmp_path / "README.md").write_text("nothing\n")
    result = scanner.scan_paths([tmp_path])
    assert [f.secret for f in result.findings] == [k]
    assert result.files == 2
    assert exit_code(result) == 1
    missing = scanner.scan_paths([tmp_path / "nope"])
    assert missing.errors and exit_code(missing) == 2


def test_scan_repo_reads_history_and_the_index(tmp_path: Path, scanner: Scanner) -> None:
    repo = Repo(tmp_path / "r")
    k = key("project")
    repo.commit("add", ("cfg.py", f"KEY = '{k}'\n"))
    repo.git("rm", "-q", "cfg.py")
    repo.commit("remove")
    history = scanner.scan_repo(repo.path)
    assert [f.secret for f in history.findings] == [k]
    assert history.findings[0].locations[0].commit is not None
    staged_key = key("admin")
    repo.write("new.py", f"K = '{staged_key}'\n")
    repo.git("add", "new.py")
    staged = scanner.scan_repo(repo.path, GitScope(staged=True))
    assert [f.secret for f in staged.findings] == [staged_key]
    bad = scanner.scan_repo(tmp_path / "not-a-repo")
    assert bad.errors and exit_code(bad) == 2


def test_triage_applies_config_and_baseline_and_returns_data(
    tmp_path: Path, scanner: Scanner, capsys: pytest.CaptureFixture[str]
) -> None:
    allowed, known, fresh = key("project"), key("legacy"), key("admin")
    result = scanner.scan_text(f"{allowed}\n{known}\n{fresh}\n")
    config = tmp_path / ".keyscan.yaml"
    from keyscan.models import fingerprint_of

    config.write_text(
        "allow:\n"
        f"  - fingerprint: {fingerprint_of(allowed)}\n"
        "    reason: test fixture\n"
    )
    baseline = tmp_path / "baseline.json"
    from keyscan.baseline import Baseline

    b = Baseline(path=baseline)
    b.add([f for f in result.findings if f.secret == known])
    b.save()
    triaged = triage(result, TriageOptions(config=config, baseline=baseline))
    assert triaged is result
    assert [f.secret for f in result.findings] == [fresh]
    assert result.suppressed == 2
    assert exit_code(result) == 1
    assert capsys.readouterr() == ("", "")


def test_triage_bad_inputs_raise_one_keyscan_error(tmp_path: Path, scanner: Scanner) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("allow: [\n")
    with pytest.raises(KeyscanError) as info:
        triage(scanner.scan_text("x"), TriageOptions(config=bad))
    assert "bad.yaml" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(KeyscanError):
        triage(scanner.scan_text("x"), TriageOptions(baseline=tmp_path / "missing.json"))


def test_exit_code_fail_on_live(scanner: Scanner) -> None:
    from keyscan.models import Verification

    result = scanner.scan_text(key("project"))
    result.findings[0].verification = Verification(status="invalid")
    assert exit_code(result) == 1
    assert exit_code(result, fail_on="live") == 0


def test_the_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("\n## Python API\n") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    repo = Repo(tmp_path / "r")
    k = key("project")
    repo.commit("init", ("src/app.py", f"KEY = '{k}'\n"), ("config/c.yaml", "a: 1\n"))
    monkeypatch.chdir(repo.path)
    out: list[str] = []
    monkeypatch.setattr("builtins.print", lambda *a, **_: out.append(" ".join(map(str, a))))
    exec(compile(code.group(1), "README.md", "exec"), {})
    assert out[-1] == "1"  # exit_code(files): the key in src/app.py
    assert not any(k in line for line in out)
