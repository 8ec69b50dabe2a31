"""``keyscan hook agent``: replays hook payloads shaped as the Claude Code hooks reference
documents them (and the Codex CLI's PreToolUse input, codex-rs/hooks), through the real
command line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from keyscan.agent import decide
from keyscan.api import Scanner
from keyscan.keygen import key
from keyscan.models import redact

BIN = Path(sys.executable).parent


def base(event: str, cwd: Path) -> dict[str, Any]:
    return {
        "session_id": "abc123",
        "transcript_path": str(cwd / "transcript.jsonl"),
        "cwd": str(cwd),
        "permission_mode": "default",
        "hook_event_name": event,
    }


def pre(tool: str, tool_input: dict[str, Any], cwd: Path) -> dict[str, Any]:
    return {**base("PreToolUse", cwd), "tool_name": tool, "tool_input": tool_input,
            "tool_use_id": "toolu_01"}  # fmt: skip


def run(payload: dict[str, Any] | str, *args: str) -> subprocess.CompletedProcess[str]:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    return subprocess.run(
        [str(BIN / "keyscan"), "hook", "agent", *args], input=data, text=True,
        capture_output=True, timeout=60,
    )  # fmt: skip


def assert_blocked(proc: subprocess.CompletedProcess[str], secret: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert redact(secret) in proc.stderr
    assert secret not in proc.stderr + proc.stdout
    assert "OPENAI_API_KEY" in proc.stderr


def test_write_with_a_key_is_blocked(tmp_path: Path) -> None:
    secret = key("project")
    payload = pre("Write", {"file_path": str(tmp_path / "app.py"),
                            "content": f"client = OpenAI(api_key='{secret}')\n"}, tmp_path)  # fmt: skip
    proc = run(payload)
    assert_blocked(proc, secret)
    assert "environment" in proc.stderr


def test_clean_write_passes(tmp_path: Path) -> None:
    payload = pre("Write", {"file_path": str(tmp_path / "app.py"),
                            "content": "client = OpenAI(api_key=os.environ['OPENAI_API_KEY'])\n"},
                  tmp_path)  # fmt: skip
    proc = run(payload)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""


def test_edit_is_checked_on_the_file_as_it_will_be(tmp_path: Path) -> None:
    secret = key("svcacct")
    half, rest = secret[:30], secret[30:]
    # The file holds the start of the key; the edit completes it: only the result has it.
    target = tmp_path / "conf.py"
    target.write_text(f"KEY = '{half}PLACEHOLDER'\n")
    payload = pre("Edit", {"file_path": str(target), "old_string": "PLACEHOLDER",
                           "new_string": rest, "replace_all": False}, tmp_path)  # fmt: skip
    assert_blocked(run(payload), secret)
    # An unrelated edit to a clean file passes.
    target.write_text("x = 1\n")
    payload = pre("Edit", {"file_path": str(target), "old_string": "x = 1",
                           "new_string": "x = 2"}, tmp_path)  # fmt: skip
    assert run(payload).returncode == 0


def test_multiedit_and_notebookedit(tmp_path: Path) -> None:
    secret = key("admin")
    target = tmp_path / "m.py"
    target.write_text("a = 1\nb = 2\n")
    payload = pre("MultiEdit", {"file_path": str(target), "edits": [
        {"old_string": "a = 1", "new_string": "a = 3"},
        {"old_string": "b = 2", "new_string": f"b = '{secret}'", "replace_all": False},
    ]}, tmp_path)  # fmt: skip
    assert_blocked(run(payload), secret)
    payload = pre("NotebookEdit", {"notebook_path": str(tmp_path / "n.ipynb"), "cell_id": "c1",
                                   "new_source": f"openai.api_key = '{secret}'",
                                   "cell_type": "code", "edit_mode": "replace"}, tmp_path)  # fmt: skip
    assert_blocked(run(payload), secret)


@pytest.mark.parametrize(
    "template",
    [
        "export OPENAI_API_KEY={k}",
        "echo {k} >> .env",
        'curl https://api.openai.com/v1/models -H "Authorization: Bearer {k}"',
    ],
)
def test_bash_commands_with_a_key_are_blocked(tmp_path: Path, template: str) -> None:
    secret = key("project")
    payload = pre("Bash", {"command": template.format(k=secret), "description": "x"}, tmp_path)
    assert_blocked(run(payload), secret)


def test_bash_reading_the_environment_passes(tmp_path: Path) -> None:
    cmd = 'curl https://api.openai.com/v1/models -H "Authorization: Bearer $OPENAI_API_KEY"'
    assert run(pre("Bash", {"command": cmd}, tmp_path)).returncode == 0


def test_json_output_is_the_documented_decision(tmp_path: Path) -> None:
    secret = key("project")
    proc = run(pre("Bash", {"command": f"echo {secret}"}, tmp_path), "--output", "json")
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    out = doc["hookSpecificOutput"]
    assert out["hookEventName"] == "PreToolUse" and out["permissionDecision"] == "deny"
    assert redact(secret) in out["permissionDecisionReason"]
    assert secret not in proc.stdout


def test_prompt_with_a_pasted_key_is_blocked(tmp_path: Path) -> None:
    secret = key("project")
    payload = {**base("UserPromptSubmit", tmp_path), "prompt": f"use this key {secret} please"}
    proc = run(payload)
    assert_blocked(proc, secret)
    proc = run(payload, "--output", "json")
    doc = json.loads(proc.stdout)
    assert doc["decision"] == "block" and redact(secret) in doc["reason"]
    clean = {**base("UserPromptSubmit", tmp_path), "prompt": "write a hello world"}
    assert run(clean).returncode == 0


def test_tool_output_with_a_key_is_flagged(tmp_path: Path) -> None:
    secret = key("project")
    read = {**base("PostToolUse", tmp_path), "tool_name": "Read",
            "tool_input": {"file_path": str(tmp_path / ".env")},
            "tool_response": {"type": "text", "file": {"filePath": str(tmp_path / ".env"),
                              "content": f"OPENAI_API_KEY={secret}\n"}}}  # fmt: skip
    proc = run(read)
    assert_blocked(proc, secret)
    assert "Do not repeat" in proc.stderr
    bash = {**base("PostToolUse", tmp_path), "tool_name": "Bash",
            "tool_input": {"command": "cat .env"},
            "tool_response": {"stdout": f"K={secret}\n", "stderr": "", "interrupted": False}}  # fmt: skip
    doc = json.loads(run(bash, "--output", "json").stdout)
    assert doc["decision"] == "block" and redact(secret) in doc["reason"]


def test_codex_pre_tool_use_input(tmp_path: Path) -> None:
    """The Codex CLI's PreToolUse stdin (codex-rs/hooks pre-tool-use.command.input): Bash and
    apply_patch carry their text in tool_input.command."""
    secret = key("project")
    for tool, command in [
        ("Bash", f"export OPENAI_API_KEY={secret}"),
        ("apply_patch", f"*** Begin Patch\n*** Add File: a.env\n+K={secret}\n*** End Patch\n"),
    ]:
        payload = {"session_id": "s", "turn_id": "t", "transcript_path": None,
                   "cwd": str(tmp_path), "hook_event_name": "PreToolUse", "model": "gpt-5",
                   "permission_mode": "default", "tool_name": tool,
                   "tool_input": {"command": command}, "tool_use_id": "call_1"}  # fmt: skip
        assert_blocked(run(payload), secret)


def test_other_events_and_bad_input(tmp_path: Path) -> None:
    assert run({**base("Stop", tmp_path), "stop_hook_active": False}).returncode == 0
    proc = run("not json")
    assert proc.returncode == 1 and "not JSON" in proc.stderr


def test_per_call_time() -> None:
    """The agent waits on every call: a decision takes milliseconds once the rules are
    loaded, and a whole process (start-up included) well under a second here."""
    scanner = Scanner()
    text = "x = 1\n" * 2000
    payload = {"hook_event_name": "PreToolUse", "tool_name": "Write",
               "tool_input": {"file_path": "/nonexistent/a.py", "content": text}, "cwd": "/"}  # fmt: skip
    started = time.perf_counter()
    for _ in range(20):
        assert not decide(payload, scanner).block
    per_call = (time.perf_counter() - started) / 20
    assert per_call < 0.05, per_call
    started = time.perf_counter()
    assert run(payload).returncode == 0
    assert time.perf_counter() - started < 3.0
