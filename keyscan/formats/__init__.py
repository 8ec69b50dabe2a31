"""Content formats: the layer below ``keyscan.content``.

Decoders (base64, percent-encoding, string escapes, UTF-16), Jupyter notebooks, archives and
Office documents (``office``: the text of a zip that is one) expand bytes into more bytes. They never import the scanner (``keyscan.content``,
``keyscan.sources``, ``keyscan.detector``, ``keyscan.pipeline``): the content layer hands
them a way to rescan what they expand, and the list that collects what could not be read.
"""

from __future__ import annotations


def archive_kind(head: bytes) -> str | None:
    """The archive format from the first 512 bytes (magic numbers, not names): "zip",
    "gzip", "bzip2", "xz", "tar", "crx" (a zip behind a Chrome extension header), "ar"
    (.deb, static libraries), "asar" (Electron) or "rpm", else None. Cheap: the archive
    code is imported only for a buffer that is one."""
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
    if head[:1] in _RARE_FIRST_BYTES:  # one set lookup for a plain file
        return _rare_kind(head)
    return None


_RARE_FIRST_BYTES = frozenset((b"C", b"!", b"\x04", b"\xed"))


def _rare_kind(head: bytes) -> str | None:
    if head[:4] == b"Cr24":
        return "crx"
    if head[:8] == b"!<arch>\n":
        return "ar"
    if head[:4] == b"\x04\x00\x00\x00" and head[16:25] == b'{"files":':
        return "asar"
    if head[:4] == b"\xed\xab\xee\xdb":
        return "rpm"
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
