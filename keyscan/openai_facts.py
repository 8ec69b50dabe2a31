"""The facts about OpenAI keys that keyscan's code relies on, written once.

(openai-facts.md, sections 1 and 3.) The detection rules (rules/openai.yaml) stay data; the
code that needs a fact (rule loading, verification, revocation, decoders, the key generator
of the tests) reads it from here.
"""

from __future__ import annotations

import re

from keyscan.lazypattern import lazy_compile

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


# --- Azure OpenAI ---------------------------------------------------------------------------
# An Azure OpenAI key belongs to one Azure resource, named by the endpoint next to it:
# ``https://<resource>.openai.azure.com`` or ``https://<resource>.cognitiveservices.azure.com``
# (sovereign clouds: ``.azure.us``, ``.azure.cn``). keyscan checks it (``--verify-azure``) only
# against such a host, found in the key's own context: exact suffix match on the parsed host
# name, https only, no port, no userinfo, ASCII only (no IP literal can match).
AZURE_HOST = lazy_compile(
    globals(), "AZURE_HOST",
    r"(?P<resource>[a-z0-9][a-z0-9-]{1,62})\.(?:openai|cognitiveservices)\.azure\.(?:com|us|cn)",
    re.ASCII,
)
# Bytes searched around an Azure key for its endpoint (the rule's own window).
AZURE_ENDPOINT_WINDOW = 1500
# The read-only data-plane call that says whether a key opens its resource: "Models - List",
# ``GET {endpoint}/openai/models?api-version=2024-10-21`` with an ``api-key`` header; 2024-10-21
# is the current GA data-plane api-version of that operation
# (https://learn.microsoft.com/en-us/rest/api/azureopenai/models/list).
AZURE_MODELS_PATH = "/openai/models"
AZURE_API_VERSION = "2024-10-21"
AZURE_REVOKE_HELP = (
    "an Azure OpenAI key is not managed by the OpenAI Admin API: regenerate it in the Azure "
    "portal (the resource's Keys and Endpoint page) or with `az cognitiveservices account "
    "keys regenerate --name <resource> --resource-group <group> --key-name key1` (key2 for "
    "the second key)"
)

_AZURE_MENTION = lazy_compile(
    globals(), "_AZURE_MENTION", rb"\.(?:openai|cognitiveservices)\.azure\.", re.IGNORECASE
)
_HOST_BYTE = lazy_compile(globals(), "_HOST_BYTE", rb"[A-Za-z0-9.-]")
# What may stand right before a bare host name (``Host: x``, ``"x"``, ``=x``...) or right
# after any host name (end of the URL): anything else (``@``, ``:`` then a port, ``/`` of a
# path before it, ``\``, ``%``, a non-ASCII lookalike) refuses the candidate.
_BEFORE_BARE = frozenset(b" \t\r\n\"'`=:([{<>,;|")
_AFTER_HOST = frozenset(b" \t\r\n\"'`/?#)]}<>,;|&")


def is_azure_host(host: str) -> bool:
    """Whether ``host`` is exactly an Azure OpenAI / Cognitive Services host name."""
    return host.isascii() and AZURE_HOST.fullmatch(host) is not None


def azure_endpoints_in(data: bytes, lo: int = 0, hi: int | None = None) -> list[tuple[int, str]]:
    """``(offset, host)`` of every Azure OpenAI endpoint between ``lo`` and ``hi`` whose host
    passes every check (https or no scheme, no userinfo, no port, exact host name); the
    lookalikes (``x.openai.azure.com.evil.io``, ``evil.io/x.openai.azure.com``,
    ``https://x.openai.azure.com@evil.io``, ports, ``http://``...) are left out."""
    end = len(data) if hi is None else min(hi, len(data))
    out: list[tuple[int, str]] = []
    for m in _AZURE_MENTION.finditer(data, lo, end):
        hs = m.start()
        while hs > 0 and _HOST_BYTE.fullmatch(data[hs - 1 : hs]):
            hs -= 1
        he = m.end()
        while he < len(data) and _HOST_BYTE.fullmatch(data[he : he + 1]):
            he += 1
        if he < len(data) and data[he] not in _AFTER_HOST:
            continue
        while he > m.end() and data[he - 1] == 0x2E:  # a full stop ending a sentence
            he -= 1
        if data.endswith(b"://", 0, hs):
            at = hs - 3
            while at > 0 and data[at - 1 : at].isalpha():
                at -= 1
            if data[at : hs - 3].lower() != b"https":
                continue  # http:// (or any other scheme): never
        elif hs > 0 and data[hs - 1] not in _BEFORE_BARE:
            continue  # inside a path (/), userinfo (@), an escape (\, %) or non-ASCII text
        host = data[hs:he].decode("ascii").lower()
        if is_azure_host(host):
            out.append((hs, host))
    return out


def azure_endpoint_near(data: bytes, start: int, end: int) -> str | None:
    """The host of the Azure endpoint nearest a key at ``data[start:end]`` (within
    AZURE_ENDPOINT_WINDOW bytes), or None when no candidate passes every check."""
    lo = max(0, start - AZURE_ENDPOINT_WINDOW)
    found = azure_endpoints_in(data, lo, end + AZURE_ENDPOINT_WINDOW)
    if not found:
        return None
    return min(found, key=lambda item: abs(item[0] - start))[1]


def azure_endpoint_host(text: str) -> str | None:
    """The host of the one Azure endpoint ``text`` (a URL or a host name) names, or None."""
    data = text.strip().encode("utf-8", "surrogateescape")
    found = azure_endpoints_in(data)
    return found[0][1] if len(found) == 1 else None
