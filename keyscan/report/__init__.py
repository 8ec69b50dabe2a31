"""Reporters: each format is a module with ``render(result, options) -> str``.

Every format redacts secrets unless ``--show-secrets`` is given. Modules are imported only
when their format is asked for, so plain scans never load what they do not use.
"""

from __future__ import annotations

import importlib
import sys
from typing import TextIO

from keyscan.models import ScanResult
from keyscan.report.options import OutputOptions
from keyscan.terminal import safe

# format name -> module under keyscan.report
FORMATS: dict[str, str] = {
    "text": "text",
    "json": "json_report",
    "jsonl": "json_report",
    "sarif": "sarif",
    "github": "github",
    "junit": "junit",
}


def render(result: ScanResult, opts: OutputOptions) -> str:
    try:
        module = importlib.import_module(f"keyscan.report.{FORMATS[opts.format]}")
    except KeyError:
        raise ValueError(f"unknown output format {opts.format!r}") from None
    text: str = module.render(result, opts)
    return text


def write_report(result: ScanResult, opts: OutputOptions, stream: TextIO | None = None) -> None:
    """Render and write to ``--output`` (created 0600: it may hold secrets) or to stdout."""
    text = render(result, opts)
    if opts.output and opts.output != "-":
        from keyscan.privatefile import PrivateFileError, write_private

        # A temporary file renamed at the end: an interrupted run leaves no half report, a
        # symlink at the target is replaced (not followed), an old 0644 file becomes 0600.
        try:
            write_private(opts.output, text)
        except PrivateFileError as exc:
            from keyscan.models import ScanError

            result.errors.append(ScanError(exc.path, f"report not written: {exc.why}"))
    elif text:
        out = stream or sys.stdout
        out.write(text)
        out.flush()
    print_errors(result)


def print_errors(result: ScanResult, stream: TextIO | None = None) -> None:
    """One line per error on stderr, names made safe for a terminal."""
    out = stream or sys.stderr
    for err in result.errors:
        print(f"keyscan: error: {safe(err.where)}: {safe(err.message)}", file=out)
    for note in result.warnings:
        print(f"keyscan: warning: {safe(note)}", file=out)
