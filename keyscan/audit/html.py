"""The audit report as one self-contained HTML file: inline CSS, inline SVG, no script.

Nothing is fetched when the file is opened (a Content-Security-Policy forbids it) and every
string that came from a repository (paths, author names, commit subjects, URLs) is escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from keyscan.audit.view import AuditView, KeyView, RepoKey, next_steps, where_now

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

CSS = """
:root { --fg:#1d2430; --muted:#5b6678; --line:#d8dde6; --bg:#f6f7f9; --live:#c62828;
  --dead:#6b7280; --unknown:#d97706; --unverified:#2563eb; --ok:#15803d; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); margin: 0; padding: 24px; }
main { max-width: 1100px; margin: 0 auto; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 10px; }
h3 { font-size: 15px; margin: 0; display: flex; gap: 10px; align-items: center; }
.meta { color: var(--muted); font-size: 12px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; margin-top: 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 12px 16px; min-width: 150px; }
.card .n { font-size: 26px; font-weight: 700; } .card .l { color: var(--muted); }
.card.alert { border-color: var(--live); } .card.alert .n { color: var(--live); }
.key { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px;
  margin: 12px 0; } .key.live { border-left: 6px solid var(--live); }
table { border-collapse: collapse; width: 100%; margin-top: 8px; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px;
  border-top: 1px solid var(--line); } th { width: 170px; color: var(--muted);
  font-weight: 600; } .repos th { width: auto; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12.5px; overflow-wrap: anywhere; }
pre { background: #0f172a; color: #e2e8f0; padding: 8px 10px; border-radius: 6px;
  white-space: pre-wrap; overflow-wrap: anywhere; margin: 4px 0 8px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff;
  font-size: 12px; font-weight: 600; }
.s-live { background: var(--live); } .s-dead { background: var(--dead); }
.s-unknown { background: var(--unknown); } .s-unverified { background: var(--unverified); }
.s-ok { background: var(--ok); } .s-error { background: var(--live); }
.s-partial { background: var(--unknown); } .s-never { background: var(--dead); }
ol { margin: 4px 0; padding-left: 20px; } .chart { background: #fff;
  border: 1px solid var(--line); border-radius: 8px; padding: 8px; overflow-x: auto; }
.none { color: var(--ok); font-weight: 600; }
"""


def esc(value: object) -> str:
    """HTML-escape an untrusted value (quotes too) and make control characters visible."""
    text = "" if value is None else str(value)
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return html.escape(text, quote=True)


def status_class(status: str) -> str:
    if status.startswith("live"):
        return "s-live"
    if status.startswith("invalid"):
        return "s-dead"
    if status == "unknown":
        return "s-unknown"
    return "s-unverified"


def _badge(status: str, cls: str | None = None) -> str:
    return f'<span class="badge {cls or status_class(status)}">{esc(status)}</span>'


def _short(sha: str | None) -> str:
    return (sha or "")[:10]


def _day(date: str | None) -> str:
    if not date:
        return "unknown"
    d = _parse(date)
    return d.strftime("%Y-%m-%d %H:%M UTC") if d else date


def _parse(date: str | None) -> datetime | None:
    if not date:
        return None
    try:
        d = datetime.fromisoformat(date.replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return d.astimezone(timezone.utc)


def _first_appeared(first: RepoKey | None) -> str:
    if first is None:
        return "unknown"
    where = esc(first.introduced_path or "?")
    if first.introduced_line:
        where += f":{first.introduced_line}"
    commit = ""
    if first.introduced_commit:
        commit = (
            f' in commit <code>{esc(_short(first.introduced_commit))}</code> '
            f"“{esc(first.introduced_subject or '')}”"
        )
    return f"<code>{where}</code> in <b>{esc(first.repository)}</b>{commit}"


def _committer(first: RepoKey | None) -> str:
    if first is None or not first.introduced_author:
        return "unknown"
    email = f" &lt;{esc(first.introduced_email)}&gt;" if first.introduced_email else ""
    return f"{esc(first.introduced_author)}{email}"


def _where_now(key: KeyView) -> str:
    text = esc(where_now(key))
    removed = [r for r in key.repos if r.removed_commit]
    if removed and not key.still_present:
        r = max(removed, key=lambda r: r.removed_date or "")
        text += (
            f"<br><span class=meta>removed from {esc(r.repository)} in "
            f"<code>{esc(_short(r.removed_commit))}</code> by {esc(r.removed_author)} on "
            f"{esc(_day(r.removed_date))}</span>"
        )
    return text


def _verification(key: KeyView) -> str:
    v = key.verification
    out = _badge(key.status)
    if v is None:
        return out + ' <span class="meta">not checked: run keyscan audit --verify</span>'
    bits = [b for b in (v.reason, f"HTTP {v.http_status}" if v.http_status else "") if b]
    if v.project:
        bits.append(f"project {v.project}")
    if v.organization:
        bits.append(f"organization {v.organization}")
    if v.checked_at:
        bits.append(f"checked {_day(v.checked_at)}")
    if bits:
        out += f' <span class="meta">{esc("; ".join(bits))}</span>'
    return out


def _key_section(key: KeyView, db: str) -> str:
    first = key.first
    steps = "".join(
        f"<li>{esc(text)}" + (f"<pre>{esc(cmd)}</pre>" if cmd else "") + "</li>"
        for text, cmd in next_steps(key, db)
    )
    repos = ", ".join(esc(r.repository) for r in key.repos)
    locations = sum(r.locations for r in key.repos)
    refs = sorted({ref for r in key.repos for ref in r.refs})
    refs_html = f"<br><span class=meta>reachable from {esc(', '.join(refs))}</span>" if refs else ""
    live = " live" if key.is_live else ""
    return f"""
<section class="key{live}" id="key-{esc(key.short)}">
<h3><code>{esc(key.redacted)}</code> {_badge(key.status)}</h3>
<table>
<tr><th>Family</th><td>{esc(key.family)} <span class="meta">({esc(key.rule_id)}, \
{esc(key.confidence)} confidence, {key.length} characters)</span></td></tr>
<tr><th>Status</th><td>{_verification(key)}</td></tr>
<tr><th>Fingerprint</th><td><code>{esc(key.fingerprint)}</code></td></tr>
<tr><th>First appeared</th><td>{_first_appeared(first)}</td></tr>
<tr><th>Committed by</th><td>{_committer(first)}</td></tr>
<tr><th>When</th><td>{esc(_day(first.introduced_date if first else None))}</td></tr>
<tr><th>Where it is now</th><td>{_where_now(key)}</td></tr>
<tr><th>Seen in</th><td>{len(key.repos)} repositor{"y" if len(key.repos) == 1 else "ies"} \
({repos}), {locations} location{"" if locations == 1 else "s"}{refs_html}</td></tr>
{_exposure_row(key)}<tr><th>What to do next</th><td><ol>{steps}</ol></td></tr>
</table>
</section>"""


def _exposure_row(key: KeyView) -> str:
    """Was it used? (keyscan exposure --db): the summary and the incident timeline."""
    e = key.exposure
    if not e:
        return ""
    alert = ""
    if key.used_after_revocation:
        alert = (f'<p class="alert"><strong>Used {esc(e.get("requests_after_revocation"))} '
                 "times after its revocation: the revocation did not stop it.</strong></p>")
    events = "".join(
        f'<li{" class=alert" if ev.get("alert") else ""}>{esc(_day(ev.get("at")))}: '
        f'{esc(ev.get("kind"))}: {esc(ev.get("detail") or "")}</li>'
        for ev in key.exposure_events
    )
    key_id = f' <span class="meta">({esc(e.get("key_id"))})</span>' if e.get("key_id") else ""
    return (f'<tr><th>Was it used?</th><td>{alert}{esc(e.get("summary") or "")}{key_id}'
            f'<ol class="incident">{events}</ol></td></tr>\n')


# Marks of the exposure timeline on the SVG bars: (shape, colour, label).
EXPOSURE_MARKS = {
    "first-use": ("diamond", "#d97706", "first use after the leak"),
    "last-use": ("diamond", "#92400e", "last use"),
    "revoked": ("bar", "#1d2430", "revoked"),
    "used-after-revocation": ("alert", "#c62828", "USED AFTER ITS REVOCATION"),
}


def _exposure_marks(key: KeyView, cy: float, x: Callable[[datetime], float], lo: float,
                    hi: float) -> list[str]:
    out: list[str] = []
    for ev in key.exposure_events:
        mark = EXPOSURE_MARKS.get(str(ev.get("kind")))
        when = _parse(ev.get("at") if isinstance(ev.get("at"), str) else None)
        if mark is None or when is None:
            continue
        shape, color, label = mark
        mx = min(max(x(when), lo), hi)
        tip = f'<title>{esc(label)} {esc(_day(ev.get("at")))}</title>'
        if shape == "diamond":
            out.append(f'<path class="exposure-{esc(ev.get("kind"))}" d="M{mx:.1f},'
                       f'{cy - 6:.1f} l5,6 l-5,6 l-5,-6 z" fill="{color}">{tip}</path>')
        elif shape == "bar":
            out.append(f'<rect class="exposure-revoked" x="{mx - 1.5:.1f}" y="{cy - 7:.1f}" '
                       f'width="3" height="14" fill="{color}">{tip}</rect>')
        else:
            out.append(f'<path class="exposure-alert" d="M{mx:.1f},{cy - 8:.1f} l7,13 '
                       f'l-14,0 z" fill="{color}" stroke="#fff">{tip}</path>')
    return out


def _color(key: KeyView) -> str:
    return {
        "s-live": "#c62828",
        "s-dead": "#6b7280",
        "s-unknown": "#d97706",
        "s-unverified": "#2563eb",
    }[status_class(key.status)]


def timeline_svg(view: AuditView) -> str:
    """Per repository, one bar per key from the commit that introduced it to the commit that
    removed it (or to now, with an arrow, when it is still at HEAD)."""
    now = _parse(view.generated_at) or datetime.now(timezone.utc)
    rows: list[tuple[str, list[tuple[KeyView, RepoKey]]]] = []
    for repo in view.repositories:
        items = [(k, r) for k in view.keys for r in k.repos if r.repository == repo.target]
        if items:
            rows.append((repo.target, items))
    if not rows:
        return '<p class="none">No keys found: nothing to draw.</p>'
    starts = [d for _, items in rows for _, r in items if (d := _parse(r.introduced_date))]
    start = min(starts) if starts else now - timedelta(days=30)
    span = max((now - start).total_seconds(), 86400.0)
    start = start - timedelta(seconds=span * 0.03)
    span *= 1.06
    label_w, plot_w, lane, pad = 230, 640, 16, 10
    height = 30 + sum((len(items) + 1) * lane + pad for _, items in rows) + 24
    width = label_w + plot_w + 20

    def x(d: datetime) -> float:
        return label_w + (d - start).total_seconds() / span * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Timeline of keys '
        'introduced and removed per repository" font-family="system-ui, sans-serif" '
        'font-size="11">'
    ]
    # Axis: about six ticks, on whole days.
    axis_y = height - 22
    parts.append(
        f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + plot_w}" y2="{axis_y}" '
        'stroke="#9aa3b2"/>'
    )
    fmt = "%Y-%m-%d" if span > 3 * 86400 else "%m-%d %H:%M"
    for i in range(7):
        t = start + timedelta(seconds=span * i / 6)
        tx = x(t)
        anchor = "start" if i == 0 else "end" if i == 6 else "middle"
        parts.append(
            f'<line x1="{tx:.1f}" y1="24" x2="{tx:.1f}" y2="{axis_y}" stroke="#eef0f4"/>'
            f'<text x="{tx:.1f}" y="{axis_y + 14}" text-anchor="{anchor}" fill="#5b6678">'
            f"{t.strftime(fmt)}</text>"
        )
    nx = x(now)
    parts.append(
        f'<line x1="{nx:.1f}" y1="20" x2="{nx:.1f}" y2="{axis_y}" stroke="#1d2430" '
        f'stroke-dasharray="3,3"/><text x="{nx:.1f}" y="14" text-anchor="end" '
        'fill="#1d2430">now</text>'
    )
    y = 30
    for target, items in rows:
        name = short_name(target)
        parts.append(
            f'<text x="4" y="{y + 11}" font-weight="600" fill="#1d2430">{esc(name)}'
            f"<title>{esc(target)}</title></text>"
        )
        y += lane
        for k, r in items:
            d0 = _parse(r.introduced_date) or start
            d1 = now if r.present_at_head or not r.removed_date else _parse(r.removed_date)
            d1 = d1 or now
            x0, x1 = x(d0), max(x(d1), x(d0) + 3)
            color = _color(k)
            tip = (
                f"{k.redacted} ({k.status}) in {target}: introduced {_day(r.introduced_date)}"
                + (f", removed {_day(r.removed_date)}" if r.removed_date and not
                   r.present_at_head else ", still at HEAD" if r.present_at_head else "")
            )
            cy = y + lane / 2
            parts.append(
                f'<g><title>{esc(tip)}</title>'
                f'<text x="{label_w - 6}" y="{cy + 4:.1f}" text-anchor="end" '
                f'fill="#5b6678" font-family="ui-monospace, monospace">{esc(k.redacted)}</text>'
                f'<rect x="{x0:.1f}" y="{cy - 4:.1f}" width="{x1 - x0:.1f}" height="8" rx="3" '
                f'fill="{color}" fill-opacity="0.75"/>'
                f'<circle cx="{x0:.1f}" cy="{cy:.1f}" r="4.5" fill="{color}"/>'
            )
            parts.extend(_exposure_marks(k, cy, x, label_w, label_w + plot_w))
            if r.present_at_head:
                parts.append(
                    f'<path d="M{x1:.1f},{cy - 5:.1f} l6,5 l-6,5 z" fill="{color}"/>'
                )
            elif r.removed_date:
                parts.append(
                    f'<path d="M{x1 - 4:.1f},{cy - 4:.1f} l8,8 M{x1 + 4:.1f},{cy - 4:.1f} '
                    f'l-8,8" stroke="{color}" stroke-width="2"/>'
                )
            parts.append("</g>")
            y += lane
        y += pad
    parts.append("</svg>")
    legend = (
        '<p class="meta">● introduced · ✕ removed · ▶ still at HEAD · ◆ first and last use '
        'after the leak · ▮ revoked · ▲ used after its revocation. Colour: '
        '<span style="color:#c62828">live</span>, <span style="color:#d97706">unknown</span>, '
        '<span style="color:#2563eb">not checked</span>, '
        '<span style="color:#6b7280">dead</span>.</p>'
    )
    return "".join(parts) + legend


def short_name(target: str, limit: int = 60) -> str:
    """A repository's name for a chart label: the last two parts of its path or URL."""
    parts = [p for p in re.split(r"[/:\\]+", target.rstrip("/")) if p]
    name = "/".join(parts[-2:]) if len(parts) >= 2 else target
    return name if len(name) <= limit else "…" + name[-(limit - 1) :]


def _repos_table(view: AuditView) -> str:
    rows = []
    for r in view.repositories:
        cls = {"ok": "s-ok", "partial": "s-partial", "error": "s-error"}.get(r.status, "s-never")
        errors = "<br>".join(esc(e) for e in r.errors)
        rows.append(
            f"<tr><td><code>{esc(r.target)}</code></td><td>{_badge(r.status, cls)}</td>"
            f"<td>{esc(_day(r.scanned_at))}</td><td>{r.commits_scanned}</td>"
            f"<td>{r.commits_skipped}</td><td>{r.keys}</td><td>{r.keys_at_head}</td>"
            f"<td>{errors}</td></tr>"
        )
    return (
        '<table class="repos"><tr><th>Repository</th><th>Last scan</th><th>When</th>'
        "<th>Commits scanned</th><th>Skipped (seen before)</th><th>Keys</th><th>At HEAD</th>"
        "<th>Errors</th></tr>" + "".join(rows) + "</table>"
    )


def render(view: AuditView, db_name: str) -> str:
    live = view.live
    failed = [r for r in view.repositories if r.status in ("error", "partial")]
    unverified = [k for k in view.keys if k.verification is None]
    cards = [
        ("Repositories", len(view.repositories), bool(failed),
         f"{len(failed)} could not be scanned fully" if failed else "all scanned"),
        ("Unique keys", len(view.keys), False, "across all repositories"),
        ("Live keys", len(live), bool(live), "revoke these first" if live else "none working"),
        ("Still at HEAD", len(view.at_head), bool(view.at_head), "in current code"),
        ("Not checked", len(unverified), False, "use --verify" if unverified else "all checked"),
    ]
    cards_html = "".join(
        f'<div class="card{" alert" if alert else ""}"><div class="n">{n}</div>'
        f'<div class="l">{esc(label)}</div><div class="meta">{esc(note)}</div></div>'
        for label, n, alert, note in cards
    )
    if live:
        first = "<h2>Live keys: revoke first</h2><ol>" + "".join(
            f'<li><a href="#key-{esc(k.short)}"><code>{esc(k.redacted)}</code></a> '
            f"{_badge(k.status)} {esc(k.family)}, {esc(where_now(k))}</li>"
            for k in live
        ) + "</ol>"
    else:
        first = ""
    keys_html = "".join(_key_section(k, db_name) for k in view.keys) or (
        '<p class="none">No keys found in the audited repositories.</p>'
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src \
'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>keyscan audit report</title>
<style>{CSS}</style>
</head>
<body>
<main>
<h1>keyscan audit report</h1>
<div class="meta">Generated {esc(_day(view.generated_at))} from <code>{esc(db_name)}</code> \
({view.audits} audit{"" if view.audits == 1 else "s"}, last {esc(_day(view.last_audit))}). \
Keys are redacted (first 8 … last 4); the store holds fingerprints only.</div>
<div class="cards">{cards_html}</div>
{first}
<h2>Timeline</h2>
<div class="chart">{timeline_svg(view)}</div>
<h2>Keys</h2>
{keys_html}
<h2>Repositories</h2>
{_repos_table(view)}
</main>
</body>
</html>
"""
