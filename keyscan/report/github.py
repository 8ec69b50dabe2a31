"""GitHub Actions workflow commands: one ``::error`` annotation per location.

``::error file=PATH,line=N,col=N,endColumn=N,title=TITLE::MESSAGE``. Values are escaped as
the Actions runner expects (``%`` ``\\r`` ``\\n`` everywhere, ``:`` ``,`` in properties too), so
a hostile file name cannot end the command early or inject another one. Paths are relative to
the repository root so that GitHub attaches the annotation to the file. Always redacted.
"""

from __future__ import annotations

from pathlib import Path

from keyscan.models import Finding, Location, ScanResult
from keyscan.report.advice import next_steps
from keyscan.report.options import OutputOptions
from keyscan.report.sarif import message, relative_path, root_for, title
from keyscan.terminal import safe


def escape_data(text: str) -> str:
    """The runner's escapes, then every other control character (ESC, C1, DEL, bidi
    overrides...) written as ``\\xNN`` / ``\\uNNNN`` like the text report does."""
    return safe(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, props: dict[str, str | int], text: str) -> str:
    joined = ",".join(f"{k}={escape_property(str(v))}" for k, v in props.items())
    return f"::{name} {joined}::{escape_data(text)}" if joined else f"::{name}::{escape_data(text)}"


def annotation(f: Finding, loc: Location, root: Path) -> str:
    props: dict[str, str | int] = {}
    if loc.source != "git-message":
        props["file"] = relative_path(loc, root) or loc.path
        # In an archive member the line is the member's: named in the message, not the file's.
        if not loc.binary and not loc.extra.get("file_name") and not loc.member:
            props["line"] = max(1, loc.line)
            props["col"] = max(1, loc.column)
            if not loc.decoded:
                props["endColumn"] = max(1, loc.column) + f.length
    props["title"] = f"keyscan: {title(f)} ({f.rule_id})"
    return command("error", props, message(f, loc))


def render(result: ScanResult, opts: OutputOptions) -> str:
    root = root_for(result)
    lines = [annotation(f, loc, root) for f in result.findings for loc in f.locations]
    for err in result.errors:
        lines.append(command("error", {"title": "keyscan: scan incomplete"}, str(err)))
    for note in result.warnings:
        lines.append(command("warning", {"title": "keyscan"}, note))
    steps = next_steps(result, opts.advice)
    if steps:
        lines.append(command("notice", {"title": "keyscan: next step"}, " ".join(steps)))
    locations = sum(f.location_count for f in result.findings)
    if result.findings:
        summary = f"keyscan: {len(result.findings)} secret(s) in {locations} location(s)"
    elif result.errors:  # never "no keys found" for a run that had errors
        summary = "keyscan: scan incomplete: no OpenAI keys in what could be read"
    else:
        summary = "keyscan: no OpenAI keys found"
    if result.suppressed:
        summary += f"; {result.suppressed} suppressed"
    if opts.quiet and not result.findings and not result.errors:
        return ""
    lines.append(summary)
    return "\n".join(lines) + "\n"
