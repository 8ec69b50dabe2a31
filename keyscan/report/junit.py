"""JUnit XML for CI systems that show test reports (GitLab, Jenkins, Azure Pipelines, ...).

One ``testsuite``; one failing ``testcase`` per finding location, one ``error`` testcase per
part of the scan that could not be read, and a single passing testcase when all is clean.
Built with ElementTree (escaping), after making every value safe for XML 1.0 (control
characters are written as ``\\xNN``). Always redacted.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from keyscan.models import Finding, Location, ScanResult
from keyscan.report.options import OutputOptions
from keyscan.report.sarif import message, relative_path, root_for, title
from keyscan.report.text import format_location
from keyscan.terminal import safe


def _where(loc: Location, root: Path) -> str:
    if loc.source == "git-message":
        return f"commit message of {loc.commit.sha[:12] if loc.commit else '?'}"
    path = (relative_path(loc, root) or loc.path) + "".join(f"!{m}" for m in loc.member)
    if loc.extra.get("file_name"):
        return f"{safe(path)} (file name)"
    return safe(path) if loc.binary else f"{safe(path)}:{loc.line}:{loc.column}"


def _testcase(suite: ET.Element, f: Finding, loc: Location, root: Path) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "classname": f"keyscan.{f.rule_id}",
            "name": f"{_where(loc, root)} {f.redacted}",
            "time": "0",
        },
    )
    if loc.source != "git-message":
        case.set("file", safe(relative_path(loc, root) or loc.path))
        if not loc.binary and not loc.extra.get("file_name") and not loc.member:
            case.set("line", str(loc.line))
    failure = ET.SubElement(case, "failure", {"type": f.rule_id, "message": safe(message(f, loc))})
    details = [
        f"{title(f)}: {f.redacted}",
        f"rule: {f.rule_id}  family: {f.family}  confidence: {f.confidence}",
        f"sha256: {f.fingerprint}",
        f"location: {format_location(loc)}",
    ]
    if f.verification is not None:
        details.append(f"validity: {safe(f.verification.status)} {safe(f.verification.reason)}")
    details.extend(f"note: {safe(n)}" for n in f.notes)
    failure.text = "\n".join(details)


def render(result: ScanResult, opts: OutputOptions) -> str:
    root = root_for(result)
    cases = sum(len(f.locations) for f in result.findings)
    tests = cases + len(result.errors) + (0 if cases or result.errors else 1)
    attrs = {
        "name": "keyscan",
        "tests": str(tests),
        "failures": str(cases),
        "errors": str(len(result.errors)),
        "skipped": "0",
        "time": f"{result.duration:.3f}",
    }
    suites = ET.Element("testsuites", attrs)
    suite = ET.SubElement(suites, "testsuite", attrs)
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("kind", result.kind),
        ("files", str(result.files)),
        ("bytes", str(result.bytes)),
        ("suppressed", str(result.suppressed)),
    ):
        ET.SubElement(props, "property", {"name": name, "value": safe(value)})
    for f in result.findings:
        for loc in f.locations:
            _testcase(suite, f, loc, root)
    for err in result.errors:
        case = ET.SubElement(
            suite, "testcase", {"classname": "keyscan.scan", "name": safe(err.where), "time": "0"}
        )
        ET.SubElement(case, "error", {"type": "scan-error", "message": safe(str(err))})
    if tests and not cases and not result.errors:
        ET.SubElement(
            suite,
            "testcase",
            {"classname": "keyscan.scan", "name": "no OpenAI keys found", "time": "0"},
        )
    if result.warnings:
        out = ET.SubElement(suite, "system-err")
        out.text = "\n".join(f"warning: {safe(w)}" for w in result.warnings)
    ET.indent(suites)
    body = ET.tostring(suites, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'
