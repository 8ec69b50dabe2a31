"""Issue 15, Azure OpenAI liveness on request (``--verify-azure``): a key found next to an
Azure OpenAI endpoint is checked against that endpoint only, with the documented read-only
"Models - List" call, and a hostile file cannot make keyscan send it anywhere else.

A fake Azure OpenAI data plane serves real HTTP on 127.0.0.1; requests reach it through
``keyscan.http.ConnectTo`` (the library's transport option, the CLI's hidden
``--azure-connect-to``), which keeps the Host header: the host checks are not weakened.
Keys are generated at run time; no literal key is written here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from keyscan.api import Scanner, TriageOptions, triage
from keyscan.cli import cli
from keyscan.http import ConnectTo, UnsafeBaseUrl
from keyscan.keygen import generate, key
from keyscan.models import ScanResult, fingerprint_of
from keyscan.openai_facts import AZURE_API_VERSION, azure_endpoint_host
from keyscan.verify import VerifyOptions
from keyscan.verify.azure import NO_ENDPOINT, NOT_ASKED, verify_azure_keys
from tests.fakeopenai import FakeState

HOST = "contoso-eu.openai.azure.com"


@dataclass
class Seen:
    host: str
    path: str
    query: dict[str, list[str]]
    key_fingerprint: str | None
    authorization: bool


@dataclass
class FakeAzure:
    """Keys by fingerprint -> behaviour: live, dead, firewall, forbidden, gone, busy (429
    once, then live), error (500). Unknown keys answer 401."""

    keys: dict[str, str] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    busy_left: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    address: str = ""

    def add(self, secret: str, mode: str = "live") -> str:
        self.keys[fingerprint_of(secret)] = mode
        return secret

    def answer(self, fp: str | None) -> tuple[int, dict[str, Any]]:
        mode = self.keys.get(fp or "", "dead")
        if mode == "busy":
            with self.lock:
                left = self.busy_left.setdefault(fp or "", 1)
                self.busy_left[fp or ""] = left - 1
            mode = "live" if left <= 0 else "busy"
        if mode == "live":
            return 200, {"object": "list", "data": [{"id": "gpt-4o", "object": "model"}]}
        if mode == "dead":
            return 401, {"error": {"code": "401", "message": "Access denied due to invalid "
                                   "subscription key or wrong API endpoint."}}  # fmt: skip
        if mode == "firewall":
            return 403, {"error": {"code": "AccessDenied",
                                   "message": "Access denied due to Virtual Network/Firewall rules."}}  # fmt: skip
        if mode == "forbidden":
            return 403, {"error": {"code": "PermissionDenied", "message": "The key is disabled."}}
        if mode == "gone":
            return 404, {"error": {"code": "404", "message": "Resource not found"}}
        if mode == "busy":
            return 429, {"error": {"code": "429", "message": "Rate limit is exceeded."}}
        return 500, {"error": {"code": "InternalServerError", "message": "oops"}}


@pytest.fixture
def azure() -> Iterator[FakeAzure]:
    fake = FakeAzure()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            secret = self.headers.get("api-key")
            fp = fingerprint_of(secret) if secret else None
            parts = urlsplit(self.path)
            with fake.lock:
                bearer = "authorization" in {k.lower() for k in self.headers}
                seen = Seen(self.headers.get("host", ""), parts.path, parse_qs(parts.query), fp,
                            bearer)  # fmt: skip
                fake.seen.append(seen)
            status, body = fake.answer(fp)
            if parts.path != "/openai/models":
                status, body = 404, {"error": {"code": "404", "message": "no route"}}
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_POST = do_DELETE = do_PUT = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.address = f"127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def options(fake: FakeAzure, tmp_path: Path, **kw: Any) -> VerifyOptions:
    kw.setdefault("use_cache", False)
    kw.setdefault("cache_path", tmp_path / "cache.sqlite3")
    return VerifyOptions(
        azure=True,
        azure_transport=ConnectTo(fake.address),
        backoff_initial=0.01,
        backoff_max=0.02,
        timeout=5,
        **kw,
    )


def checked(text: str, opts: VerifyOptions, verify: bool = True) -> ScanResult:
    result = Scanner().scan_text(text, path="settings.env")
    return triage(result, TriageOptions(verify=verify, verify_options=opts))


def azure_file(secret: str, endpoint: str = f"https://{HOST}/") -> str:
    return f"AZ_BASE={endpoint}\nAZ_DEPLOYMENT=gpt-4o\nAZ_PASS={secret}\n"


# --- the endpoint and its host checks ---------------------------------------------------------

VALID = {
    f"https://{HOST}/": HOST,
    f"https://{HOST}/openai/deployments/gpt/chat/completions?api-version=2024-06-01": HOST,
    HOST: HOST,
    "HTTPS://Contoso.OpenAI.Azure.com": "contoso.openai.azure.com",
    "https://acme-01.cognitiveservices.azure.com/": "acme-01.cognitiveservices.azure.com",
    "https://gov-east.openai.azure.us/": "gov-east.openai.azure.us",
    "https://cn-north.cognitiveservices.azure.cn": "cn-north.cognitiveservices.azure.cn",
    f"https://{HOST}.": HOST,  # a full stop ending a sentence
}

LOOKALIKES = [
    "https://xx.openai.azure.com.evil.io/",
    "xx.openai.azure.com.evil.io",
    "evil.io/xx.openai.azure.com",
    "https://evil.io/xx.openai.azure.com",
    "https://user:pass@xx.openai.azure.com/",
    "https://xx.openai.azure.com@evil.io/",
    "https://xx.openai.azure.com:8443/",
    "https://xx.openai.azure.com:443/",
    "http://xx.openai.azure.com/",
    "ftp://xx.openai.azure.com/",
    "https://evil.io\\@xx.openai.azure.com/",
    "https://xx.openai.azure.com%2eevil.io/",
    "https://x\u043e.openai.azure.com/",  # Cyrillic o in the resource name
    "https://xx.openai.azure.com\uff0eevil.io/",  # fullwidth full stop
    "https://xx.openai.azure.co/",
    "https://127.0.0.1/.openai.azure.com",
    "https://[::1]/xx.openai.azure.com",
    "https://-bad.openai.azure.com/",
    "https://" + "a" * 64 + ".openai.azure.com/",
]


@pytest.mark.parametrize("text", sorted(VALID))
def test_azure_hosts_are_recognised(text: str) -> None:
    assert azure_endpoint_host(text) == VALID[text]


@pytest.mark.parametrize("text", LOOKALIKES)
def test_lookalike_hosts_are_refused(text: str) -> None:
    assert azure_endpoint_host(text) is None


def test_the_endpoint_host_is_kept_with_the_finding(tmp_path: Path) -> None:
    secret = generate("{hex:32}")
    text = azure_file(secret, f"https://{HOST}/openai/deployments/gpt?api-version=2024-06-01")
    (finding,) = Scanner().scan_text(text).findings
    assert finding.family == "azure"
    assert [loc.extra.get("azure_endpoint") for loc in finding.locations] == [HOST]
    # ... in the JSON report too (host only: no scheme, path or query)
    (tmp_path / "a.env").write_text(text)
    out = subprocess.run(
        [sys.executable, "-m", "keyscan", "scan", "--format", "json", str(tmp_path)],
        capture_output=True, text=True,
    )  # fmt: skip
    doc = json.loads(out.stdout)
    (loc,) = doc["findings"][0]["locations"]
    assert loc["extra"]["azure_endpoint"] == HOST
    assert secret not in out.stdout


def test_the_nearest_valid_endpoint_is_kept() -> None:
    secret = generate("{hex:32}")
    text = (
        "FAR=https://far-away.openai.azure.com/\n" + "# filler\n" * 30
        + "URL=https://xx.openai.azure.com.evil.io/\n"
        + f"NEAR=https://near-one.openai.azure.com/\nKEY={secret}\n"
    )  # fmt: skip
    (finding,) = Scanner().scan_text(text).findings
    assert finding.locations[0].extra["azure_endpoint"] == "near-one.openai.azure.com"


# --- the check ----------------------------------------------------------------------------------


def test_a_live_key_is_checked_against_its_endpoint_only(azure: FakeAzure, tmp_path: Path) -> None:
    secret = azure.add(generate("{hex:32}"))
    result = checked(azure_file(secret), options(azure, tmp_path))
    (f,) = result.findings
    assert f.verification is not None and f.verification.status == "live"
    assert HOST in f.verification.reason
    (seen,) = azure.seen
    assert seen.host == HOST
    assert seen.path == "/openai/models"
    assert seen.query == {"api-version": [AZURE_API_VERSION]}
    assert seen.key_fingerprint == fingerprint_of(secret)
    assert not seen.authorization  # api-key header, never a bearer


def test_the_84_character_form_too(azure: FakeAzure, tmp_path: Path) -> None:
    secret = azure.add(generate("{alnum:84}"))
    text = f'{{"endpoint": "https://acme.cognitiveservices.azure.com/", "key": "{secret}"}}'
    (f,) = checked(text, options(azure, tmp_path)).findings
    assert f.verification is not None and f.verification.status == "live"
    assert azure.seen[0].host == "acme.cognitiveservices.azure.com"


@pytest.mark.parametrize(
    ("mode", "status", "words"),
    [
        ("dead", "invalid", "does not open this resource"),
        ("forbidden", "invalid", "HTTP 403"),
        ("firewall", "unknown", "network rules"),
        ("gone", "unknown", "HTTP 404"),
        ("error", "unknown", "HTTP 500"),
    ],
)
def test_answers(
    azure: FakeAzure, tmp_path: Path, mode: str, status: str, words: str
) -> None:
    secret = azure.add(generate("{hex:32}"), mode)
    (f,) = checked(azure_file(secret), options(azure, tmp_path, retries=1)).findings
    assert f.verification is not None
    assert (f.verification.status, words in f.verification.reason) == (status, True), (
        f.verification
    )
    assert secret not in f.verification.reason
    assert len(azure.seen) == (2 if mode == "error" else 1)  # 5xx: retried


def test_a_rate_limit_is_retried(azure: FakeAzure, tmp_path: Path) -> None:
    secret = azure.add(generate("{hex:32}"), "busy")
    (f,) = checked(azure_file(secret), options(azure, tmp_path)).findings
    assert f.verification is not None and f.verification.status == "live"
    assert len(azure.seen) == 2


def test_a_rate_limit_that_lasts_is_unknown(azure: FakeAzure, tmp_path: Path) -> None:
    secret = azure.add(generate("{hex:32}"), "busy")
    azure.busy_left[fingerprint_of(secret)] = 99
    (f,) = checked(azure_file(secret), options(azure, tmp_path, retries=1)).findings
    assert f.verification is not None and f.verification.status == "unknown"
    assert "429" in f.verification.reason


def test_network_failure_is_unknown(tmp_path: Path) -> None:
    secret = generate("{hex:32}")
    opts = VerifyOptions(
        azure=True, azure_transport=ConnectTo("127.0.0.1:9"), use_cache=False, retries=0
    )  # nothing listens on the discard port
    (f,) = checked(azure_file(secret), opts).findings
    assert f.verification is not None and f.verification.status == "unknown"
    assert secret not in f.verification.reason


@pytest.mark.parametrize("endpoint", LOOKALIKES)
def test_a_lookalike_host_is_never_contacted(
    azure: FakeAzure, tmp_path: Path, endpoint: str
) -> None:
    secret = azure.add(generate("{hex:32}"))
    result = checked(f'{{"endpoint": "{endpoint}", "api_key": "{secret}"}}', options(azure, tmp_path))
    for f in result.findings:
        assert f.verification is not None and f.verification.status == "unknown"
        if f.family == "azure":
            assert f.verification.reason == NO_ENDPOINT
    assert azure.seen == []


def test_a_hostile_host_in_a_report_is_never_contacted(azure: FakeAzure, tmp_path: Path) -> None:
    """Hosts read back from a report are untrusted: checked again before any request."""
    secret = azure.add(generate("{hex:32}"))
    result = Scanner().scan_text(azure_file(secret))
    (f,) = result.findings
    f.locations[0].extra["azure_endpoint"] = "evil.io"
    triage(result, TriageOptions(verify=True, verify_options=options(azure, tmp_path)))
    assert f.verification is not None and f.verification.reason == NO_ENDPOINT
    out = verify_azure_keys([(secret, "127.0.0.1"), (secret, "xx.openai.azure.com.evil.io")],
                            options(azure, tmp_path))  # fmt: skip
    assert {v.status for v in out.values()} == {"unknown"}
    assert azure.seen == []


def test_without_the_flag_azure_keys_stay_unknown(azure: FakeAzure, tmp_path: Path) -> None:
    secret = azure.add(generate("{hex:32}"))
    opts = options(azure, tmp_path)
    opts.azure = False
    opts.api_base = "https://api.openai.com/v1"
    opts.transport = None
    (f,) = checked(azure_file(secret), opts).findings
    assert f.verification is not None and f.verification.status == "unknown"
    assert f.verification.reason == NOT_ASKED
    assert azure.seen == []


def test_openai_keys_still_go_to_the_openai_api(
    azure: FakeAzure, fake_state: FakeState, tmp_path: Path
) -> None:
    from tests.fakeopenai import AsyncFakeTransport

    openai_key, secret = key("project"), azure.add(generate("{hex:32}"))
    fake_state.add_key(openai_key)
    opts = options(azure, tmp_path)
    opts.transport = AsyncFakeTransport(fake_state)
    result = checked(f"OPENAI_API_KEY={openai_key}\n" + azure_file(secret), opts)
    assert {f.family: str(f.verification.status) for f in result.findings if f.verification} == {
        "project": "live",
        "azure": "live",
    }
    assert [s.key_fingerprint for s in azure.seen] == [fingerprint_of(secret)]
    assert [r.bearer_fingerprint for r in fake_state.requests()] == [fingerprint_of(openai_key)]


def test_cache_is_keyed_by_fingerprint_and_host(azure: FakeAzure, tmp_path: Path) -> None:
    secret = azure.add(generate("{hex:32}"))
    opts = options(azure, tmp_path, use_cache=True)
    first = verify_azure_keys([(secret, HOST)], opts)
    assert first[(fingerprint_of(secret), HOST)].status == "live"
    again = verify_azure_keys([(secret, HOST)], opts)
    assert again[(fingerprint_of(secret), HOST)].cached
    assert len(azure.seen) == 1
    other = verify_azure_keys([(secret, "other-one.openai.azure.com")], opts)
    assert not other[(fingerprint_of(secret), "other-one.openai.azure.com")].cached
    assert [s.host for s in azure.seen] == [HOST, "other-one.openai.azure.com"]
    raw = (tmp_path / "cache.sqlite3").read_bytes()
    assert secret.encode() not in raw


def test_connect_to_accepts_loopback_only() -> None:
    for bad in ("10.0.0.1:80", "evil.io:443", "127.0.0.1", "127.0.0.1:0", "x"):
        with pytest.raises(UnsafeBaseUrl):
            ConnectTo(bad)
    assert ConnectTo("[::1]:8080").port == 8080


# --- the command line ---------------------------------------------------------------------------


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEYSCAN_CACHE_DIR": str(cwd / "cache"), "HOME": str(cwd)}
    env.pop("OPENAI_BASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "keyscan", *args], capture_output=True, text=True, env=env
    )


def test_cli_verify_azure(azure: FakeAzure, tmp_path: Path) -> None:
    live = azure.add(generate("{hex:32}"))
    (tmp_path / "app.env").write_text(azure_file(live))
    result = run("scan", "--verify-azure", "--azure-connect-to", azure.address,
                 "--format", "json", str(tmp_path / "app.env"), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    (f,) = doc["findings"]
    assert f["verification"]["status"] == "live"
    assert live not in result.stdout + result.stderr
    assert [s.host for s in azure.seen] == [HOST]


def test_cli_verify_alone_sends_no_azure_key(azure: FakeAzure, tmp_path: Path) -> None:
    secret = azure.add(generate("{hex:32}"))
    (tmp_path / "app.env").write_text(azure_file(secret))
    result = run("scan", "--verify", "--azure-connect-to", azure.address, "--format", "json",
                 str(tmp_path / "app.env"), cwd=tmp_path)  # fmt: skip
    doc = json.loads(result.stdout)
    assert doc["findings"][0]["verification"]["reason"] == NOT_ASKED
    assert azure.seen == []


def test_cli_verify_command_with_endpoint_on_the_line(azure: FakeAzure, tmp_path: Path) -> None:
    dead = azure.add(generate("{hex:32}"), "dead")
    result = CliRunner().invoke(
        cli,
        ["verify", "--verify-azure", "--azure-connect-to", azure.address, "--no-cache",
         "--format", "json"],
        input=f"https://{HOST}/ {dead}\n",
        env={"HOME": str(tmp_path), "KEYSCAN_CACHE_DIR": str(tmp_path / "c")},
    )  # fmt: skip
    assert dead not in result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["findings"][0]["verification"]["status"] == "invalid"


def test_cli_refuses_a_connect_to_address_off_loopback(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text(azure_file(generate("{hex:32}")))
    result = run("scan", "--verify-azure", "--azure-connect-to", "192.0.2.1:443",
                 str(tmp_path / "a.env"), cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert "--azure-connect-to" in result.stderr


def test_revoke_says_how_to_regenerate(fake_state: FakeState, tmp_path: Path) -> None:
    from tests.fakeopenai import FakeServer

    admin = key("admin")
    fake_state.add_admin_key(admin)
    secret = generate("{hex:32}")
    with FakeServer(fake_state) as server:
        result = CliRunner().invoke(
            cli,
            ["revoke", "-", "--yes", "--recheck-delay", "0", "--backoff", "0"],
            input=azure_file(secret),
            env={"OPENAI_ADMIN_KEY": admin, "OPENAI_BASE_URL": server.base_url,
                 "XDG_DATA_HOME": str(tmp_path / "d"), "XDG_CACHE_HOME": str(tmp_path / "c"),
                 "HOME": str(tmp_path)},
        )  # fmt: skip
    out = result.stdout + result.stderr
    assert "az cognitiveservices account keys regenerate" in out, out
    assert secret not in out
    assert [r for r in fake_state.requests() if r.method == "DELETE"] == []
