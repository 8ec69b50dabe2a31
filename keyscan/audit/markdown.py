"""The audit report as Markdown, to paste into a ticket (GitHub, GitLab, Jira's markdown)."""

from __future__ import annotations

import re

from keyscan.audit.view import AuditView, KeyView, next_steps, where_now

# Characters that are markup in the middle of a line (values never start a line here).
_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def md(value: object) -> str:
    """Escape an untrusted value for Markdown: no markup, no HTML, one line."""
    text = "" if value is None else str(value)
    text = _CONTROL.sub(" ", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _SPECIAL.sub(r"\\\1", text)
    # "@name" pings people and "#12" links issues on most trackers: keep them inert.
    text = text.replace("@", "&#64;")
    return text


def code(value: object) -> str:
    """An inline code span that no content can break out of."""
    text = _CONTROL.sub(" ", "" if value is None else str(value))
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _day(date: str | None) -> str:
    return (date or "unknown")[:10]


def _incident(key: KeyView) -> list[str]:
    """The exposure figures and incident timeline (keyscan exposure --db), a block ready to
    paste into an incident ticket."""
    e = key.exposure
    if not e:
        return []
    lines = ["**Incident: was it used?**", ""]
    if key.used_after_revocation:
        lines += [f"> **ALERT: used {md(e.get('requests_after_revocation'))} times after its "
                  "revocation: the revocation did not stop it.**", ""]
    project = f" (project {md(e.get('project_id'))})" if e.get("project_id") else ""
    key_id = code(e["key_id"]) if e.get("key_id") else "not mapped"
    lines.append(f"- Key id: {key_id}{project}")
    lines.append(f"- Exposure: {md(e.get('summary') or '')}")
    if e.get("status") == "measured":
        lines.append(f"- Exposed since: {md(e.get('exposed_at') or '?')} "
                     f"({md(e.get('exposed_source') or '?')})")
        lines.append(f"- Requests: {md(e.get('requests'))}; tokens: "
                     f"{md(e.get('input_tokens'))} in, {md(e.get('output_tokens'))} out")
    lines.append(f"- Measured: {md(e.get('measured_at') or '?')}")
    lines += ["", "| when | event | detail |", "|---|---|---|"]
    for ev in key.exposure_events:
        detail = md(ev.get("detail") or "")
        if ev.get("alert"):
            detail = f"**{detail}**"
        lines.append(f"| {md(ev.get('at') or '?')} | {md(ev.get('kind'))} | {detail} |")
    lines.append("")
    return lines


def _key(key: KeyView, db: str) -> list[str]:
    first = key.first
    lines = [f"### {code(key.redacted)}: {md(key.status)}", ""]
    lines.append("| | |")
    lines.append("|---|---|")
    lines.append(f"| Family | {md(key.family)} ({md(key.rule_id)}, {md(key.confidence)}) |")
    v = key.verification
    status = md(key.status)
    if v is not None:
        extra = "; ".join(b for b in (v.reason, v.project or "", v.checked_at or "") if b)
        status += f" ({md(extra)})" if extra else ""
    else:
        status += " (not checked: run keyscan audit --verify)"
    lines.append(f"| Status | {status} |")
    lines.append(f"| Fingerprint | {code(key.fingerprint)} |")
    if first is not None:
        where = f"{first.introduced_path or '?'}:{first.introduced_line or '?'}"
        lines.append(
            f"| First appeared | {md(where)} in {md(first.repository)}, commit "
            f"{code((first.introduced_commit or '')[:10])} “{md(first.introduced_subject)}” |"
        )
        who = md(first.introduced_author or "unknown")
        if first.introduced_email:
            who += f" &lt;{md(first.introduced_email)}&gt;"
        lines.append(f"| Committed by | {who} |")
        lines.append(f"| When | {md(_day(first.introduced_date))} |")
    lines.append(f"| Where it is now | {md(where_now(key))} |")
    lines.append(
        f"| Seen in | {', '.join(md(r.repository) for r in key.repos)} "
        f"({_plural(sum(r.locations for r in key.repos), 'location')}) |"
    )
    lines.append("")
    lines += _incident(key)
    lines.append("**What to do next**")
    lines.append("")
    for i, (text, cmd) in enumerate(next_steps(key, db), 1):
        lines.append(f"{i}. {md(text)}")
        if cmd:
            lines += ["", "   ```sh", f"   {cmd}", "   ```"]
    lines.append("")
    return lines


def render(view: AuditView, db_name: str) -> str:
    failed = [r for r in view.repositories if r.status in ("error", "partial")]
    lines = [
        "## keyscan audit: leaked OpenAI keys",
        "",
        f"Generated {md(view.generated_at)} from {code(db_name)}. Keys are redacted "
        "(first 8 … last 4); the audit store holds fingerprints only.",
        "",
        f"- **Repositories:** {len(view.repositories)}"
        + (f" ({len(failed)} not fully scanned)" if failed else ""),
        f"- **Unique keys:** {len(view.keys)}",
        f"- **Live keys:** {len(view.live)}",
        f"- **Still at HEAD:** {len(view.at_head)}",
        "",
    ]
    if view.live:
        lines.append("**Revoke first (live):**")
        lines.append("")
        for k in view.live:
            lines.append(f"- {code(k.redacted)} {md(k.family)}: {md(where_now(k))}")
        lines.append("")
    if view.keys:
        lines += ["| Key | Family | Status | First seen | Now |", "|---|---|---|---|---|"]
        for k in view.keys:
            f = k.first
            lines.append(
                f"| {code(k.redacted)} | {md(k.family)} | {md(k.status)} | "
                f"{md(f.repository if f else '')} {md(_day(f.introduced_date if f else None))} "
                f"| {md(where_now(k))} |"
            )
        lines.append("")
        for k in view.keys:
            lines += _key(k, db_name)
    else:
        lines += ["No keys found in the audited repositories.", ""]
    if failed:
        lines.append("**Repositories not fully scanned:**")
        lines.append("")
        for r in failed:
            lines.append(f"- {md(r.target)}: {md('; '.join(r.errors) or r.status)}")
        lines.append("")
    return "\n".join(lines)
