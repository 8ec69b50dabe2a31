"""Module-level regular expressions compiled on first use, then as fast as ``re.compile``'s.

A run that never needs a pattern (a clean pre-commit hook needs none of the decoders'
triggers, the Azure host checks or the terminal escaping) should not compile it: 2 ms of a
hook's start-up. ``lazy_compile(globals(), NAME, pattern)`` returns a stand-in bound to
``NAME``: the first attribute asked of it (``.search``, ``.finditer``, ``.pattern``...)
compiles the pattern and puts the compiled pattern in the module's ``NAME``, so every later
use inside the module's functions reads the real ``re.Pattern`` (no indirection). A reference
taken elsewhere before that (``from m import NAME``) keeps working through the stand-in.
"""

from __future__ import annotations

import re
from typing import Any, AnyStr, cast


class _LazyPattern:
    __slots__ = ("_compiled", "_flags", "_name", "_namespace", "_pattern")

    def __init__(self, namespace: dict[str, Any], name: str, pattern: str | bytes, flags: int):
        self._namespace = namespace
        self._name = name
        self._pattern = pattern
        self._flags = flags
        self._compiled: re.Pattern[Any] | None = None

    def compiled(self) -> re.Pattern[Any]:
        compiled = self._compiled
        if compiled is None:
            compiled = self._compiled = re.compile(self._pattern, self._flags)
            if self._namespace.get(self._name) is self:  # not if something replaced it
                self._namespace[self._name] = compiled
        return compiled

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.compiled(), attribute)

    def __repr__(self) -> str:
        return repr(self.compiled())


def lazy_compile(
    namespace: dict[str, Any], name: str, pattern: AnyStr, flags: int = 0
) -> re.Pattern[AnyStr]:
    """A stand-in for ``re.compile(pattern, flags)`` bound to ``namespace[name]`` (see the
    module docstring); ``name`` must be the name it is assigned to."""
    return cast("re.Pattern[AnyStr]", _LazyPattern(namespace, name, pattern, flags))
