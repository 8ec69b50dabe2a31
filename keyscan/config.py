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
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyscan.models import Finding

CONFIG_NAMES = (".keyscan.yaml", ".keyscan.yml")
TOP_KEYS = {"version", "exclude", "disable_rules", "rules", "allow", "baseline"}
ALLOW_KINDS = ("secret", "path", "fingerprint")
ALLOW_KEYS = {*ALLOW_KINDS, "rule", "reason", "expires"}
FINGERPRINT_RE = re.compile(r"^[0-9a-f]{64}$")


class ConfigError(ValueError):
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
                hit = {i for i, loc in enumerate(f.locations) if entry.regex.search(loc.path)}
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


def find_config(start: Path | None = None) -> Path | None:
    """``.keyscan.yaml`` in ``start`` (default: cwd) or a parent, up to the repository root."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for name in CONFIG_NAMES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
        if (folder / ".git").exists():
            return None
    return None


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


def parse_config(doc: Any, path: Path) -> Config:
    source = str(path)
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


def load_config(path: Path) -> Config:
    import yaml  # keyscan imports PyYAML only here and in keyscan.rules

    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read config file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: config file is not UTF-8") from None

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
    return parse_config(doc, path)
