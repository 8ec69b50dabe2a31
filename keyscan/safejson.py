"""JSON from files keyscan reads (baselines, reports, store columns), without tracebacks.

``json.loads`` recurses once per nesting level: 100,000 ``[`` raise RecursionError, which is
not a ValueError. ``loads`` turns it into one: callers report one clear line and exit 2.
"""

from __future__ import annotations

import json
from typing import Any

from keyscan.errors import KeyscanError


class TooDeep(KeyscanError, ValueError):
    """JSON nested deeper than Python's JSON parser can follow."""

    def __init__(self) -> None:
        super().__init__("JSON nested too deeply")


def loads(text: str | bytes) -> Any:
    """``json.loads``; a document nested too deeply is ``TooDeep`` (a ValueError)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise TooDeep() from None
