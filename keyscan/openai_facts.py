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
FAMILIES = (
    "project",
    "service_account",
    "admin",
    "user",
    "legacy",
    "azure",
    "unknown",
    "codex_access_token",
    "codex_id_token",
    "codex_refresh_token",
    "codex_personal_access_token",
)

# The ChatGPT login tokens of the Codex CLI (``$CODEX_HOME/auth.json``, ``tokens.*``): not API
# keys. The Admin API knows nothing of them (never sent there for revocation) and no
# documented read-only check tells whether one is live (verify answers ``unknown``).
# Sources: openai/codex, docs/authentication.md (schema of auth.json) and
# codex-rs/core/src/auth.rs, token_data.rs (AuthDotJson, TokenData; issuer
# https://auth.openai.com). See rules/openai.yaml.
CODEX_FAMILIES = ("codex_access_token", "codex_id_token", "codex_refresh_token")
CODEX_ISSUER = "https://auth.openai.com"
CODEX_VERIFY_REASON = (
    "Codex CLI ChatGPT login token: OpenAI documents no read-only check of it "
    "(it is not an API key; not sent to the OpenAI API)"
)
CODEX_REVOKE_HELP = (
    "Codex CLI ChatGPT login token: not an API key, the Admin API cannot revoke it; "
    "sign out of every session (codex logout, then ChatGPT settings: log out of all devices) "
    "and delete the leaked auth.json"
)
# Codex personal access tokens (ChatGPT Business/Enterprise "Codex access tokens"), as
# confirmed in openai/codex: the prefix ``at-`` (codex-rs/login/src/auth/personal_access_token.rs,
# PERSONAL_ACCESS_TOKEN_PREFIX, commit 1e253161298656cd877257c342c66aede39a5f35), the
# auth.json field ``personal_access_token`` (codex-rs/login/src/auth/storage.rs, AuthDotJson,
# commit 06566159f5193a7d99e751296bd1540c2b845443) and the variable ``CODEX_ACCESS_TOKEN``
# (developers.openai.com/codex/auth). Length and alphabet are not published: the rule is
# keyed on that context (rules/openai.yaml). The CLI checks one with
# ``GET https://auth.openai.com/api/accounts/v1/user-auth-credential/whoami``, an internal
# endpoint OpenAI does not document: keyscan never sends the token anywhere.
CODEX_PAT_FAMILY = "codex_personal_access_token"
CODEX_PAT_PREFIX = "at-"
CODEX_PAT_VERIFY_REASON = (
    "Codex personal access token: OpenAI documents no read-only check of it (not an API key; "
    "not sent anywhere)"
)
CODEX_PAT_REVOKE_HELP = (
    "Codex personal access token: not an API key, the Admin API cannot revoke it; revoke it "
    "in the ChatGPT admin console (Access tokens, https://chatgpt.com/admin/access-tokens), "
    "create a new one and update the automation that used it"
)
# Families the OpenAI Admin API knows nothing of, and why (revocation's answer).
NOT_ADMIN_API: dict[str, str] = {
    **{family: CODEX_REVOKE_HELP for family in CODEX_FAMILIES},
    CODEX_PAT_FAMILY: CODEX_PAT_REVOKE_HELP,
}
# The keys of a Codex auth.json that, together, make a file recognisably one.
CODEX_AUTH_JSON_KEYS = (b'"auth_mode"', b'"tokens"', b'"last_refresh"')

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


def jwt_payload(token: bytes) -> dict[str, object] | None:
    """The decoded payload (claims) of a JWT, or None when it is none: base64url JSON
    between the first two dots. No signature check and no network: only a reading."""
    import base64
    import binascii
    import json

    parts = token.split(b".")
    if len(parts) != 3:
        return None
    body = parts[1]
    try:
        raw = base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))
        claims = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def codex_jwt_family(token: bytes, before: bytes = b"") -> str | None:
    """``codex_access_token`` or ``codex_id_token`` for a JWT issued by auth.openai.com
    (its ``iss`` claim), else None. ``before``: the text just before the token (the JSON key
    ``access_token``/``id_token`` names it); else its claims do (an access token carries
    scopes and the OpenAI API audience, an ID token the user's e-mail)."""
    claims = jwt_payload(token)
    if claims is None:
        return None
    iss = claims.get("iss")
    if not isinstance(iss, str) or iss.rstrip("/") != CODEX_ISSUER:
        return None
    name = before[-40:].lower()
    access, ident = name.rfind(b"access_token"), name.rfind(b"id_token")
    if access >= 0 or ident >= 0:
        return "codex_access_token" if access > ident else "codex_id_token"
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if "scp" in claims or any(isinstance(a, str) and "api.openai.com" in a for a in auds):
        return "codex_access_token"
    return "codex_id_token"


def is_codex_auth_json(data: bytes) -> bool:
    """Whether data is recognisably a Codex CLI auth.json: its keys ``auth_mode``,
    ``tokens`` and ``last_refresh`` together."""
    return all(k in data for k in CODEX_AUTH_JSON_KEYS)
