"""Issue 15, Codex CLI credentials: ``$CODEX_HOME/auth.json`` (its OPENAI_API_KEY, and the
ChatGPT login tokens ``tokens.access_token`` / ``tokens.id_token``, JWTs issued by
auth.openai.com, and ``tokens.refresh_token`` where the file is recognisably an auth.json).

Keys and tokens are generated at run time (keyscan.keygen); no literal one is written here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from keyscan.api import Scanner
from keyscan.cli import cli
from keyscan.keygen import generate, jwt, key
from keyscan.models import fingerprint_of
from keyscan.openai_facts import CODEX_FAMILIES
from keyscan.verify import verify_keys
from tests.fakeopenai import FakeState
from tests.git_helpers import Repo
from tests.test_verify_units import opts


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner()


def auth_json(
    api_key: str | None = None,
    access: str | None = None,
    ident: str | None = None,
    refresh: str | None = None,
    auth_mode: bool = True,
) -> str:
    doc: dict[str, object] = {}
    if auth_mode:
        doc["auth_mode"] = "chatgpt" if access else "apikey"
    doc["OPENAI_API_KEY"] = api_key
    if access or ident or refresh:
        doc["tokens"] = {
            "id_token": ident or jwt("id"),
            "access_token": access or jwt("access"),
            "refresh_token": refresh or generate("{b64url:60}7"),
            "account_id": generate("{hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}"),
        }
    doc["last_refresh"] = "2025-09-01T10:00:00.000000Z"
    return json.dumps(doc, indent=2)


def found(scanner: Scanner, text: str) -> dict[str, tuple[str, str]]:
    return {
        f.secret: (f.family, f.confidence.name.lower())
        for f in scanner.scan_text(text, path="auth.json").findings
    }


def test_api_key_field_of_auth_json(scanner: Scanner) -> None:
    for family in ("project", "svcacct", "admin"):
        secret = key(family)
        out = found(scanner, auth_json(api_key=secret))
        assert secret in out and out[secret][1] == "high", out


def test_chatgpt_login_tokens_each_get_their_family(scanner: Scanner) -> None:
    access, ident, refresh = jwt("access"), jwt("id"), generate("{b64url:80}9")
    out = found(scanner, auth_json(access=access, ident=ident, refresh=refresh))
    assert out[access] == ("codex_access_token", "high")
    assert out[ident] == ("codex_id_token", "high")
    assert out[refresh] == ("codex_refresh_token", "medium")
    assert len(out) == 3


def test_both_api_key_and_tokens_in_one_file(scanner: Scanner) -> None:
    secret, access = key("project"), jwt("access")
    out = found(scanner, auth_json(api_key=secret, access=access))
    assert out[secret][0] == "project" and out[access][0] == "codex_access_token"
    assert len(out) == 4


def test_jwt_family_from_claims_outside_auth_json(scanner: Scanner) -> None:
    access, ident = jwt("access"), jwt("id")
    text = f"curl -H 'Authorization: Bearer {access}' https://chatgpt.com/backend-api/\n"
    text += f"ID={ident}\n"
    out = found(scanner, text)
    assert out == {access: ("codex_access_token", "high"), ident: ("codex_id_token", "high")}


def test_jwt_of_another_issuer_is_not_reported(scanner: Scanner) -> None:
    other = jwt("other")
    forged = jwt("access", issuer="https://auth.openai.com.evil.example")
    out = found(scanner, auth_json(access=other, ident=jwt("other")))
    assert sorted(family for family, _ in out.values()) == ["codex_refresh_token"]
    assert found(scanner, f"token: {other}\n") == {}
    assert found(scanner, f"token: {forged}\n") == {}
    # The needle without a JWT, and a JWT whose payload is no JSON, are nothing.
    assert found(scanner, "iss: https://auth.openai.com YXV0aC5vcGVuYWkuY29t\n") == {}
    broken = jwt("access")
    head, body, sig = broken.split(".")
    assert found(scanner, f"t={head}.{body[:-7]}!!{body[-5:]}.{sig}\n") == {}


def test_refresh_token_only_in_a_codex_auth_json(scanner: Scanner) -> None:
    refresh = generate("{b64url:80}9")
    doc = auth_json(access=jwt("access"), refresh=refresh, auth_mode=False)
    assert refresh not in found(scanner, doc)
    other = json.dumps({"refresh_token": refresh, "last_refresh": "yesterday"})
    assert found(scanner, other) == {}
    assert refresh in found(scanner, auth_json(access=jwt("access"), refresh=refresh))


def test_tokens_are_redacted_in_cli_output(tmp_path: Path) -> None:
    access, refresh = jwt("access"), generate("{b64url:80}9")
    (tmp_path / "auth.json").write_text(auth_json(access=access, refresh=refresh))
    for fmt in ("text", "json", "sarif"):
        result = subprocess.run(
            [sys.executable, "-m", "keyscan", "scan", "--format", fmt, str(tmp_path)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 1, result.stderr
        assert access not in result.stdout + result.stderr
        assert refresh not in result.stdout + result.stderr
        assert access[:8] in result.stdout and access[-4:] in result.stdout


def test_auth_json_in_git_history(tmp_path: Path, scanner: Scanner) -> None:
    access = jwt("access")
    repo = Repo(tmp_path / "r")
    repo.commit("add codex login", (".codex/auth.json", auth_json(access=access)))
    repo.commit("remove it", (".codex/auth.json", "{}\n"))
    result = scanner.scan_repo(repo.path)
    families = {f.secret: f.family for f in result.findings}
    assert families.get(access) == "codex_access_token"


def test_verify_answers_unknown_and_sends_nothing(fake_state: FakeState, tmp_path: Path) -> None:
    tokens = [(jwt("access"), "codex_access_token"), (jwt("id"), "codex_id_token"),
              (generate("{b64url:80}9"), "codex_refresh_token")]
    out = verify_keys(tokens, opts(fake_state, tmp_path, use_cache=False))
    for secret, _family in tokens:
        verdict = out[fingerprint_of(secret)]
        assert verdict.status == "unknown"
        assert "no read-only check" in verdict.reason
    assert fake_state.requests() == []
    assert set(CODEX_FAMILIES) == {f for _, f in tokens}


def test_revoke_never_sends_codex_tokens_to_the_admin_api(
    fake_state: FakeState, tmp_path: Path
) -> None:
    from tests.fakeopenai import FakeServer

    admin = key("admin")
    fake_state.add_admin_key(admin)
    access, refresh = jwt("access"), generate("{b64url:80}9")
    text = auth_json(access=access, refresh=refresh)
    with FakeServer(fake_state) as server:
        env = {
            "OPENAI_ADMIN_KEY": admin,
            "OPENAI_BASE_URL": server.base_url,
            "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "HOME": str(tmp_path / "home"),
        }
        result = CliRunner().invoke(
            cli, ["revoke", "-", "--yes", "--recheck-delay", "0", "--backoff", "0"],
            input=text, env=env,
        )
    out = result.stdout + result.stderr
    assert result.exit_code == 1, out
    assert "Codex CLI ChatGPT login token" in out and "Admin API cannot revoke" in out
    for secret in (access, refresh, admin):
        assert secret not in out
    assert [r for r in fake_state.requests() if r.method == "DELETE"] == []
    for r in fake_state.requests():
        assert access not in str(r.__dict__) and refresh not in str(r.__dict__)
