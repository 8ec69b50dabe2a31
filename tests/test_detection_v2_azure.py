"""Issue 15, Azure OpenAI keys by context: a 32-hex (or 84-character) key is an Azure OpenAI
key when an Azure OpenAI / Cognitive Services endpoint is near it, whatever its name.

Keys are generated at run time; no literal key is written here."""

from __future__ import annotations

import json

import pytest

from keyscan.api import Scanner
from keyscan.keygen import generate

ENDPOINT = "https://contoso-eu.openai.azure.com/"
COGNITIVE = "https://contoso.cognitiveservices.azure.com/"


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner()


def _azure(scanner: Scanner, text: str) -> list[tuple[str, str, str]]:
    return [
        (f.secret, f.family, f.confidence.name.lower()) for f in scanner.scan_text(text).findings
    ]


def _hex(seed: int) -> str:
    return generate("{hex:32}", seed=seed)


def _terraform_state(secret: str) -> str:
    attributes = {f"attribute_{i}": f"value number {i}" for i in range(20)}
    attributes.update({"endpoint": COGNITIVE, "primary_access_key": secret, "kind": "OpenAI"})
    state = {
        "resources": [
            {
                "type": "azurerm_cognitive_account",
                "instances": [{"attributes": dict(sorted(attributes.items()))}],
            }
        ]
    }
    return json.dumps(state, indent=2)


CONTEXTS = {
    "json": lambda k: json.dumps(
        {"llm": {"url": ENDPOINT, "credential": k, "deployment": "gpt"}}, indent=2
    ),
    "yaml": lambda k: f"llm:\n  base: {COGNITIVE}\n  deployment: gpt-4o\n  secret: '{k}'\n",
    "http": lambda k: (
        "POST /openai/deployments/gpt/chat/completions?api-version=2024-06-01 HTTP/1.1\r\n"
        f"Host: contoso.openai.azure.com\r\nContent-Type: application/json\r\napi-key: {k}\r\n\r\n{{}}"
    ),
    "terraform": lambda k: (
        f'provider "openai" {{\n  base_url = "{ENDPOINT}"\n  token    = "{k}"\n}}\n'
    ),
    "terraform-state": _terraform_state,
    "env-lines": lambda k: (
        f"AZ_BASE={ENDPOINT}\nAZ_DEPLOY=gpt4\nAZ_REGION=westeurope\nAZ_PASS={k}\n"
    ),
    "shell-before": lambda k: (
        f'export SECRET_THING={k}\ncurl {ENDPOINT}openai/models -H "api-key: $SECRET_THING"\n'
    ),
}


@pytest.mark.parametrize("context", sorted(CONTEXTS))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hex_key_near_an_azure_endpoint_is_an_azure_key(
    scanner: Scanner, context: str, seed: int
) -> None:
    secret = _hex(seed)
    found = _azure(scanner, CONTEXTS[context](secret))
    assert found == [(secret, "azure", "medium")]


@pytest.mark.parametrize("seed", [4, 5])
def test_the_84_character_form_near_an_endpoint(scanner: Scanner, seed: int) -> None:
    secret = generate("{alnum:84}", seed=seed)
    found = _azure(scanner, CONTEXTS["yaml"](secret))
    assert found == [(secret, "azure", "medium")]


@pytest.mark.parametrize("seed", [6, 7])
def test_the_same_hex_without_an_endpoint_is_not_reported(scanner: Scanner, seed: int) -> None:
    secret = _hex(seed)
    for context in ("yaml", "http", "terraform", "env-lines"):
        text = (
            CONTEXTS[context](secret)
            .replace("openai.azure.com", "example.org")
            .replace("cognitiveservices.azure.com", "example.org")
        )
        assert _azure(scanner, text) == [], context


def test_an_endpoint_far_away_is_no_context(scanner: Scanner) -> None:
    secret = _hex(8)
    text = f"base: {ENDPOINT}\n" + "# filler line of text\n" * 200 + f"secret: {secret}\n"
    assert _azure(scanner, text) == []


def test_hashes_ids_and_placeholders_near_an_endpoint_are_not_keys(scanner: Scanner) -> None:
    uuid = generate("{hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}", seed=9)
    sha256 = generate("{hex:64}", seed=9)
    text = (
        f"endpoint: {ENDPOINT}\nsubscription: {uuid}\nimage_digest: sha256:{sha256}\n"
        f"key: {'0' * 32}\nother: {'ab12' * 8}\n"
    )
    assert _azure(scanner, text) == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://contoso.openai.azure.us/",  # Azure Government
        "https://contoso.openai.azure.cn/",  # Azure operated by 21Vianet
        "https://contoso.cognitiveservices.azure.us/",
        "HTTPS://CONTOSO.OPENAI.AZURE.COM/",
    ],
)
def test_sovereign_cloud_and_upper_case_endpoints_are_context(
    scanner: Scanner, endpoint: str
) -> None:
    secret = _hex(10)
    text = f"llm:\n  base: {endpoint}\n  secret: {secret}\n"
    assert _azure(scanner, text) == [(secret, "azure", "medium")]


def test_azure_keywords_cost_the_keyword_pass_nothing() -> None:
    """The endpoints are searched without their top-level domain: a Hyperscan literal ending
    in ".com" made the keyword pass over plain trees ~15% slower (issue 15), one ending in
    "." costs nothing measurable."""
    from keyscan.rules import load_rules

    (rule,) = [r for r in load_rules() if r.id == "azure-openai-key-by-endpoint"]
    assert rule.keywords and all(k.endswith(b".") for k in rule.keywords)
