"""How a report is written: the options every reporter reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class OutputOptions:
    format: str = "text"
    output: str | None = None
    show_secrets: bool = False
    color: str = "auto"  # auto | always | never
    quiet: bool = False
    all_locations: bool = False
    # Extra lines of advice a reporter may print (the pre-commit hook sets this).
    hook: bool = False
