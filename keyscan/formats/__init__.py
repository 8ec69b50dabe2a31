"""Content formats: the layer below ``keyscan.content``.

Decoders (base64, percent-encoding, string escapes, UTF-16), Jupyter notebooks and archives
expand bytes into more bytes. They never import the scanner (``keyscan.content``,
``keyscan.sources``, ``keyscan.detector``, ``keyscan.pipeline``): the content layer hands
them a way to rescan what they expand, and the list that collects what could not be read.
"""

from __future__ import annotations


def archive_kind(head: bytes) -> str | None:
    """The archive format from the first 512 bytes (magic numbers, not names): "zip",
    "gzip", "bzip2", "xz" or "tar", else None. Cheap: the archive code is imported only
    for a buffer that is one."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if head[:3] == b"\x1f\x8b\x08":
        return "gzip"
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] == b"1AY&SY":
        return "bzip2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[257:262] == b"ustar":
        return "tar"
    return None


def is_pdf(head: bytes, binary: bool = True) -> bool:
    """A PDF (keyscan.formats.pdf reads it): ``%PDF-`` at the start, or, in binary content,
    within the first 1024 bytes (real PDFs are binary: the spec's binary comment line,
    compressed streams). Text pays only for ``startswith``: searching a kilobyte would cost
    a few percent of scanning a small source file."""
    if head.startswith(b"%PDF-"):
        return True
    return binary and head.find(b"%PDF-", 0, 1024) >= 0


def is_notebook(name: str) -> bool:
    """A Jupyter notebook, by its name (``.ipynb``)."""
    return name.lower().endswith(".ipynb")
