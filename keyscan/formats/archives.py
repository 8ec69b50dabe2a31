"""Archives: zip (wheels, jars), tar, tar.gz/.bz2/.xz, and single .gz/.bz2/.xz files.

Archives are recognised by their magic bytes, whatever their name, and scanned member by
member, nested to ``ContentOptions.archive_depth`` levels (default 3: an archive in an
archive in an archive). A member is located by ``Location.member``, the chain of member names inside the
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
from keyscan.findings import Hit, LineCounter, is_binary
from keyscan.formats import archive_kind, images, office
from keyscan.inflate import ZLIB, inflate_functions
from keyscan.models import Location, ScanError

# Members up to this size are read whole (nested archives and notebooks need that).
IN_MEMORY = 32 * 1024 * 1024
READ_BLOCK = 1024 * 1024
MAX_MEMBERS = 100_000
_OFFICE_HINTS = frozenset(("[Content_Types].xml", "mimetype"))
_COMPRESSED_SUFFIXES = (".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz")

# zip members are inflated with ISA-L where it is installed (keyscan.inflate; ``_inflater``).
_INFLATE = inflate_functions()
_ZLIB_DECOMPRESS = type(zlib.decompressobj(-15))

# What the stdlib readers raise on hostile or broken archives (found by fuzzing, among others:
# IndexError from zipfile on an empty member name, struct.error on short headers).
_READ_ERRORS: tuple[type[Exception], ...] = (
    *_INFLATE.errors,  # ISA-L's inflate on a corrupt member
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
    elif kind in ("gzip", "bzip2", "xz"):  # or a compressed one (docker save | gzip)
        image = _compressed_image(ctx, fh, kind, size, template, depth)
        if image is not None:
            return image
    hits: list[Hit] = []
    members: Iterator[tuple[str, IO[bytes], int | None]]
    try:
        if kind in ("zip", "crx"):  # zipfile finds a zip behind the CRX header itself
            members = _zip_members(ctx, zipfile.ZipFile(fh), template)
        elif kind in ("gzip", "bzip2", "xz", "tar"):
            members = _tar_or_stream(fh, kind, template.name)
        elif kind == "ar":
            members = _ar_members(fh, size)
        elif kind == "asar":
            members = _asar_members(fh, size)
        elif kind == "rpm":
            members = _rpm_members(fh, size)
        else:  # pragma: no cover - callers check archive_kind first
            raise zipfile.BadZipFile("unknown archive format")
    except _READ_ERRORS as exc:
        return _plain(ctx, fh, template, exc)
    inflated = 0
    count = 0
    name = "?"
    office_hint = False  # a member that Office packages have: look at its text afterwards
    damaged = False
    try:
        for name, stream, compressed in members:
            count += 1
            if name in _OFFICE_HINTS:
                office_hint = True
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
                damaged = True
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
        damaged = True
    if damaged and kind in _TAR_KINDS:
        return _with_raw(ctx, fh, template, hits)
    return _office_text(ctx, fh, template, hits) if kind == "zip" and office_hint else hits


_TAR_KINDS = frozenset(("tar", "gzip", "bzip2", "xz"))


def _with_raw(ctx: _Ctx, fh: BinaryIO, template: Location, hits: list[Hit]) -> list[Hit]:
    """A tar damaged or cut after some members were read: its raw bytes are scanned too (the
    data of a member cut short is there, unread by tarfile); a key already found in a member
    is not reported again at its raw offset."""
    fh.seek(0)
    data = fh.read(ctx.options.archive_max_bytes)
    raw = ctx.rescan.buffer(data, replace(template, binary=is_binary(data[:8192])), ctx.errors)
    seen = {h.secret for h in hits}
    return hits + [h for h in raw if h.secret not in seen]


def _decompressor(fh: BinaryIO, kind: str) -> IO[bytes]:
    if kind == "gzip":
        return cast(IO[bytes], gzip.GzipFile(fileobj=fh, mode="rb"))
    if kind == "bzip2":
        return bz2.BZ2File(fh)
    return lzma.LZMAFile(fh)


def _compressed_image(
    ctx: _Ctx, fh: BinaryIO, kind: str, size: int, template: Location, depth: int
) -> list[Hit] | None:
    """The image in a compressed tar (``docker save img | gzip``), read like an uncompressed
    one at the same depth (the compression is part of the image level), or None if the tar
    holds no image. Only a tar whose first member is named like an image's (a layer folder
    or config of ``docker save``, ``blobs/``, ``oci-layout``, ``index.json``,
    ``manifest.json``) is listed, so an npm tgz or an sdist costs 512 inflated bytes. The
    inflated image may not exceed ``archive_max_bytes`` nor the ratio."""
    try:
        fh.seek(0)
        with _decompressor(fh, kind) as probe:
            head = probe.read(512)
    except _READ_ERRORS:
        fh.seek(0)
        return None
    fh.seek(0)
    if archive_kind(head) != "tar" or not images.looks_like_image_member(head[:100]):
        return None
    stream = _Inflated(ctx, _decompressor(fh, kind), size)
    try:
        found = images.scan_image_tar(
            _Members(ctx), cast(BinaryIO, stream), template, depth, compressed=True
        )
    except Refused as exc:
        ctx.errors.append(ScanError(template.display_path, f"image refused: {exc}"))
        return []
    except _READ_ERRORS:  # damaged past its head: read as a compressed tar (which says why)
        fh.seek(0)
        return None
    finally:
        stream.close()
    fh.seek(0)
    if stream.refused is not None and found is not None:
        ctx.errors.append(ScanError(template.display_path, f"image refused: {stream.refused}"))
    return found


class _Inflated(io.RawIOBase):
    """A seekable decompressed stream (gzip, bzip2, xz) that counts what it inflates: the
    image in it may not inflate beyond ``archive_max_bytes`` (nor the ratio to its compressed
    size), and the work of seeking (a backward seek decompresses again from the start) is
    bounded to four times that."""

    def __init__(self, ctx: _Ctx, inner: IO[bytes], compressed: int) -> None:
        super().__init__()
        self.ctx, self.inner, self.compressed = ctx, inner, compressed
        self.pos = self.high = self.work = 0
        self.refused: Refused | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def _account(self, work: int, reach: int) -> None:
        opts = self.ctx.options
        self.work += work
        self.high = max(self.high, reach)
        why = None
        if self.high > opts.archive_max_bytes:
            why = f"inflates to more than {opts.archive_max_bytes} bytes (zip bomb?)"
        elif self.high > opts.archive_ratio_floor and self.high > opts.archive_max_ratio * max(
            self.compressed, 1
        ):
            why = (
                f"compression ratio above {opts.archive_max_ratio}:1 "
                f"({self.high} bytes from {self.compressed}; zip bomb?)"
            )
        elif self.work > 4 * opts.archive_max_bytes:
            why = f"more than {4 * opts.archive_max_bytes} bytes decompressed to read it"
        if why is not None:
            self.refused = Refused(why)
            self.ctx.budget.left = 0
            raise self.refused

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self.pos
        elif whence == io.SEEK_END:  # pragma: no cover - tarfile seeks from the start
            raise OSError("cannot seek from the end of a compressed stream")
        offset = max(offset, 0)
        if offset < self.pos:  # decompress again from the start
            self.inner.seek(0)
            self.pos = 0
        while self.pos < offset:  # forward: decompressed block by block, each one counted
            if not self.read(min(READ_BLOCK, offset - self.pos)):
                break
        return self.pos

    def read(self, n: int | None = -1) -> bytes:
        if self.refused is not None:
            raise self.refused
        want = 1 << 62 if n is None or n < 0 else n
        parts: list[bytes] = []
        while want > 0:
            data = self.inner.read(min(want, READ_BLOCK))
            if not data:
                break
            self.pos += len(data)
            want -= len(data)
            parts.append(data)
            self._account(len(data), self.pos)
        return b"".join(parts)

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.inner.close()
        super().close()


def _office_text(ctx: _Ctx, fh: BinaryIO, template: Location, hits: list[Hit]) -> list[Hit]:
    """A zip that is an Office document (keyscan.formats.office): also scan the text a person
    sees, located by part and paragraph, cell or slide. Its members were scanned raw already;
    a key the text scan finds in a part is reported there, not again at the raw XML."""
    try:
        fh.seek(0)
        zf = zipfile.ZipFile(fh)
    except _READ_ERRORS:
        return hits
    parts: dict[str, bytes] = {}
    with zf:
        infos = {i.filename: i for i in zf.infolist() if not i.flag_bits & 0x1}

        def head(name: str) -> bytes:
            with zf.open(infos[name]) as stream:
                return stream.read(256)

        try:
            kind = office.office_kind(infos, head)
        except _READ_ERRORS:
            return hits
        if kind is None:
            return hits
        refused = {e.where for e in ctx.errors}  # the member scan said so already
        for name in office.parts_needed(kind, infos):
            info = infos[name]
            if _in(template, name).display_path in refused:
                continue
            try:
                with zf.open(info) as stream:
                    data = _read_full(ctx, stream, IN_MEMORY, info.compress_size, 0, 0)
            except Refused as exc:
                ctx.errors.append(
                    ScanError(_in(template, name).display_path, f"text not extracted: {exc}")
                )
                continue
            except _READ_ERRORS:
                continue  # the member scan said so already
            if len(data) >= IN_MEMORY:
                ctx.errors.append(
                    ScanError(
                        _in(template, name).display_path,
                        f"text not extracted: larger than {IN_MEMORY} bytes (raw XML scanned)",
                    )
                )
                continue
            parts[name] = data
    texts, problems = office.extract(kind, parts)
    for part, why in problems:
        ctx.errors.append(
            ScanError(
                _in(template, part).display_path,
                f"{kind} part not parsed, its text not joined (raw XML scanned): {why}",
            )
        )
    found: list[Hit] = []
    for text in texts:
        if not text.text:
            continue
        part_loc = _in(template, text.part)
        located = ctx.rescan.buffer(text.text, _derive(part_loc, binary=False), ctx.errors)
        for hit in located:
            loc = hit.location
            loc.extra = {**part_loc.extra, **text.unit_at(loc.offset)}
            loc.offset = text.xml_offset(loc.offset)
        located.sort(key=lambda h: h.location.offset)
        counter = LineCounter(parts[text.part])
        for hit in located:
            hit.location.line, hit.location.column, _ = counter.locate(hit.location.offset)
        found.extend(located)
    if not found:
        return hits
    # In a part whose text was scanned, a raw hit that is (a piece of) a key found in the
    # text is that key as the XML spells it, run by run: report the key, once, by its unit.
    secrets = {h.secret for h in found}
    text_parts = {(*template.member, part) for part in parts}
    kept = [
        h
        for h in hits
        if h.location.member not in text_parts or not any(h.secret in s for s in secrets)
    ]
    return kept + found


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
                _inflater(stream, info)
                yield info.filename, stream, info.compress_size


def _inflater(stream: IO[bytes], info: zipfile.ZipInfo) -> None:
    """A deflated member inflated by ISA-L instead of zlib (keyscan.inflate): the same raw
    deflate stream, about 1.25x faster through zipfile's reads (psf/requests' wheels in its
    history, 2,278 members: 0.140 -> 0.112 s of CPU); zipfile still checks each member's
    CRC-32. Only when the stream is zipfile's reader as Python 3.10-3.14 build it (a zlib
    decompressor, nothing read yet); otherwise zlib inflates it, as before."""
    if _INFLATE is ZLIB or info.compress_type != zipfile.ZIP_DEFLATED:
        return
    if type(getattr(stream, "_decompressor", None)) is _ZLIB_DECOMPRESS and not getattr(
        stream, "_readbuffer", b"x"
    ):
        stream._decompressor = _INFLATE.decompressobj(-15)  # type: ignore[attr-defined]


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
        if entries:  # a tar cut in a header ends tarfile's listing without an error
            images.check_tar_end(cast(IO[bytes], tf.fileobj), tf.offset, kind != "tar")
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


class _Window(io.RawIOBase):
    """``length`` bytes of a seekable file from ``start``: a stored member (ar, asar)."""

    def __init__(self, fh: BinaryIO, start: int, length: int) -> None:
        super().__init__()
        self.fh, self.pos, self.left = fh, start, length

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        if n <= 0:
            return b""
        self.fh.seek(self.pos)
        data = self.fh.read(n)
        self.pos += len(data)
        self.left = 0 if not data else self.left - len(data)
        return data

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


_AR_SYMBOLS = ("/", "/SYM64/", "__.SYMDEF", "__.SYMDEF SORTED")


def _ar_members(fh: BinaryIO, size: int) -> Iterator[tuple[str, IO[bytes], int | None]]:
    """Members of a Unix ``ar`` archive (a .deb: debian-binary, control.tar.*, data.tar.*;
    static libraries): 60-byte headers, GNU (``//`` table) and BSD (``#1/``) long names."""
    pos = 8
    longnames = b""
    while pos < size:
        fh.seek(pos)
        header = fh.read(60)
        if header in (b"", b"\n"):
            return
        if len(header) < 60 or header[58:60] != b"`\n":
            raise ValueError(f"damaged ar header at byte {pos}")
        name = header[:16].decode("utf-8", "replace").rstrip(" ")
        length = int(header[48:58].strip() or b"0")
        start = pos + 60
        if length < 0 or start + length > size:
            raise ValueError(f"ar member {name!r} runs past the end of the archive")
        pos = start + length + (length & 1)  # members are padded to an even size
        if name.startswith("#1/"):  # BSD: the name follows the header
            n = int(name[3:])
            if not 0 <= n <= length:
                raise ValueError("damaged BSD ar name")
            fh.seek(start)
            name = fh.read(n).rstrip(b"\0").decode("utf-8", "replace")
            start, length = start + n, length - n
        elif name == "//":
            fh.seek(start)
            longnames = fh.read(min(length, IN_MEMORY))
            continue
        elif name in _AR_SYMBOLS:
            continue
        elif name.startswith("/") and name[1:].isdigit():
            at = int(name[1:])
            end = longnames.find(b"/\n", at)
            name = longnames[at : end if end >= 0 else len(longnames)].decode("utf-8", "replace")
        else:
            name = name.removesuffix("/")
        yield name or "?", cast(IO[bytes], _Window(fh, start, length)), length


MAX_INDEX = 64 * 1024 * 1024  # an asar's JSON index, at most


def _asar_members(fh: BinaryIO, size: int) -> Iterator[tuple[str, IO[bytes], int | None]]:
    """Files of an Electron asar: a Chromium pickle (uint32 4, uint32 header size), then a
    pickled JSON index (uint32 payload size, uint32 length, the JSON), then the files,
    concatenated; offsets in the index count from the end of the header. Files marked
    ``unpacked`` live beside the archive (``app.asar.unpacked/``): scanned there."""
    import json

    fh.seek(0)
    _, header_size, _, length = struct.unpack("<4I", fh.read(16))
    if length > min(header_size, MAX_INDEX) or 8 + header_size > size:
        raise ValueError("damaged asar header")
    try:
        index = json.loads(fh.read(length))
    except RecursionError:
        raise ValueError("asar index nested too deeply") from None
    base = 8 + header_size
    stack: list[tuple[str, Any]] = [("", index)]
    while stack:
        prefix, node = stack.pop()
        files = node.get("files") if isinstance(node, dict) else None
        if not isinstance(files, dict):
            continue
        for name, child in sorted(files.items(), reverse=True):
            if not isinstance(child, dict):
                continue
            path = f"{prefix}{name}"
            if "files" in child:
                stack.append((f"{path}/", child))
            elif "offset" in child and not child.get("unpacked"):
                try:
                    offset, length = int(child["offset"]), int(child.get("size", 0))
                except (TypeError, ValueError):  # the message would quote the text
                    raise ValueError(f"asar file {path!r} has no usable offset") from None
                if offset < 0 or length < 0 or base + offset + length > size:
                    raise ValueError(f"asar file {path!r} lies past the end of the archive")
                yield path, cast(IO[bytes], _Window(fh, base + offset, length)), length


def _rpm_members(fh: BinaryIO, size: int) -> Iterator[tuple[str, IO[bytes], int | None]]:
    """Files of an RPM: a 96-byte lead, the signature header (padded to 8 bytes), the header,
    then the payload, a compressed cpio archive (gzip, bzip2, xz; newc). A zstd payload
    (Python has no zstd) is scanned as raw bytes, like any .zst file."""
    pos = 96
    for padded in (True, False):
        fh.seek(pos)
        head = fh.read(16)
        if len(head) < 16 or head[:3] != b"\x8e\xad\xe8":
            raise ValueError("damaged rpm header")
        count, data_size = struct.unpack(">II", head[8:16])
        pos += 16 + 16 * count + data_size
        if padded:
            pos += -pos % 8
    if pos > size:
        raise ValueError("rpm header runs past the end of the file")
    fh.seek(pos)
    magic = fh.read(6)
    window = cast(IO[bytes], _Window(fh, pos, size - pos))
    stream: IO[bytes]
    if magic[:3] == b"\x1f\x8b\x08":
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=window, mode="rb"))
    elif magic[:3] == b"BZh":
        stream = bz2.BZ2File(window)
    elif magic == b"\xfd7zXZ\x00":
        stream = lzma.LZMAFile(window)  # noqa: SIM115 (closed below)
    elif magic.startswith(b"0707"):
        stream = window
    else:
        yield "payload", window, size - pos  # zstd or unknown: raw bytes
        return
    with stream:
        yield from _cpio_members(stream)


def _cpio_members(stream: IO[bytes]) -> Iterator[tuple[str, IO[bytes], int | None]]:
    """Regular files of a newc/crc cpio stream (what rpm payloads are)."""
    for _ in range(MAX_MEMBERS + 1):
        header = _exactly(stream, 110)
        if header[:6] not in (b"070701", b"070702"):
            raise ValueError("damaged cpio header (only newc cpio is read)")
        mode = int(header[14:22], 16)
        filesize = int(header[54:62], 16)
        namesize = int(header[94:102], 16)
        raw_name = _exactly(stream, namesize + (-(110 + namesize) % 4))
        name = raw_name[: max(namesize - 1, 0)].decode("utf-8", "replace")
        if name == "TRAILER!!!":
            return
        member = _Bounded(stream, filesize)
        if mode & 0o170000 == 0o100000 and filesize:
            yield name.removeprefix("./"), cast(IO[bytes], member), None
        member.drain()
        _exactly(stream, -filesize % 4)
    raise Refused(f"more than {MAX_MEMBERS} members")


def _exactly(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n) if n else b""
    if len(data) < n:
        raise EOFError("cpio archive ends in the middle of a member")
    return data


class _Bounded(io.RawIOBase):
    """The next ``left`` bytes of a stream (a cpio member)."""

    def __init__(self, stream: IO[bytes], left: int) -> None:
        super().__init__()
        self.stream, self.left = stream, left

    def readable(self) -> bool:
        return True

    def read(self, n: int | None = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.stream.read(n) if n > 0 else b""
        self.left -= len(data)
        if n > 0 and not data:
            raise EOFError("cpio archive ends in the middle of a member")
        return data

    def drain(self) -> None:
        """Skip what the scan did not read (a member that is not a regular file: a folder,
        a link's target, small; a big one is a hostile header, not skipped unbudgeted)."""
        if self.left > READ_BLOCK:
            raise ValueError("damaged cpio archive: a large member that is not a file")
        while self.left > 0:
            self.read(min(self.left, READ_BLOCK))


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
