"""Start-up of the hook path: the compiled rule cache and the set of modules a run imports.

* The rule cache (keyscan.rules.RuleCache) spares a run PyYAML when the rule files did not
  change; a stale (other keyscan version, changed rule file), corrupt or tampered cache is
  rebuilt, never trusted; an unwritable one costs the cache, never the run.
* The pattern cache (keyscan.rules.PatternCache) spares a warm run compiling the rules'
  regular expressions: the patterns rebuilt from it are the ones ``re`` compiles (same
  code); a stale, corrupt or tampered file, or an entry the engine refuses, is compiled by
  ``re`` again and rewritten, never trusted.
* ``keyscan hook pre-commit`` imports neither PyYAML (warm cache) nor the modules that only
  clones and archives need (tempfile, shutil and with them bz2, lzma, random).
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from keyscan.keygen import key
from keyscan.models import Rule
from keyscan.redaction import redact
from keyscan.rules import CACHE_FORMAT, CACHE_NAME, PatternCache, RuleCache, load_rules
from keyscan.version import __version__
from tests.git_helpers import Repo

USER_RULE = """rules:
  - id: {rid}
    family: unknown
    confidence: low
    regex: 'zz(?P<secret>[0-9]{{8}})'
    keywords: [zz]
"""


def _ids(cache: Path | bool, *extra: Path) -> list[str]:
    return [r.id for r in load_rules(extra_dirs=extra, cache_path=cache)]


def _cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / CACHE_NAME


def test_cache_is_built_private_and_gives_the_same_rules(tmp_path: Path) -> None:
    path = _cache(tmp_path)
    fresh = load_rules(cache_path=False)
    first = load_rules(cache_path=path)
    assert path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    data = json.loads(path.read_text())
    assert data["keyscan"] == __version__ and data["format"] == CACHE_FORMAT
    second = load_rules(cache_path=path)
    for a, b, c in zip(fresh, first, second, strict=True):
        assert a == b == c


def _run_load(tmp_path: Path, extra: str = "") -> dict[str, object]:
    """Load the rules in a fresh interpreter with the cache in tmp_path; what it imported."""
    code = (
        "import json, sys\n"
        "from keyscan.rules import load_rules\n"
        f"rules = load_rules({extra})\n"
        "print(json.dumps({'yaml': 'yaml' in sys.modules, 'n': len(rules)}))\n"
    )
    env = {**os.environ, "KEYSCAN_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("KEYSCAN_RULE_CACHE", None)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_warm_cache_never_imports_yaml(tmp_path: Path) -> None:
    cold = _run_load(tmp_path)
    assert cold["yaml"] is True  # built from the YAML files
    assert (tmp_path / "cache" / CACHE_NAME).is_file()
    warm = _run_load(tmp_path)
    assert warm == {"yaml": False, "n": cold["n"]}


def test_cache_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYSCAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KEYSCAN_RULE_CACHE", "0")
    load_rules()
    assert not (tmp_path / "cache").exists()


def test_changed_rule_file_is_read_again(tmp_path: Path) -> None:
    path = _cache(tmp_path)
    mine = tmp_path / "rules"
    mine.mkdir()
    (mine / "a.yaml").write_text(USER_RULE.format(rid="mine.one"))
    assert "mine.one" in _ids(path, mine)
    (mine / "a.yaml").write_text(USER_RULE.format(rid="mine.two"))
    ids = _ids(path, mine)
    assert "mine.two" in ids and "mine.one" not in ids
    # The cache keeps what this load used first, then what earlier loads left (bounded).
    entries = list(json.loads(path.read_text())["entries"])
    assert len(entries) == 3  # the built-in file, a.yaml now, a.yaml before


def _parses_and_compiles(
    monkeypatch: pytest.MonkeyPatch, path: Path, *extra: Path
) -> tuple[list[str], int, int]:
    """Rule ids loaded with the cache at ``path``; how many files were parsed from YAML and
    how many patterns re compiled."""
    import keyscan.rules as rules_module

    parsed: list[str] = []
    real_parse = rules_module._parse_yaml

    def parse(text: str, source: str) -> Any:
        parsed.append(source)
        return real_parse(text, source)

    monkeypatch.setattr(rules_module, "_parse_yaml", parse)
    try:
        rules, compiled = _load_counting(monkeypatch, path, *extra)
    finally:
        monkeypatch.setattr(rules_module, "_parse_yaml", real_parse)
    return [r.id for r in rules], len(parsed), compiled


def test_repositories_with_rules_of_their_own_keep_each_others_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hooks in two repositories, each with a rule folder of its own, run in turn: after one
    run each, neither parses YAML nor compiles a pattern again (the cache kept both)."""
    path = _cache(tmp_path)
    folders = []
    for name in ("one", "two"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "r.yaml").write_text(
            USER_RULE.format(rid=f"mine.{name}").replace("zz", f"q{name}")
        )
        folders.append(folder)
    for folder in folders:
        _parses_and_compiles(monkeypatch, path, folder)  # cold, once each
    for _ in range(2):
        for folder, name in zip(folders, ("one", "two"), strict=True):
            ids, parsed, compiled = _parses_and_compiles(monkeypatch, path, folder)
            assert f"mine.{name}" in ids
            assert (parsed, compiled) == (0, 0)


def test_rule_and_pattern_caches_stay_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keyscan.rules as rules_module

    path = _cache(tmp_path)
    builtin = len({(p.pattern, p.flags) for p in _rule_patterns(load_rules(cache_path=False))})
    keep = builtin + 3  # the built-in patterns, one of this load's, two left from earlier
    monkeypatch.setattr(rules_module, "RULE_CACHE_KEEP", 4)
    monkeypatch.setattr(rules_module, "PATTERN_CACHE_KEEP", keep)
    for n in range(8):
        folder = tmp_path / f"f{n}"
        folder.mkdir()
        (folder / "r.yaml").write_text(USER_RULE.format(rid=f"mine.n{n}").replace("zz", f"w{n}x"))
        _parses_and_compiles(monkeypatch, path, folder)
    entries = json.loads(path.read_text())["entries"]
    patterns = json.loads(_patterns_file(tmp_path).read_bytes().partition(b"\n")[2])["patterns"]
    assert len(entries) == 4 and len(patterns) == keep
    # The last load's own are kept: it is warm.
    assert _parses_and_compiles(monkeypatch, path, folder)[1:] == (0, 0)


def _poisoned(path: Path, version: str, valid_checksum: bool) -> None:
    """A cache whose every entry says 'no rules', for any digest it is asked about."""
    real = json.loads(path.read_text())
    entries = {digest: {"rules": []} for digest in real["entries"]}
    checksum = RuleCache._checksum(version, entries) if valid_checksum else "0" * 64
    data = {"format": CACHE_FORMAT, "keyscan": version, "entries": entries, "checksum": checksum}
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "version, valid_checksum",
    [("0.0.0-other", True), (__version__, False)],
    ids=["other-keyscan-version", "tampered-entries"],
)
def test_stale_or_tampered_cache_is_rebuilt(
    tmp_path: Path, version: str, valid_checksum: bool
) -> None:
    path = _cache(tmp_path)
    expected = _ids(path)
    assert expected
    _poisoned(path, version, valid_checksum)
    assert _ids(path) == expected  # not trusted
    data = json.loads(path.read_text())
    assert data["keyscan"] == __version__  # rebuilt
    assert all(doc["rules"] for doc in data["entries"].values())
    assert _ids(path) == expected


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"\x00\xff\xfe", b"[]", b'{"format": 1}', b"null"],
    ids=["empty", "truncated", "binary", "list", "partial", "null"],
)
def test_corrupt_cache_is_rebuilt(tmp_path: Path, content: bytes) -> None:
    path = _cache(tmp_path)
    expected = _ids(False)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    assert _ids(path) == expected
    assert json.loads(path.read_text())["keyscan"] == __version__


def test_unwritable_cache_costs_nothing_but_the_cache(tmp_path: Path) -> None:
    expected = _ids(False)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    assert _ids(blocker / "sub" / CACHE_NAME) == expected  # cannot create the folder
    folder = tmp_path / "folder-named-like-the-cache"
    (folder / CACHE_NAME).mkdir(parents=True)  # the cache path is a folder
    assert _ids(folder / CACHE_NAME) == expected


def test_cache_never_writes_through_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    path = _cache(tmp_path)
    path.parent.mkdir(parents=True)
    path.symlink_to(victim)
    expected = _ids(False)
    assert _ids(path) == expected
    assert victim.read_text() == "keep me\n"
    assert not path.is_symlink() and json.loads(path.read_text())["keyscan"] == __version__


@pytest.mark.parametrize(
    "extra", ["    description: 2024-01-01\n", "    family_by_prefix: {1: admin}\n"]
)
def test_yaml_that_json_cannot_hold_is_not_cached(tmp_path: Path, extra: str) -> None:
    """A document JSON would change (a date, an integer mapping key) is parsed from YAML every
    time, so the cache can never make a rule file mean something else."""
    path = _cache(tmp_path)
    mine = tmp_path / "rules"
    mine.mkdir()
    (mine / "a.yaml").write_text(USER_RULE.format(rid="mine.one") + extra)
    fresh = load_rules(extra_dirs=[mine], cache_path=False)
    for _ in range(2):
        assert load_rules(extra_dirs=[mine], cache_path=path) == fresh
    assert len(json.loads(path.read_text())["entries"]) == 1  # the built-in file only


# The compiled patterns (keyscan.rules.PatternCache)


def _patterns_file(tmp_path: Path) -> Path:
    return tmp_path / "cache" / PatternCache.file_name()


def _rule_patterns(rules: list[Rule]) -> list[re.Pattern[bytes]]:
    found: list[re.Pattern[bytes]] = []
    for r in rules:
        found += [r.regex, *r.allow, *r.deny_secret, *(p for p, _ in r.family_by_context)]
    return found


def _load_counting(
    monkeypatch: pytest.MonkeyPatch, path: Path | bool, *extra: Path
) -> tuple[list[Rule], int]:
    """Rules loaded with the cache at ``path``, and how many patterns ``re`` compiled."""
    import keyscan.rules as rules_module

    calls = []
    real = re.compile

    def counting(pattern: bytes, flags: int = 0) -> re.Pattern[bytes]:
        calls.append(pattern)
        return real(pattern, flags)

    monkeypatch.setattr(rules_module.re, "compile", counting)
    try:
        return load_rules(extra_dirs=extra, cache_path=path), len(calls)
    finally:
        monkeypatch.setattr(rules_module.re, "compile", real)


def test_warm_pattern_cache_compiles_nothing_and_gives_the_same_patterns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "rules"
    mine.mkdir()
    (mine / "a.yaml").write_text(USER_RULE.format(rid="mine.one"))
    fresh, compiled = _load_counting(monkeypatch, False, mine)
    assert compiled > 20
    cold, _ = _load_counting(monkeypatch, _cache(tmp_path), mine)
    warm, compiled = _load_counting(monkeypatch, _cache(tmp_path), mine)
    assert compiled == 0  # every pattern came from the cache
    assert fresh == cold == warm  # re.Pattern equality compares the engine's code too
    for a, b in zip(_rule_patterns(fresh), _rule_patterns(warm), strict=True):
        assert (a.pattern, a.flags, a.groups, a.groupindex) == (
            b.pattern, b.flags, b.groups, b.groupindex
        )  # fmt: skip
        assert a == b
    path = _patterns_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The patterns find what re's find (a planted key, through the command line's scanner).
    from keyscan.api import Scanner

    secret = key("project")
    for rules in (fresh, warm):
        found = Scanner(rules=rules).scan_text(f'K = "{secret}"\n').findings
        assert [f.secret for f in found] == [secret]


def _rewrite(path: Path, change: object) -> None:
    """Apply ``change`` to the file's JSON and write it back with a valid checksum."""
    from keyscan.models import sha256_hex

    data = json.loads(path.read_bytes().partition(b"\n")[2])
    change(data)  # type: ignore[operator]
    text = json.dumps(data)
    path.write_text(f"{sha256_hex(text.encode())}\n{text}")


def _garbage_code(data: dict[str, Any]) -> None:
    for parts in data["patterns"].values():
        parts[1] = [17, 99999, 3] * 5  # code the engine refuses


def _other_version(data: dict[str, Any]) -> None:
    data["keyscan"] = "0.0.0-other"
    for parts in data["patterns"].values():
        parts[1] = [17, 99999, 3] * 5


@pytest.mark.parametrize(
    "damage", ["garbage code", "other keyscan version", "bad checksum", "truncated", "empty",
               "not a list", "wrong types"],
)  # fmt: skip
def test_stale_corrupt_or_refused_pattern_cache_is_compiled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    fresh, _ = _load_counting(monkeypatch, False)
    _load_counting(monkeypatch, _cache(tmp_path))
    path = _patterns_file(tmp_path)
    if damage == "garbage code":
        _rewrite(path, _garbage_code)
    elif damage == "other keyscan version":
        _rewrite(path, _other_version)
    elif damage == "bad checksum":
        raw = path.read_bytes()
        path.write_bytes(b"0" * 64 + raw[64:])
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:500])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "not a list":
        _rewrite(path, lambda d: d["patterns"].update({k: 7 for k in d["patterns"]}))
    else:
        _rewrite(path, lambda d: d["patterns"].update(
            {k: ["0", v[1], v[2], v[3], v[4]] for k, v in d["patterns"].items()}))  # fmt: skip
    again, compiled = _load_counting(monkeypatch, _cache(tmp_path))
    assert compiled > 20  # not trusted: compiled by re
    assert again == fresh
    warm, compiled = _load_counting(monkeypatch, _cache(tmp_path))
    assert compiled == 0 and warm == fresh  # and rewritten


def test_no_pattern_cache_where_re_has_no_such_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another Python implementation (no ``_sre``): the rules load, compiled by re."""
    fresh, _ = _load_counting(monkeypatch, False)

    def missing() -> None:
        raise ImportError("no _sre here")

    monkeypatch.setattr(PatternCache, "_engine", staticmethod(missing))
    loaded, compiled = _load_counting(monkeypatch, _cache(tmp_path))
    assert loaded == fresh and compiled > 20
    assert (tmp_path / "cache" / CACHE_NAME).is_file()
    assert not list((tmp_path / "cache").glob("rules-patterns-*"))


def test_pattern_cache_is_per_python_and_engine() -> None:
    import _sre  # type: ignore[import-not-found]

    name = PatternCache.file_name()
    assert sys.implementation.cache_tag in name
    assert str(_sre.MAGIC) in name and name.endswith(".json")


# The pre-commit hook path: what it imports


HOOK_NEVER = {
    "yaml",  # the rule cache is warm
    "tempfile",
    "shutil",
    "bz2",
    "lzma",
    "random",
    "queue",
    "httpx",
    "sqlite3",
    "hyperscan",
    "multiprocessing",
    "keyscan.verify",
    "keyscan.formats.archives",
    "keyscan.regexlint",
    # the staged scan has an entry of its own (keyscan.git.staged.scan_staged_repository)
    "keyscan.git.history",
    "keyscan.git.provenance",
    "keyscan.git.scope",
    # no .keyscan.yaml: the policy module (and datetime) is never imported
    "keyscan.config",
    "datetime",
    # the records a hook uses are built by keyscan.records (tests/test_import_cost.py)
    "dataclasses",
    "inspect",
}


def test_hook_import_set(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    secret = key("project")
    repo.write("k.py", f'K = "{secret}"\n')
    repo.git("add", "k.py")
    out = tmp_path / "modules.json"
    code = (
        "import atexit, json, sys\n"
        f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
        "from keyscan.cli import main\n"
        "main(['hook', 'pre-commit'])\n"
    )
    env = {**os.environ, "KEYSCAN_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("KEYSCAN_RULE_CACHE", None)
    load_rules(cache_path=tmp_path / "cache" / CACHE_NAME)  # warm
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=repo.path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1, proc.stderr  # it ran, and found the key
    assert redact(secret) in proc.stdout + proc.stderr and secret not in proc.stdout + proc.stderr
    modules = set(json.loads(out.read_text()))
    assert "keyscan.git.staged" in modules and "keyscan.detector" in modules
    assert not HOOK_NEVER & modules, sorted(HOOK_NEVER & modules)


def test_hook_with_a_config_file_still_reads_it(tmp_path: Path) -> None:
    """keyscan.config is imported only when there is a .keyscan.yaml: then it is applied
    (an allow entry hides the staged key: exit 0) or refused with one line (exit 2)."""
    repo = Repo(tmp_path / "repo")
    secret = key("project")
    repo.write("k.py", f'K = "{secret}"\n')
    repo.git("add", "k.py")
    env = {**os.environ, "KEYSCAN_CACHE_DIR": str(tmp_path / "cache")}
    run = [sys.executable, "-m", "keyscan", "hook", "pre-commit"]
    proc = subprocess.run(run, cwd=repo.path, env=env, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    (repo.path / ".keyscan.yaml").write_text("allow:\n  - path: k.py\n    reason: a test fixture\n")
    proc = subprocess.run(run, cwd=repo.path, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (repo.path / ".keyscan.yaml").write_text("allow: [1, 2\n")
    proc = subprocess.run(run, cwd=repo.path, env=env, capture_output=True, text=True)
    assert proc.returncode == 2 and ".keyscan.yaml" in proc.stderr
    assert secret not in proc.stdout + proc.stderr


def test_hook_with_a_corrupt_cache_still_finds_the_key(tmp_path: Path) -> None:
    """The command line over a corrupt cache: the rules come from the YAML, the key is found
    (exit 1, redacted) and the cache is rebuilt."""
    repo = Repo(tmp_path / "repo")
    secret = key("svcacct")
    repo.write("cfg.env", f"OPENAI_API_KEY={secret}\n")
    repo.git("add", "cfg.env")
    cache = tmp_path / "cache" / CACHE_NAME
    cache.parent.mkdir()
    cache.write_bytes(b'{"format": 1, "keyscan": "' + __version__.encode() + b'", "entries": {')
    env = {**os.environ, "KEYSCAN_CACHE_DIR": str(cache.parent)}
    env.pop("KEYSCAN_RULE_CACHE", None)
    proc = subprocess.run(
        [sys.executable, "-m", "keyscan", "hook", "pre-commit"],
        cwd=repo.path, env=env, capture_output=True, text=True,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert redact(secret) in out and secret not in out
    assert json.loads(cache.read_text())["keyscan"] == __version__
    assert secret not in cache.read_text()


def test_scan_without_findings_lists_submodules_as_head_tree_does(tmp_path: Path) -> None:
    """A history or range scan with no finding reads only the submodules of HEAD (no map of
    every blob): the same list, in the same order, as the full parse."""
    from keyscan.git.history import _submodules_at
    from keyscan.git.plumbing import discover
    from keyscan.git.provenance import head_tree

    sub = Repo(tmp_path / "sub")
    sub.commit("sub", ("inner.txt", "hello\n"))
    repo = Repo(tmp_path / "repo")
    repo.commit("base", ("a.txt", "x\n"), ("dir/160000 commit b.txt", "y\n"))
    for name in ("vendor/one", "z z/two\tthree"):
        repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub.path), name)
    repo.git("commit", "-q", "-m", "subs")
    git = discover(str(repo.path))
    head = repo.git("rev-parse", "HEAD").strip()
    expected = head_tree(git, head)[1]
    assert len(expected) == 2 and _submodules_at(git, head) == expected
    assert _submodules_at(git, None) == []


def test_cache_named_without_a_folder_is_written_in_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A library caller's ``cache_path="rules-cache.json"`` (no folder): both caches are
    written beside it, in the current folder, as a Path's ``.parent`` (``.``) made them."""
    monkeypatch.chdir(tmp_path)
    load_rules(cache_path=CACHE_NAME)
    assert (tmp_path / CACHE_NAME).is_file()
    assert (tmp_path / PatternCache.file_name()).is_file()
