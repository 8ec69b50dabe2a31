"""zlib's inflate, or ISA-L's where its compiled wheel is installed (python-isal: the same
deflate streams, checksums checked as zlib checks them, about 1.6x zlib's speed on git's packs
and 1.25x on zip members). The pack reader (keyscan.git.packs) and the archive reader
(keyscan.formats.archives) inflate through this module; keyscan imports isal here and nowhere
else."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any, NamedTuple


class Inflate(NamedTuple):
    """A zlib-format inflater: ``decompress(data, bufsize=n)``, ``decompressobj(wbits)``
    (whose ``decompress(data, max_length)`` stops at ``max_length``; wbits -15: a raw
    deflate stream, as in a zip member), and the errors it raises on a corrupt or cut
    stream (its checksum included)."""

    decompress: Callable[..., bytes]
    decompressobj: Callable[..., Any]
    errors: tuple[type[Exception], ...]


ZLIB = Inflate(zlib.decompress, zlib.decompressobj, (zlib.error,))


def inflate_functions() -> Inflate:
    """ISA-L's inflate (``isal.isal_zlib``), or zlib's where that wheel is not installed."""
    try:
        from isal import isal_zlib  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return ZLIB
    error: type[Exception] = isal_zlib.error  # type: ignore[assignment, unused-ignore]
    return Inflate(isal_zlib.decompress, isal_zlib.decompressobj, (zlib.error, error))
