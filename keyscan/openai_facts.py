"""The facts about OpenAI keys that keyscan's code relies on, written once.

(openai-facts.md, sections 1 and 3.) The detection rules (rules/openai.yaml) stay data; the
code that needs a fact (rule loading, verification, revocation, decoders, the key generator
of the tests) reads it from here.
"""

from __future__ import annotations

# The base64 text of the bytes "OpenAI", between the two random halves of every OpenAI key
# seen in public (not a promise: a low-confidence rule covers marker-less keys).
MARKER = "T3BlbkFJ"
MARKER_BYTES = MARKER.encode()

# Every family a finding can carry.
FAMILIES = ("project", "service_account", "admin", "user", "legacy", "azure", "unknown")

ADMIN_PREFIX = "sk-admin-"

# Key prefix -> family (a bare ``sk-`` says nothing: legacy and named keys, other vendors).
PREFIX_FAMILY: tuple[tuple[str, str], ...] = (
    (ADMIN_PREFIX, "admin"),
    ("sk-svcacct-", "service_account"),
    ("sk-proj-", "project"),
    ("sk-None-", "user"),
)

# How many leading characters a redacted value keeps (``first8...last4``, and the Admin API's
# ``redacted_value``).
REDACTED_HEAD = 8

# Family -> the owner type of a project key of that family in the Admin API.
FAMILY_OWNER: dict[str, str] = {
    "service_account": "service_account",
    "project": "user",
    "user": "user",
}


def family_of_key(secret: str) -> str | None:
    """The family a whole key's prefix names, or None (legacy, named, unknown...)."""
    for prefix, family in PREFIX_FAMILY:
        if secret.startswith(prefix):
            return family
    return None


def family_of_head(head: str) -> str | None:
    """The family named by the head a redaction keeps (its first 8 characters: ``sk-svcac``,
    ``sk-admin``) or by a whole key; None if the head names none."""
    for prefix, family in PREFIX_FAMILY:
        if head.startswith(prefix[:REDACTED_HEAD]):
            return family
    return None


def owner_type_for_prefix(head: str, family: str | None = None) -> str | None:
    """The owner type a project key must have, judging by its family or prefix (None:
    either). A service account on either side wins."""
    owners = {FAMILY_OWNER.get(family or ""), FAMILY_OWNER.get(family_of_head(head) or "")}
    if "service_account" in owners:
        return "service_account"
    if "user" in owners:
        return "user"
    return None
