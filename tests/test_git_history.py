"""keyscan git over history: each hard case from the issue, in a throwaway repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.git_helpers import Repo, finding_for, new_key, scan

# A home of its own for every test (no user git config, caches or state).
pytestmark = pytest.mark.usefixtures("isolated_home")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "repo")


@pytest.fixture(params=["find-object", "full-log"])
def provenance(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Provenance with git filtering the log (few blobs), and parsing the whole log (many)."""
    import keyscan.git.provenance as gitsrc

    if request.param == "full-log":
        monkeypatch.setattr(gitsrc, "FIND_OBJECT_MAX", 0)


def test_key_added_then_deleted(repo: Repo) -> None:
    secret = new_key()
    repo.commit("base", ("README.md", "hello\n"))
    added = repo.commit("add config", ("app/config.py", f'x = 1\nKEY = "{secret}"\n'))
    repo.rm("app/config.py")
    repo.commit("remove config")
    result = scan(repo.path)
    assert not result.errors
    f = finding_for(result, secret)
    assert len(f.locations) == 1
    loc = f.locations[0]
    assert loc.source == "git-blob"
    assert loc.path == "app/config.py"
    assert (loc.line, loc.column) == (2, 8)
    assert loc.commit is not None and loc.commit.sha == added
    assert loc.commit.subject == "add config"
    assert loc.commit.author_name == "Alice Author"
    assert loc.commit.author_email == "alice@example.com"
    assert loc.commit.date.startswith("2023-11-14")
    assert loc.blob == repo.git("rev-parse", f"{added}:app/config.py")
    git = f.git
    assert git is not None
    assert git.present_at_head is False
    assert git.refs == ["refs/heads/main"]
    assert git.first_commit == added
    assert git.unreachable is False


def test_present_at_head(repo: Repo) -> None:
    secret = new_key("svcacct")
    repo.commit("add", ("a.env", f"OPENAI_API_KEY={secret}\n"))
    result = scan(repo.path)
    f = finding_for(result, secret)
    assert f.git.present_at_head is True
    assert f.git.head_paths == ["a.env"]
    assert f.family == "service_account"


def test_deleted_branch_reachable_from_tag(repo: Repo) -> None:
    secret = new_key()
    repo.commit("base", ("README.md", "hello\n"))
    repo.git("checkout", "-q", "-b", "feature")
    on_branch = repo.commit("feature work", ("feature.py", f"k = '{secret}'\n"))
    repo.git("tag", "-a", "v-feature", "-m", "tagged feature")
    repo.git("checkout", "-q", "main")
    repo.git("branch", "-q", "-D", "feature")
    result = scan(repo.path)
    f = finding_for(result, secret)
    assert f.locations[0].commit is not None and f.locations[0].commit.sha == on_branch
    assert f.git.refs == ["refs/tags/v-feature"]
    assert f.git.present_at_head is False


def test_key_only_in_merge_resolution(repo: Repo, provenance: None) -> None:
    secret = new_key()
    repo.commit("base", ("conf.py", "a = 1\nb = 2\nc = 3\n"))
    repo.git("checkout", "-q", "-b", "side")
    repo.commit("side", ("conf.py", "a = 1\nb = 'side'\nc = 3\n"))
    repo.git("checkout", "-q", "main")
    repo.commit("main", ("conf.py", "a = 1\nb = 'main'\nc = 3\n"))
    repo.git("merge", "-q", "side", "-m", "merge side", check=False)  # conflicts
    repo.write("conf.py", f"a = 1\nb = '{secret}'\nc = 3\n")
    repo.git("add", "conf.py")
    repo.tick += 60
    repo.git("commit", "-q", "--no-edit")
    merge = repo.git("rev-parse", "HEAD")
    assert len(repo.git("rev-list", "--parents", "-n1", "HEAD").split()) == 3
    result = scan(repo.path)
    f = finding_for(result, secret)
    loc = f.locations[0]
    assert loc.commit is not None and loc.commit.sha == merge
    assert loc.path == "conf.py" and loc.line == 2


def test_key_in_commit_message(repo: Repo) -> None:
    secret = new_key("admin")
    sha = repo.commit(f"rotate key\n\nold one was {secret} oops")
    result = scan(repo.path)
    f = finding_for(result, secret)
    loc = f.locations[0]
    assert loc.source == "git-message"
    assert loc.commit is not None and loc.commit.sha == sha
    assert loc.commit.subject == "rotate key"
    assert (loc.line, loc.column) == (3, 13)
    assert f.git.refs == ["refs/heads/main"]


def test_key_in_renamed_file(repo: Repo, provenance: None) -> None:
    secret = new_key()
    first = repo.commit("add", ("old/name.txt", f"{secret}\n"))
    (repo.path / "new").mkdir()
    repo.git("mv", "old/name.txt", "new/name.txt")
    repo.tick += 60
    repo.git("commit", "-q", "-m", "rename")
    renamed = repo.git("rev-parse", "HEAD")
    result = scan(repo.path, all_locations=True)
    f = finding_for(result, secret)
    assert len(f.locations) == 1  # one blob, scanned once
    assert f.locations[0].path == "old/name.txt"
    assert f.locations[0].commit is not None and f.locations[0].commit.sha == first
    git = f.git
    assert git is not None
    assert git.other_locations_count == 1
    assert git.other_locations[0].commit == renamed
    assert git.other_locations[0].path == "new/name.txt"
    assert git.head_paths == ["new/name.txt"]
    assert result.stats["blobs"] == 1


def test_same_key_in_many_commits(repo: Repo, provenance: None) -> None:
    secret = new_key()
    shas = []
    for i in range(6):
        shas.append(repo.commit(f"v{i}", ("settings.py", f"VERSION = {i}\nKEY = '{secret}'\n")))
    result = scan(repo.path)
    assert len(result.findings) == 1
    f = result.findings[0]
    assert len(f.locations) == 6  # six distinct blobs hold it
    assert {loc.commit.sha for loc in f.locations if loc.commit} == set(shas)
    assert {loc.line for loc in f.locations} == {2}
    assert f.git.commits == 6
    assert f.git.first_commit == shas[0]


def test_orphan_branch(repo: Repo) -> None:
    secret = new_key()
    repo.commit("base", ("README.md", "hello\n"))
    repo.git("checkout", "-q", "--orphan", "lonely")
    repo.git("rm", "-q", "-rf", ".")
    orphan = repo.commit("orphan", ("secret.txt", f"{secret}\n"))
    repo.git("checkout", "-q", "main")
    result = scan(repo.path)
    f = finding_for(result, secret)
    assert f.locations[0].commit is not None and f.locations[0].commit.sha == orphan
    assert f.git.refs == ["refs/heads/lonely"]


def test_key_in_stash(repo: Repo) -> None:
    secret = new_key()
    repo.commit("base", ("app.py", "print(1)\n"))
    repo.write("app.py", f"print(1)\nkey = '{secret}'\n")
    repo.git("stash", "push", "-q")
    assert repo.git("stash", "list")
    result = scan(repo.path)
    f = finding_for(result, secret)
    assert f.locations[0].path == "app.py"
    assert "refs/stash" in f.git.refs


def test_unreachable_blob_only_with_all_objects(repo: Repo) -> None:
    secret = new_key()
    repo.commit("base", ("README.md", "hello\n"))
    blob = repo.git("hash-object", "-w", "--stdin", input=f"dangling {secret}\n".encode())
    assert not scan(repo.path).findings
    result = scan(repo.path, all_objects=True)
    f = finding_for(result, secret)
    assert f.locations[0].blob == blob
    assert f.locations[0].extra["unreachable"] is True
    assert f.git.unreachable is True
    assert result.stats["unreachable"] >= 1


def test_dropped_stash_found_with_all_objects(repo: Repo, provenance: None) -> None:
    secret = new_key()
    repo.commit("base", ("app.py", "print(1)\n"))
    repo.write("app.py", f"key = '{secret}'\n")
    repo.git("stash", "push", "-q")
    stash = repo.git("rev-parse", "stash@{0}")
    repo.git("stash", "drop", "-q")
    assert not scan(repo.path).findings
    result = scan(repo.path, all_objects=True)
    f = finding_for(result, secret)
    loc = f.locations[0]
    assert loc.extra["unreachable"] is True
    assert loc.path == "app.py"  # attributed through the dropped stash's commits
    assert loc.commit is not None
    assert loc.commit.sha in repo.git("rev-list", "--parents", "-n1", stash).split()


def test_non_utf8_and_newline_paths(repo: Repo) -> None:
    k1, k2 = new_key(), new_key("svcacct")
    repo.commit("odd names", (b"caf\xe9/latin1.txt", f"{k1}\n"), ("two\nlines.txt", f"x\n{k2}\n"))
    result = scan(repo.path)
    assert not result.errors
    f1 = finding_for(result, k1)
    assert f1.locations[0].path == b"caf\xe9/latin1.txt".decode("utf-8", "surrogateescape")
    f2 = finding_for(result, k2)
    assert f2.locations[0].path == "two\nlines.txt"
    assert f2.locations[0].line == 2


def test_each_blob_scanned_once(repo: Repo, provenance: None) -> None:
    secret = new_key()
    body = f"shared = '{secret}'\n"
    # The same content at many paths, in many commits and on two branches: one blob.
    repo.commit("one", ("a.txt", body), ("b.txt", body))
    repo.commit("two", ("c/d.txt", body))
    repo.git("checkout", "-q", "-b", "other")
    repo.commit("three", ("e.txt", body), ("README", "readme\n"))
    repo.git("checkout", "-q", "main")
    blobs = {
        line.split()[2]
        for rev in ("main", "other")
        for line in repo.git("ls-tree", "-r", rev).splitlines()
    }
    result = scan(repo.path, all_locations=True)
    assert result.stats["blobs"] == len(blobs) == 2
    assert result.stats["commits"] == 3
    f = finding_for(result, secret)
    assert len(f.locations) == 1
    assert f.git.other_locations_count == 3  # b.txt, c/d.txt, e.txt
    paths = {o.path for o in f.git.other_locations} | {f.locations[0].path}
    assert paths == {"a.txt", "b.txt", "c/d.txt", "e.txt"}


def test_notes_are_scanned(repo: Repo) -> None:
    secret = new_key()
    repo.commit("base", ("README.md", "hello\n"))
    repo.git("notes", "add", "-m", f"note {secret}")
    f = finding_for(scan(repo.path), secret)
    assert "refs/notes/commits" in f.git.refs


def test_annotated_tag_message(repo: Repo) -> None:
    secret = new_key()
    repo.commit("base", ("README.md", "hello\n"))
    repo.git("tag", "-a", "v1", "-m", f"release\n\n{secret}")
    f = finding_for(scan(repo.path), secret)
    assert f.locations[0].source == "git-message"
    assert f.locations[0].extra["tag"] == "v1"


def test_since_range_branch_and_exclude_commits(repo: Repo) -> None:
    old, new, side = new_key(), new_key(), new_key()
    c1 = repo.commit("old", ("old.txt", f"{old}\n"))
    c2 = repo.commit("new", ("new.txt", f"{new}\n"))
    repo.git("checkout", "-q", "-b", "side", c1)
    repo.commit("side", ("side.txt", f"{side}\n"))
    repo.git("checkout", "-q", "main")
    everything = scan(repo.path)
    assert {f.secret for f in everything.findings} == {old, new, side}
    assert {f.secret for f in scan(repo.path, since=c1).findings} == {new, side}
    assert {f.secret for f in scan(repo.path, range=f"{c1}..{c2}").findings} == {new}
    assert {f.secret for f in scan(repo.path, range=f"{c1}..main").findings} == {new}
    assert {f.secret for f in scan(repo.path, branch="side").findings} == {old, side}
    null = "0" * 40  # what a pre-push hook gets as the remote side of a new branch
    assert {f.secret for f in scan(repo.path, range=f"{null}..{c2}").findings} == {old, new}
    r = scan(repo.path, branch="main", since=c1)
    assert {f.secret for f in r.findings} == {new}
    # Incremental re-scan: nothing new since the heads of the first scan.
    again = scan(repo.path, exclude_commits=everything.stats["heads"])
    assert not again.findings and again.stats["commits"] == 0
    repo.commit("newer", ("newest.txt", f"again: {old}\n"))
    inc = scan(repo.path, exclude_commits=everything.stats["heads"])
    assert {f.secret for f in inc.findings} == {old}
    assert inc.stats["commits"] == 1
    gone = "1234567" * 5 + "12345"  # a head of an earlier scan that no longer exists
    tolerant = scan(repo.path, exclude_commits=[*everything.stats["heads"], gone])
    assert not tolerant.errors and tolerant.stats["commits"] == 1
    assert any(gone in w for w in tolerant.warnings)


def test_unknown_revision_is_an_error(repo: Repo) -> None:
    repo.commit("base", ("README.md", "hello\n"))
    result = scan(repo.path, range="nope..main")
    assert result.errors and "nope..main" in result.errors[0].where
    result = scan(repo.path, since="--output=/tmp/x")
    assert result.errors and "not a valid revision" in result.errors[0].message


def test_empty_repository_and_no_commits(tmp_path: Path) -> None:
    empty = Repo(tmp_path / "empty")
    result = scan(empty.path)
    assert not result.errors and not result.findings
    assert result.stats["commits"] == 0
    bare = Repo(tmp_path / "bare.git", bare=True)
    result = scan(bare.path)
    assert not result.errors and not result.findings


def test_bare_repository(tmp_path: Path, repo: Repo) -> None:
    secret = new_key()
    repo.commit("add", ("k.txt", f"{secret}\n"))
    bare = tmp_path / "copy.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(bare)], check=True)
    result = scan(bare)
    assert finding_for(result, secret).locations[0].path == "k.txt"
    assert result.stats["bare"] is True


def test_shallow_clone_warns(tmp_path: Path, repo: Repo) -> None:
    old, new = new_key(), new_key()
    repo.commit("old", ("old.txt", f"{old}\n"))
    repo.rm("old.txt")
    repo.commit("rm")
    repo.commit("new", ("new.txt", f"{new}\n"))
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{repo.path}", str(shallow)], check=True
    )
    result = scan(shallow)
    assert not result.errors
    assert {f.secret for f in result.findings} == {new}
    assert result.stats["shallow"] is True
    assert any("shallow" in w and "partial" in w for w in result.warnings)


def test_submodule_not_entered(tmp_path: Path, repo: Repo) -> None:
    inner_key = new_key()
    sub = Repo(tmp_path / "sub")
    sub.commit("sub", ("inner.txt", f"{inner_key}\n"))
    repo.commit("base", ("README.md", "hello\n"))
    repo.git(
        "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub.path), "vendor/sub"
    )
    repo.tick += 60
    repo.git("commit", "-q", "-m", "add submodule")
    result = scan(repo.path)
    assert not result.errors
    assert not result.findings  # the submodule's own history is not entered
    assert result.stats["submodules"] == 1
    assert any("submodule vendor/sub" in w and "not entered" in w for w in result.warnings)


def test_workers_find_the_same(tmp_path: Path, repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    import keyscan.git.history as gitsrc

    keys = [new_key() for _ in range(5)]
    for i, k in enumerate(keys):
        repo.commit(
            f"c{i}", (f"f{i}.txt", f"{'x' * 1000}\n{k}\n"), (f"pad{i}.bin", bytes(range(256)) * 40)
        )
    one = scan(repo.path, jobs=1)
    monkeypatch.setattr(gitsrc, "PARALLEL_MIN_BYTES", 0)
    # Loose objects: git reads them (the pack reader's pool reads packs: tests/test_packs.py).
    monkeypatch.setattr(gitsrc, "PACKS_IN_PROCESS", False)
    two = scan(repo.path, jobs=2)
    assert two.stats["workers"] == 2 and one.stats["workers"] == 1
    assert {f.secret for f in one.findings} == {f.secret for f in two.findings} == set(keys)
    assert one.stats["blobs"] == two.stats["blobs"]
    ranged = scan(repo.path, jobs=2, branch="main")  # enumerated first, then split
    assert ranged.stats["workers"] == 2
    assert {f.secret for f in ranged.findings} == set(keys)
    assert [(loc.path, loc.line) for f in one.findings for loc in f.locations] == [
        (loc.path, loc.line) for f in two.findings for loc in f.locations
    ]


def test_binary_blob_is_scanned(repo: Repo) -> None:
    secret = new_key()
    repo.commit("bin", ("blob.bin", b"\x00\x01\x02" * 100 + secret.encode() + b"\x00"))
    f = finding_for(scan(repo.path), secret)
    assert f.locations[0].binary is True
    assert f.locations[0].offset == 300


def test_exclude_applies_to_paths(repo: Repo) -> None:
    a, b = new_key(), new_key()
    repo.commit("two", ("vendor/x.txt", f"{a}\n"), ("src/y.txt", f"{b}\n"))
    result = scan(repo.path, excludes=["vendor"])
    assert {f.secret for f in result.findings} == {b}


def test_key_inside_a_zip_blob(repo: Repo) -> None:
    import io
    import zipfile

    secret = new_key()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("pkg/settings.py", f"x = 1\nKEY = '{secret}'\n")
    sha = repo.commit("vendor a zip", ("dist/bundle.zip", buf.getvalue()))
    f = finding_for(scan(repo.path), secret)
    loc = f.locations[0]
    assert loc.commit is not None and loc.commit.sha == sha
    assert loc.path == "dist/bundle.zip" and loc.member == ("pkg/settings.py",)
    assert loc.line == 2
    assert f.git.other_locations_count == 0


def test_blob_reachable_only_from_a_tag(repo: Repo) -> None:
    secret = new_key()
    repo.commit("base", ("README.md", "hello\n"))
    blob = repo.git("hash-object", "-w", "--stdin", input=f"k={secret}\n".encode())
    repo.git("tag", "-a", "keyblob", "-m", "a tag on a blob", blob)
    f = finding_for(scan(repo.path), secret)
    assert f.locations[0].blob == blob and f.locations[0].commit is None
    assert "no commit" in f.locations[0].path
    assert f.git.refs == ["refs/tags/keyblob"]
    assert f.git.unreachable is False


def _notebook(secret: str) -> str:
    import json

    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# demo\n"]},
        {
            "cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": ["import openai\n", f"openai.api_key = \"{secret}\"\n"],
        },
    ]  # fmt: skip
    doc = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(doc, indent=1) + "\n"


def test_notebook_in_history_is_located_by_cell(repo: Repo) -> None:
    secret = new_key()
    sha = repo.commit("notebook", ("nb/demo.ipynb", _notebook(secret)))
    repo.git("mv", "nb/demo.ipynb", "renamed.ipynb")
    repo.commit("rename")
    f = finding_for(scan(repo.path), secret)
    loc = f.locations[0]
    assert loc.path == "nb/demo.ipynb" and loc.commit is not None and loc.commit.sha == sha
    assert loc.extra.get("cell") == 2 and loc.extra.get("cell_line") == 2


def test_notebook_staged_is_located_by_cell(repo: Repo) -> None:
    secret = new_key()
    repo.write("demo.ipynb", _notebook(secret))
    repo.git("add", "demo.ipynb")
    f = finding_for(scan(repo.path, staged=True), secret)
    loc = f.locations[0]
    assert loc.path == "demo.ipynb" and loc.source == "staged"
    assert loc.extra.get("cell") == 2 and loc.extra.get("cell_line") == 2
