"""Remote repositories: telling a URL from a path, masking credentials in URLs, refusing
unsupported transports and mirror-cloning. Git runs only through ``keyscan.git.plumbing``."""

from __future__ import annotations

import os
import re

from keyscan.git.plumbing import SAFE_CONFIG, GitError, git_env, last_line, run_git

# The transports a clone may use; anything else (``ext::``, ``fd::``, any installed
# ``git-remote-<name>`` helper) is refused before git runs, and by git itself.
ALLOWED_SCHEMES = ("https", "http", "ssh", "git", "file", "git+ssh", "ssh+git")
CLONE_CONFIG: tuple[str, ...] = (
    "-c", "protocol.allow=never",
    "-c", "protocol.https.allow=always",
    "-c", "protocol.http.allow=always",
    "-c", "protocol.ssh.allow=always",
    "-c", "protocol.git.allow=always",
    "-c", "protocol.file.allow=always",
)  # fmt: skip
_ALLOW_PROTOCOL = "https:http:ssh:git:file"

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)(://|::)")


def is_remote(target: str) -> bool:
    """A URL (``scheme://``, ``helper::``, ``user@host:path``) rather than a local path."""
    if os.path.exists(target):
        return False
    if _SCHEME.match(target):
        return True
    return "@" in target and ":" in target and "://" not in target


def check_remote(url: str) -> None:
    """Refuse, before git runs, any URL whose transport keyscan does not support."""
    if not url or url.startswith("-") or any(c in url for c in "\n\r\0"):
        raise GitError(url or "''", "not a repository URL")
    m = _SCHEME.match(url)
    if m is None:
        if "@" in url and ":" in url:
            return  # user@host:path, git's ssh shorthand
        raise GitError(url, "not a repository URL")
    scheme, sep = m.group(1), m.group(2)
    if sep == "::" or scheme.lower() not in ALLOWED_SCHEMES:
        raise GitError(
            url,
            f"unsupported transport {scheme!r}: keyscan clones only https, http, ssh, git "
            "and file URLs",
        )


def clone(url: str, dest: str, batch: bool = False) -> None:
    """Mirror-clone ``url`` (bare, every ref) into ``dest``, allowing only the transports of
    ``ALLOWED_SCHEMES`` (refused here first, then by ``protocol.allow`` and
    ``GIT_ALLOW_PROTOCOL``). ``batch``: ssh never asks a question (audits)."""
    check_remote(url)
    env = git_env()
    env["GIT_ALLOW_PROTOCOL"] = _ALLOW_PROTOCOL
    if batch:
        env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    # Stored in the clone's config too, so later commands on it are safe even without ours.
    stored = [f"--config={v}" for k, v in zip(SAFE_CONFIG[::2], SAFE_CONFIG[1::2], strict=True)
              if k == "-c"]  # fmt: skip
    argv = [
        "git", *SAFE_CONFIG, *CLONE_CONFIG, "clone", "--mirror", "--progress", "--template=",
        *stored, "--", url, dest,
    ]  # fmt: skip
    proc = run_git(
        argv, "clone", url, cwd=os.path.dirname(dest) or ".", env=env, check=False, group=True
    )
    if proc.returncode != 0:
        why = last_line(proc.stderr).strip("'\" ") or "clone failed"
        raise GitError(url, f"cannot clone: {why}")


def is_url(target: str) -> bool:
    """A URL to clone rather than a local path (any scheme: unsupported ones are refused
    when cloning, never taken for a path)."""
    return is_remote(target)


def public_url(target: str) -> str:
    """A URL fit for reports: credentials in it (``https://user:token@host``) are masked."""
    scheme, sep, rest = target.partition("://")
    if not sep:
        return target
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return f"{scheme}://{netloc}{slash}{path}"


def shown_error(exc: GitError, target: str, shown: str) -> tuple[str, str]:
    """Where and what of a git error as a report shows them: ``target`` written as
    ``shown`` (its ``public_url``, credentials masked) in both."""
    where, message = exc.where, exc.message
    if shown != target:
        where, message = where.replace(target, shown), message.replace(target, shown)
    return where, message


def public_target(target: str) -> str:
    """The name under which an audited repository is stored and shown: credentials in a URL
    (a token as user name or a password) are replaced by ``***``, keys in it redacted."""
    from keyscan.redaction import redact_metadata

    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/@]*)@(.*)$", target)
    if not m:
        return redact_metadata(target)
    scheme, userinfo, rest = m.groups()
    user, sep, _ = userinfo.partition(":")
    if scheme.lower().startswith(("http", "ftp")) or sep:
        shown = "***" if not sep or scheme.lower().startswith(("http", "ftp")) else f"{user}:***"
        return redact_metadata(f"{scheme}{shown}@{rest}")
    return redact_metadata(target)
