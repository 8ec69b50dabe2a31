"""Reporters: each format is a module with ``render(result, options) -> str``.

Every format redacts secrets unless ``--show-secrets`` is given. Modules are imported only
when their format is asked for, so plain scans never load what they do not use.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TextIO

from keyscan.models import ScanResult
from keyscan.pipeline import OutputOptions

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
    from keyscan.pipeline import print_errors

    text = render(result, opts)
    if opts.output and opts.output != "-":
        fd = os.open(opts.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
    elif text:
        out = stream or sys.stdout
        out.write(text)
        out.flush()
    print_errors(result)
