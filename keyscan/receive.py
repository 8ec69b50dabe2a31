"""Server-side enforcement: the engine of ``keyscan hook pre-receive``.

``check_push`` scans exactly what a push introduces (``keyscan.git.scope.receive_plan``) inside
git's quarantine, under the server's policy only, within a time budget, and returns a
:class:`ReceiveOutcome` (data; nothing here prints or exits).

* Policy is the server's: suppressions come from the server-side config file (``config``),
  never from a ``.keyscan.yaml`` or an inline allow comment inside the pushed commits (a
  pusher would otherwise allow their own key).
* An optional audited bypass: ``git push -o keyscan.allow=<fingerprint> -o
  keyscan.reason=<why>``, honoured only when the server gave an audit log
  (``bypass_log``), recorded there (fingerprint, never the key), and never for a key
  verified live when verification is on.
* A time budget (``timeout``): on timeout the push is refused (``on_timeout="reject"``, the
  default: fail closed) or let through (``"accept"``, fail open), and the outcome says which.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from keyscan.api import GitScope, Scanner, ScanOptions, TriageOptions, exit_code, triage
from keyscan.errors import KeyscanError
from keyscan.exitcodes import EXIT_CLEAN, EXIT_ERROR
from keyscan.models import Finding, ScanError, ScanResult

CONFIG_ENV = "KEYSCAN_SERVER_CONFIG"
DEFAULT_TIMEOUT = 5.0
ALLOW_OPTION = "keyscan.allow="
REASON_OPTION = "keyscan.reason="
# Who pushed, as hosting platforms tell their hooks.
_PUSHER_ENV = ("GL_USERNAME", "GITEA_PUSHER_NAME", "GITHUB_USER_LOGIN", "REMOTE_USER", "USER")


@dataclass
class ReceiveOptions:
    config: str | None = None  # the server's policy file (None: KEYSCAN_SERVER_CONFIG, or none)
    timeout: float = DEFAULT_TIMEOUT  # seconds for the whole check
    on_timeout: Literal["reject", "accept"] = "reject"
    bypass_log: str | None = None  # enables the push-option bypass, recorded in this file
    verify: bool = False
    verify_options: Any = None
    rule_dirs: tuple[str, ...] = ()
    jobs: int | None = 1


@dataclass
class Bypass:
    fingerprint: str
    redacted: str
    reason: str


@dataclass
class ReceiveOutcome:
    code: int
    result: ScanResult | None = None
    timed_out: bool = False
    refs: list[str] = field(default_factory=list)
    new_commits: int = 0
    bypassed: list[Bypass] = field(default_factory=list)
    # Bypass requests that were refused, and why (one line each, redacted).
    refused_bypass: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def push_options(env: Mapping[str, str]) -> list[str]:
    """The push options git hands to the hook (``GIT_PUSH_OPTION_COUNT``/``_n``)."""
    try:
        count = int(env.get("GIT_PUSH_OPTION_COUNT", "0"))
    except ValueError:
        return []
    return [env.get(f"GIT_PUSH_OPTION_{i}", "") for i in range(max(0, min(count, 1000)))]


def check_push(
    git_dir: str,
    stdin_lines: Sequence[str],
    env: Mapping[str, str],
    options: ReceiveOptions,
) -> ReceiveOutcome:
    """Scan what the push introduces; the outcome's ``code`` is 0 to accept the push."""
    from keyscan.git.plumbing import GitError, discover, keep_quarantine, kill_running
    from keyscan.git.scope import parse_receive_lines, receive_plan

    started = time.monotonic()
    updates = parse_receive_lines([ln for ln in stdin_lines if ln.strip()])
    outcome = ReceiveOutcome(code=EXIT_CLEAN, refs=[u[2] for u in updates])
    keep_quarantine(dict(env))
    config = options.config or env.get(CONFIG_ENV) or None
    # Load the policy and the rules before the clock matters (a bad file is an error).
    scanner = Scanner(options=ScanOptions(jobs=options.jobs))
    if options.rule_dirs:
        from keyscan.api import load_rules

        scanner = Scanner(load_rules(options.rule_dirs), ScanOptions(jobs=options.jobs))

    box: dict[str, Any] = {}

    def work() -> None:
        try:
            repo = discover(git_dir)
            plan = receive_plan(repo, updates)
            box["plan"] = plan
            if not plan.tips:
                box["result"] = ScanResult(kind="git", targets=[git_dir])
                return
            scope = GitScope(revisions=tuple(plan.tips), exclude_commits=tuple(plan.exclude))
            box["result"] = scanner.scan_repo(repo.git_dir, scope)
        except GitError as exc:
            box["result"] = ScanResult(
                kind="git", targets=[git_dir], errors=[ScanError(exc.where, exc.message)]
            )
        except BaseException as exc:  # reported, never lost in the thread
            box["error"] = exc

    thread = threading.Thread(target=work, daemon=True, name="keyscan-pre-receive")
    thread.start()
    thread.join(max(0.0, options.timeout - (time.monotonic() - started)))
    if thread.is_alive():
        kill_running()
        outcome.timed_out = True
        outcome.code = EXIT_ERROR if options.on_timeout == "reject" else EXIT_CLEAN
        return outcome
    if "error" in box:
        raise box["error"]
    result: ScanResult = box["result"]
    plan = box.get("plan")
    outcome.new_commits = plan.new_commits if plan is not None else 0
    outcome.result = result
    # The pusher's inline allow comments are theirs, not the server's: ignored here.
    for f in result.findings:
        for loc in f.locations:
            loc.inline_allowed = False
        f.more_allowed = 0
    triage(
        result,
        TriageOptions(config=config, verify=options.verify, verify_options=options.verify_options),
    )
    _apply_bypass(result, env, options, outcome)
    outcome.code = exit_code(result)
    return outcome


def _apply_bypass(
    result: ScanResult, env: Mapping[str, str], options: ReceiveOptions, outcome: ReceiveOutcome
) -> None:
    opts = push_options(env)
    wanted = [o[len(ALLOW_OPTION) :].strip().lower() for o in opts if o.startswith(ALLOW_OPTION)]
    if not wanted:
        return
    reasons = [o[len(REASON_OPTION) :].strip() for o in opts if o.startswith(REASON_OPTION)]
    reason = " ".join(r for r in reasons if r)
    if options.bypass_log is None:
        outcome.refused_bypass.append(
            "keyscan.allow push option ignored: this server does not allow bypasses"
        )
        return
    if not reason:
        outcome.refused_bypass.append(
            "keyscan.allow push option ignored: give a reason with -o keyscan.reason=..."
        )
        return
    kept: list[Finding] = []
    for f in result.findings:
        if f.fingerprint.lower() not in wanted:
            kept.append(f)
            continue
        if options.verify and f.verification is not None and f.verification.is_live:
            outcome.refused_bypass.append(
                f"{f.redacted}: bypass refused: the key is live (revoke it first)"
            )
            kept.append(f)
            continue
        outcome.bypassed.append(Bypass(f.fingerprint, f.redacted, reason))
    if not outcome.bypassed:
        return
    try:
        _record(options.bypass_log, outcome, env)
    except OSError as exc:
        outcome.refused_bypass.append(
            f"bypass refused: cannot write the audit log {options.bypass_log}: "
            f"{exc.strerror or exc}"
        )
        outcome.bypassed.clear()
        return
    result.findings = kept
    result.suppressed += len(outcome.bypassed)


def _record(path: str, outcome: ReceiveOutcome, env: Mapping[str, str]) -> None:
    """Append one JSON line per bypass (fingerprints only, never keys), mode 0600."""
    pusher = next((env[k] for k in _PUSHER_ENV if env.get(k)), "")
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    lines = "".join(
        json.dumps({
            "time": when, "event": "bypass", "fingerprint": b.fingerprint,
            "redacted": b.redacted, "reason": b.reason, "pusher": pusher,
            "refs": outcome.refs,
        }) + "\n"
        for b in outcome.bypassed
    )  # fmt: skip
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, lines.encode())
    finally:
        os.close(fd)


def refusal(outcome: ReceiveOutcome, options: ReceiveOptions) -> list[str]:
    """The lines the person who pushed reads (git shows them prefixed ``remote:``)."""
    out: list[str] = []
    if outcome.timed_out:
        if options.on_timeout == "reject":
            out.append(
                f"keyscan: push refused: the secret scan did not finish within "
                f"{options.timeout:g} s (fail closed); push fewer commits at once or ask the "
                "server's administrators"
            )
        else:
            out.append(
                f"keyscan: warning: the secret scan did not finish within {options.timeout:g} "
                "s: push accepted UNSCANNED (fail open)"
            )
        return out
    out.extend(outcome.refused_bypass)
    for b in outcome.bypassed:
        out.append(f"keyscan: {b.redacted}: allowed by push option (audited): {b.reason}")
    result = outcome.result
    if result is None:
        return out
    for err in result.errors:
        out.append(f"keyscan: error: {err.where}: {err.message}")
    if result.errors:
        out.append("keyscan: push refused: the pushed objects could not all be scanned")
    if not result.findings:
        return out
    n = len(result.findings)
    out.append(f"keyscan: push refused: {n} OpenAI key{'s' if n > 1 else ''} in the pushed commits")
    for f in result.findings:
        live = ""
        if f.verification is not None:
            live = f" [{f.verification.status.value}]"
        out.append(f"  {f.redacted}{live}  ({f.rule_id}, fingerprint {f.fingerprint})")
        for loc in f.locations[:20]:
            sha = loc.commit.sha[:12] if loc.commit is not None else "?"
            where = f"{loc.path}:{loc.line}" if loc.line else loc.path
            out.append(f"    commit {sha}  {where}")
        more = len(f.locations) - 20 + f.more_locations
        if more > 0:
            out.append(f"    ... and {more} more locations")
    out.extend([
        "How to fix:",
        "  1. Revoke the key now (https://platform.openai.com/api-keys or keyscan revoke):",
        "     it has left your machine.",
        "  2. Remove it from the unpushed commits: edit the file to read the key from the",
        "     environment (OPENAI_API_KEY), then rewrite them (git commit --amend, or",
        "     git rebase -i <remote>/<branch>) and push again.",
    ])  # fmt: skip
    if options.bypass_log is not None:
        out.append(
            "  A false positive? git push -o keyscan.allow=<fingerprint> "
            "-o keyscan.reason=\"why\" (audited)"
        )
    return out


__all__ = [
    "CONFIG_ENV",
    "Bypass",
    "KeyscanError",
    "ReceiveOptions",
    "ReceiveOutcome",
    "check_push",
    "push_options",
    "refusal",
]
