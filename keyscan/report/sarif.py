"""SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

* One result per location, with the rule's metadata (id, name, descriptions, help,
  ``security-severity``) in ``tool.driver.rules``.
* ``artifactLocation.uri`` is relative to the repository root (``uriBaseId: %SRCROOT%``);
  regions are 1-based; a binary file gets a ``byteOffset`` region instead of lines.
* ``partialFingerprints`` come from the finding's identity (rule + SHA-256 of the secret),
  the path, the commit and the occurrence number in that file: no line numbers, so moving
  code does not open new alerts.
* Always redacted, even with ``--show-secrets``: SARIF files are uploaded and published.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from keyscan.models import Confidence, Finding, Location, ScanResult
from keyscan.report.options import OutputOptions
from keyscan.version import __version__

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/keyscan/keyscan"
FINGERPRINT_KEY = "keyscanFindingHash/v1"
SRCROOT = "%SRCROOT%"
GIT_SOURCES = ("git-blob", "git-tree", "git-message", "staged")

FAMILY_TITLES = {
    "project": "OpenAI project API key",
    "service_account": "OpenAI service account key",
    "admin": "OpenAI admin key",
    "user": "OpenAI user API key",
    "legacy": "OpenAI API key (legacy format)",
    "azure": "Azure OpenAI key",
    "unknown": "OpenAI API key",
}
# GitHub shows 9.0+ as critical. An admin key controls a whole organisation.
FAMILY_SEVERITY = {"admin": 9.8, "azure": 8.5, "unknown": 8.0}
DEFAULT_SEVERITY = 9.0
PRECISION = {Confidence.HIGH: "very-high", Confidence.MEDIUM: "high", Confidence.LOW: "medium"}

HELP_TEXT = (
    "A credential committed to a repository must be treated as leaked: anyone with read "
    "access (and everyone, if the repository is or becomes public) can use it. Revoke the key "
    "in the OpenAI dashboard (or with `keyscan revoke`), create a new one, and load it from "
    "the environment or a secret manager instead of the source. Removing the line is not "
    "enough: the key stays in git history. A false positive can be allowed with a "
    "`keyscan:allow` comment on its line or an `allow` entry in .keyscan.yaml. A baseline "
    "is not for a fresh leak: only for old findings whose keys are already revoked."
)


def title(f: Finding) -> str:
    return FAMILY_TITLES.get(f.family, FAMILY_TITLES["unknown"])


def rule_name(rule_id: str) -> str:
    """SARIF ``name``: the id in PascalCase (``openai-project-key`` -> ``OpenaiProjectKey``)."""
    parts = rule_id.replace(".", "-").replace("_", "-").split("-")
    return "".join(p[:1].upper() + p[1:] for p in parts if p)


def repo_root(start: Path | None = None) -> Path:
    """The folder holding ``.git`` above ``start`` (default: cwd), else ``start`` itself."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return here


def root_for(result: ScanResult) -> Path:
    """%SRCROOT%: git paths are relative to the scanned repository, file paths to the
    repository (or folder) the scan ran in."""
    if result.root:
        return Path(result.root)
    if result.kind in ("git", "staged") and result.targets:
        target = Path(result.targets[0])
        if target.is_dir():
            return repo_root(target)
    return repo_root()


def relative_path(loc: Location, root: Path) -> str | None:
    """The location's path relative to ``root`` with ``/`` separators, or None when it lies
    outside (git paths are already relative to their repository)."""
    if loc.source in GIT_SOURCES or loc.source == "stdin":
        return loc.path
    path = Path(loc.path)
    absolute = path if path.is_absolute() else Path.cwd() / path
    try:
        rel = os.path.relpath(absolute, root)
    except ValueError:  # pragma: no cover - another drive on Windows
        return None
    if rel == ".." or rel.startswith(".." + os.sep):
        return None
    return Path(rel).as_posix()


def shown_uri(uri: str) -> str:
    """A URI built from the file system (not from the result): its keys redacted too."""
    from keyscan.redaction import default_redactor

    return default_redactor().text(uri)


def artifact_location(loc: Location, root: Path) -> dict[str, Any]:
    rel = relative_path(loc, root)
    if rel is None:
        return {"uri": shown_uri(Path(os.path.abspath(loc.path)).as_uri())}
    return {"uri": quote(rel, safe="/"), "uriBaseId": SRCROOT}


def region(loc: Location, f: Finding) -> dict[str, Any]:
    if loc.binary:
        return {"byteOffset": loc.offset, "byteLength": f.length}
    out: dict[str, Any] = {"startLine": max(1, loc.line), "startColumn": max(1, loc.column)}
    if not loc.decoded:  # a decoded key's length in the file is not its length
        out["endLine"] = out["startLine"]
        out["endColumn"] = out["startColumn"] + f.length
    return out


def message(f: Finding, loc: Location) -> str:
    text = f"{title(f)} {f.redacted} (sha256:{f.fingerprint[:12]})"
    if loc.member:  # the artifact is the archive: name the member and the place in it
        text += f" in archive member {'!'.join(loc.member)}, "
        text += f"byte offset {loc.offset}" if loc.binary else f"line {loc.line}:{loc.column}"
    if loc.decoded:
        text += f", {loc.decoded}-encoded"
    if loc.extra.get("file_name"):
        text += " in the file's name"
    if isinstance(loc.extra.get("note"), str):  # an image layer's file a later layer deletes
        text += f" ({loc.extra['note']})"
    if loc.source == "git-message" and loc.commit is not None:
        text += f" in the message of commit {loc.commit.sha[:12]}"
    elif loc.commit is not None:
        text += f" in commit {loc.commit.sha[:12]}"
    elif loc.source == "staged":
        text += " in staged changes"
    if f.verification is not None:
        text += f"; validity: {f.verification.status}"
    if f.notes:
        text += f"; {'; '.join(f.notes)}"
    text += ". Revoke it and remove it from the code and history."
    return text


def rule_descriptor(rule_id: str, findings: list[Finding]) -> dict[str, Any]:
    first = findings[0]
    families = sorted({f.family for f in findings})
    severity = max(FAMILY_SEVERITY.get(fam, DEFAULT_SEVERITY) for fam in families)
    confidence = max(f.confidence for f in findings)
    short = first.description.splitlines()[0] if first.description else title(first)
    return {
        "id": rule_id,
        "name": rule_name(rule_id),
        "shortDescription": {"text": short[:1000]},
        "fullDescription": {"text": first.description or f"{title(first)} ({rule_id})"},
        "help": {"text": HELP_TEXT, "markdown": HELP_TEXT},
        "helpUri": INFORMATION_URI,
        "defaultConfiguration": {"level": "error"},
        "properties": {
            "tags": ["security", "secret", "openai", *families],
            "precision": PRECISION[confidence],
            "security-severity": f"{severity:.1f}",
        },
    }


def partial_fingerprint(f: Finding, loc: Location, rel: str, occurrence: int) -> str:
    commit = loc.commit.sha if loc.commit else ""
    member = "".join(f"\0{name}" for name in loc.member)  # nothing outside archives
    data = f"{f.identity}\0{loc.source}\0{rel}{member}\0{commit}\0{occurrence}".encode()
    return hashlib.sha256(data).hexdigest()


def result_for(
    f: Finding, loc: Location, rule_index: int, root: Path, occurrence: int
) -> dict[str, Any]:
    artifact = artifact_location(loc, root)
    out: dict[str, Any] = {
        "ruleId": f.rule_id,
        "ruleIndex": rule_index,
        "level": "error" if f.confidence >= Confidence.MEDIUM else "warning",
        "message": {"text": message(f, loc)},
    }
    properties: dict[str, Any] = {
        "fingerprint": f.fingerprint,
        "redacted": f.redacted,
        "family": f.family,
        "confidence": str(f.confidence),
        "source": loc.source,
    }
    if loc.source == "git-message" and loc.commit is not None:
        out["locations"] = [
            {"logicalLocations": [{"name": loc.commit.sha, "kind": "commit message"}]}
        ]
    elif loc.extra.get("file_name") or loc.member:  # in the name, or in an archive member:
        # no region of the artifact (the member and its line are named in the message)
        out["locations"] = [{"physicalLocation": {"artifactLocation": artifact}}]
    else:
        out["locations"] = [
            {"physicalLocation": {"artifactLocation": artifact, "region": region(loc, f)}}
        ]
    if loc.commit is not None:
        properties["commit"] = loc.commit.sha
        properties["commitDate"] = loc.commit.date
        properties["author"] = loc.commit.author_name
    if loc.member:
        properties["member"] = list(loc.member)
    if loc.blob:
        properties["blob"] = loc.blob
    if loc.decoded:
        properties["decoded"] = loc.decoded
    if isinstance(loc.extra.get("note"), str):
        properties["note"] = loc.extra["note"]
    if f.verification is not None:
        properties["validity"] = f.verification.status.value
    if f.notes:
        properties["notes"] = list(f.notes)
    out["properties"] = properties
    rel = artifact.get("uri", "")
    out["partialFingerprints"] = {FINGERPRINT_KEY: partial_fingerprint(f, loc, rel, occurrence)}
    return out


def document(result: ScanResult, root: Path | None = None) -> dict[str, Any]:
    root = root or root_for(result)
    by_rule: dict[str, list[Finding]] = {}
    for f in result.findings:
        by_rule.setdefault(f.rule_id, []).append(f)
    rule_ids = sorted(by_rule)
    rules = [rule_descriptor(rid, by_rule[rid]) for rid in rule_ids]
    index = {rid: i for i, rid in enumerate(rule_ids)}
    results: list[dict[str, Any]] = []
    for f in result.findings:
        seen: dict[tuple[str, str], int] = {}
        for loc in f.locations:
            key = (loc.display_path, loc.commit.sha if loc.commit else "")
            occurrence = seen.get(key, 0)
            seen[key] = occurrence + 1
            results.append(result_for(f, loc, index[f.rule_id], root, occurrence))
    notifications = [
        {"level": "error", "message": {"text": f"{err.where}: {err.message}"}}
        for err in result.errors
    ] + [{"level": "warning", "message": {"text": note}} for note in result.warnings]
    notifications += [  # locations seen but not listed (keyscan.findings.MAX_LOCATIONS)
        {
            "level": "note",
            "message": {
                "text": f"{f.redacted} (sha256:{f.fingerprint[:12]}): and "
                f"{f.more_locations:,} more locations, not listed"
            },
        }
        for f in result.findings
        if f.more_locations
    ]
    invocation: dict[str, Any] = {"executionSuccessful": result.complete}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "keyscan",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        },
        "originalUriBaseIds": {SRCROOT: {"uri": shown_uri(root.as_uri().rstrip("/") + "/")}},
        "columnKind": "unicodeCodePoints",
        "invocations": [invocation],
        "results": results,
        "properties": {
            "kind": result.kind,
            "files": result.files,
            "bytes": result.bytes,
            "suppressed": result.suppressed,
            "complete": result.complete,
        },
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def render(result: ScanResult, opts: OutputOptions) -> str:
    return json.dumps(document(result), indent=2) + "\n"
