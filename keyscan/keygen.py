"""Generate key-shaped strings from templates, so that no literal key is ever committed.

Rule examples, the test suite and the benchmarks describe keys by template, e.g.
``sk-proj-{b64url:74}{marker}{b64url:74}``. Placeholders:

* ``{marker}``: the base64 text of ``OpenAI`` that sits in the middle of every OpenAI key;
* ``{alnum:N}``, ``{b64url:N}``, ``{hex:N}``, ``{lower:N}``, ``{upper:N}``, ``{digits:N}``,
  ``{b64:N}``: N random characters of that alphabet;
* ``{x:N}`` (or any single character ``{c:N}`` with c one of ``xX0*.-``): that character N times;
* ``{lit:TEXT}``: TEXT as is (for braces and the like);
* ``{key:FAMILY}``: a whole key of a family named in FAMILY_TEMPLATES or CONTEXT_TEMPLATES;
* ``{jwt:KIND}``: a JWT (random RS256-sized signature, never valid) of a Codex CLI ChatGPT
  login: ``access`` or ``id`` (issued by ``https://auth.openai.com``), ``other`` (the same
  claims from another issuer).

Generated keys are random but well-formed: base64url halves never start or end with ``-``/``_``
unless asked (``{b64url_edge:N}``), so a test can decide about edges explicitly.
"""

from __future__ import annotations

import random
import re
import string

from keyscan.openai_facts import MARKER

ALPHABETS: dict[str, str] = {
    "alnum": string.ascii_letters + string.digits,
    "b64url": string.ascii_letters + string.digits + "-_",
    "b64url_edge": string.ascii_letters + string.digits + "-_",
    "b64": string.ascii_letters + string.digits + "+/",
    "hex": "0123456789abcdef",
    "lower": string.ascii_lowercase,
    "upper": string.ascii_uppercase,
    "digits": string.digits,
}

_TOKEN = re.compile(r"\{([a-z0-9_]+|[xX0*.\-])(?::([^}]*))?\}")

# Key families by template: (name, template). Covers every family in openai-facts.md.
FAMILY_TEMPLATES: dict[str, str] = {
    "legacy": "sk-{alnum:20}{marker}{alnum:20}",
    "project-2024": "sk-proj-{alnum:20}{marker}{alnum:20}",
    "named-2024": "sk-{lower:6}-{lower:4}-{alnum:20}{marker}{alnum:20}",
    "project-mid2024": "sk-proj-{b64url:58}{marker}{b64url:58}",
    "svcacct-mid2024": "sk-svcacct-{b64url:46}{marker}{b64url:46}",
    "project": "sk-proj-{b64url:74}{marker}{b64url:74}",
    "svcacct": "sk-svcacct-{b64url:74}{marker}{b64url:74}",
    "user-none": "sk-None-{b64url:74}{marker}{b64url:74}",
    "admin": "sk-admin-{b64url:58}{marker}{b64url:58}",
    "future-project-80": "sk-proj-{b64url:80}{marker}{b64url:80}",
    "future-project-20": "sk-proj-{b64url:20}{marker}{b64url:20}",
}

# Credentials found only in their context (a variable or field name), not on their own:
# ``key()`` and ``{key:NAME}`` know them, the "every template alone" tests do not.
# ``codex-pat``: a Codex personal access token. Only its ``at-`` prefix is confirmed (see
# rules/openai.yaml); the rest is an assumed opaque base64url run.
CONTEXT_TEMPLATES: dict[str, str] = {
    "codex-pat": "at-{b64url:43}",
}

# The family keyscan reports for each template above.
EXPECTED_FAMILY: dict[str, str] = {
    "legacy": "legacy",
    "project-2024": "project",
    "named-2024": "legacy",
    "project-mid2024": "project",
    "svcacct-mid2024": "service_account",
    "project": "project",
    "svcacct": "service_account",
    "user-none": "user",
    "admin": "admin",
    "future-project-80": "project",
    "future-project-20": "project",
}


def _chars(alphabet: str, n: int, rng: random.Random, edge: bool) -> str:
    if n <= 0:
        return ""
    if edge or alphabet not in (ALPHABETS["b64url"],):
        return "".join(rng.choice(alphabet) for _ in range(n))
    inner = ALPHABETS["alnum"]
    if n == 1:
        return rng.choice(inner)
    middle = "".join(rng.choice(alphabet) for _ in range(n - 2))
    return rng.choice(inner) + middle + rng.choice(inner)


def generate(template: str, rng: random.Random | None = None, seed: int | None = None) -> str:
    """Expand a template into a concrete string."""
    if rng is None:
        rng = random.Random(seed)

    def expand(m: re.Match[str]) -> str:
        name, arg = m.group(1), m.group(2)
        if name == "marker":
            return MARKER
        if name == "lit":
            return arg or ""
        if name == "key":
            name = arg or "project"
            return generate(FAMILY_TEMPLATES.get(name) or CONTEXT_TEMPLATES[name], rng=rng)
        if name == "jwt":
            return jwt(arg or "access", rng=rng)
        if name in ALPHABETS:
            if arg is None or not arg.isdigit():
                raise ValueError(
                    f"template {template!r}: {{{name}}} needs a length, e.g. {{{name}:20}}"
                )
            return _chars(ALPHABETS[name], int(arg), rng, edge=name == "b64url_edge")
        if len(name) == 1:
            return name * int(arg or "1")
        raise ValueError(f"template {template!r}: unknown placeholder {{{name}}}")

    return _TOKEN.sub(expand, template)


def jwt(
    kind: str = "access",
    rng: random.Random | None = None,
    issuer: str | None = None,
    seed: int | None = None,
) -> str:
    """A JWT shaped like a Codex CLI ChatGPT login token (kind ``access``, ``id``, or
    ``other``: another issuer). The signature is random: it checks against nothing."""
    import base64
    import json

    if rng is None:
        rng = random.Random(seed)
    if kind not in ("access", "id", "other"):
        raise ValueError(f"unknown JWT kind {kind!r}")

    def b64(obj: object) -> str:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    iss = issuer or ("https://login.example.org" if kind == "other" else "https://auth.openai.com")
    uid = _chars(ALPHABETS["alnum"], 24, rng, edge=False)
    header = {"alg": "RS256", "kid": _chars(ALPHABETS["hex"], 32, rng, False), "typ": "JWT"}
    claims: dict[str, object] = {
        "https://api.openai.com/auth": {"chatgpt_account_id": _chars(ALPHABETS["hex"], 32, rng, False)},
        "iat": 1_750_000_000 + rng.randrange(10**7),
        "iss": iss,
        "sub": f"auth0|{uid}",
    }
    if kind == "id":
        claims["aud"] = ["app_" + _chars(ALPHABETS["alnum"], 24, rng, False)]
        claims["email"] = f"user{rng.randrange(10**6)}@example.com"
    else:
        claims["aud"] = ["https://api.openai.com/v1"]
        claims["scp"] = ["openid", "profile", "email", "offline_access"]
    signature = _chars(ALPHABETS["b64url"], 342, rng, edge=False)
    return f"{b64(header)}.{b64(claims)}.{signature}"


def key(family: str = "project", seed: int | None = None, rng: random.Random | None = None) -> str:
    """A random, well-formed key of the named family (FAMILY_TEMPLATES, CONTEXT_TEMPLATES)."""
    try:
        template = FAMILY_TEMPLATES.get(family) or CONTEXT_TEMPLATES[family]
    except KeyError:
        raise ValueError(f"unknown key family {family!r}") from None
    return generate(template, rng=rng, seed=seed)


def is_template(text: str) -> bool:
    return bool(_TOKEN.search(text))
