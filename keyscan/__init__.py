"""keyscan: find, verify and revoke hardcoded OpenAI credentials.

The public Python API (see ``keyscan.api``) is exported from here. It is loaded on first use,
so that ``import keyscan`` (which every command does) stays as cheap as the version string::

    from keyscan import Scanner
    result = Scanner().scan_text(prompt)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keyscan.version import __version__

__all__ = [
    "EXIT_CLEAN",
    "EXIT_ERROR",
    "EXIT_FINDINGS",
    "Confidence",
    "Finding",
    "GitScope",
    "KeyscanError",
    "Location",
    "ScanError",
    "ScanOptions",
    "ScanResult",
    "Scanner",
    "TriageOptions",
    "__version__",
    "exit_code",
    "finding_to_dict",
    "load_rules",
    "scan_text",
    "triage",
]

if TYPE_CHECKING:
    from keyscan.api import (
        EXIT_CLEAN,
        EXIT_ERROR,
        EXIT_FINDINGS,
        Confidence,
        Finding,
        GitScope,
        KeyscanError,
        Location,
        ScanError,
        Scanner,
        ScanOptions,
        ScanResult,
        TriageOptions,
        exit_code,
        finding_to_dict,
        load_rules,
        scan_text,
        triage,
    )


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        from keyscan import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'keyscan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
