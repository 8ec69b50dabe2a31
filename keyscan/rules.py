"""Load and validate detection rules from YAML.

A rule file holds ``rules:`` (a list of rules) and optionally file-wide ``allow:`` and
``deny:`` lists that apply to every rule in the file. See rules/openai.yaml for the format.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from keyscan.detector import MAX_MATCH_SPAN
from keyscan.errors import KeyscanError
from keyscan.models import Confidence, Rule
from keyscan.openai_facts import FAMILIES

RULE_KEYS = {
    "id",
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
    here = Path(__file__).resolve().parent
    packaged = here / "_rules"
    if packaged.is_dir():
        return packaged
    return here.parent / "rules"


def rule_files(directory: Path) -> list[Path]:
    """The rule files of a folder (or the file itself). Entries that are not folders are
    kept even if not regular files: load_file refuses a FIFO or device with one line."""
    if directory.is_dir():
        return sorted(
            p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and not p.is_dir()
        )
    if directory.exists() or directory.is_symlink():
        return [directory]
    raise RuleError(f"{directory}: rules folder not found")


def _compile(pattern: Any, where: str, what: str, flags: int = 0) -> re.Pattern[bytes]:
    if not isinstance(pattern, str) or not pattern:
        raise RuleError(f"{where}: {what} must be a non-empty string")
    try:
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
    regex = _compile(raw.get("regex"), where, "regex")
    if "secret" not in regex.groupindex:
        raise RuleError(f"{where}: regex needs a named group (?P<secret>...) for the secret")
    keywords = _str_list(raw.get("keywords"), where, "keywords")
    if not keywords:
        raise RuleError(f"{where}: keywords must list at least one literal for the prefilter")
    ignore_case = bool(raw.get("keywords_ignore_case", False))
    inherit = raw.get("inherit", True)
    allow = [
        _compile(p, where, "allow pattern") for p in _str_list(raw.get("allow"), where, "allow")
    ]
    deny = [_compile(p, where, "deny pattern") for p in _str_list(raw.get("deny"), where, "deny")]
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
        by_context.append((_compile(pattern, where, "family_by_context pattern"), fam))
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
        source=source,
        examples_positive=tuple(_str_list(examples.get("positive"), where, "examples.positive")),
        examples_negative=tuple(_str_list(examples.get("negative"), where, "examples.negative")),
    )


def load_file(path: Path) -> list[Rule]:
    import yaml  # keyscan imports PyYAML only here and in keyscan.config

    from keyscan.regularfile import RULES_MAX_BYTES, PolicyFileError, read_regular

    source = str(path)
    try:
        text = read_regular(path, RULES_MAX_BYTES, "rule file").decode("utf-8")
    except PolicyFileError as exc:
        raise RuleError(str(exc)) from None
    except OSError as exc:
        raise RuleError(f"{source}: cannot read rule file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RuleError(f"{source}: rule file is not UTF-8") from None
    try:
        # libyaml's loader when PyYAML has it: 7x faster, and every hook run parses the rules.
        doc = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RuleError(f"{source}: invalid YAML{at}: {problem}") from None
    if doc is None:
        return []
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise RuleError(f"{source}: a rule file must be a mapping with a 'rules' list")
    unknown = set(doc) - FILE_KEYS
    if unknown:
        raise RuleError(f"{source}: unknown top-level key(s) {', '.join(sorted(unknown))}")
    file_allow = [
        _compile(p, source, "allow pattern") for p in _str_list(doc.get("allow"), source, "allow")
    ]
    file_deny = [
        _compile(p, source, "deny pattern") for p in _str_list(doc.get("deny"), source, "deny")
    ]
    return [parse_rule(raw, source, file_allow, file_deny) for raw in doc["rules"]]


def _check_linear(
    rule: Rule, path: Path, verdicts: dict[tuple[bytes, int], str | None]
) -> None:
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
    extra_dirs: Iterable[Path] = (),
    include_builtin: bool = True,
    disabled: Iterable[str] = (),
) -> list[Rule]:
    """Built-in rules plus user rule folders. Duplicate ids are an error; disabled ids are dropped.

    A user rule whose regex (or allow, deny, family_by_context pattern) backtracks
    catastrophically is refused (keyscan.regexlint). The shipped rules are trusted here (the
    test suite holds them to the same check), so that loading them costs nothing more."""
    builtin = [builtin_rules_dir()] if include_builtin else []
    dirs = [(d, True) for d in builtin] + [(Path(d), False) for d in extra_dirs]
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    verdicts: dict[tuple[bytes, int], str | None] = {}
    for directory, trusted in dirs:
        for path in rule_files(directory):
            for rule in load_file(path):
                if not trusted:
                    _check_linear(rule, path, verdicts)
                if rule.id in seen:
                    raise RuleError(
                        f"{path}: rule {rule.id}: duplicate id (already defined in {seen[rule.id]})"
                    )
                seen[rule.id] = str(path)
                rules.append(rule)
    off = set(disabled)
    unknown = off - set(seen)
    if unknown:
        raise RuleError(f"unknown rule id(s) to disable: {', '.join(sorted(unknown))}")
    return [r for r in rules if r.id not in off]
