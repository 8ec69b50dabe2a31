"""--format github (workflow-command annotations) and --format junit (JUnit XML)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from keyscan.cli import cli
from keyscan.keygen import key
from keyscan.models import redact
from keyscan.report.github import escape_data, escape_property


def run(args: list[str]) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def unescape_data(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def unescape_property(text: str) -> str:
    return unescape_data(text.replace("%3A", ":").replace("%2C", ","))


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    """Parse ``::name k=v,k=v::message`` as the Actions runner does."""
    m = re.fullmatch(r"::(\w+)(?: ([^:]*))?::(.*)", line)
    assert m, line
    props: dict[str, str] = {}
    for item in (m.group(2) or "").split(","):
        if item:
            k, _, v = item.partition("=")
            props[k] = unescape_property(v)
    return m.group(1), props, unescape_data(m.group(3))


def test_escaping_rules() -> None:
    assert escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert escape_property("a:b,c%d\n") == "a%3Ab%2Cc%25d%0A"
    # Escaping % first: an already-escaped-looking value round-trips.
    assert unescape_data(escape_data("%0A")) == "%0A"


def test_github_annotations(repo: Path) -> None:
    secret = key("project")
    name = "we:ird,name%\nx.py"  # a file name may hold ':' ',' '%' and even a newline
    (repo / "src").mkdir()
    (repo / "src" / name).write_text(f'\n  K = "{secret}"\n')
    (repo / "src" / "ok.py").write_text(f'K = "{secret}"\n')
    code, out, _ = run(["scan", "-f", "github", "--show-secrets", "src"])
    assert code == 1
    assert secret not in out  # CI logs are public: always redacted
    lines = out.strip().split("\n")
    commands = [parse_command(ln) for ln in lines if ln.startswith("::error")]
    assert len(commands) == 2
    files = {}
    for cmd, props, msg in commands:
        assert cmd == "error"
        assert redact(secret) in msg
        assert props["title"].startswith("keyscan: OpenAI project API key")
        files[props["file"]] = props
    assert set(files) == {f"src/{name}", "src/ok.py"}
    assert files[f"src/{name}"]["line"] == "2" and files[f"src/{name}"]["col"] == "8"
    assert int(files["src/ok.py"]["endColumn"]) == 6 + len(secret)
    assert lines[-1] == "keyscan: 1 secret(s) in 2 location(s)"


def test_github_clean_and_errors(repo: Path) -> None:
    (repo / "a.py").write_text("x = 1\n")
    code, out, _ = run(["scan", "-f", "github", "a.py"])
    assert code == 0 and out == "keyscan: no OpenAI keys found\n"
    code, out, _ = run(["scan", "-f", "github", "-q", "a.py"])
    assert code == 0 and out == ""
    code, out, _ = run(["scan", "-f", "github", "a.py", "nope%\n.py"])
    assert code == 2
    [line] = [ln for ln in out.splitlines() if ln.startswith("::error")]
    assert "nope%25%0A.py" in line


def test_junit_is_well_formed_with_hostile_names(repo: Path) -> None:
    secret = key("svcacct")
    name = 'a<&>"\x1b[31m.py'
    (repo / name).write_text(f'K = "{secret}"\nL = "{secret}"\n')
    (repo / "b.py").write_text("nothing here\n")
    code, out, _ = run(["scan", "-f", "junit", "--show-secrets", "."])
    assert code == 1
    assert secret not in out and "\x1b" not in out
    root = ET.fromstring(out.encode())
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 2 and suite.get("failures") == "2" and suite.get("tests") == "2"
    for case in cases:
        failure = case.find("failure")
        assert failure is not None
        assert redact(secret) in (failure.get("message") or "")
        assert failure.get("type") == "openai-service-account-key"
        assert case.get("file") == 'a<&>"\\x1b[31m.py'
    assert [c.get("line") for c in cases] == ["1", "2"]


def test_junit_clean_and_error(repo: Path) -> None:
    (repo / "a.py").write_text("x = 1\n")
    code, out, _ = run(["scan", "-f", "junit", "a.py"])
    assert code == 0
    root = ET.fromstring(out.encode())
    assert root.get("tests") == "1" and root.get("failures") == "0"
    code, out, _ = run(["scan", "-f", "junit", "a.py", "missing"])
    assert code == 2
    root = ET.fromstring(out.encode())
    assert root.get("errors") == "1"
    err = root.find("testsuite/testcase/error")
    assert err is not None and "missing" in (err.get("message") or "")


def test_formats_are_offered_on_every_scanning_command() -> None:
    for command in (["scan"], ["git"], ["ci"], ["hook", "pre-commit"]):
        code, out, _ = run([*command, "--help"])
        assert code == 0
        for fmt in ("sarif", "github", "junit"):
            assert fmt in out, (command, fmt)
