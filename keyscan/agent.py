"""Coding-agent hooks: the engine of ``keyscan hook agent``.

Speaks the Claude Code hooks protocol: one JSON object on stdin (``hook_event_name``,
``tool_name``, ``tool_input``, ``tool_response``, ``prompt``, ``cwd``...). ``decide`` returns an
:class:`AgentDecision`; ``respond`` turns it into (exit code, stdout, stderr). Nothing here
prints or exits.

* ``PreToolUse``: Write (``content``), Edit/MultiEdit (the file as it will be after the
  edit), NotebookEdit (``new_source``), and any tool whose input carries a ``command``
  (Claude Code's Bash; the Codex CLI's Bash and ``apply_patch``): blocked when a key would be
  written or run.
* ``UserPromptSubmit``: a key pasted into a prompt is blocked before it reaches the model.
* ``PostToolUse``: a key in a tool's output (Read, Bash, anything) is flagged to the model
  with ``decision: block`` so that it does not repeat or use it; the protocol has run the tool
  already, so the output cannot be taken back (see README).

Every message is redacted: the raw key never leaves this process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keyscan.api import Scanner
from keyscan.errors import KeyscanError
from keyscan.exitcodes import EXIT_CLEAN, EXIT_ERROR, EXIT_FINDINGS
from keyscan.models import Finding

# The hooks protocol's exit codes: 0 lets the call through, 2 blocks it (reason on stderr),
# any other code is a non-blocking error the agent shows and goes past.
ALLOW = EXIT_CLEAN
BLOCK = EXIT_ERROR
BAD_INPUT = EXIT_FINDINGS

ADVICE = (
    "Never put an API key in a file, a command or a prompt: read it from the environment "
    "instead (os.environ[\"OPENAI_API_KEY\"] in Python, process.env.OPENAI_API_KEY in "
    "JavaScript, \"$OPENAI_API_KEY\" in a shell command) and let the user set it. "
    "The user should revoke a key that was pasted or written anywhere."
)
MAX_FILE = 16 * 1024 * 1024  # an Edit's target file larger than this is not read back


@dataclass
class AgentDecision:
    event: str
    block: bool = False
    reason: str = ""
    redacted: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _texts_for_tool(tool: str, tool_input: Mapping[str, Any], cwd: str) -> list[tuple[str, str]]:
    """(what, text) pairs a tool call would write or run."""
    out: list[tuple[str, str]] = []
    path = str(tool_input.get("file_path") or tool_input.get("notebook_path") or "")
    if tool == "Write":
        out.append((path or "the file", str(tool_input.get("content") or "")))
    elif tool in ("Edit", "MultiEdit"):
        edits = tool_input.get("edits") if tool == "MultiEdit" else [tool_input]
        edits = [e for e in (edits or []) if isinstance(e, Mapping)]
        after = _apply_edits(path, cwd, edits)
        if after is not None:
            out.append((path, after))
        # The new text itself, whatever the file holds.
        out.extend((path, str(e.get("new_string") or "")) for e in edits)
    elif tool == "NotebookEdit":
        out.append((path or "the notebook", str(tool_input.get("new_source") or "")))
    command = tool_input.get("command")
    if isinstance(command, str):
        out.append(("the command", command))
    if not out:
        # Any other tool (MCP tools, WebFetch, ...): every string it is given.
        out.append((f"the {tool or 'tool'} input", json.dumps(tool_input, ensure_ascii=False)))
    return out


def _apply_edits(path: str, cwd: str, edits: list[Mapping[str, Any]]) -> str | None:
    if not path:
        return None
    full = path if os.path.isabs(path) else os.path.join(cwd or ".", path)
    try:
        import stat

        st = os.stat(full)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE:
            return None
        with open(full, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read()
    except OSError:
        text = ""  # a new file: the edits alone
    for e in edits:
        old, new = str(e.get("old_string") or ""), str(e.get("new_string") or "")
        if not old:
            text = new + text
        elif e.get("replace_all"):
            text = text.replace(old, new)
        else:
            text = text.replace(old, new, 1)
    return text


def _output_text(response: Any) -> str:
    if isinstance(response, str):
        return response
    return json.dumps(response, ensure_ascii=False)


def _found(scanner: Scanner, items: list[tuple[str, str]]) -> list[tuple[str, Finding]]:
    hits: list[tuple[str, Finding]] = []
    seen: set[str] = set()
    for what, text in items:
        if not text:
            continue
        for f in scanner.scan_text(text, path=what).findings:
            if f.fingerprint not in seen:
                seen.add(f.fingerprint)
                hits.append((what, f))
    return hits


def decide(payload: Mapping[str, Any], scanner: Scanner) -> AgentDecision:
    """What to answer to one hook call."""
    event = str(payload.get("hook_event_name") or "")
    decision = AgentDecision(event=event)
    cwd = str(payload.get("cwd") or "")
    tool = str(payload.get("tool_name") or "")
    tool_input = payload.get("tool_input")
    if not isinstance(tool_input, Mapping):
        tool_input = {}
    if event == "PreToolUse":
        hits = _found(scanner, _texts_for_tool(tool, tool_input, cwd))
        if hits:
            keys = ", ".join(f.redacted for _, f in hits)
            where = hits[0][0]
            decision.reason = (
                f"keyscan blocked this {tool or 'tool'} call: it would put an OpenAI key "
                f"({keys}) into {where}. {ADVICE}"
            )
    elif event == "UserPromptSubmit":
        hits = _found(scanner, [("the prompt", str(payload.get("prompt") or ""))])
        if hits:
            keys = ", ".join(f.redacted for _, f in hits)
            decision.reason = (
                f"keyscan blocked this prompt: it contains an OpenAI key ({keys}), which would "
                "be sent to the model and kept in the transcript. Remove it, set it as the "
                "OPENAI_API_KEY environment variable instead, and revoke it: it has been "
                "pasted."
            )
    elif event == "PostToolUse":
        response = payload.get("tool_response")
        hits = _found(scanner, [(f"the {tool or 'tool'} output", _output_text(response))])
        if hits:
            keys = ", ".join(f.redacted for _, f in hits)
            decision.reason = (
                f"keyscan: the output of this {tool or 'tool'} call contains an OpenAI key "
                f"({keys}). Do not repeat, copy, write or use it; refer to it as "
                "$OPENAI_API_KEY and tell the user to move it to the environment and revoke "
                "it."
            )
    else:
        return decision
    if decision.reason:
        decision.block = True
        decision.redacted = [f.redacted for _, f in hits]
    return decision


def respond(decision: AgentDecision, output: str = "exit-code") -> tuple[int, str, str]:
    """(exit code, stdout, stderr). ``exit-code``: exit 2 with the reason on stderr (blocks
    PreToolUse and UserPromptSubmit; for PostToolUse, the reason goes to the model).
    ``json``: exit 0 with the documented JSON decision on stdout."""
    if not decision.block:
        return ALLOW, "", ""
    if output == "json":
        doc: dict[str, Any]
        if decision.event == "PreToolUse":
            doc = {"hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": decision.reason,
            }}  # fmt: skip
        else:
            doc = {"decision": "block", "reason": decision.reason}
        return ALLOW, json.dumps(doc) + "\n", ""
    return BLOCK, "", decision.reason + "\n"


class PayloadError(KeyscanError, ValueError):
    """The hook's stdin is not one JSON object."""


def parse_payload(raw: str | bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PayloadError(f"hook input is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise PayloadError("hook input is not a JSON object")
    return doc
