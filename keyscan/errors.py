"""The one base class of keyscan's own exceptions.

Every error keyscan raises on purpose (a bad rule file, config, baseline or report, a git
failure, an Admin API error, an unsafe API base URL...) is a ``KeyscanError``: a library user
catches one class. Messages are one line, say what and why, and never hold a raw key.
"""

from __future__ import annotations


class KeyscanError(Exception):
    """A problem keyscan reports to its caller: one line, no raw key."""
