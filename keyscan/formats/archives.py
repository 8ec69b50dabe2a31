"""Archives: zip (wheels, jars), tar, tar.gz/.bz2/.xz, and single .gz/.bz2/.xz files.

Archives are recognised by their magic bytes, whatever their name, and scanned member by
member, nested to ``ContentOptions.archive_depth`` levels (default 2: an archive in an
archive). A member is located by ``Location.member``, the chain of member names inside the
file at ``Location.path`` (reported as ``outer/path.whl!pkg/config.py``, ``!`` once per level).

This module never imports the scanner: the content layer passes a ``Rescan`` (how to scan the
bytes of a member, whole or as a stream) and the list that collects errors.

Nothing is ever written to disk: members are read from the archive stream into memory (up
to ``IN_MEMORY`` bytes; larger members are scanned as a stream, in chunks), so hostile member
names (``../../etc/passwd``, absolute paths, links) cannot touch the file system.

An archive that is not opened although archives are scanned (nested deeper than
``archive_depth``, or a member too big to hold in memory) is scanned as raw bytes and
reported as a ScanError: the scan is incomplete and exits 2. ``archive_depth`` 0 opens no
archive at all, by the user's choice, and says nothing.

Zip bombs are refused: an archive on disk may inflate to at most ``archive_max_bytes`` in
all (nested members included), and a member that inflates beyond ``archive_ratio_floor``
bytes may not exceed ``archive_max_ratio`` times its compressed size. A refusal is a
ScanError naming the archive (and member): the scan goes on, and exits 2.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import IO, Any, BinaryIO, Protocol, cast

from keyscan.errors import KeyscanError
from keyscan.findings import Hit, is_binary
from keyscan.formats import archive_kind, images
from keyscan.models import Location, ScanError

# Members up to this size are read whole (nested archives and notebooks need that).
IN_MEMORY = 32 * 1024 * 1024
READ_BLOCK = 1024 * 1024
MAX_MEMBERS = 100_000
_COMPRESSED_SUFFIXES = (".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz")

# What the stdlib readers raise on hostile or broken archives (found by fuzzing, among others:
# IndexError from zipfile on an empty member name, struct.error on short headers).
_READ_ERRORS = (
    zipfile.BadZipFile,
    struct.error,
    IndexError,
    KeyError,
    OverflowError,
    zipfile.LargeZipFile,
    tarfile.TarError,
    lzma.LZMAError,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,  # zip compression methods Python lacks
    RuntimeError,  # zipfile: encrypted members
    ValueError,
)


class ArchiveOptions(Protocol):
    """The limits archives obey (``keyscan.content.ContentOptions`` has them)."""

    @property
    def archive_depth(self) -> int: ...
    @property
    def archive_max_bytes(self) -> int: ...
    @property
    def archive_max_ratio(self) -> int: ...
    @property
    def archive_ratio_floor(self) -> int: ...


@dataclass(frozen=True)
class Rescan:
    """How the content layer scans what an archive expands, without opening archives again
    (nested archives are opened here, to ``archive_depth``). Both append to ``errors``."""

    # A member held in memory: hits located in it.
    buffer: Callable[[bytes, Location, list[ScanError]], list[Hit]]
    # A member too big for memory, read in chunks: (hits, bytes read).
    stream: Callable[[BinaryIO, Location, list[ScanError]], tuple[list[Hit], int]]


class Refused(KeyscanError):
    """An archive or member refused as a likely bomb."""


@dataclass
class _Budget:
    """Bytes left to inflate for one archive on disk (shared by its nested archives)."""

    left: int


@dataclass
class _Ctx:
    rescan: Rescan
    options: ArchiveOptions
    errors: list[ScanError]
    budget: _Budget


def scan_archive_file(
    fh: BinaryIO,
    template: Location,
    options: ArchiveOptions,
    rescan: Rescan,
    errors: list[ScanError],
) -> list[Hit]:
    """Hits in the members of an archive open as a seekable binary file."""
    size = os.fstat(fh.fileno()).st_size if hasattr(fh, "fileno") else _size(fh)
    ctx = _Ctx(rescan, options, errors, _Budget(options.archive_max_bytes))
    return _scan_archive(ctx, fh, size, template, depth=1)


def scan_image_dir(
    root: str,
    template: Location,
    options: ArchiveOptions,
    rescan: Rescan,
    errors: list[ScanError],
) -> list[Hit]:
    """Hits in an OCI image layout on disk (keyscan.formats.images), with the limits of an
    archive on disk."""
    ctx = _Ctx(rescan, options, errors, _Budget(options.archive_max_bytes))
    return images.scan_image_dir(_Members(ctx), root, template)


@dataclass
class _Members:
    """What keyscan.formats.images needs of this module (images.Members)."""

    ctx: _Ctx

    @property
    def errors(self) -> list[ScanError]:
        return self.ctx.errors

    @property
    def archive_depth(self) -> int:
        return self.ctx.options.archive_depth

    def exhausted(self) -> bool:
        return self.ctx.budget.left <= 0

    def scan(
        self,
        stream: IO[bytes],
        ratio_base: int,
        already: int,
        template: Location,
        depth: int,
        hits: list[Hit],
    ) -> int:
        return _scan_member(self.ctx, stream, ratio_base, already, template, depth, hits)

    def stream(self, fh: BinaryIO, template: Location) -> list[Hit]:
        return self.ctx.rescan.stream(fh, template, self.ctx.errors)[0]


def scan_archive_bytes(
    data: bytes,
    template: Location,
    options: ArchiveOptions,
    rescan: Rescan,
    errors: list[ScanError],
) -> list[Hit]:
    """Hits in the members of an archive held in memory (a git blob, stdin)."""
    ctx = _Ctx(rescan, options, errors, _Budget(options.archive_max_bytes))
    return _scan_archive(ctx, io.BytesIO(data), len(data), template, depth=1)


def _derive(template: Location, **changes: Any) -> Location:
    """``dataclasses.replace(template, **changes)`` for the per-member hot path: a copy of
    the fields without going through ``__init__`` (Location has no ``__post_init__``),
    about ten times cheaper; archives of thousands of members pay it twice per member."""
    new = object.__new__(type(template))
    new.__dict__.update(template.__dict__)
    new.__dict__.update(changes)
    return new


def _in(template: Location, name: str) -> Location:
    """The location of member ``name`` of the archive at ``template``."""
    return _derive(template, member=(*template.member, name), extra=dict(template.extra))


def _size(fh: BinaryIO) -> int:
    pos = fh.tell()
    end = fh.seek(0, io.SEEK_END)
    fh.seek(pos)
    return end


def _plain(ctx: _Ctx, fh: BinaryIO, template: Location, why: BaseException) -> list[Hit]:
    """Looks like an archive but none can be read (a broken download, a truncated zip):
    scan the bytes as they are, and say that members may have been missed."""
    ctx.errors.append(
        ScanError(template.display_path, f"unreadable archive, scanned as raw bytes: {_why(why)}")
    )
    fh.seek(0)
    data = fh.read(ctx.options.archive_max_bytes)
    tmpl = replace(template, binary=is_binary(data[:8192]))
    return ctx.rescan.buffer(data, tmpl, ctx.errors)


def _scan_archive(ctx: _Ctx, fh: BinaryIO, size: int, template: Location, depth: int) -> list[Hit]:
    fh.seek(0)
    kind = archive_kind(fh.read(512))
    fh.seek(0)
    if kind == "tar":  # a container image (docker save, OCI layout) is a plain tar
        image = images.scan_image_tar(_Members(ctx), fh, template, depth)
        if image is not None:
            return image
    hits: list[Hit] = []
    members: Iterator[tuple[str, IO[bytes], int | None]]
    try:
        if kind == "zip":
            members = _zip_members(ctx, zipfile.ZipFile(fh), template)
        elif kind in ("gzip", "bzip2", "xz", "tar"):
            members = _tar_or_stream(fh, kind, template.name)
        else:  # pragma: no cover - callers check archive_kind first
            raise zipfile.BadZipFile("unknown archive format")
    except _READ_ERRORS as exc:
        return _plain(ctx, fh, template, exc)
    inflated = 0
    count = 0
    name = "?"
    try:
        for name, stream, compressed in members:
            count += 1
            if count > MAX_MEMBERS:
                raise Refused(f"more than {MAX_MEMBERS} members")
            # Streams of a tar.gz share one compressed size: the archive's.
            ratio_base = compressed if compressed is not None else size
            member = _in(template, name)
            member_path = member.display_path
            try:
                inflated += _scan_member(
                    ctx,
                    stream,
                    ratio_base,
                    inflated if compressed is None else 0,
                    member,
                    depth,
                    hits,
                )
            except Refused as exc:
                if compressed is None:
                    raise  # one compressed stream: nothing after this member can be read
                ctx.errors.append(ScanError(member_path, f"not scanned: {exc}"))
                if ctx.budget.left <= 0:
                    return hits
            except _READ_ERRORS as exc:
                if depth == 1 and not hits and ctx.budget.left == ctx.options.archive_max_bytes:
                    return _plain(ctx, fh, template, exc)  # nothing inflates at all
                ctx.errors.append(ScanError(member_path, f"cannot read member: {_why(exc)}"))
    except Refused as exc:
        ctx.errors.append(ScanError(template.display_path, f"archive refused: {exc}"))
    except _READ_ERRORS as exc:
        if depth == 1 and not hits and ctx.budget.left == ctx.options.archive_max_bytes:
            return _plain(ctx, fh, template, exc)
        ctx.errors.append(
            ScanError(
                template.display_path, f"archive damaged after member {name!r}: {_why(exc)}"
            )
        )
    return hits


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _zip_members(
    ctx: _Ctx, zf: zipfile.ZipFile, template: Location
) -> Iterator[tuple[str, IO[bytes], int | None]]:
    with zf:
        for info in zf.infolist():
            if info.filename.endswith("/"):  # not is_dir(): IndexError on an empty name
                continue
            if info.flag_bits & 0x1:
                ctx.errors.append(
                    ScanError(_in(template, info.filename).display_path, "not scanned: encrypted")
                )
                continue
            with zf.open(info) as stream:
                yield info.filename, stream, info.compress_size


def _tar_or_stream(
    fh: BinaryIO, kind: str, path: str
) -> Iterator[tuple[str, IO[bytes], int | None]]:
    mode = {"gzip": "r:gz", "bzip2": "r:bz2", "xz": "r:xz", "tar": "r:"}[kind]
    try:
        tf = tarfile.open(fileobj=fh, mode=mode)  # type: ignore[call-overload]  # noqa: SIM115
    except tarfile.ReadError:
        if kind == "tar":
            raise
        fh.seek(0)
        return _single_stream(fh, kind, path)
    return _tar_members(cast(tarfile.TarFile, tf), fh, kind, path)


def _tar_members(
    tf: tarfile.TarFile, fh: BinaryIO, kind: str, path: str
) -> Iterator[tuple[str, IO[bytes], int | None]]:
    entries = 0
    with tf:
        for member in tf:
            entries += 1
            if not member.isreg():
                continue  # links, devices, folders: nothing to read, nothing to follow
            stream = tf.extractfile(member)
            if stream is not None:
                # Plain tar: members are stored; compressed tar: one stream, ratio of the whole.
                yield member.name, stream, None
    if entries == 0 and kind != "tar":
        # tarfile takes data that starts with a zero block for an empty archive: read the
        # compressed stream as a single file instead, so nothing behind the zeros is missed.
        fh.seek(0)
        yield from _single_stream(fh, kind, path)


def _single_stream(
    fh: BinaryIO, kind: str, path: str
) -> Iterator[tuple[str, IO[bytes], int | None]]:
    """The one file a compressed stream holds, named after ``path`` (the stream's own name,
    or its member name inside an archive) without its suffix."""
    base = path.replace("\\", "/").rsplit("/", 1)[-1]
    name = base
    for suffix in _COMPRESSED_SUFFIXES:
        if base.lower().endswith(suffix):
            name = base[: -len(suffix)]
            if suffix.startswith(".t"):
                name += ".tar"
            break
    else:
        name = base + ".data"
    stream: IO[bytes]
    if kind == "gzip":
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=fh, mode="rb"))
    elif kind == "bzip2":
        stream = bz2.BZ2File(fh)
    else:
        stream = lzma.LZMAFile(fh)  # noqa: SIM115 (closed below)
    with stream:
        yield name, stream, None


def _read_checked(
    ctx: _Ctx, stream: IO[bytes], n: int, ratio_base: int, already: int, got: int
) -> bytes:
    """Read up to n bytes, refusing what goes over the budget or the ratio."""
    data = stream.read(n)
    if len(data) > ctx.budget.left:
        ctx.budget.left = 0
        raise Refused(f"inflates to more than {ctx.options.archive_max_bytes} bytes (zip bomb?)")
    ctx.budget.left -= len(data)
    total = already + got + len(data)
    opts = ctx.options
    if total > opts.archive_ratio_floor and total > opts.archive_max_ratio * max(ratio_base, 1):
        raise Refused(
            f"compression ratio above {opts.archive_max_ratio}:1 "
            f"({total} bytes from {ratio_base}; zip bomb?)"
        )
    return data


def _read_full(
    ctx: _Ctx, stream: IO[bytes], n: int, ratio_base: int, already: int, got: int
) -> bytes:
    parts: list[bytes] = []
    size = 0
    while size < n:
        block = _read_checked(
            ctx, stream, min(READ_BLOCK, n - size), ratio_base, already, got + size
        )
        if not block:
            break
        parts.append(block)
        size += len(block)
    return b"".join(parts)


class _MemberStream(io.RawIOBase):
    """The rest of a big member, read through the budget: full reads until the end."""

    def __init__(
        self, ctx: _Ctx, head: bytes, stream: IO[bytes], ratio_base: int, already: int
    ) -> None:
        super().__init__()
        self.ctx, self.head, self.stream = ctx, head, stream
        self.ratio_base, self.already, self.got = ratio_base, already, len(head)

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        n = READ_BLOCK if n is None or n < 0 else n
        out = self.head[:n]
        self.head = self.head[n:]
        if len(out) < n:
            more = _read_full(
                self.ctx, self.stream, n - len(out), self.ratio_base, self.already, self.got
            )
            self.got += len(more)
            out += more
        return out


def _scan_member(
    ctx: _Ctx,
    stream: IO[bytes],
    ratio_base: int,
    already: int,
    template: Location,
    depth: int,
    hits: list[Hit],
) -> int:
    """Scan one member; returns the bytes it inflated to."""
    data = _read_full(ctx, stream, IN_MEMORY, ratio_base, already, 0)
    nested = archive_kind(data[:512]) is not None
    if nested and (len(data) >= IN_MEMORY or depth >= ctx.options.archive_depth):
        why = (
            f"larger than {IN_MEMORY} bytes (too big to open in memory)"
            if len(data) >= IN_MEMORY
            else f"nested deeper than --archive-depth {ctx.options.archive_depth}"
        )
        ctx.errors.append(
            ScanError(template.display_path, f"archive {why}: not opened, scanned as raw bytes")
        )
    if len(data) >= IN_MEMORY:
        big = _MemberStream(ctx, data, stream, ratio_base, already)
        found, size = ctx.rescan.stream(cast(BinaryIO, big), template, ctx.errors)
        hits.extend(found)
        return size
    if nested and depth < ctx.options.archive_depth:
        hits.extend(_scan_archive(ctx, io.BytesIO(data), len(data), template, depth + 1))
        return len(data)
    tmpl = _derive(template, binary=is_binary(data[:8192]))
    hits.extend(ctx.rescan.buffer(data, tmpl, ctx.errors))
    return len(data)
