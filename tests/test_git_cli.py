"""keyscan git on the command line: --staged, ranges, URLs, exit codes, errors, safety."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests.git_helpers import ENV_TEMPLATE, Repo, cli, cli_json, new_key

# A home of its own for every test (no user git config, caches or state).
pytestmark = pytest.mark.usefixtures("isolated_home")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "repo")


def test_exit_codes_and_redaction(repo: Repo) -> None:
    secret = new_key()
    repo.commit("clean", ("README.md", "nothing here\n"))
    code, out, err = cli("git", "--no-config", cwd=repo.path)
    assert code == 0, err
    assert "no OpenAI keys found" in out
    repo.commit("leak", ("app.py", f"x = 1\nkey = '{secret}'\n"))
    code, out, err = cli("git", "--no-config", cwd=repo.path)
    assert code == 1
    assert secret not in out + err
    assert secret[:8] in out and secret[-4:] in out
    assert "app.py:2:8" in out
    code, doc, err = cli_json("git", str(repo.path))
    assert code == 1 and secret not in str(doc) + err
    loc = doc["findings"][0]["locations"][0]
    assert loc["source"] == "git-blob" and loc["commit"]["subject"] == "leak"
    assert doc["findings"][0]["extra"]["git"]["present_at_head"] is True
    code, out, _ = cli("git", "--no-config", "--show-secrets", str(repo.path))
    assert code == 1 and secret in out


def test_all_locations_lists_other_carriers(repo: Repo) -> None:
    secret = new_key()
    body = f"k = '{secret}'\n"
    repo.commit("one", ("a.py", body))
    repo.commit("two", ("b.py", body))
    code, doc, _ = cli_json("git", "--all-locations", str(repo.path))
    assert code == 1
    git = doc["findings"][0]["extra"]["git"]
    assert git["other_locations_count"] == 1
    assert git["other_locations"][0]["path"] == "b.py"
    code, doc, _ = cli_json("git", str(repo.path))
    assert "other_locations" not in doc["findings"][0]["extra"]["git"]
    code, out, _ = cli("git", "--no-config", str(repo.path))
    assert "git: 2 commit(s); reachable from refs/heads/main; still at HEAD in a.py, b.py" in out
    assert "also in 1 other commit/path(s)" in out
    code, out, _ = cli("git", "--no-config", "--all-locations", str(repo.path))
    assert "also: b.py  @ " in out


def test_range_and_since_on_the_command_line(repo: Repo) -> None:
    secret = new_key()
    base = repo.commit("base", ("README.md", "hello\n"))
    repo.commit("leak", ("k.txt", f"{secret}\n"))
    repo.commit("fix", ("README.md", "hello again\n"))
    assert cli("git", "--no-config", "--range", f"{base}..HEAD", cwd=repo.path)[0] == 1
    assert cli("git", "--no-config", "--range", "HEAD~1..HEAD", cwd=repo.path)[0] == 0
    assert cli("git", "--no-config", "--since", "HEAD~1", cwd=repo.path)[0] == 0
    assert cli("git", "--no-config", "--since", base, cwd=repo.path)[0] == 1
    assert cli("git", "--no-config", "--branch", "main", cwd=repo.path)[0] == 1
    code, _, err = cli("git", "--no-config", "--range", "nosuch..HEAD", cwd=repo.path)
    assert code == 2
    assert "keyscan: error: nosuch..HEAD: unknown revision" in err


def test_staged_scans_the_index_not_the_work_tree(repo: Repo) -> None:
    secret, other = new_key(), new_key()
    # No commits yet: --staged still works.
    repo.write("cfg.py", f"a = 1\nb = 2\nkey = '{secret}'\n")
    repo.git("add", "cfg.py")
    repo.write("cfg.py", f"key = '{secret}'\n")  # work tree differs: line 1, not staged
    repo.write("untracked.py", f"k = '{other}'\n")
    code, doc, err = cli_json("git", "--staged", cwd=repo.path)
    assert code == 1, err
    assert doc["scan"]["kind"] == "staged"
    [finding] = doc["findings"]
    loc = finding["locations"][0]
    assert (loc["path"], loc["line"], loc["column"], loc["source"]) == ("cfg.py", 3, 8, "staged")
    repo.git("commit", "-q", "-m", "first")
    # Unchanged since HEAD: the next commit adds nothing new.
    assert cli("git", "--staged", "--no-config", cwd=repo.path)[0] == 0
    repo.git("add", "untracked.py")
    code, doc, _ = cli_json("git", "--staged", cwd=repo.path)
    assert code == 1
    assert [f["locations"][0]["path"] for f in doc["findings"]] == ["untracked.py"]
    # Removed from the index: nothing to commit with a key.
    repo.git("rm", "-q", "--cached", "untracked.py")
    assert cli("git", "--staged", "--no-config", cwd=repo.path)[0] == 0


def test_staged_does_not_import_gitpython(repo: Repo) -> None:
    repo.write("a.txt", "hello\n")
    repo.git("add", "a.txt")
    code = (
        "import sys\n"
        "from keyscan.cli import main\n"
        "try:\n"
        "    main(['git', '--staged', '--no-config', '--quiet'])\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code)\n"
        "print('gitpython' if 'git' in sys.modules else 'no-gitpython')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=repo.path, capture_output=True, text=True
    )
    assert "exit 0" in proc.stdout, proc.stderr
    assert "no-gitpython" in proc.stdout


def test_staged_from_a_real_pre_commit_hook_with_a_partial_commit(repo: Repo) -> None:
    """``git commit PATH`` gives hooks a temporary index (GIT_INDEX_FILE): it is honoured."""
    secret = new_key()
    repo.commit("base", ("README.md", "hello\n"), ("b.txt", "b\n"))
    hook = repo.path / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\nexec {sys.executable} -m keyscan git --staged --no-config\n")
    hook.chmod(0o755)
    repo.write("a.txt", f"{secret}\n")
    repo.git("add", "a.txt")
    repo.write("b.txt", "changed\n")
    # Partial commit of b.txt only: its temporary index has no key -> allowed.
    proc = subprocess.run(
        ["git", "commit", "-q", "-m", "only b", "b.txt"],
        cwd=repo.path, env=repo.env(), capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Now the staged a.txt would be committed: blocked.
    proc = subprocess.run(
        ["git", "commit", "-q", "-m", "add a"], cwd=repo.path, env=repo.env(),
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr  # git shows hook output on stderr
    assert "a.txt:1:1" in output and secret not in output


def test_not_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    code, _, err = cli("git", "--no-config", str(plain))
    assert code == 2
    assert f"keyscan: error: {plain}: not a git repository" in err
    code, _, err = cli("git", "--no-config", str(tmp_path / "missing"))
    assert code == 2 and "no such file or directory" in err


def test_corrupt_object_names_it_and_scans_the_rest(repo: Repo) -> None:
    secret = new_key()
    repo.commit("one", ("bad.txt", "bad\n"), ("key.txt", f"{secret}\n"))
    bad = repo.git("rev-parse", "HEAD:bad.txt")
    path = repo.path / ".git" / "objects" / bad[:2] / bad[2:]
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    data = zlib.compress(b"blob 4\0bad\n")
    path.write_bytes(data[:8] + b"\xff\xff\xff" + data[11:])
    code, out, err = cli("git", "--no-config", cwd=repo.path)
    assert code == 2
    assert f"keyscan: error: {bad}: corrupt or missing object" in err
    assert "key.txt:1:1" in out  # the rest of the scan is done and reported
    assert "scan incomplete" in out


def test_empty_repository_exits_clean(tmp_path: Path) -> None:
    empty = Repo(tmp_path / "empty")
    code, _, err = cli("git", "--no-config", str(empty.path))
    assert code == 0, err
    code, _, err = cli("git", "--staged", "--no-config", cwd=empty.path)
    assert code == 0, err


def test_file_url_is_cloned_and_removed(tmp_path: Path, repo: Repo) -> None:
    secret = new_key()
    repo.commit("base", ("README.md", "hello\n"))
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit("leak", ("k.txt", f"{secret}\n"))
    repo.git("checkout", "-q", "main")
    repo.git("notes", "add", "-m", "a note")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = dict(os.environ, **ENV_TEMPLATE, TMPDIR=str(tmpdir))
    proc = subprocess.run(
        [sys.executable, "-m", "keyscan", "git", "--no-config", "--format", "json",
         f"file://{repo.path}"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert '"path": "k.txt"' in proc.stdout
    assert "refs/heads/feature" in proc.stdout  # every branch, not only the default one
    assert list(tmpdir.iterdir()) == []  # the clone is gone
    code, _, err = cli("git", "--no-config", f"file://{tmp_path}/nope")
    assert code == 2 and "cannot clone" in err
    # Credentials in a URL never reach the report.
    code, out, err = cli("git", "--no-config", "https://user:s3cr3t-t0ken@127.0.0.1:9/x.git")
    assert code == 2 and "s3cr3t-t0ken" not in out + err and "***@127.0.0.1:9" in err


def test_repository_code_never_runs(tmp_path: Path, repo: Repo) -> None:
    """A planted fsmonitor, hooks, gpg program and textconv driver must not run."""
    secret = new_key()
    marker = tmp_path / "ran"
    script = tmp_path / "evil.sh"
    script.write_text(f'#!/bin/sh\necho "$0 $*" >> {marker}\nexit 0\n')
    script.chmod(0o755)
    repo.commit("base", ("a.txt", f"{secret}\n"), (".gitattributes", "*.txt diff=evil\n"))
    # A signed-looking commit, so that log.showSignature would call gpg.program.
    tree = repo.git("rev-parse", "HEAD^{tree}")
    parent = repo.git("rev-parse", "HEAD")
    raw = (
        f"tree {tree}\nparent {parent}\nauthor A <a@x> 1700000000 +0000\n"
        f"committer A <a@x> 1700000000 +0000\ngpgsig -----BEGIN PGP SIGNATURE-----\n \n"
        f" abc\n -----END PGP SIGNATURE-----\n\nsigned\n"
    )
    signed = repo.git("hash-object", "-t", "commit", "-w", "--stdin", input=raw.encode())
    repo.git("update-ref", "refs/heads/signed", signed)
    for key, value in [
        ("core.fsmonitor", str(script)),
        ("core.hooksPath", str(tmp_path / "hooks")),
        ("diff.evil.textconv", str(script)),
        ("diff.external", str(script)),
        ("gpg.program", str(script)),
        ("log.showSignature", "true"),
        ("core.pager", str(script)),
    ]:
        repo.git("config", key, value)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    for name in ("pre-commit", "post-checkout", "reference-transaction", "post-index-change",
                 "pre-auto-gc", "post-rewrite"):  # fmt: skip
        (hooks / name).symlink_to(script)
    repo.write("b.txt", f"{secret}\n")
    repo.git("-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "add", "b.txt")
    assert not marker.exists()
    assert cli("git", "--no-config", cwd=repo.path)[0] == 1
    assert cli("git", "--no-config", "--staged", cwd=repo.path)[0] == 1
    assert cli("git", "--no-config", "--all-objects", cwd=repo.path)[0] == 1
    assert cli("git", "--no-config", f"file://{repo.path}")[0] == 1
    assert not marker.exists(), marker.read_text()
    # The plants are real: plain git runs them.
    subprocess.run(["git", "status"], cwd=repo.path, env=repo.env(), capture_output=True)
    subprocess.run(["git", "commit", "-q", "-m", "x"], cwd=repo.path, env=repo.env(),
                   capture_output=True)  # fmt: skip
    assert marker.exists()
    text = marker.read_text()
    assert "hooks/pre-commit" in text  # the hook
    assert f"{script} 2" in text  # the fsmonitor (protocol version 2)


def test_inline_allow_comment_in_history(repo: Repo) -> None:
    secret = new_key()
    repo.commit("doc", ("docs/example.py", f"KEY = '{secret}'  # keyscan:allow\n"))
    code, out, err = cli("git", "--no-config", cwd=repo.path)
    assert code == 0, out + err
    assert "1 suppressed" in out


def test_staged_needs_a_work_tree(tmp_path: Path) -> None:
    bare = Repo(tmp_path / "bare.git", bare=True)
    code, _, err = cli("git", "--no-config", "--staged", str(bare.path))
    assert code == 2 and "--staged needs a work tree" in err


def test_stats_for_other_engineers(repo: Repo) -> None:
    secret = new_key()
    repo.commit("one", ("a.txt", f"{secret}\n"))
    repo.git("tag", "v1")
    code, doc, _ = cli_json("git", str(repo.path))
    stats = doc["scan"]["stats"]
    assert code == 1
    assert stats["commits"] == 1 and stats["blobs"] == 1 and stats["refs"] == 2
    assert stats["heads"] == [repo.git("rev-parse", "HEAD")]
    assert stats["shallow"] is False and stats["unreachable"] == 0
    assert stats["bytes"] > 0 and stats["workers"] == 1


def test_corrupt_packed_object_git_dies_on_it_and_reading_goes_on(repo: Repo) -> None:
    """``cat-file`` dies on a corrupt packed object: a new one takes over after it."""
    secret = new_key()
    noise = os.urandom(3000)
    repo.commit("c", ("a.bin", os.urandom(3000)), ("b.bin", noise), ("k.txt", f"{secret}\n"))
    repo.git("repack", "-q", "-a", "-d")
    bad = repo.git("rev-parse", "HEAD:b.bin")
    [pack] = (repo.path / ".git" / "objects" / "pack").glob("*.pack")
    idx = pack.with_suffix(".idx")
    line = next(ln for ln in repo.git("verify-pack", "-v", str(idx)).splitlines()
                if ln.startswith(bad))  # fmt: skip
    offset = int(line.split()[4])
    pack.chmod(stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(pack.read_bytes())
    for i in range(offset + 10, offset + 40):
        data[i] ^= 0xFF
    pack.write_bytes(bytes(data))
    code, out, err = cli("git", "--no-config", cwd=repo.path)
    assert code == 2
    assert f"keyscan: error: {bad}: " in err and "corrupt" in err
    assert "k.txt:1:1" in out
