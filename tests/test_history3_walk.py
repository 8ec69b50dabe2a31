"""Full-history speed, round three (issue 16): the walk of a scan of every ref.

A scan of every ref reads every object of the repository in pack order; the walk only
says which of them the refs reach. It is now ONE ``git rev-list --objects --missing=print``
(no ``cat-file --batch-check`` behind it: types and sizes come from what is read, or from
the pool's pack-order listing), parsed without a Python object per object.

* The git processes of such a scan: no ``--batch-check`` fed by the walk (one process fewer
  and about 40% less git CPU for the walk on sqlalchemy); with workers, the walk starts
  once the pack-order listing (which the workers wait for) is done.
* The same answers as the id-order path (``tests/test_history_speed.py`` compares the two
  on a history with keys everywhere); here, what the walk must still say: a missing blob
  and a corrupt one are named (exit 2, what could be read is reported), in one process
  and with workers; objects no ref reaches are scanned by the reader but not reported
  (no ``--all-objects``), and their errors are not reported either; a tree whose entry
  name holds a key in a sub-folder is located at its full path.
"""

from __future__ import annotations

import os
import stat
import zlib
from pathlib import Path

import pytest

from keyscan.git import history
from keyscan.keygen import key
from tests.git_helpers import Repo, scan
from tests.test_history_speed import _history, _logging_git, _summary


@pytest.mark.parametrize("jobs", [1, 2])
def test_walk_is_one_rev_list_without_batch_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    repo, keys = _history(tmp_path)
    monkeypatch.setattr(history, "PACK_ORDER", False)
    by_id = scan(repo.path, jobs=1)
    monkeypatch.setattr(history, "PACK_ORDER", True)
    monkeypatch.setattr(history, "PACKS_IN_PROCESS", False)  # git reads the packs
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    log = _logging_git(tmp_path)
    monkeypatch.setenv("PATH", f"{log.parent / 'bin'}{os.pathsep}{os.environ['PATH']}")
    packed = scan(repo.path, jobs=jobs)
    assert packed.stats["workers"] == jobs
    lines = log.read_text().splitlines()
    walks = [ln for ln in lines if " rev-list " in f" {ln} " and "--objects" in ln]
    assert len(walks) == 1 and "--missing=print" in walks[0], walks
    # Types and sizes: the walk's was ``rev-list | cat-file --batch-check`` (with the path,
    # %(rest)); only the pool's pack-order listing remains (every object, no walk behind
    # it). Provenance's look-ups at the branch tips ask for no size.
    checks = [ln for ln in lines if "--batch-check" in ln and "%(objectsize)" in ln]
    assert all("--batch-all-objects" in ln for ln in checks), checks
    assert len(checks) == (1 if jobs > 1 else 0), checks
    if jobs > 1:  # the workers wait for the listing, nobody for the walk: listing first
        assert lines.index(checks[0]) < lines.index(walks[0]), lines
    assert _summary(packed) == _summary(by_id)
    assert keys["dangling"] not in {f.secret for f in packed.findings}


def _break_loose(repo: Repo, oid: str) -> None:
    """Corrupt a loose object (its zlib stream), as tests/test_git_cli.py does."""
    path = repo.path / ".git" / "objects" / oid[:2] / oid[2:]
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    data = path.read_bytes()
    raw = zlib.decompress(data)
    packed = zlib.compress(raw)
    path.write_bytes(packed[:8] + b"\xff\xff\xff" + packed[11:])


@pytest.mark.parametrize("jobs", [1, 2])
def test_missing_and_corrupt_objects_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    secret = key("project")
    repo = Repo(tmp_path / "repo")
    repo.commit("one", ("bad.txt", "bad\n"), ("gone.txt", "gone\n"), ("k.txt", f"{secret}\n"))
    repo.commit("two", ("more.txt", "more\n"))
    bad = repo.git("rev-parse", "HEAD:bad.txt")
    gone = repo.git("rev-parse", "HEAD:gone.txt")
    (repo.path / ".git" / "objects" / gone[:2] / gone[2:]).unlink()
    _break_loose(repo, bad)
    # An unreachable corrupt object is not this scan's business (no ref reaches it).
    stray = repo.git("hash-object", "-w", "--stdin", input=b"stray\n")
    _break_loose(repo, stray)
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(history, "PACK_ORDER", False)
    by_id = scan(repo.path, jobs=1)
    monkeypatch.setattr(history, "PACK_ORDER", True)
    packed = scan(repo.path, jobs=jobs)
    named = {e.where: e.message for e in packed.errors}
    assert named == {
        bad: "corrupt or missing object: cannot read it",
        gone: "corrupt or missing object: cannot read it",
    }, packed.errors
    assert {f.secret for f in packed.findings} == {secret}
    assert sorted(map(str, packed.errors)) == sorted(map(str, by_id.errors))
    counts = ("commits", "blobs", "tags", "objects", "bytes")
    assert {k: packed.stats[k] for k in counts} == {k: by_id.stats[k] for k in counts}


@pytest.mark.parametrize("jobs", [1, 2])
def test_names_and_notebooks_are_located_by_the_walk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    """The walk gives the path of what needs one (a tree whose entry names hold a key, a
    notebook), looked up in its own output; a folder name and a file name deep in the tree
    are reported at their full paths, as the id-order path reports them."""
    secret, folder = key("project"), key("project")
    repo = Repo(tmp_path / "repo")
    repo.commit("deep", (f"a/b/{secret}.txt", "x\n"), (f"c/{folder}/d.txt", "y\n"))
    repo.commit("more", ("a/b/other.txt", "z\n"))
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(history, "PACK_ORDER", False)
    by_id = scan(repo.path, jobs=1)
    monkeypatch.setattr(history, "PACK_ORDER", True)
    packed = scan(repo.path, jobs=jobs)
    assert _summary(packed) == _summary(by_id)
    paths = {loc.display_path for f in packed.findings for loc in f.locations}
    assert f"a/b/{secret}.txt" in paths and f"c/{folder}" in paths, paths


def test_reach_path_lookup() -> None:
    a, b, c = "1" * 40, "2" * 40, "3" * 40
    reach = history.Reach({x.encode() for x in (a, b, c)},
                          f"{a}\n{b} \n{c} dir/x.IPYNB\n".encode(), [])  # fmt: skip
    assert reach.path_of(a) == "" and reach.path_of(b) == ""
    assert reach.path_of(c) == "dir/x.IPYNB" and reach.path_of("4" * 40) == ""
    assert reach.notebooks() == {c.encode(): "dir/x.IPYNB"}


@pytest.mark.parametrize("jobs", [1, 2])
def test_every_object_reader_gets_the_larger_delta_base_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    """git's delta base cache is the floor's own lever (README "Performance": 256 MiB
    instead of 96 MiB took git's cat-file of every sqlalchemy object from 4.17 to 3.25 s):
    every git process of a full-history scan that inflates objects (the walk, the listing,
    each reader) is told the larger limit on its command line, after anything the
    repository's own config says (a -c option wins over the repository's file), and the
    answers stay those of a scan with git's default."""
    repo, _ = _history(tmp_path)
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    by_default = scan(repo.path, jobs=jobs)
    repo.git("config", "core.deltaBaseCacheLimit", "1k")  # the repository's own, tiny
    log = _logging_git(tmp_path)
    monkeypatch.setenv("PATH", f"{log.parent / 'bin'}{os.pathsep}{os.environ['PATH']}")
    larger = scan(repo.path, jobs=jobs)
    lines = log.read_text().splitlines()
    readers = [ln for ln in lines if " cat-file " in f" {ln} " or " rev-list " in f" {ln} "]
    assert len(readers) >= (2 if jobs == 1 else 4), lines
    for line in readers:
        assert "-c core.deltaBaseCacheLimit=256m" in line, line
    assert _summary(larger) == _summary(by_default)
