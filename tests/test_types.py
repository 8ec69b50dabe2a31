"""Typed data, one error base, exit codes in one place, reports owning their helpers
(issue 12, items 4 and 5)."""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import keyscan
from keyscan.errors import KeyscanError


def _keyscan_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(keyscan.__path__, "keyscan."):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return names


def test_every_keyscan_exception_is_a_keyscan_error() -> None:
    own: dict[str, type[BaseException]] = {}
    for name in _keyscan_modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, Exception)
                and value.__module__.startswith("keyscan.")
            ):
                own[f"{value.__module__}.{value.__qualname__}"] = value
    # The ones named in the issue, so that the walk above cannot silently find nothing.
    for expected in (
        "keyscan.rules.RuleError",
        "keyscan.config.ConfigError",
        "keyscan.baseline.BaselineError",
        "keyscan.privatefile.PrivateFileError",
        "keyscan.revoke.errors.AdminApiError",
        "keyscan.revoke.model.InputError",
        "keyscan.audit.store.StoreError",
        "keyscan.git.scope.CiError",
        "keyscan.http.UnsafeBaseUrl",
    ):
        assert expected in own, sorted(own)
    assert len(own) >= 15, sorted(own)
    not_based = sorted(n for n, cls in own.items() if not issubclass(cls, KeyscanError))
    assert not_based == []
    # Ctrl-C / SIGTERM is not an error: a BaseException, so that ``except Exception`` (and
    # ``except KeyscanError``) never swallows it.
    from keyscan.interrupts import Interrupted

    assert not issubclass(Interrupted, Exception)


def test_error_bases_that_callers_catch_are_kept() -> None:
    from keyscan.baseline import BaselineError
    from keyscan.config import ConfigError
    from keyscan.http import AttemptTimeout, UnsafeBaseUrl
    from keyscan.privatefile import PrivateFileError
    from keyscan.rules import RuleError
    from keyscan.safejson import TooDeep

    for cls in (RuleError, ConfigError, BaselineError, UnsafeBaseUrl, TooDeep):
        assert issubclass(cls, ValueError)
    assert issubclass(PrivateFileError, OSError)
    assert issubclass(AttemptTimeout, TimeoutError)


# --- reports own their helpers ---------------------------------------------------------------


def test_report_package_does_not_import_the_pipeline() -> None:
    code = (
        "import sys\n"
        "import keyscan.report, keyscan.report.options\n"
        "for name in ('text', 'json_report', 'sarif', 'github', 'junit'):\n"
        "    __import__('keyscan.report.' + name)\n"
        "print('keyscan.pipeline' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


def test_terminal_escaping_lives_in_one_module() -> None:
    from keyscan.terminal import safe

    defined = sorted(
        {
            f"{value.__module__}.{value.__qualname__}"
            for name in _keyscan_modules()
            for value in vars(importlib.import_module(name)).values()
            if inspect.isfunction(value) and value.__name__ == "safe"
        }
    )
    assert defined == ["keyscan.terminal.safe"]
    assert safe("a\x1b[31mb\u202e") == "a\\x1b[31mb\\u202e"


def test_output_options_belong_to_the_report_package() -> None:
    import keyscan.pipeline as pipeline
    from keyscan.report.options import OutputOptions

    assert OutputOptions.__module__ == "keyscan.report.options"
    assert pipeline.RunOptions().output == OutputOptions()


# --- exit codes in one place -----------------------------------------------------------------


def test_exit_codes_are_decided_in_one_module() -> None:
    import re

    from keyscan import exitcodes

    assert (exitcodes.EXIT_CLEAN, exitcodes.EXIT_FINDINGS, exitcodes.EXIT_ERROR) == (0, 1, 2)
    assert (exitcodes.EXIT_INTERRUPTED, exitcodes.EXIT_TERMINATED) == (130, 143)
    # No module but keyscan.exitcodes picks a failing code with a literal.
    literal = re.compile(r"(sys\.exit|os\._exit)\(\s*(1|2|130|143|128)\b|exit\(\s*1 if|return 128 \+")
    root = Path(keyscan.__file__).parent
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for path in sorted(root.rglob("*.py"))
        if path.name != "exitcodes.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if literal.search(line)
    ]
    assert offenders == []


def test_exit_code_decisions() -> None:
    from keyscan import api, exitcodes
    from keyscan.interrupts import Interrupted
    from keyscan.keygen import key
    from keyscan.models import ScanError, Verification
    from keyscan.pipeline import RunOptions

    assert api.EXIT_CLEAN is exitcodes.EXIT_CLEAN and api.EXIT_ERROR is exitcodes.EXIT_ERROR
    assert exitcodes.decide(error=True, findings=True) == 2
    assert exitcodes.decide(error=False, findings=True) == 1
    assert exitcodes.decide(error=False, findings=False) == 0
    assert Interrupted(2).exit_code == exitcodes.EXIT_INTERRUPTED
    assert Interrupted(15).exit_code == exitcodes.EXIT_TERMINATED

    result = api.scan_text(f"OPENAI_API_KEY={key('project')}\n")
    assert exitcodes.for_result(result) == 1
    result.findings[0].verification = Verification(status="invalid")
    assert exitcodes.for_result(result, fail_on="live") == 0
    assert exitcodes.for_result(result, fail_on="any") == 1
    result.findings[0].verification = Verification(status="unknown")
    assert exitcodes.for_result(result, fail_on="live") == 1
    assert exitcodes.for_result(result, extra_error=True) == 2
    result.errors.append(ScanError("x", "unreadable"))
    assert exitcodes.for_result(result) == 2
    assert api.exit_code(result) == 2
    assert RunOptions().fail_on == "any"
    assert exitcodes.for_revocation_after_scan(2) == 2
    assert exitcodes.for_revocation_after_scan(1) == 0


# --- one module holds the OpenAI family facts ------------------------------------------------


def test_openai_facts_agree_with_keygen_rules_and_redactions() -> None:
    from keyscan import openai_facts as facts
    from keyscan.keygen import EXPECTED_FAMILY, FAMILY_TEMPLATES, key
    from keyscan.models import redact
    from keyscan.rules import load_rules
    from keyscan.verify import family_of

    for name in FAMILY_TEMPLATES:
        secret = key(name)
        expected = EXPECTED_FAMILY[name]
        assert facts.MARKER in secret
        assert (facts.family_of_key(secret) or "legacy") == expected, name
        # A redaction keeps 8 characters: enough to tell the family.
        assert facts.family_of_head(redact(secret)) == facts.family_of_key(secret), name
        assert expected in facts.FAMILIES
        assert family_of(secret, expected) == expected
    assert facts.owner_type_for_prefix(redact(key("svcacct"))) == "service_account"
    assert facts.owner_type_for_prefix("sk-proj-...abcd", "service_account") == "service_account"
    assert facts.owner_type_for_prefix(redact(key("admin"))) is None
    # The rules are data, but their prefixes say the same as the facts.
    by_prefix = {
        prefix.decode(): family for rule in load_rules() for prefix, family in rule.family_by_prefix
    }
    assert by_prefix == dict(facts.PREFIX_FAMILY)
    assert {rule.family for rule in load_rules()} <= set(facts.FAMILIES)


def test_openai_prefixes_are_written_in_one_module() -> None:
    import re

    written = re.compile(r"\"(sk-(svcacct|svcac|proj|admin|None)-?|T3BlbkFJ)\"")
    root = Path(keyscan.__file__).parent
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for path in sorted(root.rglob("*.py"))
        if path.name != "openai_facts.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if written.search(line)
    ]
    assert offenders == []


# --- typed data ------------------------------------------------------------------------------


def test_verification_status_is_a_closed_set_written_as_before() -> None:
    import pytest

    from keyscan.models import Verification, VerificationStatus
    from keyscan.verify.classify import STATUSES

    assert STATUSES == (
        "live",
        "live-restricted",
        "live-no-quota",
        "live-rate-limited",
        "invalid",
        "invalid-account",
        "unknown",
    )
    assert [s.value for s in VerificationStatus] == list(STATUSES)
    v = Verification(status="live-no-quota")  # read back from a cache or a report
    assert v.status is VerificationStatus.LIVE_NO_QUOTA and v.is_live and not v.is_dead
    assert f"{v.status}" == "live-no-quota" and str(v.status) == "live-no-quota"
    assert f"[{v.status:<10}]" == "[live-no-quota]"
    assert json.dumps(v.to_json()["status"]) == '"live-no-quota"'
    assert Verification(status=VerificationStatus.INVALID_ACCOUNT).is_dead
    unknown = Verification(status=VerificationStatus.UNKNOWN)
    assert not unknown.is_live and not unknown.is_dead
    with pytest.raises(ValueError, match="verification status must be one of"):
        Verification(status="alive")


def test_suppression_and_revocation_are_typed_fields() -> None:
    from keyscan import api
    from keyscan.keygen import key
    from keyscan.models import RevocationOutcome
    from keyscan.pipeline import RunOptions, apply_suppressions
    from keyscan.report.json_report import finding_to_json

    result = api.scan_text(f"token = '{key('project')}'\n")
    (finding,) = result.findings
    apply_suppressions(result.findings, RunOptions(suppressors=[lambda f: "baseline"]))
    assert finding.suppressed_by == ["baseline"]
    assert "suppressed_by" not in finding.extra
    finding.revocation = RevocationOutcome("revoked", key_id="key_abc", project="proj_1")
    doc = finding_to_json(finding)
    assert doc["extra"] == {
        "revocation": {
            "status": "revoked",
            "key_id": "key_abc",
            "project": "proj_1",
            "request_id": None,
        }
    }
    assert "suppressed_by" not in json.dumps(doc)


# --- one module writes and reads keyscan's JSON report ---------------------------------------


def _cli(args: list[str], cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "KEYSCAN_"))}
    env.update({"XDG_CACHE_HOME": str(cwd / "cache"), "XDG_DATA_HOME": str(cwd / "data")})
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_json_report_round_trip(tmp_path: Path) -> None:
    from keyscan import api
    from keyscan.keygen import key
    from keyscan.models import Verification
    from keyscan.report.json_report import (
        location_from_json,
        read_report,
        render,
        verification_from_json,
    )
    from keyscan.report.options import OutputOptions

    secret = key("project")
    result = api.scan_text(f"OPENAI_API_KEY={secret}\n", path="app/.env")
    result.findings[0].verification = Verification(
        status="live-restricted", reason="restricted key", http_status=401, project="proj_1"
    )
    for fmt in ("json", "jsonl"):
        path = tmp_path / f"r.{fmt}"
        path.write_text(render(result, OutputOptions(format=fmt)), encoding="utf-8")
        (entry,) = read_report(path)
        assert entry["fingerprint"] == result.findings[0].fingerprint
        assert "secret" not in entry
        loc = location_from_json(entry["locations"][0])
        assert loc is not None and (loc.path, loc.line, loc.column) == ("app/.env", 1, 16)
        v = verification_from_json(entry["verification"])
        assert v is not None and v.to_json() == result.findings[0].verification.to_json()
    # A status this version does not know is no verification, not a crash.
    assert verification_from_json({"status": "alive"}) is None
    assert verification_from_json({"status": ["live"]}) is None


def test_audit_json_uses_the_report_serialisers() -> None:
    from keyscan.audit import json_doc
    from keyscan.report import json_report

    assert json_doc.finding_to_json is json_report.finding_to_json
    assert json_doc.SCHEMA_VERSION is json_report.SCHEMA_VERSION


def test_verify_and_revoke_read_reports_alike(tmp_path: Path) -> None:
    # A JSON Lines report cut short (its summary line lost) is not a report, for both.
    truncated = tmp_path / "cut.jsonl"
    truncated.write_text(
        json.dumps({"type": "finding", "fingerprint": "0" * 64, "redacted": "sk-proj-...abcd"})
        + "\n",
        encoding="utf-8",
    )
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000, encoding="utf-8")
    missing = tmp_path / "missing.json"
    for report in (truncated, deep, missing):
        lines = []
        for args in (["verify", "--report", str(report)], ["revoke", "--report", str(report)]):
            proc = _cli(args, tmp_path)
            assert proc.returncode == 2, (args, proc.stderr)
            assert proc.stderr.count("\n") == 1, proc.stderr
            lines.append(proc.stderr.strip())
        assert lines[0] == lines[1]
        assert lines[0].startswith("keyscan: error: ") and str(report) in lines[0]
