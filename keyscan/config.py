"""The project's ``.keyscan.yaml``: excluded paths, disabled rules, extra rules, allow lists.

Found automatically in the current directory or, walking up, at the repository root (the
first folder holding ``.git``), or named with ``--config``. Every problem is reported as
``<file>: <key>: <what is wrong>`` so that a bad file is fixed in one go. Example::

    version: 1
    exclude: ["vendor/**", "*.min.js"]     # globs, like --exclude
    disable_rules: [openai-legacy]         # rule ids
    rules: [ci/keyscan-rules]              # extra rule folders (relative to this file)
    baseline: .keyscan-baseline.json       # relative to this file
    allow:
      - secret: "^sk-proj-EXAMPLE"         # regex, searched in the raw secret (in memory)
        reason: documentation placeholder
      - path: "^tests/fixtures/"           # regex, searched in the location's path
        reason: revoked test keys
        expires: 2026-12-31                # after this date the entry no longer suppresses
      - fingerprint: 3f2a...               # SHA-256 of one secret (as in reports)
        rule: openai-project               # optional: only for this rule

PyYAML is imported here and in keyscan.rules only.

Trust: every config, baseline and rule file is read with ``read_regular``: a regular file of
bounded size, never a FIFO or device. Where the policy must not come from the changes under
review (``keyscan ci``), ``policy_from_commit`` reads ``.keyscan.yaml`` and the baseline and
rule folders it names from a commit's tree through the git plumbing.
"""

from __future__ import annotations

import datetime as dt
import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keyscan.errors import KeyscanError
from keyscan.models import Finding
from keyscan.regularfile import (
    BASELINE_MAX_BYTES,
    CONFIG_MAX_BYTES,
    RULES_MAX_BYTES,
    PolicyFileError,
    read_regular,
    size_text,
)

# Finding the file needs none of this module (a run with no .keyscan.yaml never imports it).
from keyscan.regularfile import CONFIG_NAMES as CONFIG_NAMES
from keyscan.regularfile import find_config as find_config

if TYPE_CHECKING:
    from keyscan.git.plumbing import GitRepo

TOP_KEYS = {"version", "exclude", "disable_rules", "rules", "allow", "baseline"}
ALLOW_KINDS = ("secret", "path", "fingerprint")
ALLOW_KEYS = {*ALLOW_KINDS, "rule", "reason", "expires"}
FINGERPRINT_RE = re.compile(r"^[0-9a-f]{64}$")
_REGULAR_MODES = {"100644", "100755"}  # a git tree's regular files (not links, not submodules)


class ConfigError(KeyscanError, ValueError):
    """A config file that cannot be used: ``<file>: <key>: <what is wrong>``."""


def parse_expiry(value: Any, where: str) -> dt.date | None:
    """``expires``: a YAML date or an ISO ``YYYY-MM-DD`` string; None when absent."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"{where}: expires: must be a date like 2026-12-31, not {value!r}")


def expired(expires: dt.date | None, today: dt.date | None = None) -> bool:
    """An entry is valid through its ``expires`` day and stops suppressing the day after."""
    return expires is not None and (today or dt.date.today()) > expires


@dataclass(frozen=True)
class AllowEntry:
    kind: str  # secret | path | fingerprint
    pattern: str
    regex: re.Pattern[str] | None
    rule: str | None
    reason: str
    expires: dt.date | None
    where: str  # "<file>: allow[N]", for messages

    def label(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"config {self.where}{why}"

    def applies_to_rule(self, f: Finding) -> bool:
        return self.rule is None or self.rule == f.rule_id


@dataclass
class Config:
    path: Path | None = None
    exclude: list[str] = field(default_factory=list)
    disable_rules: list[str] = field(default_factory=list)
    rule_dirs: list[Path] = field(default_factory=list)
    allow: list[AllowEntry] = field(default_factory=list)
    baseline: Path | None = None

    def warnings(self, today: dt.date | None = None) -> list[str]:
        return [
            f"{e.where}: expired on {e.expires}, no longer suppresses"
            for e in self.allow
            if expired(e.expires, today)
        ]

    def suppress(self, f: Finding, today: dt.date | None = None) -> str | None:
        """Why the config suppresses ``f`` (or None). Locations whose path is allowed are
        dropped from a finding that is also seen elsewhere, like inline allow comments."""
        allowed_locations: set[int] = set()
        path_reason: str | None = None
        for entry in self.allow:
            if not entry.applies_to_rule(f):
                continue
            if entry.kind == "path":
                assert entry.regex is not None
                hit = {i for i, loc in enumerate(f.locations) if entry.regex.search(loc.display_path)}
                if not hit:
                    continue
                if expired(entry.expires, today):
                    _note_expired(f, entry)
                    continue
                allowed_locations |= hit
                path_reason = path_reason or entry.label()
                continue
            if entry.kind == "secret":
                assert entry.regex is not None
                matched = entry.regex.search(f.secret) is not None
            else:
                matched = entry.pattern == f.fingerprint
            if not matched:
                continue
            if expired(entry.expires, today):
                _note_expired(f, entry)
                continue
            return entry.label()
        if allowed_locations:
            if len(allowed_locations) == len(f.locations):
                return path_reason
            f.locations = [loc for i, loc in enumerate(f.locations) if i not in allowed_locations]
        return None


def _note_expired(f: Finding, entry: AllowEntry) -> None:
    note = f"suppression expired on {entry.expires} ({entry.where})"
    if note not in f.notes:
        f.notes.append(note)


def _str_list(doc: dict[str, Any], key: str, where: str) -> list[str]:
    value = doc.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: {key}: must be a list of non-empty strings")
    return list(value)


def _parse_allow(raw: Any, index: int, source: str) -> AllowEntry:
    where = f"{source}: allow[{index}]"
    if isinstance(raw, str):
        raw = {"secret": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping with one of {', '.join(ALLOW_KINDS)}")
    unknown = set(raw) - ALLOW_KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))} "
            f"(expected {', '.join(sorted(ALLOW_KEYS))})"
        )
    kinds = [k for k in ALLOW_KINDS if k in raw]
    if len(kinds) != 1:
        raise ConfigError(f"{where}: needs exactly one of {', '.join(ALLOW_KINDS)}")
    kind = kinds[0]
    pattern = raw[kind]
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(f"{where}: {kind}: must be a non-empty string")
    regex: re.Pattern[str] | None = None
    if kind == "fingerprint":
        pattern = pattern.strip().lower().removeprefix("sha256:")
        if not FINGERPRINT_RE.match(pattern):
            raise ConfigError(f"{where}: fingerprint: must be 64 hex digits (a SHA-256)")
    else:
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{where}: {kind}: not a valid regular expression: {exc}") from None
    rule = raw.get("rule")
    if rule is not None and (not isinstance(rule, str) or not rule):
        raise ConfigError(f"{where}: rule: must be a rule id")
    reason = raw.get("reason", "")
    if not isinstance(reason, str):
        raise ConfigError(f"{where}: reason: must be a string")
    expires = parse_expiry(raw.get("expires"), where)
    return AllowEntry(kind, pattern, regex, rule, reason.strip(), expires, where)


def parse_config(doc: Any, path: Path, source: str | None = None) -> Config:
    """``source`` names the file in messages (default: ``path``)."""
    source = source or str(path)
    if doc is None:
        return Config(path=path)
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{source}: the file must be a mapping of keys ({', '.join(sorted(TOP_KEYS))})"
        )
    unknown = set(doc) - TOP_KEYS
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(sorted(map(str, unknown)))} "
            f"(expected {', '.join(sorted(TOP_KEYS))})"
        )
    version = doc.get("version", 1)
    if version != 1:
        raise ConfigError(f"{source}: version: only version 1 is supported, not {version!r}")
    base = path.parent
    cfg = Config(path=path)
    cfg.exclude = _str_list(doc, "exclude", source)
    cfg.disable_rules = _str_list(doc, "disable_rules", source)
    cfg.rule_dirs = [base / p for p in _str_list(doc, "rules", source)]
    for folder in cfg.rule_dirs:
        if not folder.exists():
            raise ConfigError(f"{source}: rules: {folder}: no such file or folder")
    baseline = doc.get("baseline")
    if baseline is not None:
        if not isinstance(baseline, str) or not baseline:
            raise ConfigError(f"{source}: baseline: must be a file path")
        cfg.baseline = base / baseline
    allow = doc.get("allow")
    if allow is not None:
        if not isinstance(allow, list):
            raise ConfigError(f"{source}: allow: must be a list of entries")
        cfg.allow = [_parse_allow(raw, i, source) for i, raw in enumerate(allow)]
    return cfg


def load_config(path: Path, source: str | None = None) -> Config:
    """Read and check a config file (``source`` names it in messages; default: ``path``)."""
    source = source or str(path)
    try:
        text = read_regular(path, CONFIG_MAX_BYTES, "config file").decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: config file not found") from None
    except PolicyFileError as exc:
        raise ConfigError(str(exc).replace(str(path), source, 1)) from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: config file is not UTF-8") from None
    return parse_config(_yaml_doc(text, source), path, source)


def _yaml_doc(text: str, source: str) -> Any:
    import yaml  # keyscan imports PyYAML only here and in keyscan.rules

    base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[valid-type,misc]
        """Dates stay strings, so a bad one is reported with its key (parse_expiry)."""

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    try:
        doc = yaml.load(text, Loader=Loader)  # a SafeLoader subclass: safe
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}: invalid YAML{at}: {problem}") from None
    return doc


def _ls_tree(
    repo: GitRepo, rev: str, paths: list[str], recursive: bool = False
) -> list[tuple[str, str, str, int, str]]:
    """(mode, type, oid, size, path) of ``paths`` in ``rev``'s tree (paths from its root)."""
    args = ["ls-tree", "-z", "-l", "--full-tree", *(["-r"] if recursive else []), rev, "--"]
    proc = repo.run(*args, *paths)
    out: list[tuple[str, str, str, int, str]] = []
    for item in proc.stdout.split(b"\0"):
        if not item:
            continue
        meta, _, name = item.partition(b"\t")
        fields = meta.decode("ascii", "replace").split()
        if len(fields) != 4:
            continue
        mode, kind, oid, size = fields
        out.append((mode, kind, oid, int(size) if size.isdigit() else 0,
                    name.decode("utf-8", "surrogateescape")))
    return out


def _copy_blob(
    repo: GitRepo, entry: tuple[str, str, str, int, str], rev: str, folder: Path, limit: int,
    what: str,
) -> None:
    """Write one regular file of ``rev``'s tree under ``folder`` (same relative path)."""
    mode, kind, oid, size, name = entry
    where = f"{rev[:12]}:{name}"
    if kind != "blob" or mode not in _REGULAR_MODES:
        raise ConfigError(f"{where}: {what} is not a regular file: refusing to read it")
    if size > limit:
        raise ConfigError(f"{where}: {what} is larger than {size_text(limit)}: refusing to read it")
    data = repo.run("cat-file", "blob", oid).stdout  # no --textconv/--filters: no program runs
    if len(data) > limit:
        raise ConfigError(f"{where}: {what} is larger than {size_text(limit)}: refusing to read it")
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.write_bytes(data)


def _tree_path(value: Any, source: str, key: str) -> str | None:
    """A path named by the config, relative to the tree's root; None if absolute (a file
    of this machine, read as usual) or not a string (parse_config reports it)."""
    if not isinstance(value, str) or not value or os.path.isabs(value):
        return None
    norm = posixpath.normpath(value.replace(os.sep, "/"))
    if norm == ".." or norm.startswith("../"):
        raise ConfigError(f"{source}: {key}: {value}: outside the repository")
    return norm


def policy_from_commit(repo: GitRepo, rev: str, folder: Path) -> Config | None:
    """The config of commit ``rev``: ``.keyscan.yaml`` at the root of its tree, with the
    baseline and the rule folders it names, copied from the tree (git plumbing, never the
    work tree) into ``folder`` (a private temporary folder) and loaded from there. None when
    the commit has no config. Raises ConfigError (or GitError) with one line."""
    found = _ls_tree(repo, rev, list(CONFIG_NAMES))
    by_name = {e[4]: e for e in found}
    name = next((n for n in CONFIG_NAMES if n in by_name), None)
    if name is None:
        return None
    source = f"{rev[:12]}:{name}"
    _copy_blob(repo, by_name[name], rev, folder, CONFIG_MAX_BYTES, "config file")
    try:
        text = (folder / name).read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: config file is not UTF-8") from None
    doc = _yaml_doc(text, source)
    if isinstance(doc, dict):
        baseline = _tree_path(doc.get("baseline"), source, "baseline")
        if baseline is not None:
            for entry in _ls_tree(repo, rev, [baseline]):
                if entry[4] == baseline:
                    _copy_blob(repo, entry, rev, folder, BASELINE_MAX_BYTES, "baseline")
        rules = doc.get("rules")
        for value in [rules] if isinstance(rules, str) else rules if isinstance(rules, list) else []:
            where = _tree_path(value, source, "rules")
            if where is None:
                continue
            for entry in _ls_tree(repo, rev, [where], recursive=True):
                if entry[4] == where or entry[4].endswith((".yaml", ".yml")):
                    _copy_blob(repo, entry, rev, folder, RULES_MAX_BYTES, "rule file")
    return parse_config(doc, folder / name, source)
