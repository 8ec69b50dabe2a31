"""Load and validate detection rules from YAML.

A rule file holds ``rules:`` (a list of rules) and optionally file-wide ``allow:`` and
``deny:`` lists that apply to every rule in the file. See rules/openai.yaml for the format.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from keyscan.detector import MAX_MATCH_SPAN, VALIDATOR_NAMES
from keyscan.errors import KeyscanError
from keyscan.models import Confidence, Rule, sha256_hex
from keyscan.openai_facts import FAMILIES

if TYPE_CHECKING:
    from pathlib import Path

# Paths are plain strings on the way every run takes (pathlib costs a hook ~2.5 ms of
# imports: urllib.parse, ipaddress); the public functions still hand back ``Path``.
StrPath = str | os.PathLike[str]

RULE_KEYS = {
    "id",
    "validate",
    "description",
    "family",
    "confidence",
    "regex",
    "keywords",
    "keywords_ignore_case",
    "min_entropy",
    "min_entropy_hex",
    "allow",
    "deny",
    "family_by_prefix",
    "family_by_context",
    "equal_halves",
    "examples",
    "inherit",
    "window",
}
FILE_KEYS = {"rules", "allow", "deny", "version"}
ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class RuleError(KeyscanError, ValueError):
    """A rule file that cannot be used. The message names the file, the rule and the problem."""


def builtin_rules_dir() -> Path:
    """The packaged rules (wheel) or the checkout's top-level rules/ (editable install)."""
    from pathlib import Path

    return Path(_builtin_rules_dir())


def _builtin_rules_dir() -> str:
    here = os.path.dirname(os.path.realpath(__file__))
    packaged = os.path.join(here, "_rules")
    if os.path.isdir(packaged):
        return packaged
    return os.path.join(os.path.dirname(here), "rules")


def rule_files(directory: StrPath) -> list[str]:
    """The rule files of a folder (or the file itself). Entries that are not folders are
    kept even if not regular files: load_file refuses a FIFO or device with one line."""
    folder = os.fspath(directory)
    if os.path.isdir(folder):
        with os.scandir(folder) as entries:
            return sorted(
                e.path
                for e in entries
                if os.path.splitext(e.name)[1] in (".yaml", ".yml") and not e.is_dir()
            )
    if os.path.exists(folder) or os.path.islink(folder):
        return [folder]
    raise RuleError(f"{folder}: rules folder not found")


def _compile(
    pattern: Any, where: str, what: str, flags: int = 0, patterns: PatternCache | None = None
) -> re.Pattern[bytes]:
    if not isinstance(pattern, str) or not pattern:
        raise RuleError(f"{where}: {what} must be a non-empty string")
    try:
        if patterns is not None:
            return patterns.compile(pattern, flags)
        return re.compile(pattern.encode("utf-8"), flags)
    except re.error as exc:
        raise RuleError(f"{where}: {what} is not a valid regular expression: {exc}") from None


def _str_list(value: Any, where: str, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleError(f"{where}: {what} must be a list of strings")
    return list(value)


def _number(value: Any, where: str, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RuleError(f"{where}: {what} must be a number")
    return float(value)


def parse_rule(
    raw: Any,
    source: str,
    file_allow: Sequence[re.Pattern[bytes]] = (),
    file_deny: Sequence[re.Pattern[bytes]] = (),
    patterns: PatternCache | None = None,
) -> Rule:
    if not isinstance(raw, dict):
        raise RuleError(f"{source}: each rule must be a mapping, got {type(raw).__name__}")
    rid = raw.get("id")
    if not isinstance(rid, str) or not ID_RE.match(rid):
        raise RuleError(f"{source}: rule id {rid!r} must be lower-case letters, digits, . _ -")
    where = f"{source}: rule {rid}"
    unknown = set(raw) - RULE_KEYS
    if unknown:
        raise RuleError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    family = raw.get("family", "unknown")
    if family not in FAMILIES:
        raise RuleError(f"{where}: family {family!r} is not one of {', '.join(FAMILIES)}")
    try:
        confidence = Confidence.parse(str(raw.get("confidence", "")))
    except ValueError as exc:
        raise RuleError(f"{where}: {exc}") from None
    regex = _compile(raw.get("regex"), where, "regex", patterns=patterns)
    if "secret" not in regex.groupindex:
        raise RuleError(f"{where}: regex needs a named group (?P<secret>...) for the secret")
    keywords = _str_list(raw.get("keywords"), where, "keywords")
    if not keywords:
        raise RuleError(f"{where}: keywords must list at least one literal for the prefilter")
    ignore_case = bool(raw.get("keywords_ignore_case", False))
    inherit = raw.get("inherit", True)
    allow = [
        _compile(p, where, "allow pattern", patterns=patterns)
        for p in _str_list(raw.get("allow"), where, "allow")
    ]
    deny = [
        _compile(p, where, "deny pattern", patterns=patterns)
        for p in _str_list(raw.get("deny"), where, "deny")
    ]
    if inherit:
        allow = [*file_allow, *allow]
        deny = [*file_deny, *deny]
    by_prefix_raw = raw.get("family_by_prefix") or {}
    if not isinstance(by_prefix_raw, dict):
        raise RuleError(f"{where}: family_by_prefix must map prefixes to families")
    by_prefix: list[tuple[bytes, str]] = []
    for prefix, fam in by_prefix_raw.items():
        if fam not in FAMILIES:
            raise RuleError(f"{where}: family_by_prefix {prefix!r}: unknown family {fam!r}")
        by_prefix.append((str(prefix).encode(), fam))
    by_prefix.sort(key=lambda item: -len(item[0]))
    by_context_raw = raw.get("family_by_context") or {}
    if not isinstance(by_context_raw, dict):
        raise RuleError(f"{where}: family_by_context must map patterns to families")
    by_context: list[tuple[re.Pattern[bytes], str]] = []
    for pattern, fam in by_context_raw.items():
        if fam not in FAMILIES:
            raise RuleError(f"{where}: family_by_context {pattern!r}: unknown family {fam!r}")
        what = "family_by_context pattern"
        by_context.append((_compile(pattern, where, what, patterns=patterns), fam))
    halves = raw.get("equal_halves", False)
    if not isinstance(halves, bool):
        raise RuleError(f"{where}: equal_halves must be true or false")
    if halves and not {"left", "right"} <= set(regex.groupindex):
        raise RuleError(
            f"{where}: equal_halves needs named groups (?P<left>...) and (?P<right>...)"
        )
    window_raw = raw.get("window")
    window: tuple[int, int] | None = None
    if window_raw is not None:
        if (
            not isinstance(window_raw, dict)
            or set(window_raw) != {"before", "after"}
            or not all(isinstance(v, int) and 0 <= v <= MAX_MATCH_SPAN for v in window_raw.values())
        ):
            raise RuleError(
                f"{where}: window must be {{before: N, after: N}} with 0 <= N <= {MAX_MATCH_SPAN}"
            )
        window = (window_raw["before"], window_raw["after"])
    validate = raw.get("validate")
    if validate is not None and validate not in VALIDATOR_NAMES:
        raise RuleError(
            f"{where}: validate {validate!r} is not one of {', '.join(VALIDATOR_NAMES)}"
        )
    examples = raw.get("examples") or {}
    if not isinstance(examples, dict) or set(examples) - {"positive", "negative"}:
        raise RuleError(f"{where}: examples must be a mapping with positive and negative lists")
    return Rule(
        id=rid,
        description=str(raw.get("description", "")).strip(),
        family=family,
        confidence=confidence,
        regex=regex,
        keywords=tuple(k.lower().encode() if ignore_case else k.encode() for k in keywords),
        keywords_ignore_case=ignore_case,
        min_entropy=_number(raw.get("min_entropy"), where, "min_entropy"),
        min_entropy_hex=_number(raw.get("min_entropy_hex"), where, "min_entropy_hex"),
        allow=tuple(allow),
        deny_secret=tuple(deny),
        family_by_prefix=tuple(by_prefix),
        family_by_context=tuple(by_context),
        equal_halves=halves,
        window=window,
        validate=validate,
        source=source,
        examples_positive=tuple(_str_list(examples.get("positive"), where, "examples.positive")),
        examples_negative=tuple(_str_list(examples.get("negative"), where, "examples.negative")),
    )


# Bumped when the cache's layout changes; the cache also records keyscan's version.
CACHE_FORMAT = 1
CACHE_NAME = "rules-cache.json"


def default_rule_cache_path() -> str | None:
    """Where the parsed rule files are cached: ``$KEYSCAN_CACHE_DIR/rules-cache.json``, else
    ``$XDG_CACHE_HOME/keyscan/``, else ``~/.cache/keyscan/``. None (no cache) when
    ``KEYSCAN_RULE_CACHE=0``."""
    if os.environ.get("KEYSCAN_RULE_CACHE", "1") in ("0", "off", "no", "false"):
        return None
    explicit = os.environ.get("KEYSCAN_CACHE_DIR")
    if explicit:
        return os.path.join(explicit, CACHE_NAME)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        base = xdg
    else:
        home = os.path.expanduser("~")
        if home == "~":  # no home folder (Path.home() raises there)
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "keyscan", CACHE_NAME)


class RuleCache:
    """The rule files' parsed documents, so that a run whose rule files did not change never
    imports PyYAML (about 10-15 ms of every hook run) nor parses YAML.

    One JSON file (never pickle: reading the cache runs no code), an entry per rule file
    content keyed by the SHA-256 of the file's bytes, stamped with keyscan's version and a
    checksum of the entries. A cache that cannot be read, does not parse, fails its checksum
    or comes from another keyscan version is ignored and rebuilt, never trusted; every
    document read from it still goes through the full validation of ``parse_rule``. Written
    0600 through keyscan.privatefile (atomic replace); a cache that cannot be written is
    skipped silently: the rules load all the same. It holds only rule files' text (no key)."""

    def __init__(self, path: StrPath | None) -> None:
        self.path = path
        self.entries: dict[str, Any] = {}
        self.used: set[str] = set()
        self.dirty = False
        if path is not None:
            self.entries = self._read(path)

    @staticmethod
    def _checksum(version: str, entries: Any) -> str:
        import json

        # Never sort_keys: the order of a mapping is meaningful (family_by_prefix).
        blob = json.dumps([CACHE_FORMAT, version, entries], separators=(",", ":"))
        return sha256_hex(blob.encode("utf-8"))

    def _read(self, path: StrPath) -> dict[str, Any]:
        import json

        from keyscan.version import __version__

        try:
            with open(path, "rb") as fh:
                data = json.loads(fh.read(RULES_CACHE_MAX_BYTES + 1))
        except (OSError, ValueError):
            self.dirty = True  # missing or corrupt: rebuilt
            return {}
        if (
            not isinstance(data, dict)
            or data.get("format") != CACHE_FORMAT
            or data.get("keyscan") != __version__
            or not isinstance(data.get("entries"), dict)
            or data.get("checksum") != self._checksum(__version__, data["entries"])
        ):
            self.dirty = True  # stale or tampered with: rebuilt
            return {}
        entries: dict[str, Any] = data["entries"]
        return entries

    def get(self, digest: str) -> tuple[bool, Any]:
        if digest in self.entries:
            self.used.add(digest)
            return True, self.entries[digest]
        return False, None

    def put(self, digest: str, doc: Any) -> None:
        import json

        try:
            same = json.loads(json.dumps(doc)) == doc
        except (TypeError, ValueError):
            same = False
        if not same:  # a document JSON cannot hold exactly (dates, non-string keys): not cached
            return
        self.entries[digest] = doc
        self.used.add(digest)
        self.dirty = True

    def save(self) -> None:
        """Write the cache if this load added to it: the entries it used, then those earlier
        loads left, up to ``RULE_CACHE_KEEP`` (so that hooks in repositories with rule files
        of their own do not rebuild each other's entries, and the cache stays bounded)."""
        if self.path is None or not self.dirty:
            return
        import json

        from keyscan.privatefile import private_dir, write_private
        from keyscan.version import __version__

        kept = sorted(self.used) + [d for d in self.entries if d not in self.used]
        entries = {d: self.entries[d] for d in kept[:RULE_CACHE_KEEP]}
        data = {
            "format": CACHE_FORMAT,
            "keyscan": __version__,
            "entries": entries,
            "checksum": self._checksum(__version__, entries),
        }
        try:
            private_dir(os.path.dirname(os.fspath(self.path)) or ".")
            write_private(self.path, json.dumps(data))
        except OSError:
            pass  # a read-only home or a full disk costs the cache, never the run


# A rule cache larger than this is ignored (and rebuilt).
RULES_CACHE_MAX_BYTES = 16 * 1024 * 1024
# How many rule files (by content) the rule cache keeps, and how many compiled patterns the
# pattern cache keeps: those the last load used first, then what earlier loads left.
RULE_CACHE_KEEP = 16
PATTERN_CACHE_KEEP = 1024


class PatternCache:
    """The rules' compiled regular expressions, so that a run whose rules did not change
    never parses nor compiles them again (about 5 ms of every hook run: 48 patterns).

    Python cannot keep a compiled pattern between runs, but what ``re`` hands to its C
    engine (``_sre.compile``: the pattern's code, a list of integers, and its groups) can be
    kept: one JSON file per Python and engine version (``file_name``), a line with the
    SHA-256 of the rest, then the entries of the patterns the last load used and those
    earlier loads left (bounded: ``PATTERN_CACHE_KEEP``), keyed by flags and pattern text.
    A pattern missing from the cache is compiled by ``re`` as always and its code recorded only if rebuilding it from that code gives the
    same pattern (flags, groups). A file that cannot be read, fails its checksum or comes
    from another keyscan version is ignored and rebuilt; an entry that the engine refuses
    (it validates the code) is compiled by ``re``. Written 0600 like the rule cache; it
    holds only the rules' own patterns (no key)."""

    FORMAT = 1

    def __init__(self, path: StrPath) -> None:
        self.path = path
        self.used: dict[str, list[Any]] = {}
        self.dirty = False
        self.entries = self._read()

    @staticmethod
    def _engine() -> Any:
        import importlib

        return importlib.import_module("_sre")

    @classmethod
    def file_name(cls) -> str:
        import sys

        sre = cls._engine()
        tag = f"{sys.implementation.cache_tag}-{sre.MAGIC}-{sre.CODESIZE}"
        return f"rules-patterns-{tag}.json"

    @classmethod
    def beside(cls, rule_cache: StrPath) -> PatternCache | None:
        """The pattern cache in the rule cache's folder, or None where this Python's ``re``
        has no such engine (another implementation): patterns are then compiled by ``re``."""
        try:
            return cls(os.path.join(os.path.dirname(os.fspath(rule_cache)), cls.file_name()))
        except (ImportError, AttributeError):
            return None

    def _read(self) -> dict[str, Any]:
        import json

        from keyscan.version import __version__

        try:
            with open(self.path, "rb") as fh:
                raw = fh.read(RULES_CACHE_MAX_BYTES + 1)
            checksum, _, text = raw.partition(b"\n")
            if checksum.decode("ascii") != sha256_hex(text):
                raise ValueError("checksum")
            data = json.loads(text)
        except (OSError, ValueError):  # missing, corrupt, tampered with: rebuilt
            self.dirty = True
            return {}
        if (
            not isinstance(data, dict)
            or data.get("format") != self.FORMAT
            or data.get("keyscan") != __version__
            or not isinstance(data.get("patterns"), dict)
        ):
            self.dirty = True
            return {}
        entries: dict[str, Any] = data["patterns"]
        return entries

    def compile(self, text: str, flags: int) -> re.Pattern[bytes]:
        """``re.compile(text.encode("utf-8"), flags)``, from the cache when it holds it."""
        pattern = text.encode("utf-8")
        key = f"{flags} {text}"
        parts = self.entries.get(key)
        if parts is not None:
            compiled = self._build(pattern, parts)
            if compiled is not None:
                self.used[key] = parts
                return compiled
        compiled = re.compile(pattern, flags)  # re.error goes to the caller
        parts = self._parts(pattern, flags, compiled)
        if parts is not None:
            self.used[key] = parts
            self.dirty = True
        return compiled

    def _build(self, pattern: bytes, parts: Any) -> re.Pattern[bytes] | None:
        try:
            flags, code, groups, groupindex, indexgroup = parts
            if not (
                isinstance(flags, int)
                and isinstance(code, list)
                and isinstance(groups, int)
                and isinstance(groupindex, dict)
                and isinstance(indexgroup, list)
            ):
                return None
            compiled: re.Pattern[bytes] = self._engine().compile(
                pattern, flags, code, groups, groupindex, tuple(indexgroup)
            )
        except (TypeError, ValueError, RuntimeError, OverflowError):
            return None  # the engine refuses it: compiled by re
        if compiled.pattern != pattern or compiled.groups != groups:
            return None
        return compiled

    def _parts(self, pattern: bytes, flags: int, compiled: re.Pattern[bytes]) -> list[Any] | None:
        """What ``re`` hands to ``_sre.compile`` for ``pattern`` (as re._compiler.compile
        does), or None when this Python's ``re`` is not what it expects."""
        import importlib

        try:
            try:
                parser = importlib.import_module("re._parser")
                compiler = importlib.import_module("re._compiler")
            except ImportError:  # Python 3.10: the same modules under their old names
                parser = importlib.import_module("sre_parse")
                compiler = importlib.import_module("sre_compile")
            parsed = parser.parse(pattern, flags)
            code = compiler._code(parsed, flags)
            groupindex = dict(parsed.state.groupdict)
            indexgroup: list[str | None] = [None] * parsed.state.groups
            for name, index in groupindex.items():
                indexgroup[index] = name
            parts = [flags | parsed.state.flags, list(code), parsed.state.groups - 1,
                     groupindex, indexgroup]  # fmt: skip
        except Exception:  # another Python's internals: no cache, the same rules
            return None
        again = self._build(pattern, parts)
        if again is None or (again.flags, again.groups, again.groupindex) != (
            compiled.flags,
            compiled.groups,
            compiled.groupindex,
        ):
            return None
        return parts

    def save(self) -> None:
        """Write the cache if this load compiled something new: the patterns it used, then
        those earlier loads left, up to ``PATTERN_CACHE_KEEP``."""
        if not self.dirty:
            return
        import json

        from keyscan.privatefile import private_dir, write_private
        from keyscan.version import __version__

        patterns = dict(self.used)
        for key, parts in self.entries.items():
            if len(patterns) >= PATTERN_CACHE_KEEP:
                break
            patterns.setdefault(key, parts)
        data = {"format": self.FORMAT, "keyscan": __version__, "patterns": patterns}
        text = json.dumps(data, separators=(",", ":"))
        try:
            private_dir(os.path.dirname(os.fspath(self.path)) or ".")
            write_private(self.path, f"{sha256_hex(text.encode('utf-8'))}\n{text}")
        except OSError:
            pass  # a read-only home or a full disk costs the cache, never the run


def _parse_yaml(text: str, source: str) -> Any:
    import yaml  # keyscan imports PyYAML only here and in keyscan.config

    try:
        # libyaml's loader when PyYAML has it: 7x faster than the pure-Python one.
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RuleError(f"{source}: invalid YAML{at}: {problem}") from None


def load_file(
    path: StrPath, cache: RuleCache | None = None, patterns: PatternCache | None = None
) -> list[Rule]:
    from keyscan.regularfile import RULES_MAX_BYTES, PolicyFileError, read_regular

    source = str(path)
    try:
        raw = read_regular(path, RULES_MAX_BYTES, "rule file")
        text = raw.decode("utf-8")
    except PolicyFileError as exc:
        raise RuleError(str(exc)) from None
    except OSError as exc:
        raise RuleError(f"{source}: cannot read rule file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RuleError(f"{source}: rule file is not UTF-8") from None
    if cache is None:
        doc = _parse_yaml(text, source)
    else:
        digest = sha256_hex(raw)
        hit, doc = cache.get(digest)
        if not hit:
            doc = _parse_yaml(text, source)
            cache.put(digest, doc)
    if doc is None:
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise RuleError(f"{source}: a rule file must be a mapping with a 'rules' list")
    unknown = set(doc) - FILE_KEYS
    if unknown:
        raise RuleError(f"{source}: unknown top-level key(s) {', '.join(sorted(unknown))}")
    file_allow = [
        _compile(p, source, "allow pattern", patterns=patterns)
        for p in _str_list(doc.get("allow"), source, "allow")
    ]
    file_deny = [
        _compile(p, source, "deny pattern", patterns=patterns)
        for p in _str_list(doc.get("deny"), source, "deny")
    ]
    return [parse_rule(raw, source, file_allow, file_deny, patterns) for raw in doc["rules"]]


def _check_linear(rule: Rule, path: StrPath, verdicts: dict[tuple[bytes, int], str | None]) -> None:
    """Raise RuleError if one of the rule's patterns is not linear (one line: file, rule,
    which pattern, why)."""
    from keyscan.regexlint import check_linear

    patterns: list[tuple[str, re.Pattern[bytes], Sequence[bytes]]] = [
        ("regex", rule.regex, rule.keywords)
    ]
    patterns += [("allow pattern", p, ()) for p in rule.allow]
    patterns += [("deny pattern", p, ()) for p in rule.deny_secret]
    patterns += [("family_by_context pattern", p, ()) for p, _ in rule.family_by_context]
    for what, pattern, keywords in patterns:
        key = (pattern.pattern, pattern.flags)
        if key not in verdicts or what == "regex":
            verdicts[key] = check_linear(pattern, keywords)
        why = verdicts[key]
        if why is not None:
            raise RuleError(f"{path}: rule {rule.id}: {what} refused: {why}")


def load_rules(
    extra_dirs: Iterable[StrPath] = (),
    include_builtin: bool = True,
    disabled: Iterable[str] = (),
    cache_path: StrPath | bool | None = True,
) -> list[Rule]:
    """Built-in rules plus user rule folders. Duplicate ids are an error; disabled ids are dropped.

    A user rule whose regex (or allow, deny, family_by_context pattern) backtracks
    catastrophically is refused (keyscan.regexlint). The shipped rules are trusted here (the
    test suite holds them to the same check), so that loading them costs nothing more.

    ``cache_path``: True, the default cache (``default_rule_cache_path``); a path; or
    False/None, no cache (see ``RuleCache``)."""
    builtin = [_builtin_rules_dir()] if include_builtin else []
    dirs = [(d, True) for d in builtin] + [(os.fspath(d), False) for d in extra_dirs]
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    verdicts: dict[tuple[bytes, int], str | None] = {}
    where = default_rule_cache_path() if cache_path is True else cache_path or None
    cache = RuleCache(where) if where is not None else None
    patterns = PatternCache.beside(where) if where is not None else None
    for directory, trusted in dirs:
        for path in rule_files(directory):
            for rule in load_file(path, cache, patterns):
                if not trusted:
                    _check_linear(rule, path, verdicts)
                if rule.id in seen:
                    raise RuleError(
                        f"{path}: rule {rule.id}: duplicate id (already defined in {seen[rule.id]})"
                    )
                seen[rule.id] = str(path)
                rules.append(rule)
    if cache is not None:
        cache.save()
    if patterns is not None:
        patterns.save()
    off = set(disabled)
    unknown = off - set(seen)
    if unknown:
        raise RuleError(f"unknown rule id(s) to disable: {', '.join(sorted(unknown))}")
    return [r for r in rules if r.id not in off]
