"""Text output for people: grouped by secret, coloured only on a terminal, one summary line."""

from __future__ import annotations

import os
import sys

from keyscan.models import Confidence, Finding, GitProvenance, Location, ScanResult
from keyscan.report.advice import next_steps
from keyscan.report.options import OutputOptions
from keyscan.terminal import safe

COLORS = {"red": "31", "yellow": "33", "cyan": "36", "dim": "2", "bold": "1", "green": "32"}
CONF_COLOR = {Confidence.HIGH: "red", Confidence.MEDIUM: "yellow", Confidence.LOW: "cyan"}


def use_color(mode: str, stream_isatty: bool) -> bool:
    if mode == "always":
        return True
    if mode == "never" or os.environ.get("NO_COLOR"):
        return False
    return stream_isatty and os.environ.get("TERM") != "dumb"


class Painter:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, color: str) -> str:
        if not self.enabled:
            return text
        return f"\x1b[{COLORS[color]}m{text}\x1b[0m"


def human_bytes(n: int) -> str:
    """Sizes in binary units, named as such (1024 bytes are a KiB, not a KB)."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def format_location(loc: Location) -> str:
    where = safe(loc.display_path)  # an archive member follows its file: a.zip!b.txt
    if loc.source == "git-message":
        where = f"commit message of {loc.commit.sha[:12] if loc.commit else '?'}"
    elif loc.extra.get("file_name"):
        where += " (file name)"
    elif loc.binary:
        where += f" (binary, byte offset {loc.offset})"
    else:
        where += f":{loc.line}:{loc.column}"
    if loc.decoded:
        where += f" [decoded: {safe(loc.decoded)}]"
    cell = loc.extra.get("cell")  # Jupyter notebooks (keyscan.formats.notebooks)
    if isinstance(cell, int):
        if "cell_line" in loc.extra:
            where += f" (cell {cell}, line {loc.extra['cell_line']})"
        elif "output" in loc.extra:
            where += f" (cell {cell}, output {loc.extra['output']})"
        else:
            where += f" (cell {cell})"
    elif "paragraph" in loc.extra or "sheet" in loc.extra:  # Office (keyscan.formats.office)
        office = [
            f"{name} {safe(str(loc.extra[name]))}"
            for name in ("sheet", "cell", "slide", "paragraph")
            if name in loc.extra
        ]
        where += f" ({', '.join(office)})"
    where += _container_detail(loc)
    if loc.commit is not None and loc.source != "git-message":
        c = loc.commit
        where += f"  @ {c.sha[:12]} {safe(c.author_name)} {c.date[:10]} {safe(c.subject)[:60]!r}"
    return where


def _container_detail(loc: Location) -> str:
    """Where in a PDF (keyscan.formats.pdf) or an image layer (keyscan.formats.images), and
    the note of a file a later layer deletes."""
    out = ""
    obj = loc.extra.get("pdf_object")
    if isinstance(obj, int):
        page = loc.extra.get("pdf_page")
        part = loc.extra.get("pdf_part")
        where = f"PDF page {page}, object {obj}" if isinstance(page, int) else f"PDF object {obj}"
        if isinstance(part, str) and part.startswith("/"):
            where += f" {safe(part)}"
        out += f" ({where})"
    layer = loc.extra.get("layer")
    if isinstance(layer, int):
        out += f" (image layer {layer})"
    config = loc.extra.get("image_config")
    if isinstance(config, str):
        out += f" (image config {safe(config)})"
    note = loc.extra.get("note")
    if isinstance(note, str):
        out += f" [{safe(note)}]"
    return out


def format_finding(
    f: Finding, paint: Painter, show_secrets: bool, all_locations: bool
) -> list[str]:
    conf = paint(f"{str(f.confidence).upper():<6}", CONF_COLOR[f.confidence])
    value = safe(f.secret) if show_secrets else f.redacted
    head = f"{conf} {paint(value, 'bold')}  {f.family}  {f.rule_id}  sha256:{f.fingerprint[:12]}"
    lines = [head]
    if f.verification is not None:
        v = f.verification
        color = "red" if v.is_live else ("dim" if v.is_dead else "yellow")
        detail = f" ({safe(v.reason)})" if v.reason else ""
        project = f" project {safe(v.project)}" if v.project else ""
        lines.append(f"       status: {paint(v.status, color)}{detail}{project}")
    for note in f.notes:
        lines.append(f"       note: {paint(note, 'yellow')}")
    shown = f.locations if all_locations else f.locations[:20]
    for loc in shown:
        lines.append(f"       {format_location(loc)}")
    more = f.location_count - len(shown)
    if more:
        lines.append(f"       ... and {more:,} more location{'s' if more != 1 else ''}")
    if f.git is not None:
        lines.extend(format_git(f.git))
    return lines


def _branch(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/remotes/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def format_git(git: GitProvenance) -> list[str]:
    """The git provenance of a finding (see keyscan.git.provenance): reach, HEAD, the commit
    that removed it, other branch tips still holding it, other places."""
    refs = [safe(str(r)) for r in git.refs]
    reach = ", ".join(refs[:5]) + (f" (+{len(refs) - 5} more)" if len(refs) > 5 else "")
    if git.unreachable:
        reach = "no ref (unreachable objects)"
    head = git.head_paths
    at_head = f"still at HEAD in {', '.join(safe(p) for p in head)}" if head else "not at HEAD"
    if not head and git.removed_in is not None:
        c = git.removed_in
        at_head += (
            f" (removed in {c.sha[:12]} by {safe(c.author_name)} on {c.date[:10]}: "
            f"{safe(c.subject)})"
        )
    lines = [
        f"       git: {git.commits} commit(s); reachable from {reach or 'no ref'}; {at_head}"
    ]
    for tip in git.branch_tips[:5]:
        lines.append(
            f"       still at the tip of {safe(_branch(tip.ref))} in "
            f"{', '.join(safe(p) for p in tip.paths)}"
        )
    if len(git.branch_tips) > 5:
        lines.append(f"       still at the tip of {len(git.branch_tips) - 5} more branch(es)")
    others = git.other_locations
    if others:
        for o in others:
            lines.append(f"       also: {safe(o.path)}  @ {str(o.commit)[:12]}")
    elif git.other_locations_count:
        lines.append(
            f"       also in {git.other_locations_count} other commit/path(s) "
            "(--all-locations lists them)"
        )
    return lines


def render(result: ScanResult, opts: OutputOptions) -> str:
    stream = sys.stdout
    paint = Painter(use_color(opts.color, opts.output in (None, "-") and stream.isatty()))
    out: list[str] = []
    for f in result.findings:
        out.extend(format_finding(f, paint, opts.show_secrets, opts.all_locations))
        out.append("")
    locations = sum(f.location_count for f in result.findings)
    parts = [
        f"{result.files} file{'s' if result.files != 1 else ''}",
        human_bytes(result.bytes),
        f"{result.duration:.2f} s",
    ]
    if result.findings:
        status = paint(
            f"{len(result.findings)} secret{'s' if len(result.findings) != 1 else ''} "
            f"in {locations} location{'s' if locations != 1 else ''}",
            "red",
        )
    elif result.errors:
        # Never "no keys found" for a run that had errors: what was read, and that it was not
        # everything. Nothing read at all: the errors (on stderr) say it all.
        if not result.files:
            return ""
        status = paint("scan incomplete: no OpenAI keys in what could be read", "red")
    else:
        status = paint("no OpenAI keys found", "green")
    line = f"keyscan: {status} ({', '.join(parts)})"
    if result.suppressed:
        line += f"; {result.suppressed} suppressed"
    if result.errors:
        errors = f"{len(result.errors)} error{'s' if len(result.errors) != 1 else ''}"
        line += paint(f"; {errors}" if not result.findings else f"; {errors}: scan incomplete",
                      "red")
    out.append(line)
    steps = next_steps(result, opts.advice)
    if steps:
        out.append("")
        out.append(paint("Next step:", "bold"))
        import textwrap

        wrap = textwrap.TextWrapper(
            94, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False
        )
        for step in steps:
            out.extend(wrap.wrap(step))
    if opts.quiet and not result.findings and not result.errors:
        return ""
    return "\n".join(out) + "\n"
