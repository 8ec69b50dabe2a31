"""A repository's packs read in this process: every packed object once, in pack order, with
no git process and no pipe between git and keyscan.

Why: a scan of every ref reads every object of the repository. Through ``git cat-file
--batch-all-objects --batch`` each byte crosses a pipe twice (git's write, keyscan's read):
on sqlalchemy's 4.6 GB that is 2.7 s of kernel CPU beside git's 3.2 s of inflating, more
than the whole of the floor. Read here, the same work is inflating (ISA-L's inflate where
its wheel is installed, 1.6x zlib's speed on numpy's packs; else zlib's, the C code git
runs) and delta application, done by dulwich's compiled ``apply_delta`` (Rust; the one
place keyscan imports dulwich). ``Store`` says where every object starts (the pack index,
``.idx``; the reverse index, ``.rev``, for pack order where git wrote one); ``Reader``
inflates each, rebuilds a deltified one from its base, and keeps recent bases in a bounded
cache, as git's delta base cache does.

What this module does not read is left to git (``git cat-file`` by id, through
``keyscan.git.plumbing``, which names every error): loose objects, objects in an alternate
object store (a repository with alternates is not read here at all), an object larger than
``LARGE`` (git reads it with the memory it always did), and any object whose entry is not
what the index and git's pack format say (a corrupt entry, an unknown type, a delta whose
base or sizes do not match, a chain that does not end). Nothing here is executed or
followed: the object folders and files are opened without following a symbolic link, only
regular files, never blocking on a FIFO.
"""

from __future__ import annotations

import bisect
import mmap
import operator
import os
import stat
import sys
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

from keyscan.errors import KeyscanError
from keyscan.inflate import Inflate, inflate_functions

# Pack entry types (git's pack format): 1-4 whole objects, 6 and 7 deltas.
KINDS = {1: "commit", 2: "tree", 3: "blob", 4: "tag"}
OFS_DELTA = 6
REF_DELTA = 7

# An object larger than this (inflated) is left to git: memory as before for the rare huge
# blob (git never deltifies a blob above core.bigFileThreshold, 512 MiB by default).
LARGE = 256 * 1024 * 1024
# The delta base cache of each reader: git's, as keyscan configures it (plumbing.READ_CONFIG);
# and the objects just read (a delta that follows soon finds its base there). 16 MiB of
# recent objects, not 64: each reader's memory is fresh pages the kernel hands out one fault
# at a time (three readers: ~100k faults, a fifth of the CPU on psf/requests), and the bases
# a delta asks for move to the base cache anyway. One process: sqlalchemy inflates 0.8 % more
# entries and reads faster (3.10 -> 3.03 s); whole scans, alternating runs: requests 0.74 ->
# 0.71 s, sqlalchemy 3.29 -> 3.25 s, numpy 6.43 -> 6.31 s.
CACHE_BYTES = 256 * 1024 * 1024
RECENT_BYTES = 16 * 1024 * 1024
# What an entry weighs when pieces are cut, beside its packed bytes: what reading and scanning
# one object costs whatever its size (and a delta rebuilds far more than its packed bytes).
# With 256, numpy's run of 108k trees, commits and blob deltas (26 MB packed, 1.1 GB rebuilt)
# was one piece that ended ~0.6 s after the others; with 4096 the three processes end within
# 0.3 s of each other (numpy, alternating runs: 7.50 -> 7.15 s, and 7.84 -> 6.49 s in another
# sitting; sqlalchemy 3.80 -> 3.66 s, psf/requests 0.69 -> 0.67 s).
ENTRY_WEIGHT = 4096
# A delta chain longer than this is not one git wrote (pack.depth is at most 4095).
MAX_CHAIN = 5000
# At most this many loose objects, or this share of all: more and git reads the history
# (loose objects are read by id after the packs, in one process).
LOOSE_MAX = 2000
LOOSE_SHARE = 0.02

ApplyDelta = Callable[[bytes, bytes], Sequence[bytes]]


def apply_delta_function() -> ApplyDelta | None:
    """dulwich's compiled ``apply_delta``, or None where it is not installed (its
    pure-Python fallback is no faster than git's pipe: not used)."""
    try:
        from dulwich._pack import apply_delta  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    function: ApplyDelta = apply_delta
    return function


class Unreadable(KeyscanError):
    """An entry this module does not read (git reads it by id and names what is wrong).
    Never leaves this module: the reader adds the entry to ``Reader.skipped``."""


class Pack(NamedTuple):
    """One pack: ``path`` of the ``.pack``; per entry in pack order (by offset): where it
    starts and ends, its id (raw), and whether an earlier pack holds the same object."""

    path: str
    starts: list[int]
    ends: list[int]
    names: bytes  # the index's sorted ids, raw, ``id_size`` bytes each
    order: array[int]  # entry in pack order -> position in ``names``
    offsets: array[int]  # position in ``names`` -> offset in the pack
    fanout: array[int]
    skip: frozenset[int]  # entries (pack order) another pack already holds


class Piece(NamedTuple):
    """A contiguous run of entries of one pack: ``entries[start:end]`` of ``packs[pack]``."""

    pack: int
    start: int
    end: int


class Store:
    """The packs of one object folder (``objects/pack``), indexed; ``loose``: how many loose
    objects sit beside them (read by git)."""

    def __init__(self, packs: list[Pack], id_size: int, loose: int) -> None:
        self.packs = packs
        self.id_size = id_size
        self.loose = loose

    @property
    def entries(self) -> int:
        return sum(len(p.starts) - len(p.skip) for p in self.packs)

    def pieces(self, count: int, taper: bool = False, front: float = 1.0) -> list[Piece]:
        """About ``count`` runs in pack order, by packed size (bytes in the pack plus
        ``ENTRY_WEIGHT`` per entry); a run never spans two packs. Equal runs, or with
        ``taper`` runs that shrink towards the middle (weights ``count // 2 - distance from
        the nearer end``): readers that claim runs from both ends meet on small ones, and
        finish together. ``front``: the weight of the first half's runs against the second
        half's."""
        per_entry = ENTRY_WEIGHT
        weight = [p.ends[-1] - p.starts[0] + per_entry * len(p.starts) if p.starts else 0
                  for p in self.packs]  # fmt: skip
        n = max(1, count)
        half = (n + 1) // 2
        shares = [float(half - min(i, n - 1 - i) if taper else 1) for i in range(n)]
        shares = [share * front if i < n // 2 else share for i, share in enumerate(shares)]
        unit = max(1.0, sum(weight) / sum(shares))
        out: list[Piece] = []
        for at, pack in enumerate(self.packs):
            starts, ends = pack.starts, pack.ends
            total = len(starts)

            # Entries are contiguous in pack order (an entry ends where the next starts):
            # the weight of entries ``start..k`` is ``through(k) - through(start - 1)``, found
            # by bisection (a loop over numpy's 481k entries took 60 ms before any piece began).
            def through(k: int, ends: list[int] = ends) -> int:
                return ends[k] + per_entry * (k + 1)

            start = 0
            while start < total:
                before = starts[start] + per_entry * start  # through(start - 1)
                target = unit * shares[min(len(out), n - 1)] + before
                end = bisect.bisect_left(range(total), target, start, total, key=through) + 1
                out.append(Piece(at, start, min(end, total)))
                start = end
        return out

    def hex_id(self, pack: Pack, entry: int) -> str:
        size = self.id_size
        at = pack.order[entry] * size
        return pack.names[at : at + size].hex()


def open_store(git_dir: str, id_size: int) -> Store | None:
    """The packs of ``git_dir``'s own object folder, or None when git should read the
    history instead: no readable object folder, alternates, an index or reverse index
    this module does not know, a pack whose header disagrees with its index, or many
    loose objects (see ``LOOSE_MAX``)."""
    objects = os.path.join(git_dir, "objects")
    folder = os.path.join(objects, "pack")
    try:
        if not (_is_dir(objects) and _is_dir(folder)):
            return None
        alternates = os.path.join(objects, "info", "alternates")
        if os.path.lexists(alternates) and os.lstat(alternates).st_size:
            return None  # objects elsewhere: git reads them
        names = sorted(os.listdir(folder))
    except OSError:
        return None
    packs: list[Pack] = []
    for name in names:
        if not (name.startswith("pack-") and name.endswith(".idx")):
            continue
        base = os.path.join(folder, name[:-4])
        pack = _open_pack(base, id_size)
        if pack is None:
            return None
        packs.append(pack)
    loose = _count_loose(objects)
    if loose is None or loose > max(LOOSE_MAX, LOOSE_SHARE * sum(len(p.starts) for p in packs)):
        return None
    return Store(_without_duplicates(packs, id_size), id_size, loose)


def _is_dir(path: str) -> bool:
    return stat.S_ISDIR(os.lstat(path).st_mode)  # a symbolic link is not followed


def _open_regular(path: str) -> tuple[int, os.stat_result] | None:
    """A descriptor of ``path`` and its status if it is a regular file (the caller closes
    it), else None: missing, a symbolic link (never followed), a FIFO (never waited on), a
    device..."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
    except OSError:
        os.close(fd)
        return None
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return None
    return fd, info


def _read_regular(path: str) -> bytes | None:
    """The whole of a regular file, or None (``_open_regular``)."""
    opened = _open_regular(path)
    if opened is None:
        return None
    fd = opened[0]
    try:
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    except OSError:
        return None
    finally:
        os.close(fd)


def _big_endian(kind: str, data: bytes) -> array[int]:
    values = array(kind, data)
    if sys.byteorder == "little":
        values.byteswap()
    return values


def _open_pack(base: str, id_size: int) -> Pack | None:
    """Parse ``base.idx`` (version 2) and ``base.rev`` (if any); check ``base.pack``'s
    header and trailing checksum against them. None: git reads this repository."""
    idx = _read_regular(base + ".idx")
    if idx is None or len(idx) < 8 + 1024 or idx[:8] != b"\xfftOc\x00\x00\x00\x02":
        return None
    fanout = _big_endian("I", idx[8 : 8 + 1024])
    if fanout.itemsize != 4:
        return None
    count = fanout[255]
    names_at = 8 + 1024
    offsets_at = names_at + count * id_size + 4 * count  # past the names and the CRCs
    large_at = offsets_at + 4 * count
    if len(idx) < large_at + 2 * id_size:
        return None
    names = idx[names_at : names_at + count * id_size]
    offsets = _big_endian("I", idx[offsets_at:large_at])
    if count and max(offsets) & 0x80000000:  # a pack over 2 GiB: 8-byte offsets
        large = _big_endian("Q", idx[large_at : len(idx) - 2 * id_size])
        try:
            offsets = array("Q", (large[o & 0x7FFFFFFF] if o & 0x80000000 else o for o in offsets))
        except IndexError:
            return None
    order = _pack_order(base + ".rev", offsets, id_size)
    if order is None:
        return None
    path = base + ".pack"
    # The pack's own checksum, as its index records it (git's "does not match index").
    size = _pack_size(path, count, idx[len(idx) - 2 * id_size : len(idx) - id_size])
    if size is None:
        return None
    starts = [offsets[i] for i in order]
    ends = starts[1:]
    # Pack order is strictly increasing offsets: a reverse index that names an entry twice
    # (and another never) would deliver one object twice and count it so (C speed: ~15 ms
    # per million entries).
    if not all(map(operator.lt, starts, ends)):
        return None
    ends.append(size - id_size)  # the pack's trailing checksum
    if starts and (starts[0] < 12 or ends[-1] < starts[-1]):
        return None
    return Pack(path, starts, ends, names, order, offsets, fanout, frozenset())


def _pack_order(rev: str, offsets: array[int], id_size: int) -> array[int] | None:
    """Index positions in pack order: the reverse index git wrote, else sorted here."""
    count = len(offsets)
    data = _read_regular(rev) if os.path.lexists(rev) else None
    if data is not None:
        if data[:8] != b"RIDX\x00\x00\x00\x01" or len(data) != 12 + 4 * count + 2 * id_size:
            return None
        order = _big_endian("I", data[12 : 12 + 4 * count])
        if count and max(order) >= count:  # an entry the index does not have
            return None
    else:
        order = array("I", sorted(range(count), key=offsets.__getitem__))
    return order  # ``_open_pack`` checks that it is strictly increasing offsets


def _pack_size(path: str, count: int, checksum: bytes) -> int | None:
    """The size of a regular ``.pack`` whose header says version 2 or 3 and ``count``, and
    whose trailing checksum is ``checksum`` (git reads no object of a pack that does not
    match its index: another pack in its place would deliver its objects under the ids the
    index names)."""
    opened = _open_regular(path)
    if opened is None:
        return None
    fd, info = opened
    try:
        head = os.pread(fd, 12, 0)
        tail = os.pread(fd, len(checksum), max(0, info.st_size - len(checksum)))
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(head) != 12 or head[:4] != b"PACK" or head[4:8] not in (b"\0\0\0\2", b"\0\0\0\3"):
        return None
    if int.from_bytes(head[8:12], "big") != count:
        return None
    if info.st_size < 12 + len(checksum) or tail != checksum:
        return None
    return info.st_size


def _count_loose(objects: str) -> int | None:
    total = 0
    try:
        with os.scandir(objects) as top:
            for folder in top:
                name = folder.name
                hexadecimal = len(name) == 2 and all(c in "0123456789abcdef" for c in name)
                if hexadecimal and folder.is_dir(follow_symlinks=False):
                    total += len(os.listdir(folder.path))
    except OSError:
        return None
    return total


def _without_duplicates(packs: list[Pack], id_size: int) -> list[Pack]:
    """Each object read from one pack only (git lists it once): the largest pack keeps
    its copy, then the first of the others that holds it. Small packs beside a large one
    (the usual shape) are looked up in the large one's sorted index by binary search, so
    its ids are never made into a set (numpy: 480k ids, 0.09 s)."""
    if len(packs) < 2:
        return packs
    largest = max(range(len(packs)), key=lambda at: len(packs[at].starts))
    big = packs[largest]
    others = sum(len(p.starts) for p in packs) - len(big.starts)
    in_big: Callable[[bytes], bool]
    if others * 16 < len(big.starts):
        in_big = lambda name: _offset_of(big, name, id_size) >= 0  # noqa: E731
    else:
        names = big.names
        in_big = {names[i : i + id_size] for i in range(0, len(names), id_size)}.__contains__
    seen: set[bytes] = set()
    out: list[Pack] = []
    for at, pack in enumerate(packs):
        if at != largest:
            names = pack.names
            ids = [names[i : i + id_size] for i in range(0, len(names), id_size)]
            again = {pos for pos, name in enumerate(ids) if name in seen or in_big(name)}
            if again:
                where = {pos: entry for entry, pos in enumerate(pack.order) if pos in again}
                pack = pack._replace(skip=frozenset(where.values()))
            seen.update(ids)
        out.append(pack)
    return out


class Reader:
    """Reads pieces of a ``Store`` in this process (one per process: its maps and caches
    are its own). Entries it does not read are added to ``skipped`` (hex ids): the caller
    has git read those by id.

    Two caches, as a segmented LRU: ``_recent`` (``RECENT_BYTES``) holds the objects just
    read, ``_bases`` (``CACHE_BYTES``) those a delta needed; an object in ``_recent`` that
    a delta asks for moves to ``_bases``. Read in pack order, most objects are never a
    base: they pass through ``_recent`` without pushing the bases out (sqlalchemy, one
    process: 310k entries inflated for 277k objects, against 322k with one LRU of 256 MiB)."""

    def __init__(
        self, store: Store, apply_delta: ApplyDelta, inflate: Inflate | None = None
    ) -> None:
        self.store = store
        self.apply_delta = apply_delta
        self.inflate = inflate_functions() if inflate is None else inflate
        self._decompress = self.inflate.decompress
        self.skipped: list[str] = []
        self._maps: dict[int, mmap.mmap | None] = {}
        # Keyed by ``pack << 48 | offset`` (an int: no tuple per look-up).
        self._bases: OrderedDict[int, tuple[int, bytes]] = OrderedDict()
        self._recent: OrderedDict[int, tuple[int, bytes]] = OrderedDict()
        self._sizes = [0, 0]  # bytes in _bases, in _recent

    def close(self) -> None:
        for mapped in self._maps.values():
            if mapped is not None:
                mapped.close()
        self._maps.clear()
        self._bases.clear()
        self._recent.clear()
        self._sizes = [0, 0]

    def _map(self, at: int) -> mmap.mmap | None:
        if at in self._maps:
            return self._maps[at]
        pack = self.store.packs[at]
        mapped = None
        opened = _open_regular(pack.path)
        if opened is not None:
            fd, info = opened
            try:
                if info.st_size >= pack.ends[-1] + self.store.id_size:
                    mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                mapped = None
            finally:
                os.close(fd)
        self._maps[at] = mapped
        return mapped

    def read(self, piece: Piece) -> Iterator[tuple[str, str, bytes]]:
        """``(hex id, type, content)`` of each entry of ``piece``, in pack order."""
        at = piece.pack
        pack = self.store.packs[at]
        mapped = self._map(at) if pack.starts else None
        hex_id = self.store.hex_id
        skip = pack.skip
        if mapped is None:
            self.skipped.extend(
                hex_id(pack, k) for k in range(piece.start, piece.end) if k not in skip
            )
            return
        starts = pack.starts
        names, order, width = pack.names, pack.order, self.store.id_size
        bases = self._bases
        bases_get = bases.get
        entry_of, apply = self._entry, self._apply
        recent, sizes, recent_max = self._recent, self._sizes, RECENT_BYTES // 4
        high = at << 48
        unreadable: tuple[type[Exception], ...] = (Unreadable, ValueError, IndexError)
        unreadable += (OverflowError, MemoryError, *self.inflate.errors)
        for k in range(piece.start, piece.end):
            if skip and k in skip:
                continue
            key = high | starts[k]
            try:
                got = bases_get(key)  # rebuilt already, as a base of an object read before
                if got is None:
                    kind, base, data = entry_of(pack, mapped, starts[k], k)
                    if base >= 0:
                        # The base: a base kept (most deltas), else ``_base`` (an object
                        # just read moves to the bases; or its chain is rebuilt).
                        found = bases_get(high | base)
                        if found is not None:
                            bases.move_to_end(high | base)
                        else:
                            found = self._base(at, pack, mapped, base)
                        kind = found[0]
                        data = apply(found[1], data)
                    got = (kind, data)
                    size = len(data)
                    if size <= recent_max:  # into _recent (``_keep``, inlined: every object)
                        recent[key] = got
                        sizes[1] += size
                        while sizes[1] > RECENT_BYTES:
                            sizes[1] -= len(recent.popitem(last=False)[1][1])
            except unreadable:
                self.skipped.append(hex_id(pack, k))
                continue
            except Exception as exc:  # dulwich's ApplyDeltaError: a delta that does not apply
                if type(exc).__name__ != "ApplyDeltaError":
                    raise
                self.skipped.append(hex_id(pack, k))
                continue
            where = order[k] * width
            yield names[where : where + width].hex(), KINDS[got[0]], got[1]

    def _base(self, at: int, pack: Pack, mapped: mmap.mmap, offset: int) -> tuple[int, bytes]:
        """Type and content of the delta base at ``offset``, its own chain rebuilt from the
        nearest cached object; every object of the chain is kept as a base."""
        bases, recent = self._bases, self._recent
        chain: list[tuple[int, bytes]] = []  # (key, delta) from the top down
        high = at << 48
        while True:
            key = high | offset
            got = bases.get(key)
            if got is not None:
                bases.move_to_end(key)
                break
            got = recent.pop(key, None)
            if got is not None:
                self._sizes[1] -= len(got[1])
                self._keep(True, key, got)
                break
            kind, base, data = self._entry(pack, mapped, offset, -1)
            if base < 0:  # a whole object
                got = (kind, data)
                self._keep(True, key, got)
                break
            chain.append((key, data))
            if len(chain) > MAX_CHAIN:
                raise Unreadable("delta chain too long")
            offset = base
        kind, data = got
        for key, delta in reversed(chain):
            data = self._apply(data, delta)
            got = (kind, data)
            self._keep(True, key, got)
        return got

    def _keep(self, base: bool, key: int, got: tuple[int, bytes]) -> None:
        """Into ``_bases`` (``base``) or ``_recent``; the least recently used out."""
        size = len(got[1])
        limit = CACHE_BYTES if base else RECENT_BYTES
        if size > limit // 4:
            return
        cache = self._bases if base else self._recent
        slot = 0 if base else 1
        cache[key] = got
        sizes = self._sizes
        sizes[slot] += size
        while sizes[slot] > limit:
            _, (_, old) = cache.popitem(last=False)
            sizes[slot] -= len(old)

    def _apply(self, base: bytes, delta: bytes) -> bytes:
        """``delta`` applied to ``base``, its declared sizes checked first (never more
        memory than ``LARGE``)."""
        # The two sizes that open a delta (little-endian base 128), parsed inline.
        sizes = [0, 0]
        at = 0
        for which in (0, 1):
            shift = 0
            while True:
                byte = delta[at]
                at += 1
                sizes[which] |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 70:
                    raise Unreadable("delta header too long")
        source, target = sizes
        if source != len(base):
            raise Unreadable("delta base size differs")
        if target > LARGE:
            raise Unreadable("too large")
        chunks = self.apply_delta(base, delta)
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if len(data) != target:
            raise Unreadable("delta result size differs")
        return data

    def _entry(
        self, pack: Pack, mapped: mmap.mmap, offset: int, entry: int
    ) -> tuple[int, int, bytes]:
        """``(type, base offset or -1, inflated data)`` of one entry."""
        end = pack.ends[entry] if entry >= 0 else _end_of(pack, offset)
        # The header (type and size, then a base's offset or id) from one slice: indexing
        # bytes is cheaper than indexing the map. Never past the entry's end.
        head = mapped[offset : min(end, offset + _HEAD)]
        byte = head[0]
        kind = (byte >> 4) & 7
        size = byte & 15
        shift = 4
        at = 1
        while byte & 0x80:
            byte = head[at]
            at += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if shift > 70:
                raise Unreadable("entry header too long")
        base = -1
        if kind == OFS_DELTA:
            byte = head[at]
            at += 1
            back = byte & 0x7F
            while byte & 0x80:
                byte = head[at]
                at += 1
                back = ((back + 1) << 7) | (byte & 0x7F)
                if back > offset:
                    break
            base = offset - back
            if back <= 0 or base < 12:
                raise Unreadable("delta base outside the pack")
        elif kind == REF_DELTA:
            width = self.store.id_size
            name = head[at : at + width]
            at += width
            base = _offset_of(pack, name, width)
            if base < 0:
                raise Unreadable("delta base not in this pack")
        elif kind not in KINDS:
            raise Unreadable("unknown entry type")
        if size > LARGE:
            raise Unreadable("too large")
        packed = mapped[offset + at : end]
        if len(packed) <= _ONE_SHOT:  # inflates to at most ~1,032 times that: bounded
            data = self._decompress(packed, bufsize=size + 1)  # raises if it is cut
        else:
            inflate = self.inflate.decompressobj()
            # At most what the header says (+1 to see a longer stream): never a zlib bomb.
            data = inflate.decompress(packed, size + 1)
            if not inflate.eof:
                raise Unreadable("entry does not inflate to its size")
        if len(data) != size:
            raise Unreadable("entry does not inflate to its size")
        return kind, base, data


# An entry this small (compressed) is inflated in one call: zlib's ratio is at most about
# 1,032:1, so it never holds more than ~66 MB; a larger one inflates no further than its size.
_ONE_SHOT = 64 * 1024

# An entry's header is at most this long: 10 bytes of type and size (up to 2**64), then 10
# of a base's offset or a 32-byte id.
_HEAD = 64


def _end_of(pack: Pack, offset: int) -> int:
    """Where the entry starting at ``offset`` ends (the next entry's start)."""
    k = bisect.bisect_right(pack.starts, offset) - 1
    if k < 0 or pack.starts[k] != offset:
        raise Unreadable("no entry starts there")
    return pack.ends[k]


def _offset_of(pack: Pack, name: bytes, id_size: int) -> int:
    """Where object ``name`` (raw id) starts in ``pack``, or -1: a binary search of the
    index's sorted ids within the range its fan-out table gives."""
    if len(name) != id_size:
        return -1
    first = name[0]
    low = pack.fanout[first - 1] if first else 0
    high = pack.fanout[first]
    names = pack.names
    while low < high:
        middle = (low + high) // 2
        here = names[middle * id_size : (middle + 1) * id_size]
        if here == name:
            return int(pack.offsets[middle])
        if here < name:
            low = middle + 1
        else:
            high = middle
    return -1
