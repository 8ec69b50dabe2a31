"""Container images: a ``docker save`` tarball, an OCI image layout (as a tar, or as a folder).

An image is recognised by what it holds, not its name: a tar with ``manifest.json`` (docker
save), or with ``oci-layout`` and ``index.json`` (OCI layout; also a folder holding them).
Every layer of every image is read (tar, gzip-compressed tar; a zstd-compressed layer is not
opened: no decoder in the standard library, said as a ScanError), each blob once even when
two manifests (two tags, two platforms) list it, and every file in it is scanned like an
archive member. A file is located as image -> layer -> path: ``Location.member`` is
(``sha256:<12 hex>`` of the layer, the path in the layer) after the image's own chain, and
``Location.extra`` holds ``layer`` (its index in the image, from 1, base layer first) and
``layer_digest`` (the full digest).

A file that a later layer deletes (a whiteout ``.wh.<name>``, or an opaque folder
``.wh..wh..opq``) or replaces is still reported, with ``extra["note"]`` "deleted in a later
layer, still in the image" (or "replaced in a later layer, still in the image"): a whiteout
hides a file from the running container, not from anyone who pulls the image. Blobs are read
in their order in the tar (forward only) and the notes are given once every layer is read. A
layer shared by two images is read once, with the notes of the first image that lists it.

A compressed image tarball (``docker save img | gzip``; bzip2, xz) is the same image:
keyscan.formats.archives hands a counted, seekable decompressed stream to
``scan_image_tar(compressed=True)``, which keeps small members (manifests, configs) from its
listing pass, so the image is decompressed about twice, not once per blob.

The image config (``Env``, ``history[].created_by`` holding ``ENV``/``ARG`` lines, labels) is
scanned as JSON; a hit in it gets ``extra["image_config"]``, the field that holds it
(``config.Env[0]``, ``history[3].created_by``). Other members (manifests, indexes,
``repositories``) are scanned as ordinary members.

An image counts as one archive level: its layers' files are at the image's depth, so that
``image.tar -> layer -> file`` fits ``--archive-depth 1``. The zip-bomb limits of archives
apply to every layer (the ratio against the layer's compressed size). Nothing is written to
disk; a hostile digest (``sha256:../../x``) is never opened.
"""

from __future__ import annotations

import io
import json
import lzma
import os
import re
import stat
import struct
import tarfile
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, Protocol, cast

from keyscan.errors import KeyscanError
from keyscan.findings import Hit
from keyscan.models import Location, ScanError

DELETED = "deleted in a later layer, still in the image"
REPLACED = "replaced in a later layer, still in the image"
# JSON documents of an image (manifest.json, index.json, manifests, configs) read whole.
MAX_JSON = 16 * 1024 * 1024
MAX_MANIFESTS = 1000
MAX_CONFIG_NODES = 200_000
_DIGEST = re.compile(r"^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([A-Za-z0-9=_-]{1,256})$")
_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"
_INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


MAX_MEMBERS = 100_000
# A compressed image: members up to this size are kept from its listing pass, in all at most
# MAX_CACHE bytes (manifests, indexes, configs, small layers).
MAX_CACHED = 1024 * 1024
MAX_CACHE = 64 * 1024 * 1024
# What a hostile or broken image may make the readers raise (as in keyscan.formats.archives).
_READ_ERRORS = (
    tarfile.TarError,
    zlib.error,
    lzma.LZMAError,  # a corrupt xz image (bz2 and gzip raise OSError/zlib.error)
    EOFError,
    OSError,
    ValueError,
    struct.error,
    IndexError,
    KeyError,
    OverflowError,
    UnicodeError,
)


class Members(Protocol):
    """How the archive code scans a file of a layer (keyscan.formats.archives gives one):
    with its bomb limits, its nesting, its rescan. ``scan`` raises KeyscanError for a
    refusal (a bomb) and the read errors of a broken stream."""

    @property
    def errors(self) -> list[ScanError]: ...
    @property
    def archive_depth(self) -> int: ...
    def exhausted(self) -> bool: ...
    def scan(
        self,
        stream: IO[bytes],
        ratio_base: int,
        already: int,
        template: Location,
        depth: int,
        hits: list[Hit],
    ) -> int: ...
    def stream(self, fh: BinaryIO, template: Location) -> list[Hit]: ...


def _in(template: Location, name: str) -> Location:
    """The location of member ``name`` inside ``template``."""
    new = object.__new__(type(template))
    new.__dict__.update(template.__dict__)
    new.__dict__.update(member=(*template.member, name), extra=dict(template.extra))
    return new


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class Blobs(Protocol):
    """Where an image's files are: the members of a tar, or the files of a folder."""

    def names(self) -> list[str]: ...
    def size(self, name: str) -> int: ...
    def open(self, name: str) -> IO[bytes] | None: ...
    def position(self, name: str) -> int: ...


@dataclass
class _TarBlobs:
    tf: tarfile.TarFile
    members: dict[str, tarfile.TarInfo]
    # Small members kept from the listing pass of a compressed image: reading them again
    # would cost a rewind (decompressing from the start) each.
    cache: dict[str, bytes] = field(default_factory=dict)

    def names(self) -> list[str]:
        return list(self.members)

    def size(self, name: str) -> int:
        """Its size, -1 if there is no such blob."""
        info = self.members.get(name)
        return -1 if info is None else info.size

    def open(self, name: str) -> IO[bytes] | None:
        if name in self.cache:
            return io.BytesIO(self.cache[name])
        info = self.members.get(name)
        return None if info is None else self.tf.extractfile(info)

    def position(self, name: str) -> int:
        """Where the blob starts in the tar: blobs are read in this order (forward only, so a
        compressed image is decompressed once more, not once per blob)."""
        info = self.members.get(name)
        return -1 if info is None else info.offset


@dataclass
class _DirBlobs:
    root: str
    _names: list[str] = field(default_factory=list)
    _set: set[str] = field(default_factory=set)

    def names(self) -> list[str]:
        return self._names

    def size(self, name: str) -> int:
        """Its size, -1 if there is no such blob."""
        if name not in self._set:
            return -1
        return os.stat(os.path.join(self.root, name), follow_symlinks=False).st_size

    def open(self, name: str) -> IO[bytes] | None:
        path = os.path.join(self.root, name)
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None  # a symlink or a device in the layout: never followed
        return open(path, "rb")

    def position(self, name: str) -> int:
        return 0


@dataclass
class _Layer:
    blob: str  # its name among the blobs
    digest: str  # sha256:<hex>, as the manifest names it (or the config's diff_id)
    index: int  # 1-based, base layer first


@dataclass
class _Image:
    config: str | None
    layers: list[_Layer]


def _norm(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def _has(blobs: Blobs, name: str) -> bool:
    return blobs.size(name) >= 0


def _blob_of(digest: object) -> str | None:
    """``blobs/<algorithm>/<hex>`` for a well-formed digest, else None (never a path)."""
    if not isinstance(digest, str):
        return None
    m = _DIGEST.match(digest)
    return f"blobs/{m.group(1)}/{m.group(2)}" if m else None


def _short(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"{algo}:{hexpart[:12]}" if hexpart else digest[:19]


MAX_DRAIN = 64 * 1024 * 1024


def check_tar_end(
    fileobj: IO[bytes], offset: int | None, compressed: bool, at: int | None = None
) -> None:
    """Raise tarfile.ReadError unless the tar that tarfile stopped reading at ``offset`` (where the
    next header would be) really ends there. tarfile ends its listing without an error at a
    header cut short or damaged; keyscan does not: the bytes there must be nothing (a tar cut
    exactly at a member boundary, or without its end-of-archive blocks: indistinguishable,
    and POSIX readers accept it) or zeros (the end-of-archive blocks, whole or cut). A member
    whose data is cut makes tarfile itself raise. A compressed stream is read to its end, so
    a gzip (bzip2, xz) stream cut anywhere, even in the padding after the tar, is an error
    (its end marker and checksum are missing), up to MAX_DRAIN bytes after the tar.
    ``offset`` None: a stream read on from where it is, only to its end marker."""
    block = b"?"
    if offset is not None:
        fileobj.seek(offset)
        block = fileobj.read(512)
        if block.strip(b"\0"):
            at = offset if at is None else at
            if len(block) < 512:
                raise tarfile.ReadError(f"cut in the header of a member at byte {at}")
            raise tarfile.ReadError(f"damaged member header at byte {at}")
    if compressed and block:
        left = MAX_DRAIN
        while left > 0:  # EOFError for a stream without its end marker
            got = fileobj.read(min(left, 1024 * 1024))
            if not got:
                break
            left -= len(got)


def image_kind(names: set[str]) -> str | None:
    """"docker" (manifest.json) or "oci" (oci-layout and index.json) for these member names."""
    if "manifest.json" in names:
        return "docker"
    if "oci-layout" in names and "index.json" in names:
        return "oci"
    return None


_FIRST_MEMBER = re.compile(
    rb"^(?:\./)?(?:[0-9a-f]{64}|blobs(?:/|$)|oci-layout$|index\.json$|manifest\.json$|repositories$)"
)


def looks_like_image_member(name: bytes) -> bool:
    """Whether the first member of a tar (its raw 100-byte name field) is named like an
    image's: a ``docker save`` layer folder or config (64 hex), ``blobs/``, ``oci-layout``,
    ``index.json``, ``manifest.json``, ``repositories``. A compressed tar is listed as a
    possible image only then (listing it costs decompressing it once more)."""
    return _FIRST_MEMBER.match(name.split(b"\0", 1)[0]) is not None


def scan_image_tar(
    ctx: Members, fh: BinaryIO, template: Location, depth: int, compressed: bool = False
) -> list[Hit] | None:
    """Hits in the image that the tar ``fh`` holds, or None if it holds no image. ``fh`` is
    seekable; ``compressed``: it decompresses (a ``docker save | gzip``), so small members
    are kept from the listing pass and blobs are read in their order in the tar."""
    cache: dict[str, bytes] = {}
    cached = 0
    try:
        tf = tarfile.open(fileobj=fh, mode="r:")  # noqa: SIM115 (lives while the image is read)
        members: dict[str, tarfile.TarInfo] = {}
        for count, info in enumerate(tf, 1):
            if count > MAX_MEMBERS:
                return None
            if info.isreg():
                name = _norm(info.name)
                if name in members:
                    continue
                members[name] = info
                if compressed and info.size <= MAX_CACHED and cached + info.size <= MAX_CACHE:
                    data = tf.extractfile(info)
                    if data is not None:
                        cache[name] = data.read()
                        cached += info.size
        check_tar_end(fh, tf.offset, compressed)  # a cut image: read as a plain tar (error)
    except _READ_ERRORS:
        fh.seek(0)
        return None
    if image_kind(set(members)) is None:
        fh.seek(0)
        return None
    return _scan_image(ctx, _TarBlobs(tf, members, cache), template, depth)


def scan_image_dir(ctx: Members, root: str, template: Location) -> list[Hit]:
    """Hits in the OCI image layout folder ``root`` (the folder holding ``oci-layout``):
    ``template`` names it."""
    blobs = _DirBlobs(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for f in sorted(filenames):
            if os.path.islink(os.path.join(dirpath, f)):
                continue  # never followed (as in any walked folder)
            rel = os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/")
            blobs._names.append(rel)
            blobs._set.add(rel)
            if len(blobs._names) > MAX_MEMBERS:
                ctx.errors.append(
                    ScanError(template.display_path, f"more than {MAX_MEMBERS} files: not read")
                )
                return []
    if ctx.archive_depth <= 0:  # no archive opened, by the user's choice: files as bytes
        hits: list[Hit] = []
        for name in blobs.names():
            fh = blobs.open(name)
            if fh is not None:
                with fh:
                    hits.extend(ctx.stream(cast(BinaryIO, fh), _in(template, name)))
        return hits
    return _scan_image(ctx, blobs, template, depth=1)


def _read_json(ctx: Members, blobs: Blobs, name: str, template: Location) -> Any:
    try:
        if blobs.size(name) > MAX_JSON:
            raise ValueError(f"larger than {MAX_JSON} bytes")
        fh = blobs.open(name)
        if fh is None:
            return None
        with fh:
            return json.loads(fh.read(MAX_JSON + 1))
    except (*_READ_ERRORS, RecursionError) as exc:
        ctx.errors.append(
            ScanError(_in(template, name).display_path, f"cannot read image metadata: {_why(exc)}")
        )
        return None


def _images(ctx: Members, blobs: Blobs, template: Location) -> list[_Image]:
    names = set(blobs.names())
    out: list[_Image] = []
    if "manifest.json" in names:  # docker save (also written by Docker 25+ beside index.json)
        doc = _read_json(ctx, blobs, "manifest.json", template)
        for entry in doc if isinstance(doc, list) else []:
            if not isinstance(entry, dict) or len(out) >= MAX_MANIFESTS:
                continue
            config = entry.get("Config")
            config = _norm(config) if isinstance(config, str) else None
            diff_ids: list[Any] = []
            if config in names:
                cfg = _read_json(ctx, blobs, config, template)
                rootfs = cfg.get("rootfs") if isinstance(cfg, dict) else None
                ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
                diff_ids = ids if isinstance(ids, list) else []
            layers = []
            raw_layers = entry.get("Layers")
            for i, path in enumerate(raw_layers if isinstance(raw_layers, list) else [], 1):
                if not isinstance(path, str):
                    continue
                path = _norm(path)
                digest = ""
                if path.startswith("blobs/"):
                    parts = path.split("/")
                    digest = f"{parts[1]}:{parts[2]}" if len(parts) == 3 else path
                elif i <= len(diff_ids) and isinstance(diff_ids[i - 1], str):
                    digest = diff_ids[i - 1]
                else:
                    digest = path.split("/", 1)[0]
                layers.append(_Layer(path, digest, i))
            out.append(_Image(config, layers))
        if out:
            return out
    if "index.json" in names:
        _oci_images(ctx, blobs, template, "index.json", out, 0)
    return out


def _oci_images(
    ctx: Members, blobs: Blobs, template: Location, name: str, out: list[_Image], level: int
) -> None:
    doc = _read_json(ctx, blobs, name, template)
    manifests = doc.get("manifests") if isinstance(doc, dict) else None
    for m in manifests if isinstance(manifests, list) else []:
        if not isinstance(m, dict) or len(out) >= MAX_MANIFESTS:
            continue
        blob = _blob_of(m.get("digest"))
        if blob is None or not _has(blobs, blob):
            continue
        if m.get("mediaType") in _INDEX_TYPES:
            if level < 3:
                _oci_images(ctx, blobs, template, blob, out, level + 1)
            continue
        manifest = _read_json(ctx, blobs, blob, template)
        if not isinstance(manifest, dict):
            continue
        if isinstance(manifest.get("manifests"), list) and level < 3:  # an index, untyped
            _oci_images(ctx, blobs, template, blob, out, level + 1)
            continue
        cfg = manifest.get("config")
        config = _blob_of(cfg.get("digest")) if isinstance(cfg, dict) else None
        layers = []
        raw_layers = manifest.get("layers")
        for i, layer in enumerate(raw_layers if isinstance(raw_layers, list) else [], 1):
            digest = layer.get("digest") if isinstance(layer, dict) else None
            lb = _blob_of(digest)
            if lb is not None and isinstance(digest, str):
                layers.append(_Layer(lb, digest, i))
        out.append(_Image(config, layers))


def _scan_image(ctx: Members, blobs: Blobs, template: Location, depth: int) -> list[Hit]:
    """Every layer, config and other member of the image, each blob once, read in the order
    of the blobs (their place in the tar); the notes of a layer's files (deleted or
    replaced in a later layer) are given afterwards, when every layer of the image is known."""
    hits: list[Hit] = []
    images = _images(ctx, blobs, template)
    names = set(blobs.names())
    jobs: dict[str, tuple[str, _Layer | None]] = {}  # blob -> (what, layer)
    for image in images:
        for layer in reversed(image.layers):
            if layer.blob not in names:
                ctx.errors.append(
                    ScanError(
                        _in(template, layer.blob).display_path,
                        f"layer {layer.index} listed by the manifest is missing from the image",
                    )
                )
                continue
            jobs.setdefault(layer.blob, ("layer", layer))
        if image.config is not None and image.config in names:
            jobs.setdefault(image.config, ("config", None))
    for name in blobs.names():  # manifests, indexes, repositories, blobs no manifest lists
        jobs.setdefault(name, ("plain", None))
    read: dict[str, _Read] = {}
    for name in sorted(jobs, key=blobs.position):
        what, job = jobs[name]
        if what == "layer" and job is not None:
            read[name] = _scan_layer(ctx, blobs, job, template, depth, hits)
        elif what == "config":
            _scan_config(ctx, blobs, name, template, depth, hits)
        else:
            _scan_plain(ctx, blobs, name, template, depth, hits)
        if ctx.exhausted():
            break
    _notes(images, read, hits)
    return hits


def _notes(images: list[_Image], read: dict[str, _Read], hits: list[Hit]) -> None:
    """Mark the files that a later layer of their image deletes or replaces. A layer shared
    by two images gets the notes of the first image that lists it."""
    noted: set[str] = set()
    for image in images:
        hidden = _Hidden()
        for layer in reversed(image.layers):
            got = read.get(layer.blob)
            if got is None:
                continue
            if layer.blob not in noted:
                noted.add(layer.blob)
                for start, end, path in got.spans:
                    note = hidden.note(path)
                    if note is not None:
                        for hit in hits[start:end]:
                            hit.location.extra["note"] = note
            hidden.deleted |= got.deleted
            hidden.opaque |= got.opaque
            hidden.files |= got.files


def _scan_plain(
    ctx: Members, blobs: Blobs, name: str, template: Location, depth: int, hits: list[Hit]
) -> None:
    member = _in(template, name)
    try:
        fh = blobs.open(name)
        if fh is None:
            return
        with fh:
            ctx.scan(fh, blobs.size(name), 0, member, depth, hits)
    except KeyscanError as exc:  # refused as a bomb
        ctx.errors.append(ScanError(member.display_path, f"not scanned: {exc}"))
    except _READ_ERRORS as exc:
        ctx.errors.append(ScanError(member.display_path, f"cannot read member: {_why(exc)}"))


def _scan_config(
    ctx: Members, blobs: Blobs, name: str, template: Location, depth: int, hits: list[Hit]
) -> None:
    start = len(hits)
    _scan_plain(ctx, blobs, name, template, depth, hits)
    found = hits[start:]
    if not found:
        return
    doc = _read_json(ctx, blobs, name, template)
    strings = list(_strings(doc))
    for hit in found:
        secret = hit.secret.decode("utf-8", "replace")
        for path, value in strings:
            if secret in value:
                hit.location.extra["image_config"] = path
                break


def _strings(doc: Any) -> Iterator[tuple[str, str]]:
    """(path, value) of the strings of a JSON document, breadth first, bounded."""
    queue: deque[tuple[str, Any]] = deque([("", doc)])
    seen = 0
    while queue and seen < MAX_CONFIG_NODES:
        path, node = queue.popleft()
        seen += 1
        if isinstance(node, str):
            yield path, node
        elif isinstance(node, dict):
            for k, v in node.items():
                queue.append((f"{path}.{k}" if path else str(k), v))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                queue.append((f"{path}[{i}]", v))


@dataclass
class _Hidden:
    """What the layers above the one being read delete or replace."""

    deleted: set[str] = field(default_factory=set)  # whiteouts: files and folders
    opaque: set[str] = field(default_factory=set)  # folders whose lower content is hidden
    files: set[str] = field(default_factory=set)  # files of upper layers

    def note(self, path: str) -> str | None:
        if path in self.deleted:
            return DELETED
        parts = path.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            if folder in self.deleted or folder in self.opaque:
                return DELETED
        if "" in self.opaque:
            return DELETED
        if path in self.files:
            return REPLACED
        return None


def _whiteout(path: str) -> tuple[str, str] | None:
    """("opaque", folder) or ("deleted", path) for a whiteout entry, else None."""
    folder, _, base = path.rpartition("/")
    if base == ".wh..wh..opq":
        return "opaque", folder
    if base.startswith(".wh.") and len(base) > 4:
        return "deleted", f"{folder}/{base[4:]}" if folder else base[4:]
    return None


@dataclass
class _Read:
    """What one layer held: its whiteouts, its files, and the hits found in each file."""

    deleted: set[str] = field(default_factory=set)
    opaque: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # hits[start:end], path


def _scan_layer(
    ctx: Members,
    blobs: Blobs,
    layer: _Layer,
    template: Location,
    depth: int,
    hits: list[Hit],
) -> _Read:
    where = _in(template, _short(layer.digest))
    where.extra.update(layer=layer.index, layer_digest=layer.digest)
    got = _Read()
    fh = blobs.open(layer.blob)
    if fh is None:
        return got
    size = blobs.size(layer.blob)
    with fh:
        head = fh.read(512)
        fh.seek(0)
        if head[:4] == _ZSTD:
            ctx.errors.append(
                ScanError(
                    where.display_path,
                    f"zstd-compressed layer {layer.index} not opened (no zstd decoder): "
                    "its files were not scanned",
                )
            )
            return got
        stream: IO[bytes] = fh
        if head[:2] == _GZIP:
            import gzip

            stream = cast(IO[bytes], gzip.GzipFile(fileobj=fh, mode="rb"))
        elif head[257:262] != b"ustar" and not _looks_like_tar(head):
            # Not a filesystem layer (an attestation, an artifact): scan it as a member.
            _scan_plain(ctx, blobs, layer.blob, template, depth, hits)
            return got
        inflated = 0
        name = "?"
        end = 0
        tail = _Tail(stream)
        try:
            with tarfile.open(fileobj=cast(IO[bytes], tail), mode="r|") as tf:
                for count, info in enumerate(tf, 1):
                    if count > MAX_MEMBERS:
                        raise KeyscanError(f"more than {MAX_MEMBERS} members")
                    name = _norm(info.name).rstrip("/")
                    w = _whiteout(name)
                    if w is not None:
                        (got.opaque if w[0] == "opaque" else got.deleted).add(w[1])
                        continue
                    if not info.isreg():
                        continue
                    got.files.add(name)
                    data = tf.extractfile(info)
                    if data is None:  # pragma: no cover - regular files have data
                        continue
                    start = len(hits)
                    try:
                        inflated += ctx.scan(data, size, inflated, _in(where, name), depth, hits)
                    finally:
                        if len(hits) > start:
                            got.spans.append((start, len(hits), name))
                end = tf.offset
            # A layer cut in a header ends tarfile's listing silently: check its end, from
            # the bytes the stream kept (no seek: the layer may be a compressed stream), and
            # read a gzip layer to its end marker.
            tail.check(end)
            if stream is not fh:
                check_tar_end(stream, None, compressed=True)
        except KeyscanError as exc:
            ctx.errors.append(ScanError(where.display_path, f"layer refused: {exc}"))
        except _READ_ERRORS as exc:
            ctx.errors.append(
                ScanError(
                    where.display_path,
                    f"layer {layer.index} damaged after {name!r}: {_why(exc)}",
                )
            )
    return got


class _Tail:
    """A stream read forward that keeps its last bytes (at least KEEP, in the chunks read:
    no copy per read), so that the end of a tar read in stream mode can be checked without
    seeking back."""

    KEEP = 64 * 1024

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.pos = 0  # bytes read so far
        self.chunks: deque[bytes] = deque()  # the last chunks read, ending at pos
        self.kept = 0

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        self.pos += len(data)
        self.chunks.append(data)
        self.kept += len(data)
        while self.kept - len(self.chunks[0]) >= self.KEEP:
            self.kept -= len(self.chunks.popleft())
        return data

    def check(self, offset: int) -> None:
        """tarfile.ReadError unless the tar really ends at ``offset`` (see check_tar_end)."""
        start = self.pos - self.kept
        if offset < start:  # pragma: no cover - tarfile reads at most a record ahead
            return
        kept = b"".join(self.chunks)
        block = kept[offset - start : offset - start + 512]
        if len(block) < 512 and offset + len(block) == self.pos:
            block += self.inner.read(512 - len(block))
        check_tar_end(cast(IO[bytes], io.BytesIO(block)), 0, compressed=False, at=offset)


def _looks_like_tar(head: bytes) -> bool:
    """A tar without the ustar magic (v7), or an empty one (a zero block)."""
    if len(head) < 512:
        return head == b"" or head.strip(b"\0") == b""
    if head.strip(b"\0") == b"":
        return True
    try:
        return int(head[148:156].strip(b"\0 ") or b"0", 8) == sum(head[:148]) + 256 + sum(
            head[156:512]
        )
    except ValueError:
        return False


