"""The full-history hot path (issue 16): cheaper per-member and per-object Python, the same
answers.

* An archive member's location is derived without ``dataclasses.replace`` (no
  ``__init__`` per member): equal to what ``replace`` builds, sharing no mutable state.
* A history with a zip holding many members still finds the key in its member, located as
  before (``path!member``).
* A scan of every ref reads the objects in pack order (one ``cat-file --batch-all-objects
  --batch --unordered``, the floor's command; with workers, pack-order runs each read by
  its own ``cat-file``) while the walk says what is in scope: it reports exactly what the
  id-order path reports (same findings, locations, notebook cells, tree names, commit and
  tag messages, notes; nothing from objects no ref reaches; same counts).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest

from keyscan.formats.archives import _derive, _in
from keyscan.git import history
from keyscan.keygen import key
from keyscan.models import CommitInfo, Location, ScanResult
from keyscan.redaction import redact
from tests.git_helpers import Repo, scan


def _template() -> Location:
    return Location(
        path="dist/app.zip", line=0, column=0, offset=0, binary=True, source="git-blob",
        commit=CommitInfo(sha="a" * 40, author_name="a", author_email="a@b.invalid",
                          date="2026-11-29T00:00:00+00:00", subject="s"),
        blob="b" * 40, extra={"tree": "c" * 40}, member=("outer.zip",),
    )  # fmt: skip


def test_derived_member_location_equals_replace() -> None:
    template = _template()
    derived = _in(template, "pkg/config.py")
    built = dataclasses.replace(
        template, member=(*template.member, "pkg/config.py"), extra=dict(template.extra)
    )
    assert derived == built and type(derived) is Location
    assert derived.display_path == "dist/app.zip!outer.zip!pkg/config.py"
    derived.extra["cell"] = 1  # its own dict: the archive's location is untouched
    assert "cell" not in template.extra
    flipped = _derive(template, binary=False)
    assert flipped == dataclasses.replace(template, binary=False) and template.binary


def test_key_in_a_zip_member_in_history(tmp_path: Path) -> None:
    secret = key("project")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(300):
            zf.writestr(f"pkg/mod{i}.py", f"x = {i}\n")
        zf.writestr("pkg/settings.py", f'OPENAI_API_KEY = "{secret}"\n')
    repo = Repo(tmp_path / "repo")
    repo.commit("add wheel", ("dist/app.zip", buf.getvalue()))
    result = scan(repo.path)
    assert not result.errors, result.errors
    (finding,) = [f for f in result.findings if f.secret == secret]
    assert [loc.display_path for loc in finding.locations] == ["dist/app.zip!pkg/settings.py"]
    assert redact(secret) != secret


def _notebook(secret: str) -> str:
    """A notebook whose key is split over two lines of a cell's source: only the notebook
    reader (which needs the ``.ipynb`` path) locates it in its cell."""
    cell = {
        "cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
        "source": ["client = OpenAI(api_key=\"", secret[:60], secret[60:] + "\")\n"],
    }  # fmt: skip
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def _history(tmp_path: Path) -> tuple[Repo, dict[str, str]]:
    """Keys everywhere a history holds them, and some where no ref reaches them."""
    keys = {name: key("project") for name in (
        "blob", "moved", "side", "message", "tag", "note", "notebook", "tree", "dangling",
        "dropped", "merge", "pdf", "utf32",
    )}  # fmt: skip
    repo = Repo(tmp_path / "repo")
    repo.commit("start", ("src/app.py", f'KEY = "{keys["blob"]}"\n'), ("README", "hi\n"))
    # Formats whose bytes hold no keyword: only the content layer's readers find these.
    repo.commit(
        "docs",
        ("docs/setup.pdf", _flate_pdf(f"key {keys['pdf']}".encode())),
        ("docs/setup.txt", f"key {keys['utf32']}\n".encode("utf-32")),
    )
    repo.commit(
        f"fix: key {keys['message']} was here", ("nb/demo.ipynb", _notebook(keys["notebook"]))
    )
    repo.rm("src/app.py")  # the same blob at a new path
    repo.commit(
        "move",
        ("lib/app.py", f'KEY = "{keys["blob"]}"\n'),
        ("lib/more.py", f"# {keys['moved']}\n" + "x = 1\n" * 200),
    )
    repo.commit("name", (f"conf/{keys['tree']}.txt", "empty\n"))
    repo.git("checkout", "-q", "-b", "side")
    repo.commit("side", ("side.py", f"s = '{keys['side']}'\n"))
    repo.git("checkout", "-q", "main")
    repo.commit("main moves on", ("README", "hello\n"))
    repo.git("merge", "-q", "--no-ff", "--no-commit", "side")
    repo.write("merged.py", f"m = '{keys['merge']}'\n")
    repo.git("add", "merged.py")
    repo.tick += 60
    repo.git("commit", "-q", "-m", "merge side")
    repo.git("tag", "-a", "v1", "-m", f"release {keys['tag']}")
    repo.git("notes", "add", "-m", f"note {keys['note']}")
    repo.git("hash-object", "-w", "--stdin", input=f"loose {keys['dangling']}\n".encode())
    head = repo.git("rev-parse", "HEAD")
    repo.commit("dropped", ("drop.py", f"d = '{keys['dropped']}'\n"))
    repo.git("reset", "-q", "--hard", head)
    repo.git("reflog", "expire", "--expire=now", "--all")
    return repo, keys


def _summary(result: ScanResult) -> tuple[Any, ...]:
    findings = sorted(
        (
            f.secret,
            f.rule_id,
            sorted(
                json.dumps(
                    [
                        loc.display_path,
                        loc.line,
                        loc.column,
                        loc.source,
                        loc.blob,
                        loc.commit.sha if loc.commit else None,
                        loc.extra,
                    ],
                    sort_keys=True,
                    default=str,
                )
                for loc in f.locations
            ),
        )
        for f in result.findings
    )
    counts = {k: result.stats[k] for k in ("commits", "blobs", "tags", "objects", "bytes")}
    return findings, counts, result.files, result.bytes, [str(e) for e in result.errors]


@pytest.mark.parametrize("jobs", [1, 2])
def test_pack_order_reports_what_the_id_order_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: int
) -> None:
    repo, keys = _history(tmp_path)
    monkeypatch.setattr(history, "PACK_ORDER", False)
    by_id = scan(repo.path, jobs=1)
    monkeypatch.setattr(history, "PACK_ORDER", True)
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)  # workers even for a small history
    # Loose objects: git's pack-order path (the pack reader's: tests/test_packs.py).
    monkeypatch.setattr(history, "PACKS_IN_PROCESS", False)
    packed = scan(repo.path, jobs=jobs)
    assert packed.stats["workers"] == jobs
    assert _summary(packed) == _summary(by_id)
    found = {f.secret for f in packed.findings}
    wanted = ("blob", "moved", "side", "message", "tag", "note", "merge", "pdf", "utf32")
    assert {keys[k] for k in wanted} <= found
    assert keys["dangling"] not in found and keys["dropped"] not in found
    (cells,) = [f for f in packed.findings if any(
        loc.display_path == "nb/demo.ipynb" and "cell" in loc.extra for loc in f.locations)]  # fmt: skip
    assert cells.locations[0].extra["cell"] == 1
    assert any(loc.line == 0 for f in packed.findings if f.secret.startswith(keys["tree"][:20])
               for loc in f.locations)  # fmt: skip


def test_pack_order_with_workers_rescans_what_needs_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers start before the walk has named any path: a notebook they scanned as plain
    bytes is scanned again with its path (its cell located), once."""
    repo, _ = _history(tmp_path)
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    result = scan(repo.path, jobs=2)
    nb = [loc for f in result.findings for loc in f.locations
          if loc.display_path == "nb/demo.ipynb"]  # fmt: skip
    assert nb and all("cell" in loc.extra for loc in nb)
    assert len({f.fingerprint for f in result.findings}) == len(result.findings)


def _logging_git(tmp_path: Path) -> Path:
    real = shutil.which("git")
    assert real is not None
    folder = tmp_path / "bin"
    folder.mkdir()
    log = tmp_path / "git.log"
    wrapper = folder / "git"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return log


def test_full_history_reads_every_object_in_pack_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One ``cat-file --batch-all-objects --batch --unordered`` reads the history (the
    floor's own command: nothing fed to it, no id-by-id reader) when nothing is found
    and git reads the packs (``PACKS_IN_PROCESS`` off, or no dulwich)."""
    monkeypatch.setattr(history, "PACKS_IN_PROCESS", False)
    repo = Repo(tmp_path / "repo")
    for i in range(5):
        repo.commit(f"c{i}", (f"f{i}.py", f"x = {i}\n"))
    log = _logging_git(tmp_path)
    monkeypatch.setenv("PATH", f"{log.parent / 'bin'}{os.pathsep}{os.environ['PATH']}")
    result = scan(repo.path)
    assert not result.errors and not result.findings
    assert result.stats["blobs"] == 5 and result.stats["commits"] == 5
    lines = log.read_text().splitlines()
    readers = [ln for ln in lines if "cat-file" in ln and " --batch " in f"{ln} "]
    assert len(readers) == 1 and "--batch-all-objects" in readers[0], readers
    assert "--unordered" in readers[0]


def _encodings(secret: str) -> list[tuple[str, bytes]]:
    import base64
    import gzip
    import urllib.parse

    raw = f'api_key = "{secret}"\n'.encode()
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("conf.py", raw)
    nested = io.BytesIO()
    with zipfile.ZipFile(nested, "w") as zf:
        zf.writestr("inner.zip", zipped.getvalue())
    return [
        ("plain", raw),
        ("binary", b"\0\1\2" + raw + b"\0"),
        ("base64", base64.b64encode(raw)),
        ("base64 in text", b"blob: " + base64.b64encode(b"x" * 7 + raw) + b"\n"),
        ("percent", urllib.parse.quote(secret, safe="").encode()),
        ("percent all", "".join(f"%{b:02X}" for b in secret.encode()).encode()),
        ("escapes", secret.replace("-", "\\u002d").encode()),
        ("utf-16le", b"\xff\xfe" + raw.decode().encode("utf-16le")),
        ("utf-16le no bom", raw.decode().encode("utf-16le")),
        ("utf-16be", raw.decode().encode("utf-16-be")),
        ("zip", zipped.getvalue()),
        ("zip in zip", nested.getvalue()),
        ("gzip", gzip.compress(raw)),
        ("broken zip", zipped.getvalue()[:40]),
        ("utf-32le", b"\xff\xfe\x00\x00" + raw.decode().encode("utf-32-le")),
        ("utf-32be no bom", raw.decode().encode("utf-32-be")),
        ("pdf flate", _flate_pdf(raw)),
    ]


def _flate_pdf(text: bytes) -> bytes:
    """A one-page PDF whose page text (a FlateDecode stream) shows ``text``: no keyword in
    its bytes, so only the PDF reader can find a key in it."""
    import zlib

    stream = zlib.compress(b"BT /F1 12 Tf 72 712 Td (" + text.strip() + b") Tj ET")
    return (
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
        b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
        b"3 0 obj << /Type /Page /Parent 2 0 R /Contents 4 0 R >> endobj\n"
        b"4 0 obj << /Length " + str(len(stream)).encode() + b" /Filter /FlateDecode >>\n"
        b"stream\n" + stream + b"\nendstream\nendobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )


def test_nothing_to_find_never_skips_what_the_content_layer_finds() -> None:
    """The history's fast path (``nothing_to_find``: no keyword, no gate needle, no archive,
    no PDF, not UTF-16/UTF-32) only ever skips buffers ``scan_buffer`` answers nothing for;
    and each encoding here does hold a key the content layer finds."""
    from keyscan.content import DEFAULT_OPTIONS, ContentOptions, scan_buffer
    from keyscan.detector import Detector
    from keyscan.rules import load_rules

    detector = Detector(load_rules())
    template = Location(path="", line=0, column=0, offset=0, source="git-blob", blob="b" * 40)
    skipped = 0
    for family in ("project", "legacy", "svcacct", "admin"):
        for name, data in _encodings(key(family)):
            for options in (DEFAULT_OPTIONS, ContentOptions(decode=False)):
                errors: list[Any] = []
                hits = scan_buffer(detector, data, dataclasses.replace(template), options,
                                   errors=errors)  # fmt: skip
                if options.decode and not name.startswith("broken"):
                    assert hits, name  # the sample is a real case
                if hits or errors:
                    assert not history.nothing_to_find(detector, data, options), name
    for clean in (b"", b"x = 1\n" * 1000, b"\0" * 5000, b"task-list sk- ok\n", bytes(range(256))):
        if history.nothing_to_find(detector, clean, DEFAULT_OPTIONS):
            skipped += 1
            assert scan_buffer(detector, clean, template, errors=[]) == []
    assert skipped >= 3  # the fast path does fire


def test_pool_lists_pack_order_without_an_object_per_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers' pack-order runs come from one ``bytes.split`` of the listing
    (``pack_order_runs``), not from ``batch_check`` building an ObjectRef per object while
    every worker waits: the runs cover every object once, in the listing's order, and the
    scan reports what the id-order path reports."""
    from keyscan.git import plumbing

    repo, _ = _history(tmp_path)
    git = plumbing.discover(str(repo.path))
    listing = git.run(
        "cat-file", "--batch-all-objects", "--unordered", "--batch-check=%(objectname)"
    ).stdout.decode().split()
    for n in (1, 2, 3, len(listing) + 5):
        runs = plumbing.pack_order_runs(git, n)
        assert [oid for run in runs for oid in run] == listing
        assert 1 <= len(runs) <= n and all(runs)
    monkeypatch.setattr(history, "PACK_ORDER", False)
    by_id = scan(repo.path, jobs=1)
    monkeypatch.setattr(history, "PACK_ORDER", True)
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(history, "PACKS_IN_PROCESS", False)  # git's pool, as the listing
    real = history.batch_check
    listed_all: list[bool] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        listed_all.append(bool(kwargs.get("all_objects")))
        return real(*args, **kwargs)

    monkeypatch.setattr(history, "batch_check", spy)
    packed = scan(repo.path, jobs=2)
    assert packed.stats["workers"] == 2
    assert not any(listed_all), "the pool listed every object through batch_check"
    assert _summary(packed) == _summary(by_id)


def test_pool_reads_its_first_run_while_the_listing_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With workers, this process starts reading (the floor's ``cat-file --batch-all-objects
    --batch --unordered``) before the pack-order listing is done, stops at the end of the
    first run and hands the later runs to workers: no core waits for the listing, and the
    report equals the id-order path's (git reading the packs)."""
    import threading
    import time

    monkeypatch.setattr(history, "PACKS_IN_PROCESS", False)

    repo, _ = _history(tmp_path)
    monkeypatch.setattr(history, "PACK_ORDER", False)
    by_id = scan(repo.path, jobs=1)
    monkeypatch.setattr(history, "PACK_ORDER", True)
    monkeypatch.setattr(history, "PARALLEL_MIN_BYTES", 0)
    parent = os.getpid()
    scanned, listed = threading.Event(), threading.Event()
    order: list[str] = []
    calls: list[str] = []
    real_runs, real_scan = history.pack_order_runs, history.scan_object

    def runs(*args: Any) -> list[list[str]]:
        scanned.wait(10)  # new code: the parent is already reading
        order.append("listed")
        out = real_runs(*args)
        listed.set()
        return out

    def scan_object(detector: Any, oid: str, *rest: Any) -> None:
        if os.getpid() == parent:
            calls.append(oid)
            if not scanned.is_set():
                order.append("read")
                scanned.set()
                listed.wait(10)
                time.sleep(0.3)  # the listing thread hands the later runs over
        real_scan(detector, oid, *rest)

    monkeypatch.setattr(history, "pack_order_runs", runs)
    monkeypatch.setattr(history, "scan_object", scan_object)
    packed = scan(repo.path, jobs=2)
    assert order[:2] == ["read", "listed"]
    total = packed.stats["objects"]
    assert 0 < len(calls) < total  # the parent read only its run (and rescans)
    assert _summary(packed) == _summary(by_id)
