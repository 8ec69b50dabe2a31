"""The next step after a finding, fitted to where the key was found and whether it is live.

Situations (``OutputOptions.advice``; empty: worked out from ``ScanResult.kind``):

* ``commit``: a refused commit (pre-commit hook, ``keyscan git --staged``): the key was never
  committed. Unstage or edit the file; nothing to rewrite.
* ``push``: a refused push (pre-push hook): the key is in commits not pushed yet. Rewrite
  them; revoke if they were ever pushed or shared.
* ``history``: a key in pushed history (``keyscan git``, ``keyscan ci``): revoke first;
  rewrite history only if needed.
* ``files``: a key in files (``keyscan scan``): move it to the environment; revoke if the file
  was ever committed or shared.

A key verified dead needs nothing revoked or purged; a live one is revoked now. A baseline is
never suggested here: it is for adopting keyscan on old findings whose keys are already
revoked, not for a fresh leak. Pure: returns lines, prints nothing.
"""

from __future__ import annotations

from keyscan.models import Finding, ScanResult

SITUATIONS = ("commit", "push", "history", "files")
_BY_KIND = {"staged": "commit", "git": "history"}

REVOKE = "`--revoke`, `keyscan revoke` or the OpenAI dashboard"
ENVIRONMENT = "read it from the environment (OPENAI_API_KEY) instead"
SITUATION_ADVICE = {
    "commit": (
        "Not committed yet: unstage the file (git restore --staged FILE) or edit the key out; "
        f"{ENVIRONMENT}. Nothing to rewrite."
    ),
    "push": (
        "In commits not pushed yet: rewrite them (git commit --amend, or "
        "git rebase -i <remote>/<branch>), then push. If they were ever pushed or shared, "
        f"revoke the key too ({REVOKE})."
    ),
    "history": (
        f"In git history: revoke the key first ({REVOKE}); rewrite history only if needed. "
        f"Then {ENVIRONMENT}."
    ),
    "files": (
        f"Move the key out of the file and {ENVIRONMENT}; if the file was ever committed or "
        f"shared, revoke the key ({REVOKE})."
    ),
}
FALSE_POSITIVE = (
    "False positive? `keyscan:allow` in a comment on its line, or an `allow:` entry in "
    ".keyscan.yaml."
)


def situation_of(result: ScanResult, chosen: str = "") -> str:
    """The situation the advice fits: ``chosen`` if given, else from the kind of scan."""
    if chosen in SITUATIONS:
        return chosen
    return _BY_KIND.get(result.kind, "files")


def _dead(f: Finding) -> bool:
    return f.verification is not None and f.verification.status.startswith("invalid")


def _live(f: Finding) -> bool:
    return f.verification is not None and f.verification.is_live


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def next_steps(result: ScanResult, chosen: str = "") -> list[str]:
    """What to do about ``result.findings`` (the visible ones), one line per step; [] when
    there is nothing to act on."""
    findings = result.findings
    if not findings:
        return []
    situation = situation_of(result, chosen)
    live = [f for f in findings if _live(f)]
    dead = [f for f in findings if _dead(f)]
    lines: list[str] = []
    if len(dead) == len(findings):
        lines.append(
            "Dead key (verified invalid): nothing to revoke or purge from history; delete it "
            "from the code when convenient."
            if len(dead) == 1
            else "Every key found is dead (verified invalid): nothing to revoke or purge from "
            "history; delete them from the code when convenient."
        )
    else:
        if live and situation != "commit":
            lines.append(f"{_count(len(live), 'live key')}: revoke now ({REVOKE}).")
        lines.append(SITUATION_ADVICE[situation])
        if live and situation == "commit":
            lines.append("The key is live: if it ever left this machine, revoke it now.")
        if dead:
            lines.append(
                f"{_count(len(dead), 'dead key')} (verified invalid): nothing to revoke or "
                "purge for those."
            )
    lines.append(FALSE_POSITIVE)
    return lines
