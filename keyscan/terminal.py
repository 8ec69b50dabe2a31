"""Terminal escaping: the one function that makes hostile text safe to show.

File names, commit subjects, author names, refs and server messages come from whoever wrote
the scanned data. Shown raw, an ANSI escape or a bidi control could forge or hide keyscan's
own output. Everything such text passes through on its way to a terminal goes through
:func:`safe`.
"""

from __future__ import annotations

import re

from keyscan.lazypattern import lazy_compile

# C0/C1 controls (ANSI escapes, CR, BS...), bidi controls that reorder what is shown, line
# and paragraph separators, and lone surrogates (bytes of a name that is not UTF-8).
_UNSAFE = lazy_compile(
    globals(), "_UNSAFE",
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ud800-\udfff]"
)


def _escape(m: re.Match[str]) -> str:
    o = ord(m.group())
    if 0xDC80 <= o <= 0xDCFF:  # an undecodable byte read with surrogateescape
        return f"\\x{o - 0xDC00:02x}"
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def safe(text: str) -> str:
    """Escape what a terminal would interpret, so hostile names cannot forge output."""
    return _UNSAFE.sub(_escape, text)
