"""The in-process pack reader (``keyscan.git.packs``) and the history scan built on it
(``history.scan_packs``), checked against git itself.

* Object by object, the reader answers what ``git cat-file --batch`` answers (id, type,
  content) on repositories packed in every way git packs (gc, ``repack -adf`` with and
  without a reverse index, REF deltas, several packs holding the same objects, deep delta
  chains, SHA-256), with binary and empty blobs, commits, tags and trees.
* A scan of every ref reports the same with the reader as through git (jobs 1 and 2), and
  the reader is really used (no ``cat-file --batch`` at all on a packed repository).
* What the reader cannot or will not read is left to git, which names it: a corrupt
  entry, a truncated pack, an entry above ``LARGE``, a delta whose sizes lie, a REF delta
  whose base is absent; ``open_store`` leaves whole repositories to git (alternates,
  symlinks, FIFOs, unknown index versions, a wrong reverse index, many loose objects) and
  never opens a file through a symbolic link.
* Without dulwich, git reads the packs and the report is the same.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keyscan.git import history, packs, plumbing
from keyscan.inflate import ZLIB, Inflate, inflate_functions
from keyscan.keygen import key
from tests.git_helpers import Repo, cli, scan
from tests.test_history_speed import _history, _logging_git, _summary

pytestmark = pytest.mark.usefixtures("isolated_home")

APPLY = packs.apply_delta_function()
needs_dulwich = pytest.mark.skipif(APPLY is None, reason="dulwich's compiled apply_delta")
# Every inflater the reader can use here: zlib's always, ISA-L's where its wheel is installed
# (``inflate_functions``' choice).
INFLATERS = [ZLIB] + (
    [inflate_functions()] if inflate_functions() != ZLIB else []
)


# --------------------------------------------------------------------------------------------
# Helpers


def _git_dir(repo: Repo) -> str:
    return plumbing.discover(str(repo.path)).git_dir


def _id_size(repo: Repo) -> int:
    return 32 if repo.git("rev-parse", "--show-object-format") == "sha256" else 20


def _store(repo: Repo) -> packs.Store:
    store = packs.open_store(_git_dir(repo), _id_size(repo))
    assert store is not None, "the reader refused a repository git packed"
    return store


def _git_objects(repo: Repo, oids: list[str]) -> dict[str, tuple[str, bytes]]:
    git = plumbing.discover(str(repo.path))
    return {oid: (kind, data) for oid, kind, data in plumbing.ObjectReader(git).read(oids)}


def _packed_ids(repo: Repo) -> list[str]:
    """Every object in a pack, per git (``show-index`` of each index), once."""
    out: set[str] = set()
    folder = Path(_git_dir(repo)) / "objects" / "pack"
    fmt = repo.git("rev-parse", "--show-object-format")
    for idx in folder.glob("pack-*.idx"):
        listing = repo.git("show-index", f"--object-format={fmt}", input=idx.read_bytes())
        out.update(line.split()[1] for line in listing.splitlines())
    return sorted(out)


def _read_all(
    store: packs.Store, pieces: int = 1, inflate: Inflate | None = None
) -> tuple[dict[str, tuple[str, bytes]], int, list[str]]:
    """Everything the reader delivers: id -> (type, content), how many entries it delivered
    (duplicates counted), what it left to git."""
    assert APPLY is not None
    reader = packs.Reader(store, APPLY, inflate)
    got: dict[str, tuple[str, bytes]] = {}
    delivered = 0
    try:
        for piece in store.pieces(pieces):
            for oid, kind, data in reader.read(piece):
                got[oid] = (kind, data)
                delivered += 1
    finally:
        reader.close()
    return got, delivered, reader.skipped


def _entry_types(store: packs.Store) -> dict[str, int]:
    """hex id -> the pack entry's type (1-4 whole, 6 OFS delta, 7 REF delta)."""
    out: dict[str, int] = {}
    for pack in store.packs:
        data = Path(pack.path).read_bytes()
        for k, start in enumerate(pack.starts):
            out.setdefault(store.hex_id(pack, k), (data[start] >> 4) & 7)
    return out


def _max_depth(repo: Repo) -> int:
    folder = Path(_git_dir(repo)) / "objects" / "pack"
    depth = 0
    for idx in folder.glob("pack-*.idx"):
        for line in repo.git("verify-pack", "-v", str(idx)).splitlines():
            fields = line.split()
            if len(fields) == 7 and fields[1] in ("blob", "tree", "commit", "tag"):
                depth = max(depth, int(fields[5]))
    return depth


def _build(repo: Repo) -> None:
    """A history with every kind of object: binary and empty blobs, a file edited many
    times in small steps (delta chains), nested trees, an annotated tag, a key."""
    lines = [f"line {i}: {'abcdefgh' * 6}\n" for i in range(400)]
    blob = bytes(range(256)) * 64
    repo.commit("start", ("src/big.txt", "".join(lines)), ("bin/data.bin", blob),
                ("empty", b""), ("a/b/c/d.txt", "deep\n"))  # fmt: skip
    for step in range(60):
        lines[(step * 37) % len(lines)] = f"edited {step}\n"
        if step == 30:
            lines[200] = f'OPENAI_API_KEY = "{key("project")}"\n'
        changed = bytearray(blob)
        changed[step * 11] ^= 0xFF
        blob = bytes(changed)
        repo.commit(f"edit {step}", ("src/big.txt", "".join(lines)), ("bin/data.bin", blob))
    repo.git("tag", "-a", "v1", "-m", "release one")
    repo.git("tag", "light")


PACKINGS: dict[str, list[list[str]]] = {
    "gc": [["gc", "-q"]],
    "repack-rev": [["-c", "pack.writeReverseIndex=true", "repack", "-adf", "-q"]],
    "repack-no-rev": [["-c", "pack.writeReverseIndex=false", "repack", "-adf", "-q"]],
    "ref-deltas": [["-c", "repack.useDeltaBaseOffset=false", "repack", "-adf", "-q"]],
    "deep": [["repack", "-adf", "-q", "--depth=4095", "--window=250"]],
    "large-offsets": [["repack", "-adf", "-q"]],
}


def _pack(repo: Repo, how: str) -> None:
    for args in PACKINGS[how]:
        repo.git(*args)
    if how == "large-offsets":  # the index again, every offset above 64 in its 8-byte table
        (idx,) = (Path(_git_dir(repo)) / "objects" / "pack").glob("pack-*.idx")
        fresh = idx.with_name("fresh.idx.tmp")
        repo.git(
            "index-pack", "--index-version=2,64", "-o", str(fresh), str(idx.with_suffix(".pack"))
        )
        assert len(fresh.read_bytes()) > len(idx.read_bytes())
        os.chmod(idx, 0o644)
        os.replace(fresh, idx)


# --------------------------------------------------------------------------------------------
# 1. The reader answers what git answers, object by object


@needs_dulwich
@pytest.mark.parametrize("object_format", ["sha1", "sha256"])
@pytest.mark.parametrize("how", sorted(PACKINGS))
def test_reader_reads_what_git_reads(tmp_path: Path, how: str, object_format: str) -> None:
    repo = Repo(tmp_path / "repo", init=False)
    (tmp_path / "repo").mkdir()
    repo.git("init", "-q", "-b", "main", f"--object-format={object_format}")
    _build(repo)
    _pack(repo, how)
    assert repo.git("count-objects").startswith("0 objects"), "loose objects left"
    store = _store(repo)
    assert store.id_size == _id_size(repo) and store.loose == 0
    rev = list((Path(_git_dir(repo)) / "objects" / "pack").glob("*.rev"))
    if how == "repack-rev":
        assert rev
    if how == "repack-no-rev":
        assert not rev
    types = _entry_types(store)
    wanted = packs.REF_DELTA if how == "ref-deltas" else packs.OFS_DELTA
    assert wanted in types.values()
    if how == "ref-deltas":
        assert packs.OFS_DELTA not in types.values()
    if how == "deep":
        assert _max_depth(repo) >= 40
    ids = _packed_ids(repo)
    truth = _git_objects(repo, ids)
    for pieces, inflate in itertools.product((1, 5), INFLATERS):
        got, delivered, skipped = _read_all(store, pieces, inflate)
        assert not skipped
        assert delivered == len(ids)  # each object once
        assert got == truth
    kinds = {kind for kind, _ in truth.values()}
    assert kinds == {"commit", "tree", "blob", "tag"}
    assert b"" in {data for kind, data in truth.values() if kind == "blob"}


@needs_dulwich
def test_several_packs_holding_the_same_objects(tmp_path: Path) -> None:
    """A second pack (``pack-objects`` of everything, and a ``repack`` without ``-a`` of
    newer commits) holds objects the first holds: each is read once, as git reads it."""
    repo = Repo(tmp_path / "repo")
    _build(repo)
    repo.git("repack", "-adf", "-q")
    folder = Path(_git_dir(repo)) / "objects" / "pack"
    listing = repo.git("rev-list", "--objects", "--all") + "\n"
    repo.git("pack-objects", "-q", str(folder / "pack"), input=listing.encode())
    repo.commit("later", ("src/later.txt", "later\n"))
    repo.git("repack", "-d", "-q")
    assert len(list(folder.glob("pack-*.idx"))) == 3
    store = _store(repo)
    assert any(p.skip for p in store.packs)
    ids = _packed_ids(repo)
    got, delivered, skipped = _read_all(store, 4)
    assert not skipped and delivered == len(ids) == store.entries
    assert got == _git_objects(repo, ids)


def test_a_small_pack_beside_a_large_one(tmp_path: Path) -> None:
    """A few objects packed again beside the full pack (as a fetch or a partial repack
    leaves them): looked up in the large pack's index by binary search, each read once."""
    repo = Repo(tmp_path / "repo")
    _build(repo)
    for i in range(40):
        repo.commit(f"more {i}", (f"more/f{i}.txt", f"{i}\n" * 50))
    repo.git("repack", "-adf", "-q")
    folder = Path(_git_dir(repo)) / "objects" / "pack"
    some = repo.git("rev-list", "--objects", "-3", "HEAD").splitlines()[:12]
    repo.git("pack-objects", "-q", str(folder / "pack"), input="".join(
        line.split()[0] + "\n" for line in some).encode())  # fmt: skip
    store = _store(repo)
    sizes = sorted(len(p.starts) for p in store.packs)
    assert len(sizes) == 2 and sizes[0] * 16 < sizes[1]  # the binary-search branch
    small = min(store.packs, key=lambda p: len(p.starts))
    assert len(small.skip) == len(small.starts)  # every copy in it is the large pack's too
    ids = _packed_ids(repo)
    got, delivered, skipped = _read_all(store, 3)
    assert not skipped and delivered == len(ids) == store.entries
    assert got == _git_objects(repo, ids)


@pytest.mark.parametrize("count", [1, 2, 5, 12])
def test_pieces_cover_every_entry_once_and_taper_towards_the_middle(
    tmp_path: Path, count: int
) -> None:
    repo = Repo(tmp_path / "repo")
    for i in range(120):  # objects of about one size (incompressible): runs cut evenly
        repo.commit(f"more {i}", (f"more/f{i}.txt", os.urandom(1500).hex()))
    repo.git("repack", "-adf", "-q")
    store = _store(repo)
    (pack,) = store.packs
    for taper in (False, True):
        pieces = store.pieces(count, taper=taper)
        assert [p.start for p in pieces] == [0] + [p.end for p in pieces[:-1]]
        assert pieces[-1].end == len(pack.starts) and all(p.end > p.start for p in pieces)
        assert len(pieces) <= count + 1


def test_tapered_pieces_shrink_towards_the_middle_and_the_front_half_is_lighter() -> None:
    """On a pack of 1,200 entries of one size the runs follow their weights exactly."""
    from array import array

    starts = list(range(12, 12 + 100 * 1200, 100))
    ends = [*starts[1:], starts[-1] + 100]
    empty = array("I")
    pack = packs.Pack("x.pack", starts, ends, b"", empty, empty, empty, frozenset())
    store = packs.Store([pack], 20, 0)

    def entries(**kw: Any) -> list[int]:
        pieces = store.pieces(6, **kw)
        assert [p.start for p in pieces] == [0] + [p.end for p in pieces[:-1]]
        assert pieces[-1].end == 1200
        return [p.end - p.start for p in pieces]

    assert entries() == [200] * 6
    assert entries(taper=True) == [300, 200, 100, 100, 200, 300]  # weights 3 2 1 1 2 3
    lighter = entries(taper=True, front=0.5)  # weights 1.5 1 0.5 1 2 3: 133.3 entries each
    assert all(
        abs(got - want) <= 2
        for got, want in zip(lighter, [200, 133, 67, 133, 267, 400], strict=True)
    ), lighter


def test_an_entry_weighs_more_than_its_packed_bytes() -> None:
    """Pieces are cut by what reading costs: ``ENTRY_WEIGHT`` per entry beside its packed
    bytes. 2,000 entries of 8 bytes (trees, commits, small deltas) then 20 of 8 KiB: by bytes
    alone the first half would hold every small entry and ten large ones; weighed per
    entry, the two halves cut within the small entries."""
    from array import array

    sizes = [8] * 2000 + [200 * 1024] * 20
    starts = [12]
    for size in sizes[:-1]:
        starts.append(starts[-1] + size)
    ends = [start + size for start, size in zip(starts, sizes, strict=True)]
    empty = array("I")
    pack = packs.Pack("x.pack", starts, ends, b"", empty, empty, empty, frozenset())
    first, second = packs.Store([pack], 20, 0).pieces(2)
    assert first.end == second.start
    total = sum(sizes) + packs.ENTRY_WEIGHT * len(sizes)
    weighed = sum(sizes[: first.end]) + packs.ENTRY_WEIGHT * first.end
    assert abs(weighed - total / 2) <= 200 * 1024 + packs.ENTRY_WEIGHT
    assert first.end < 2000  # bytes alone, or 256 per entry: 2,010


# --------------------------------------------------------------------------------------------
# 2. Whole scans: the reader reports what git reports


def _packed_history(tmp_path: Path) -> tuple[Repo, dict[str, str]]:
    """``_history`` (keys in blobs, messages, tags, notes, a notebook, a file name; a
    dangling blob and a dropped commit) plus a key added by a small edit to a large file,
    all packed (unreachable objects in a second pack), then commits after the pack (loose
    objects)."""
    repo, keys = _history(tmp_path)
    lines = [f"row {i} = {'xyzw' * 12}\n" for i in range(3000)]
    repo.commit("large", ("data/large.txt", "".join(lines)))
    keys["delta"] = key("project")
    # Smaller than the version before: git makes it the delta (the larger one the base).
    lines[1500:1510] = [f'token = "{keys["delta"]}"\n']
    repo.commit("small edit", ("data/large.txt", "".join(lines)))
    repo.git("repack", "-adf", "-q")
    # The dangling blob and the dropped commit, packed too (a pack of their own).
    unreachable = repo.git("fsck", "--unreachable", "--no-reflogs").splitlines()
    ids = "".join(line.split()[-1] + "\n" for line in unreachable)
    assert len(unreachable) >= 3
    repo.git("pack-objects", "-q", str(Path(_git_dir(repo)) / "objects" / "pack" / "pack"),
             input=ids.encode())  # fmt: skip
    repo.git("prune-packed")
    assert repo.git("count-objects").startswith("0 objects")
    assert set(ids.split()) <= set(_packed_ids(repo))
    keys["loose"] = key("svcacct")
    repo.commit("after the pack", ("late.py", f"k = '{keys['loose']}'\n"))
    return repo, keys


@needs_dulwich
@pytest.mark.parametrize("jobs", [1, 2])
def test_scan_with_the_reader_reports_what_git_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    repo, keys = _packed_history(tmp_path)
    store = _store(repo)
    assert 0 < store.loose < 10
    keyed = repo.git("rev-parse", "HEAD~1:data/large.txt")  # the version with the key
    assert _entry_types(store)[keyed] == packs.OFS_DELTA
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(history, "PACKS_IN_PROCESS", False)
    by_git = scan(repo.path, jobs=jobs)
    monkeypatch.setattr(history, "PACKS_IN_PROCESS", True)
    used: list[int] = []
    real = history.scan_packs

    def spy(*args: Any, **kwargs: Any) -> Any:
        used.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(history, "scan_packs", spy)
    ours = scan(repo.path, jobs=jobs)
    assert used, "the reader was not used"
    assert ours.stats["workers"] == jobs
    assert not ours.errors
    assert _summary(ours) == _summary(by_git)
    found = {f.secret for f in ours.findings}
    wanted = ("blob", "moved", "side", "message", "tag", "note", "merge", "pdf", "utf32",
              "delta", "loose")  # fmt: skip
    assert {keys[k] for k in wanted} <= found
    assert keys["dangling"] not in found and keys["dropped"] not in found
    (delta,) = [f for f in ours.findings if f.secret == keys["delta"]]
    assert {(loc.display_path, loc.line) for loc in delta.locations} == {("data/large.txt", 1501)}
    cells = [loc for f in ours.findings for loc in f.locations
             if loc.display_path == "nb/demo.ipynb"]  # fmt: skip
    assert cells and all(loc.extra.get("cell") == 1 for loc in cells)
    assert any(loc.line == 0 for f in ours.findings if f.secret.startswith(keys["tree"][:20])
               for loc in f.locations)  # fmt: skip


# --------------------------------------------------------------------------------------------
# 3. The reader is used: no git reads the objects


def _git_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = _logging_git(tmp_path)
    monkeypatch.setenv("PATH", f"{log.parent / 'bin'}{os.pathsep}{os.environ['PATH']}")
    return log


def _readers(log: Path) -> list[str]:
    """Every ``cat-file`` started that reads contents (``--batch``, with or without
    ``--batch-all-objects``)."""
    return [ln for ln in log.read_text().splitlines()
            if "cat-file" in ln and " --batch " in f"{ln} "]  # fmt: skip


@needs_dulwich
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_packed_repository_is_read_without_cat_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    secret = key("project")
    repo = Repo(tmp_path / "repo")
    for i in range(6):
        repo.commit(f"c{i}", (f"f{i}.py", f"x = {i}\n" * 50))
    repo.commit("key", ("conf.py", f'KEY = "{secret}"\n'))
    repo.git("gc", "-q")
    assert repo.git("count-objects").startswith("0 objects")
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    log = _git_log(tmp_path, monkeypatch)
    result = scan(repo.path, jobs=jobs)
    assert not result.errors
    assert {f.secret for f in result.findings} == {secret}
    assert result.stats["workers"] == jobs
    assert result.stats["blobs"] == 7 and result.stats["commits"] == 7
    assert _readers(log) == []
    assert not any("--batch-all-objects" in ln for ln in log.read_text().splitlines())


@needs_dulwich
def test_loose_objects_beside_the_pack_are_read_by_git_by_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = key("project")
    repo = Repo(tmp_path / "repo")
    repo.commit("c0", ("f.py", "x = 1\n"))
    repo.git("gc", "-q")
    repo.commit("key", ("conf.py", f'KEY = "{secret}"\n'))
    log = _git_log(tmp_path, monkeypatch)
    result = scan(repo.path)
    assert {f.secret for f in result.findings} == {secret} and not result.errors
    readers = _readers(log)
    assert len(readers) == 1 and "--batch-all-objects" not in readers[0], readers


# --------------------------------------------------------------------------------------------
# 4. What the reader does not read is left to git, which names it


def _two_key_repo(tmp_path: Path) -> tuple[Repo, str, str, str]:
    """A packed repository with two keys in two blobs (both stored whole); returns the repo,
    the keys and the id of the first key's blob."""
    first, second = key("project"), key("project")
    repo = Repo(tmp_path / "repo")
    filler = "".join(f"# filler {i} {'q' * 40}\n" for i in range(200))
    repo.commit("one", ("one.py", f'A = "{first}"\n' + filler))
    repo.commit("two", ("two.py", f'B = "{second}"\n'))
    repo.git("repack", "-adf", "-q")
    oid = repo.git("rev-parse", "HEAD:one.py")
    return repo, first, second, oid


def _entry_span(store: packs.Store, oid: str) -> tuple[str, int, int]:
    for pack in store.packs:
        for k in range(len(pack.starts)):
            if store.hex_id(pack, k) == oid:
                return pack.path, pack.starts[k], pack.ends[k]
    raise AssertionError(f"{oid} not packed")


def _both_ways(repo: Repo, monkeypatch: pytest.MonkeyPatch, jobs: int = 1) -> tuple[Any, Any]:
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(history, "PACKS_IN_PROCESS", False)
    by_git = scan(repo.path, jobs=jobs)
    monkeypatch.setattr(history, "PACKS_IN_PROCESS", True)
    return scan(repo.path, jobs=jobs), by_git


def _poke(path: str, at: int, value: bytes) -> None:
    os.chmod(path, 0o644)
    with open(path, "r+b") as fh:
        fh.seek(at)
        fh.write(value)


@needs_dulwich
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_corrupt_entry_is_left_to_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    repo, _first, second, oid = _two_key_repo(tmp_path)
    store = _store(repo)
    path, start, end = _entry_span(store, oid)
    middle = (start + end) // 2
    with open(path, "rb") as fh:
        fh.seek(middle)
        byte = fh.read(1)
    _poke(path, middle, bytes([byte[0] ^ 0xFF]))
    got, _, skipped = _read_all(store)
    assert skipped == [oid] and oid not in got
    ours, by_git = _both_ways(repo, monkeypatch, jobs)
    assert [e.where for e in ours.errors] == [oid]
    assert {f.secret for f in ours.findings} == {second}
    assert _summary(ours) == _summary(by_git)
    code, _, err = cli("git", str(repo.path), "--no-config")
    assert code == 2 and oid in err, err


@needs_dulwich
@pytest.mark.parametrize("inflate", INFLATERS, ids=lambda i: i.decompress.__module__)
@pytest.mark.parametrize("damage", ["checksum", "cut", "middle"])
def test_each_inflater_refuses_what_zlib_refuses(
    tmp_path: Path, inflate: Inflate, damage: str
) -> None:
    """A wrong checksum (the stream's last four bytes), a stream cut short, a changed byte:
    the entry is left to git with either inflater, and every other object is read."""
    repo, _first, _second, oid = _two_key_repo(tmp_path)
    store = _store(repo)
    path, start, end = _entry_span(store, oid)
    assert end - start > 64  # the filler: one stream long enough to cut
    with open(path, "rb") as fh:
        fh.seek(start)
        entry = fh.read(end - start)
    if damage == "checksum":
        _poke(path, end - 1, bytes([entry[-1] ^ 0x01]))
    elif damage == "cut":  # the stream's second half zeroed: it does not end where it should
        _poke(path, start + (end - start) // 2, bytes((end - start) - (end - start) // 2))
    else:
        _poke(path, (start + end) // 2, bytes([entry[(end - start) // 2] ^ 0xFF]))
    got, _, skipped = _read_all(store, 1, inflate)
    assert skipped == [oid] and oid not in got
    truth = _git_objects(repo, [i for i in _packed_ids(repo) if i != oid])
    assert got == truth


def test_the_reader_inflates_with_isal_where_it_is_installed() -> None:
    """ISA-L's inflate where its wheel is installed (the dependency's markers), zlib's
    elsewhere."""
    try:
        from isal import isal_zlib
    except ImportError:
        assert inflate_functions() == ZLIB
        return
    chosen = inflate_functions()
    assert chosen.decompress is isal_zlib.decompress
    assert isal_zlib.error in chosen.errors


@needs_dulwich
def test_a_corrupt_copy_with_a_good_copy_in_another_pack_is_read_as_git_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two packs hold the blob; the copy the reader reads is corrupt: left to git, which
    reads the good copy. Found, no error, as git alone answers."""
    repo, first, second, oid = _two_key_repo(tmp_path)
    folder = Path(_git_dir(repo)) / "objects" / "pack"
    listing = repo.git("rev-list", "--objects", "--all") + "\n"
    repo.git("pack-objects", "-q", str(folder / "pack"), input=listing.encode())
    store = _store(repo)
    assert len(store.packs) == 2
    path, start, end = _entry_span(store, oid)  # the copy the reader reads
    _poke(path, (start + end) // 2, b"\x00\xff\x00")
    _, _, skipped = _read_all(store)
    assert skipped == [oid]
    ours, by_git = _both_ways(repo, monkeypatch)
    assert not ours.errors
    assert {f.secret for f in ours.findings} == {first, second}
    assert _summary(ours) == _summary(by_git)


@needs_dulwich
def test_a_pack_that_does_not_match_its_index_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """git refuses a pack whose trailing checksum is not the one its index records ("does
    not match index") and reads the object from elsewhere (here: loose). Another pack of
    one object put in its place parses as well as the right one: the reader must not
    deliver that object's content under the id the index names."""
    kept, stranger = key("project"), key("project")
    repo = Repo(tmp_path / "repo")
    repo.commit("one", ("one.py", f'A = "{kept}"\n'))
    oid = repo.git("rev-parse", "HEAD:one.py")
    other = repo.git("hash-object", "-w", "--stdin", input=f'Z = "{stranger}"\n'.encode())
    folder = Path(_git_dir(repo)) / "objects" / "pack"
    mine = repo.git("pack-objects", "-q", str(folder / "pack"), input=f"{oid}\n".encode())
    theirs = repo.git("pack-objects", "-q", str(tmp_path / "pack"), input=f"{other}\n".encode())
    target = folder / f"pack-{mine}.pack"
    os.chmod(target, 0o644)
    shutil.copy(tmp_path / f"pack-{theirs}.pack", target)  # the object stays loose too
    assert repo.git("cat-file", "-p", oid) == f'A = "{kept}"'
    ours, by_git = _both_ways(repo, monkeypatch)
    assert {f.secret for f in by_git.findings} == {kept}
    assert _summary(ours) == _summary(by_git)


@needs_dulwich
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_reverse_index_that_names_an_entry_twice_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    """A ``.rev`` of the right size whose pack order names one entry twice (the second
    time out of order) and another never: the entry named twice must not stand in for the one never named (git reads
    each object once; the one left out is read by id and its key found)."""
    secret = key("project")
    repo = Repo(tmp_path / "repo")
    for i in range(8):
        repo.commit(f"c{i}", (f"f{i}.py", f"x = {i}\n"))
    repo.commit("key", ("conf.py", f'KEY = "{secret}"\n'))
    repo.git("-c", "pack.writeReverseIndex=true", "repack", "-adf", "-q")
    store = _store(repo)
    (pack,) = store.packs
    oid = repo.git("rev-parse", "HEAD:conf.py")
    (k,) = [k for k in range(len(pack.starts)) if store.hex_id(pack, k) == oid]
    assert k >= 3  # not one of the first two (checked apart)
    (rev,) = Path(pack.path).parent.glob("pack-*.rev")
    data = bytearray(rev.read_bytes())
    at = 12 + 4 * k
    data[at : at + 4] = data[at - 8 : at - 4]  # entry k names what entry k - 2 names
    os.chmod(rev, 0o644)
    rev.write_bytes(bytes(data))
    ours, by_git = _both_ways(repo, monkeypatch, jobs)
    assert secret in {f.secret for f in by_git.findings}
    assert _summary(ours) == _summary(by_git)


@needs_dulwich
@pytest.mark.parametrize("cut", [1, 30])
def test_a_truncated_pack_is_answered_as_git_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cut: int
) -> None:
    """git refuses a pack whose end does not match its index ("packfile ... does not match
    index"): its objects are missing to git, named as errors, none reported; the commits
    and trees (loose) still scanned. The reader must not read what git will not."""
    first, third = key("project"), key("project")
    repo = Repo(tmp_path / "repo")
    repo.commit("one", ("one.py", f'A = "{first}"\n' + "# filler\n" * 100))
    repo.commit("two", ("two.py", "B = 2\n"), ("three.py", f'C = "{third}"\n'))
    oid = repo.git("rev-parse", "HEAD:one.py")
    listing = repo.git("rev-list", "--objects", "--all").splitlines()
    blobs = [line.split()[0] for line in listing
             if line.endswith(("one.py", "two.py"))]  # fmt: skip
    assert len(blobs) == 2
    pack_base = Path(_git_dir(repo)) / "objects" / "pack" / "pack"
    repo.git("pack-objects", "-q", str(pack_base), input="\n".join(blobs).encode() + b"\n")
    repo.git("prune-packed")
    assert repo.git("cat-file", "-t", oid) == "blob"
    (pack,) = _store(repo).packs
    size = os.path.getsize(pack.path)
    os.chmod(pack.path, 0o644)
    os.truncate(pack.path, size - cut)
    ours, by_git = _both_ways(repo, monkeypatch)
    assert sorted(e.where for e in ours.errors) == sorted(blobs)
    assert _summary(ours) == _summary(by_git)
    assert {f.secret for f in ours.findings} == {third}
    code, _, err = cli("git", str(repo.path), "--no-config")
    assert code == 2, err


@needs_dulwich
@pytest.mark.parametrize("jobs", [1, 2])
def test_an_entry_above_large_is_read_by_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    repo, keys = _packed_history(tmp_path)
    monkeypatch.setattr(packs, "LARGE", 4096)
    left: list[str] = []
    real = packs.Reader.read

    def read(self: packs.Reader, piece: packs.Piece) -> Iterator[tuple[str, str, bytes]]:
        yield from real(self, piece)
        left.extend(self.skipped)

    monkeypatch.setattr(packs.Reader, "read", read)
    log = _git_log(tmp_path, monkeypatch)
    ours, by_git = _both_ways(repo, monkeypatch, jobs)
    if jobs == 1:  # exactly the objects above LARGE (the large file's versions) go to git
        sizes = repo.git("cat-file", "--batch-check=%(objectname) %(objectsize)",
                         input="\n".join(_packed_ids(repo)).encode()).splitlines()  # fmt: skip
        large = {line.split()[0] for line in sizes if int(line.split()[1]) > 4096}
        assert len(large) == 2 and set(left) == large
    assert not ours.errors
    assert _summary(ours) == _summary(by_git)
    assert keys["delta"] in {f.secret for f in ours.findings}
    assert any("--batch-all-objects" not in r for r in _readers(log))


@needs_dulwich
def test_a_delta_whose_sizes_lie_is_not_applied() -> None:
    store = packs.Store([], 20, 0)
    assert APPLY is not None
    reader = packs.Reader(store, APPLY)
    base = b"hello world"
    good = bytes([11, 5, 5]) + b"abcde"  # source 11, target 5, insert 5 bytes
    assert reader._apply(base, good) == b"abcde"
    with pytest.raises(packs.Unreadable):
        reader._apply(base, bytes([12, 5, 5]) + b"abcde")  # wrong source size
    with pytest.raises(packs.Unreadable):
        reader._apply(base + b"!", good)
    with pytest.raises(Exception) as caught:
        reader._apply(base, bytes([11, 6, 5]) + b"abcde")  # wrong target size
    assert isinstance(caught.value, packs.Unreadable) or (
        type(caught.value).__name__ == "ApplyDeltaError"
    )
    huge = bytearray([11])
    target = packs.LARGE + 1
    while True:
        byte = target & 0x7F
        target >>= 7
        huge.append(byte | (0x80 if target else 0))
        if not target:
            break
    with pytest.raises(packs.Unreadable):
        reader._apply(base, bytes(huge) + bytes([5]) + b"abcde")


@needs_dulwich
@pytest.mark.parametrize("base", ["absent", "of another size"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_a_ref_delta_whose_base_is_absent_or_wrong_is_left_to_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int, base: str
) -> None:
    """A REF delta names (raw, uncompressed) the id of its base: rewritten to an object
    nobody has, or to another object of the pack (whose size is not the delta's declared
    source size), the reader leaves the delta to git, which names it."""
    secret = key("project")
    repo = Repo(tmp_path / "repo")
    lines = [f"value {i} = {'m' * 50}\n" for i in range(300)]
    repo.commit("one", ("data.txt", "".join(lines)))
    lines[100] = "changed\n"
    repo.commit("two", ("data.txt", "".join(lines)), ("k.py", f'K = "{secret}"\n'))
    repo.git("-c", "repack.useDeltaBaseOffset=false", "repack", "-adf", "-q")
    store = _store(repo)
    types = _entry_types(store)
    blobs = {repo.git("rev-parse", "HEAD:data.txt"), repo.git("rev-parse", "HEAD~1:data.txt")}
    (delta,) = [oid for oid in blobs if types[oid] == packs.REF_DELTA]
    path, start, _ = _entry_span(store, delta)
    data = Path(path).read_bytes()
    at = start
    while data[at] & 0x80:
        at += 1
    if base == "absent":
        wrong = b"\x00" * store.id_size
    else:
        wrong = bytes.fromhex(repo.git("rev-parse", "HEAD:k.py"))
    _poke(path, at + 1, wrong)
    _, _, skipped = _read_all(store)
    assert skipped == [delta]
    ours, by_git = _both_ways(repo, monkeypatch, jobs)
    assert [e.where for e in ours.errors] == [delta]
    assert {f.secret for f in ours.findings} == {secret}
    assert _summary(ours) == _summary(by_git)
    code, _, err = cli("git", str(repo.path), "--no-config")
    assert code == 2 and delta in err, err


# open_store leaves whole repositories to git


def _packed(tmp_path: Path) -> tuple[Repo, str]:
    repo = Repo(tmp_path / "repo")
    repo.commit("one", ("a.py", f'A = "{key("project")}"\n'))
    repo.commit("two", ("b.py", "b = 2\n"))
    repo.git("-c", "pack.writeReverseIndex=true", "repack", "-adf", "-q")
    git_dir = _git_dir(repo)
    assert packs.open_store(git_dir, 20) is not None
    return repo, git_dir


def _idx(git_dir: str) -> Path:
    (idx,) = (Path(git_dir) / "objects" / "pack").glob("pack-*.idx")
    return idx


def _alternates(repo: Repo, git_dir: str, tmp_path: Path) -> None:
    other = Repo(tmp_path / "other")
    other.commit("o", ("o.py", "o\n"))
    info = Path(git_dir) / "objects" / "info"
    info.mkdir(exist_ok=True)
    (info / "alternates").write_text(str(Path(_git_dir(other)) / "objects") + "\n")


def _pack_folder_link(repo: Repo, git_dir: str, tmp_path: Path) -> None:
    folder = Path(git_dir) / "objects" / "pack"
    moved = tmp_path / "elsewhere"
    shutil.move(str(folder), moved)
    folder.symlink_to(moved)


def _objects_link(repo: Repo, git_dir: str, tmp_path: Path) -> None:
    objects = Path(git_dir) / "objects"
    moved = tmp_path / "objects-elsewhere"
    shutil.move(str(objects), moved)
    objects.symlink_to(moved)


def _fifo_idx(repo: Repo, git_dir: str, tmp_path: Path) -> None:
    os.mkfifo(Path(git_dir) / "objects" / "pack" / "pack-x.idx")


def _idx_version_1(repo: Repo, git_dir: str, tmp_path: Path) -> None:
    repo.git("-c", "pack.indexVersion=1", "repack", "-adf", "-q")
    assert _idx(git_dir).read_bytes()[:4] != b"\xfftOc"


def _idx_garbage(repo: Repo, git_dir: str, tmp_path: Path) -> None:
    idx = _idx(git_dir)
    os.chmod(idx, 0o644)
    idx.write_bytes(b"\xfftOc\x00\x00\x00\x02" + b"\xff" * 1100)


def _idx_version_3(repo: Repo, git_dir: str, tmp_path: Path) -> None:
    """A valid version 2 index but for its version field: only the version says no."""
    idx = _idx(git_dir)
    data = bytearray(idx.read_bytes())
    data[7] = 3
    os.chmod(idx, 0o644)
    idx.write_bytes(bytes(data))


def _pack_count_differs(repo: Repo, git_dir: str, tmp_path: Path) -> None:
    """The pack's header counts one object more than its index holds."""
    pack = _idx(git_dir).with_suffix(".pack")
    head = pack.read_bytes()[:12]
    _poke(str(pack), 8, (int.from_bytes(head[8:12], "big") + 1).to_bytes(4, "big"))


def _rev_wrong_size(repo: Repo, git_dir: str, tmp_path: Path) -> None:
    (rev,) = (Path(git_dir) / "objects" / "pack").glob("pack-*.rev")
    os.chmod(rev, 0o644)
    with open(rev, "ab") as fh:
        fh.write(b"\0\0\0\0")


def _rev_out_of_range(repo: Repo, git_dir: str, tmp_path: Path) -> None:
    """A reverse index of the right size naming an entry the index does not have."""
    (rev,) = (Path(git_dir) / "objects" / "pack").glob("pack-*.rev")
    _poke(str(rev), 12 + 4 * 2, b"\xff\xff\xff\xf0")


def _many_loose(repo: Repo, git_dir: str, tmp_path: Path) -> None:
    for i in range(5):
        repo.git("hash-object", "-w", "--stdin", input=f"loose {i}\n".encode())
    packs_module: Any = packs
    packs_module.LOOSE_MAX = 4
    packs_module.LOOSE_SHARE = 0.0


def _idx_link(repo: Repo, git_dir: str, tmp_path: Path) -> None:
    idx = _idx(git_dir)
    outside = tmp_path / "outside.idx"
    shutil.copy(idx, outside)
    idx.unlink()
    idx.symlink_to(outside)


def _pack_link(repo: Repo, git_dir: str, tmp_path: Path) -> None:
    pack = _idx(git_dir).with_suffix(".pack")
    outside = tmp_path / "outside.pack"
    shutil.copy(pack, outside)
    pack.unlink()
    pack.symlink_to(outside)


REFUSED = {
    "alternates": _alternates,
    "pack folder a symlink": _pack_folder_link,
    "objects folder a symlink": _objects_link,
    "fifo named pack-x.idx": _fifo_idx,
    "idx version 1": _idx_version_1,
    "idx garbage": _idx_garbage,
    "idx version 3": _idx_version_3,
    "pack header disagrees with its index": _pack_count_differs,
    "rev of the wrong size": _rev_wrong_size,
    "rev naming an entry the index lacks": _rev_out_of_range,
    "many loose objects": _many_loose,
    "idx a symlink": _idx_link,
    "pack a symlink": _pack_link,
}


def _in_time(function: Any, *args: Any) -> Any:
    """``function(*args)`` in a thread, failing the test if it has not returned in 20 s
    (a FIFO opened for reading blocks forever)."""
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(function(*args)), daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "blocked"
    return box[0]


@needs_dulwich
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_open_store_leaves_the_repository_to_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    repo, git_dir = _packed(tmp_path)
    monkeypatch.setattr(packs, "LOOSE_MAX", packs.LOOSE_MAX)
    monkeypatch.setattr(packs, "LOOSE_SHARE", packs.LOOSE_SHARE)
    REFUSED[case](repo, git_dir, tmp_path)
    assert _in_time(packs.open_store, git_dir, 20) is None
    # The scan goes through git (``scan_packs`` never called) and does not block either.
    called: list[int] = []
    monkeypatch.setattr(history, "scan_packs", lambda *a, **k: called.append(1))
    _in_time(lambda: scan(repo.path))
    assert not called


@needs_dulwich
def test_no_file_outside_the_object_folder_is_opened_through_a_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Links to files outside (an index, a pack, a reverse index, a loose-object folder):
    none of those files is ever opened, whatever ``open_store`` and the reader do."""
    repo, git_dir = _packed(tmp_path)
    folder = Path(git_dir) / "objects" / "pack"
    # A second, complete pack of copies whose files all point outside.
    repo.commit("three", ("c.py", "c = 3\n"))
    outside = tmp_path / "outside"
    outside.mkdir()
    other = Repo(tmp_path / "other")
    other.commit("o", ("o.py", f'O = "{key("project")}"\n'))
    other.git("-c", "pack.writeReverseIndex=true", "repack", "-adf", "-q")
    targets = []
    for source in (Path(_git_dir(other)) / "objects" / "pack").glob("pack-*"):
        copy = outside / source.name
        shutil.copy(source, copy)
        targets.append(copy)
        (folder / source.name).symlink_to(copy)
    (Path(git_dir) / "objects" / "ab").symlink_to(outside)
    rev = next(folder.glob("pack-*.rev"))
    rev_target = outside / "real.rev"
    shutil.move(str(rev), rev_target)
    rev.symlink_to(rev_target)
    targets.append(rev_target)
    with _opened_spy(targets) as opened:
        store = packs.open_store(git_dir, 20)
        if store is not None:
            _read_all(store, 3)
    assert not opened, opened


@contextlib.contextmanager
def _opened_spy(targets: list[Path]) -> Iterator[list[str]]:
    """Every ``os.open`` that ends on one of ``targets`` (by inode), recorded."""
    forbidden = {(s.st_dev, s.st_ino) for s in map(os.stat, targets)}
    opened: list[str] = []
    real_open = os.open

    def spy(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        fd = real_open(path, flags, *args, **kwargs)
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) in forbidden:
            opened.append(str(path))
        return fd

    os.open = spy
    try:
        yield opened
    finally:
        os.open = real_open


@needs_dulwich
@pytest.mark.parametrize("change", ["removed", "a symlink"])
def test_a_pack_changed_after_open_store_is_left_to_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """The pack goes away (or is swapped for a link to a file outside) between the index
    and the read: nothing is read from it, every entry is left to git, by id."""
    _, git_dir = _packed(tmp_path)
    store = packs.open_store(git_dir, 20)
    assert store is not None
    (pack,) = store.packs
    outside = tmp_path / "outside.pack"
    shutil.copy(pack.path, outside)
    os.unlink(pack.path)
    if change == "a symlink":
        os.symlink(outside, pack.path)
    with _opened_spy([outside]) as opened:
        got, _, skipped = _read_all(store, 2)
    assert not got and not opened
    assert sorted(skipped) == sorted(store.hex_id(pack, k) for k in range(len(pack.starts)))


# --------------------------------------------------------------------------------------------
# 5. Without dulwich, git reads the packs


@needs_dulwich
@pytest.mark.parametrize("jobs", [1, 2])
def test_without_dulwich_git_reads_and_the_report_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    repo, keys = _packed_history(tmp_path)
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    with_reader = scan(repo.path, jobs=jobs)
    monkeypatch.setattr(packs, "apply_delta_function", lambda: None)
    log = _git_log(tmp_path, monkeypatch)
    without = scan(repo.path, jobs=jobs)
    assert any("--batch-all-objects" in r for r in _readers(log))
    assert _summary(without) == _summary(with_reader)
    assert keys["delta"] in {f.secret for f in without.findings}


@needs_dulwich
def test_each_process_reads_all_its_pieces_with_one_reader_and_one_detector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker keeps one ``Reader`` (its delta base cache) and one Detector (Hyperscan
    compiles once per Detector) for every piece it reads; the pieces cover the store."""
    import time

    repo, _ = _packed_history(tmp_path)
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(history, "PACK_PIECES_PER_PROCESS", 4)
    marks = tmp_path / "marks"
    marks.mkdir()
    real_init, real_piece = packs.Reader.__init__, history._scan_piece
    real_detector = history.Detector

    def mark(what: str) -> None:
        (marks / f"{what}-{os.getpid()}-{time.monotonic_ns()}").touch()

    def init(self: packs.Reader, *args: Any) -> None:
        mark("reader")
        real_init(self, *args)

    class CountedDetector(real_detector):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            mark("detector")
            super().__init__(*args, **kwargs)

    def piece(*args: Any) -> None:
        mark("piece")
        time.sleep(0.05)  # every process gets pieces
        real_piece(*args)

    monkeypatch.setattr(packs.Reader, "__init__", init)
    monkeypatch.setattr(history, "Detector", CountedDetector)
    monkeypatch.setattr(history, "_scan_piece", piece)
    result = scan(repo.path, jobs=2)
    assert result.stats["workers"] == 2 and not result.errors

    def per_process(what: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for path in marks.glob(f"{what}-*"):
            pid = path.name.split("-")[1]
            out[pid] = out.get(pid, 0) + 1
        return out

    pieces, readers, detectors = (
        per_process("piece"),
        per_process("reader"),
        per_process("detector"),
    )
    assert sum(pieces.values()) == len(
        _store(repo).pieces(4 * 3, taper=True, front=history.PACK_FRONT_WEIGHT)
    )
    assert max(pieces.values()) >= 2  # some process read several pieces
    assert set(readers) == set(pieces) and set(readers.values()) == {1}
    assert all(detectors.get(pid, 0) <= 1 for pid in pieces)


def test_the_tally_of_a_listing_in_parts_is_the_tally_of_the_whole() -> None:
    """``scan_packs`` counts this process's part and each worker's as they come: any split
    of the listing into parts counts, reports and re-reads exactly what the whole does (out
    of scope objects, a hit, an error, a tree with a hit, a notebook met by the walk)."""
    from keyscan.git.plumbing import Listing
    from keyscan.models import ScanError

    def oid(n: int) -> str:
        return f"{n:040x}"

    kinds = [b"commit", b"tree", b"blob", b"blob", b"tag", b"tree", b"blob", b"blob", b"blob"]
    ids = [oid(n).encode() for n in range(len(kinds))]
    sizes = [b"%d" % (10 * n + 1) for n in range(len(kinds))]
    out_of_scope = {ids[3], ids[8]}
    walk = b"".join(
        i + (b" nb/book.ipynb" if n == 7 else b" dir" if n == 5 else b"") + b"\n"
        for n, i in enumerate(ids)
        if i not in out_of_scope
    )
    reach = history.Reach({i for i in ids if i not in out_of_scope}, walk, [])

    def found() -> dict[str, tuple[str, history.ChunkResult]]:
        return {
            oid(2): ("blob", history.ChunkResult(hits=["hit in a blob"])),  # type: ignore[list-item]
            oid(5): ("tree", history.ChunkResult(hits=["hit in a name"])),  # type: ignore[list-item]
            oid(6): ("error", history.ChunkResult(errors=[ScanError(oid(6), "bad")])),
            oid(8): ("blob", history.ChunkResult(hits=["out of scope"])),  # type: ignore[list-item]
        }

    def summary(tally: Any) -> tuple[Any, ...]:
        out = tally.out
        return (out.blobs, out.commits, out.tags, out.bytes, out.hits,
                [(e.where, e.message) for e in out.errors], tally.late, tally.hints,
                tally.reached, tally.failed)  # fmt: skip

    whole = summary(history._Tally(reach, found(), Listing(list(ids), list(kinds), list(sizes))))
    assert whole[0] == 1 and whole[1] == 1 and whole[2] == 1  # blobs 2 (hit) counted; 3, 8 out
    assert whole[4] == ["hit in a blob"] and whole[6] == [oid(5), oid(7)]
    for cuts in ([3], [1, 5], [2, 4, 6, 8], list(range(1, len(ids)))):
        bounds = [0, *cuts, len(ids)]
        parts = [Listing(ids[a:b], kinds[a:b], sizes[a:b]) for a, b in itertools.pairwise(bounds)]
        tally = history._Tally(reach, found(), parts[0])
        for part in parts[1:]:
            tally.add(part)
        assert summary(tally) == whole, cuts
