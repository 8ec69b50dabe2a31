"""How a report is written: the options every reporter reads."""

from __future__ import annotations

from keyscan.records import dataclass


@dataclass
class OutputOptions:
    format: str = "text"
    output: str | None = None
    show_secrets: bool = False
    color: str = "auto"  # auto | always | never
    quiet: bool = False
    all_locations: bool = False
    # The situation the next-step advice fits (keyscan.report.advice): commit, push, history,
    # files; empty: worked out from the kind of scan.
    advice: str = ""
