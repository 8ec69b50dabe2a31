"""The small jobs' click-free door (issue 16): ``keyscan hook pre-commit [FILE]...`` (the
pre-commit framework passes file names), ``keyscan hook pre-push [REPO]`` and ``keyscan git
[--range A..B] [REPO]`` run without importing click, and do exactly what the click commands do.

* The door's parameters are the ones click parses for the same command line.
* Every other command line (an option, --help, a missing or odd value, shell completion,
  pre-commit's range) is left to click: its help and usage errors are unchanged.
* Both doors give the same output and exit code (a key, nothing staged, a clean range).
* Neither job imports click (counted, never timed).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from keyscan.commands.quick import DEFAULTS, parse
from keyscan.keygen import key
from keyscan.models import ScanResult
from keyscan.redaction import redact
from tests.git_helpers import Repo

GIT_ARGS = ("repo", "all_objects", "since", "rev_range", "branch", "staged")


@pytest.mark.parametrize(
    "args",
    [
        ["git", "--range", "HEAD~20..HEAD", "."],
        ["git", "--range=HEAD~2..HEAD"],
        ["git", "some/repo", "--range", "main..topic"],
        ["git", "--range", "a...b", "/abs/repo"],
        ["git"],
        ["git", "."],
        ["git", "some/repo"],
        ["git", "https://example.com/some/repo.git"],
    ],
)
def test_git_parameters_are_the_ones_click_parses(args: list[str]) -> None:
    from keyscan.commands.git import git

    line = parse(args, {})
    assert line is not None and line.job == "git"
    parsed = git.make_context("git", args[1:]).params
    assert line.repo == parsed["repo"] and line.rev_range == parsed["rev_range"]
    assert not any(parsed[name] for name in GIT_ARGS[1:] if name != "rev_range")
    assert line.params == {k: v for k, v in parsed.items() if k not in GIT_ARGS}


@pytest.mark.parametrize(
    "files", [[], ["k.py"], ["a.py", "sub/b.py", "c d.txt", "x=y", "some/folder"]]
)
def test_pre_commit_parameters_are_the_ones_click_parses(files: list[str]) -> None:
    """Also with the file names the pre-commit framework passes (pass_filenames: true)."""
    from keyscan.commands.hook import pre_commit

    line = parse(["hook", "pre-commit", *files], {})
    assert line is not None and line.job == "pre-commit" and line.repo == "."
    parsed = pre_commit.make_context("pre-commit", list(files)).params
    assert parsed.pop("files") == line.files == tuple(files)
    assert parsed.pop("repo") == line.repo
    assert line.params == parsed == DEFAULTS


@pytest.mark.parametrize("args", [[], ["."], ["some/repo"]])
def test_pre_push_parameters_are_the_ones_click_parses(args: list[str]) -> None:
    from keyscan.commands.hook import pre_push

    line = parse(["hook", "pre-push", *args], {})
    assert line is not None and line.job == "pre-push"
    parsed = pre_push.make_context("pre-push", list(args)).params
    assert parsed.pop("repo") == line.repo
    assert line.params == parsed == DEFAULTS


@pytest.mark.parametrize(
    "args, env",
    [
        (["hook", "pre-commit", "--help"], {}),
        (["hook", "pre-commit", "-q"], {}),
        (["hook", "pre-commit", "k.py", "-q"], {}),
        (["hook", "pre-commit", "k.py", "--repo", "."], {}),
        (["hook", "pre-commit", "--", "k.py"], {}),
        (["hook", "pre-commit", "-"], {}),
        (["hook", "pre-commit", "k.py", ""], {}),
        (["hook", "pre-commit", "k.py"], {"PRE_COMMIT_FROM_REF": "a", "PRE_COMMIT_TO_REF": "b"}),
        (["hook", "pre-commit", "k.py"], {"_KEYSCAN_COMPLETE": "bash_complete"}),
        (["hook", "pre-push", "--help"], {}),
        (["hook", "pre-push", "-q"], {}),
        (["hook", "pre-push", "one", "two"], {}),
        (["hook", "pre-push", ""], {}),
        (["hook", "pre-push"], {"_KEYSCAN_COMPLETE": "bash_complete"}),
        (["hook", "pre-receive"], {}),
        (["hook", "agent"], {}),
        (["hook", "pre-commit"], {"PRE_COMMIT_FROM_REF": "a", "PRE_COMMIT_TO_REF": "b"}),
        (["hook", "pre-commit"], {"_KEYSCAN_COMPLETE": "bash_complete"}),
        (["git", ""], {}),
        (["git", "one", "two"], {}),
        (["git", "--all-objects"], {}),
        (["git", ".", "--branch", "main"], {}),
        (["git", "--range"], {}),
        (["git", "--range", ""], {}),
        (["git", "--range="], {}),
        (["git", "--range", "-x"], {}),
        (["git", "--range", "a..b", "--range", "c..d"], {}),
        (["git", "--range", "a..b", "--since", "c"], {}),
        (["git", "--range", "a..b", "one", "two"], {}),
        (["git", "--range", "a..b", "--"], {}),
        (["git", "--range", "a..b", "-"], {}),
        (["git", "--range", "a..b", "--help"], {}),
        (["git", "--range", "a..b", "-f", "json"], {}),
        (["git", "--range", "a..b", ""], {}),
        (["git", "--range", "a..b"], {"_KEYSCAN_COMPLETE": "zsh_complete"}),
        (["git"], {"_KEYSCAN_COMPLETE": "zsh_complete"}),
        (["--version"], {}),
        ([], {}),
    ],
)
def test_every_other_command_line_is_clicks(args: list[str], env: dict[str, str]) -> None:
    assert parse(args, env) is None


def _keyscan(
    args: list[str], cwd: Path, stdin: str | None = None, **env: str
) -> tuple[int, str, str]:
    full = {**os.environ, **env}
    proc = subprocess.run(
        [sys.executable, "-m", "keyscan", *args], cwd=cwd, env=full, capture_output=True,
        text=True, input=stdin,
    )  # fmt: skip
    # The scan's duration is the only thing two runs may print differently.
    seconds = re.compile(r"\d+\.\d+ s\b")
    return proc.returncode, seconds.sub("T s", proc.stdout), seconds.sub("T s", proc.stderr)


def test_usage_errors_still_come_from_click(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    code, out, err = _keyscan(["git", "--range"], repo.path)
    assert code == 2 and "Option '--range' requires an argument" in err
    code, out, err = _keyscan(["git", "--range", "a..b", "--since", "c"], repo.path)
    assert code == 2 and "--range cannot be combined with --branch or --since" in err
    code, out, err = _keyscan(["hook", "pre-commit", "--help"], repo.path)
    assert code == 0 and "Usage: keyscan hook pre-commit" in out


def test_both_doors_say_the_same(tmp_path: Path) -> None:
    """The door's run against click's run of the same job (``--repo .``/``-j 1``-free forms
    that only click reads: ``--min-confidence low`` is the default)."""
    repo = Repo(tmp_path / "repo")
    repo.commit("first", ("a.py", "x = 1\n"))
    secret = key("project")
    repo.write("k.py", f'K = "{secret}"\n')
    repo.git("add", "k.py")
    quick = _keyscan(["hook", "pre-commit"], repo.path)
    slow = _keyscan(["hook", "pre-commit", "--min-confidence", "low"], repo.path)
    assert quick[0] == 1 and redact(secret) in quick[1] + quick[2]
    assert secret not in quick[1] + quick[2]
    assert quick == slow
    repo.git("commit", "-q", "-m", "key")
    for i in range(3):
        repo.commit(f"c{i}", (f"f{i}.py", f"y = {i}\n"))
    for rev_range, expected in (("HEAD~4..HEAD", 1), ("HEAD~3..HEAD", 0)):
        quick = _keyscan(["git", "--range", rev_range], repo.path)
        slow = _keyscan(["git", "--range", rev_range, "--min-confidence", "low"], repo.path)
        assert quick[0] == expected, quick
        assert quick == slow
    for args in (["git"], ["git", "."]):  # the whole history
        quick = _keyscan(args, repo.path)
        slow = _keyscan([*args, "--min-confidence", "low"], repo.path)
        assert quick[0] == 1 and redact(secret) in quick[1], quick
        assert secret not in quick[1] + quick[2]
        assert quick == slow
    # Nothing staged: inside a commit (GIT_INDEX_FILE) exit 0 with a note; elsewhere exit 2.
    index = str(repo.path / ".git" / "index")
    for env, expected in (({"GIT_INDEX_FILE": index}, 0), ({}, 2)):
        quick = _keyscan(["hook", "pre-commit"], repo.path, **env)
        slow = _keyscan(["hook", "pre-commit", "--min-confidence", "low"], repo.path, **env)
        assert quick[0] == expected and "nothing to scan" in quick[2]
        assert quick == slow


def test_both_doors_say_the_same_for_the_files_pre_commit_passes(tmp_path: Path) -> None:
    """``keyscan hook pre-commit FILE...`` (the pre-commit framework's hook): the files, the
    staged content of a partly staged one, the older ``pre-commit REPO`` form, a clean file,
    a missing one: the door's run and click's say the same."""
    repo = Repo(tmp_path / "repo")
    repo.commit("first", ("a.py", "x = 1\n"), ("sub/b.py", "y = 2\n"))
    in_file, in_index = key("project"), key("svcacct")
    repo.write("k.py", f'K = "{in_file}"\n')
    repo.write("p.py", f'P = "{in_index}"\n')
    repo.git("add", "k.py", "p.py")
    repo.write("p.py", "P = None\n")  # the key is only in what would be committed
    repo.write("clean.py", "z = 3\n")
    cases: list[tuple[list[str], int]] = [
        (["k.py", "clean.py", "p.py"], 1),
        (["clean.py", "sub/b.py"], 0),
        (["p.py"], 1),
        (["."], 1),  # the older form: a repository, its staged content
        (["sub"], 1),
        (["missing.py"], 2),
    ]
    for files, expected in cases:
        quick = _keyscan(["hook", "pre-commit", *files], repo.path)
        slow = _keyscan(["hook", "pre-commit", *files, "--min-confidence", "low"], repo.path)
        assert quick[0] == expected, (files, quick)
        assert quick == slow, files
        assert in_file not in quick[1] + quick[2] and in_index not in quick[1] + quick[2]
    quick = _keyscan(["hook", "pre-commit", "k.py", "p.py"], repo.path)
    assert redact(in_file) in quick[1] and redact(in_index) in quick[1]


def test_both_doors_say_the_same_for_pre_push(tmp_path: Path) -> None:
    """``keyscan hook pre-push [REPO]`` with git's lines on stdin (a range, a new branch, a
    deletion, a line that is not the protocol) or pre-commit's range in the environment."""
    repo = Repo(tmp_path / "repo")
    base = repo.commit("first", ("a.py", "x = 1\n"))
    secret = key("project")
    repo.commit("key", ("k.py", f'K = "{secret}"\n'))
    head = repo.commit("clean", ("c.py", "y = 2\n"))
    zero = "0" * len(head)
    cases: list[tuple[list[str], str | None, dict[str, str], int]] = [
        ([], f"refs/heads/main {head} refs/heads/main {base}\n", {}, 1),
        ([], f"refs/heads/main {head} refs/heads/main {repo.git('rev-parse', 'HEAD~1')}\n",
         {}, 0),
        (["."], f"refs/heads/topic {head} refs/heads/topic {zero}\n", {}, 1),
        ([], f"refs/heads/gone {zero} refs/heads/gone {head}\n", {}, 0),
        ([], "not the protocol\n", {}, 2),
        ([], None, {"PRE_COMMIT_FROM_REF": base, "PRE_COMMIT_TO_REF": head}, 1),
    ]  # fmt: skip
    for args, stdin, env, expected in cases:
        quick = _keyscan(["hook", "pre-push", *args], repo.path, stdin, **env)
        slow = _keyscan(
            ["hook", "pre-push", *args, "--min-confidence", "low"], repo.path, stdin, **env
        )
        assert quick[0] == expected, (args, stdin, quick)
        assert quick == slow, (args, stdin)
        assert secret not in quick[1] + quick[2]


def _result_view(result: ScanResult) -> dict[str, Any]:
    view = {k: v for k, v in result.__dict__.items() if k != "duration"}
    view["findings"] = [(f.fingerprint, [(loc.path, loc.line, loc.blob) for loc in f.locations])
                        for f in result.findings]  # fmt: skip
    return view


def test_staged_entry_answers_as_scan_repository(tmp_path: Path) -> None:
    """The hook's staged entry (keyscan.git.staged.scan_staged_repository) and
    keyscan.git.history.scan_repository give the same result: a staged key, a path filter,
    nothing staged, an unborn branch, a subfolder, a bare repository, a URL, no repository."""
    from keyscan.git.history import scan_repository
    from keyscan.git.options import GitScanOptions
    from keyscan.git.staged import scan_staged_repository
    from keyscan.rules import load_rules

    rules = load_rules(cache_path=False)
    unborn = Repo(tmp_path / "unborn")
    unborn.write("k.py", f'K = "{key("project")}"\n')
    unborn.git("add", "k.py")
    repo = Repo(tmp_path / "repo")
    repo.commit("first", ("a.py", "x = 1\n"), ("sub/b.py", "y = 2\n"))
    repo.write("sub/k.py", f'K = "{key("svcacct")}"\n')
    repo.write("c.py", "z = 3\n")
    repo.git("add", "sub/k.py", "c.py")
    clean = Repo(tmp_path / "clean")
    clean.commit("first", ("a.py", "x = 1\n"))
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(clean.path), str(bare)], check=True)
    (tmp_path / "plain").mkdir()
    cases = [
        (str(repo.path), None), (str(repo.path), ["c.py"]), (str(repo.path / "sub"), None),
        (str(clean.path), None), (str(unborn.path), None), (str(bare), None),
        ("https://example.invalid/x.git", None), (str(tmp_path / "plain"), None),
        (str(tmp_path / "missing"), None),
    ]  # fmt: skip
    for target, paths in cases:
        options = GitScanOptions(staged=True, paths=paths)
        mine = scan_staged_repository(target, options, rules)
        theirs = scan_repository(target, options, rules)
        assert _result_view(mine) == _result_view(theirs), target
    assert len(scan_staged_repository(str(repo.path), GitScanOptions(staged=True), rules)
               .findings) == 1  # fmt: skip


# click: the door; hashlib: OpenSSL (keyscan.models.sha256 is CPython's own).
SMALL_JOBS_NEVER = {
    "click", "hashlib", "_hashlib", "yaml", "tempfile", "shutil", "httpx", "hyperscan", "sqlite3",
}  # fmt: skip


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 4096, 1 << 20])
def test_builtin_sha256_is_hashlibs(size: int) -> None:
    import hashlib

    from keyscan.models import fingerprint_of, sha256_hex

    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
    assert fingerprint_of(data) == hashlib.sha256(data).hexdigest()


def _imports(
    args: list[str], cwd: Path, tmp_path: Path, stdin: bytes = b""
) -> tuple[int, set[str]]:
    out = tmp_path / "modules.json"
    code = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
        "from keyscan.cli import main\n"
        f"main({args!r})\n"
    )
    env = {**os.environ, "KEYSCAN_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("KEYSCAN_RULE_CACHE", None)
    for _ in range(2):  # the first run builds the rule cache (PyYAML)
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, input=stdin
        )
    return proc.returncode, set(json.loads(out.read_text()))


def test_small_jobs_never_import_click(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    for i in range(3):
        repo.commit(f"c{i}", (f"f{i}.py", f"y = {i}\n"))
    repo.write("k.py", f'K = "{key("svcacct")}"\n')
    repo.git("add", "k.py")
    code, modules = _imports(["hook", "pre-commit"], repo.path, tmp_path)
    assert code == 1 and "keyscan.git.staged" in modules
    assert not SMALL_JOBS_NEVER & modules, sorted(SMALL_JOBS_NEVER & modules)
    code, modules = _imports(["git", "--range", "HEAD~2..HEAD", "."], repo.path, tmp_path)
    assert code == 0 and "keyscan.git.history" in modules
    assert not SMALL_JOBS_NEVER & modules, sorted(SMALL_JOBS_NEVER & modules)
    # The pre-commit framework's hook (file names) and the pre-push hook.
    code, modules = _imports(["hook", "pre-commit", "k.py", "f0.py"], repo.path, tmp_path)
    assert code == 1 and "keyscan.sources.files" in modules
    assert not SMALL_JOBS_NEVER & modules, sorted(SMALL_JOBS_NEVER & modules)
    base, head = repo.git("rev-parse", "HEAD~2", "HEAD").split()
    line = f"refs/heads/main {head} refs/heads/main {base}\n".encode()
    code, modules = _imports(["hook", "pre-push"], repo.path, tmp_path, line)
    assert code == 0 and "keyscan.git.history" in modules
    assert not SMALL_JOBS_NEVER & modules, sorted(SMALL_JOBS_NEVER & modules)
    # Any other command line still gets click.
    code, modules = _imports(["git", "--range", "HEAD~2..HEAD", "-q"], repo.path, tmp_path)
    assert code == 0 and "click" in modules
    # A whole history (a large job: it may import more, never click).
    repo.git("commit", "-q", "-m", "key")
    code, modules = _imports(["git", "."], repo.path, tmp_path)
    assert code == 1 and "keyscan.git.history" in modules and "click" not in modules


def _exit_probe(tmp_path: Path, call: str) -> str:
    """A script that runs keyscan's main and records how the process ended: through
    ``os._exit`` (the fast exit), an atexit function, or a SystemExit caught here."""
    log = tmp_path / "exit.log"
    return (
        "import atexit, os, sys\n"
        f"log = open({str(log)!r}, 'a')\n"
        "real = os._exit\n"
        "def fast(code):\n"
        "    log.write(f'os._exit {code}\\n'); log.flush(); real(code)\n"
        "os._exit = fast\n"
        "atexit.register(lambda: (log.write('atexit\\n'), log.flush()))\n"
        "from keyscan.cli import main\n"
        "try:\n"
        f"    {call}\n"
        "except SystemExit as exc:\n"
        "    log.write(f'SystemExit {exc.code}\\n'); log.flush(); raise\n"
    )


def test_the_program_exits_without_the_teardown_a_library_call_keeps_it(tmp_path: Path) -> None:
    """Run as a program (``main()``, as the ``keyscan`` script does), the small jobs end with
    ``os._exit`` once atexit functions ran and the report was flushed; ``main(argv)`` called
    from Python still raises SystemExit (a caller can catch it)."""
    repo = Repo(tmp_path / "repo")
    repo.commit("first", ("a.py", "x = 1\n"))
    secret = key("project")
    repo.write("k.py", f'K = "{secret}"\n')
    repo.git("add", "k.py")
    log = tmp_path / "exit.log"
    for call, expected in (
        ("sys.argv[1:] = ['hook', 'pre-commit']; main()", ["atexit", "os._exit 1"]),
        ("main(['hook', 'pre-commit'])", ["SystemExit 1", "atexit"]),
        # click's door: the interpreter's normal exit
        ("sys.argv[1:] = ['hook', 'pre-commit', '-q']; main()", ["SystemExit 1", "atexit"]),
    ):
        log.unlink(missing_ok=True)
        proc = subprocess.run(
            [sys.executable, "-c", _exit_probe(tmp_path, call)], cwd=repo.path,
            capture_output=True, text=True,
        )  # fmt: skip
        assert proc.returncode == 1, proc.stderr
        assert redact(secret) in proc.stdout and "keyscan: 1 secret in 1 l" in proc.stdout
        assert log.read_text().splitlines() == expected, call


def test_fast_exit_keeps_the_status_and_a_full_report(tmp_path: Path) -> None:
    """A clean range exits 0, an unknown range 2 with its one line; a long report arrives
    whole through a pipe."""
    repo = Repo(tmp_path / "repo")
    keys = [key("project") for _ in range(40)]
    repo.commit("keys", *((f"k{i}.py", f'K = "{k}"\n') for i, k in enumerate(keys)))
    repo.commit("clean", ("a.py", "x = 1\n"))
    code, out, err = _keyscan(["git", "--range", "HEAD~1..HEAD"], repo.path)
    assert code == 0 and "no OpenAI keys found" in out + err
    code, out, err = _keyscan(["git", "--range", "nowhere..HEAD"], repo.path)
    assert code == 2 and "unknown revision" in err
    code, out, err = _keyscan(["git", "--range", "HEAD~1"], repo.path)
    assert code == 1 and all(redact(k) in out for k in keys)


def test_range_lists_the_refs_while_it_resolves(tmp_path: Path) -> None:
    """The refs are listed beside the range's resolution (keyscan.git.scope._RefListing):
    the same refs, heads and exclusions as one after the other; no thread left behind."""
    import threading

    from keyscan.git.options import GitScanOptions
    from keyscan.git.plumbing import GitError, discover
    from keyscan.git.scope import list_refs, resolve_scope

    repo = Repo(tmp_path / "repo")
    first = repo.commit("first", ("a.py", "x = 1\n"))
    repo.commit("second", ("b.py", "x = 2\n"))
    repo.git("tag", "v1")
    repo.git("branch", "topic", first)
    git = discover(str(repo.path))
    scope = resolve_scope(git, GitScanOptions(range="HEAD~1..HEAD"))
    assert scope.refs == list_refs(git) and len(scope.refs) == 3
    assert scope.include == [repo.git("rev-parse", "HEAD")] and scope.exclude == [first]
    scope = resolve_scope(git, GitScanOptions(branch="topic"))
    assert scope.include == [first] and scope.refs == list_refs(git)
    with pytest.raises(GitError, match="unknown revision"):
        resolve_scope(git, GitScanOptions(range="nowhere..HEAD"))
    assert not [t for t in threading.enumerate() if t.name == "keyscan-refs"]


# The hook reads freshly staged loose objects itself (keyscan.git.staged.read_loose)


def _git_bytes(repo: Repo, *args: str) -> bytes:
    return subprocess.run(
        ["git", *args], cwd=repo.path, env=repo.env(), capture_output=True, check=True
    ).stdout


def _staged_oid(repo: Repo, name: str) -> str:
    return repo.git("rev-parse", f":{name}").strip()


@pytest.mark.parametrize("object_format", ["sha1", "sha256"])
def test_loose_objects_read_as_git_reads_them(tmp_path: Path, object_format: str) -> None:
    from keyscan.git.plumbing import discover
    from keyscan.git.staged import read_loose

    repo = Repo(tmp_path / "repo", init=False)
    repo.path.mkdir(parents=True)
    proc = subprocess.run(["git", "init", "-q", f"--object-format={object_format}", "."],
                          cwd=repo.path, capture_output=True)  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"this git cannot make {object_format} repositories")
    contents: dict[str, bytes] = {
        "empty.txt": b"",
        "k.py": f'K = "{key("project")}"\n'.encode(),
        "bin.dat": bytes(range(256)) * 64 + b"\0\0\xff",
        "big.txt": b"line of text\n" * 100_000,
        "nul-in-name-only.txt": b"x",
    }
    for name, data in contents.items():
        (repo.path / name).write_bytes(data)
    repo.git("add", "-A")
    git = discover(str(repo.path))
    for name, data in contents.items():
        oid = _staged_oid(repo, name)
        assert len(oid) == (64 if object_format == "sha256" else 40)
        assert read_loose(git.git_dir, oid) == _git_bytes(repo, "cat-file", "blob", oid) == data
    tree = repo.git("write-tree").strip()
    assert read_loose(git.git_dir, tree) is None  # not a blob: git's business
    assert read_loose(git.git_dir, "0" * len(tree)) is None  # no such object
    assert read_loose(git.git_dir, "../" + tree[3:]) is None  # not an id


def _loose_path(repo: Repo, oid: str) -> Path:
    return repo.path / ".git" / "objects" / oid[:2] / oid[2:]


def _forge(repo: Repo, oid: str, raw: bytes) -> None:
    """Replace the loose object file of ``oid`` with the zlib stream of ``raw``."""
    import zlib

    path = _loose_path(repo, oid)
    path.chmod(0o644)
    path.write_bytes(zlib.compress(raw))


@pytest.mark.parametrize(
    "damage",
    ["other content", "size too small", "size too large", "trailing data", "not zlib", "tree",
     "bomb", "fifo", "symlink file", "symlink folder", "packed"],
)  # fmt: skip
def test_what_cannot_be_read_safely_is_left_to_git(tmp_path: Path, damage: str) -> None:
    """Each case: read_loose says None at once (a FIFO never blocks it, a bomb is not
    inflated) and git reads the object as it always did; where git can read it (a symlink,
    a pack), the hook still reports the staged key."""
    import zlib

    from keyscan.git.plumbing import discover
    from keyscan.git.staged import read_loose

    repo = Repo(tmp_path / "repo")
    repo.commit("first", ("a.py", "x = 1\n"))
    secret = key("project")
    body = f'K = "{secret}"\n'.encode()
    repo.write("k.py", body)
    repo.git("add", "k.py")
    oid = _staged_oid(repo, "k.py")
    path = _loose_path(repo, oid)
    git_reads = False  # whatever git makes of a damaged object is git's answer, as before
    if damage == "other content":
        _forge(repo, oid, b"blob %d\0" % len(body) + body.replace(b"K", b"J"))
    elif damage == "size too small":
        _forge(repo, oid, b"blob %d\0" % (len(body) - 1) + body)
    elif damage == "size too large":
        _forge(repo, oid, b"blob %d\0" % (len(body) + 1) + body)
    elif damage == "trailing data":
        path.chmod(0o644)
        path.write_bytes(path.read_bytes() + b"garbage")
    elif damage == "not zlib":
        path.chmod(0o644)
        path.write_bytes(b"blob 3\0abc")
    elif damage == "tree":
        _forge(repo, oid, b"tree %d\0" % len(body) + body)
    elif damage == "bomb":
        path.chmod(0o644)
        inflate = zlib.compressobj()
        header = b"blob %d\0" % len(body)
        path.write_bytes(inflate.compress(header + body + b"\0" * (256 << 20)) + inflate.flush())
    elif damage == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif damage == "symlink file":
        git_reads = True
        moved = tmp_path / "moved-object"
        path.rename(moved)
        path.symlink_to(moved)
    elif damage == "symlink folder":
        git_reads = True
        moved = tmp_path / "moved-folder"
        path.parent.rename(moved)
        path.parent.symlink_to(moved)
    else:
        git_reads = True
        repo.git("repack", "-a", "-d", "-q")
        repo.git("prune-packed")
        assert not path.exists()
    git = discover(str(repo.path))
    assert read_loose(git.git_dir, oid) is None
    if git_reads:
        code, out, err = _keyscan(["hook", "pre-commit"], repo.path)
        assert code == 1 and redact(secret) in out and secret not in out + err
        if damage != "packed":
            assert path.resolve().is_file()  # read through git, never followed here




def test_loose_reading_ignores_the_callers_git_environment(tmp_path: Path) -> None:
    """GIT_OBJECT_DIRECTORY / GIT_DIR of the caller do not choose what is read."""
    repo = Repo(tmp_path / "repo")
    repo.commit("first", ("a.py", "x = 1\n"))
    secret = key("svcacct")
    repo.write("k.py", f'K = "{secret}"\n')
    repo.git("add", "k.py")
    decoy = Repo(tmp_path / "decoy")
    decoy.commit("d", ("k.py", "nothing = 0\n"))
    code, out, _ = _keyscan(
        ["hook", "pre-commit"], repo.path,
        GIT_OBJECT_DIRECTORY=str(decoy.path / ".git" / "objects"),
    )  # fmt: skip
    assert code == 1 and redact(secret) in out
