"""Validate response bodies against OpenAI's OpenAPI spec (../shared/openai-openapi/openapi.json).

The spec is found at ``<repo>/../shared/openai-openapi/openapi.json`` or at the path in the
environment variable ``KEYSCAN_OPENAI_SPEC``. ``$ref``s (``#/components/schemas/...``) are
resolved against the whole document with ``referencing``; schemas are checked with
jsonschema's ``Draft202012Validator`` (OpenAPI 3.1 schemas are JSON Schema 2020-12).

    validate(body, "ListModelsResponse")          # a schema under components.schemas
    validate(body, "#/paths/~1organization~1admin_api_keys~1{key_id}/delete/responses/200/content/application~1json/schema")
    errors(body, "ErrorResponse") -> list[str]     # [] when valid
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_URI = "urn:openai-openapi"
REPO_ROOT = Path(__file__).resolve().parents[2]


def spec_path() -> Path:
    override = os.environ.get("KEYSCAN_OPENAI_SPEC")
    if override:
        return Path(override)
    return REPO_ROOT.parent / "shared" / "openai-openapi" / "openapi.json"


@functools.lru_cache(maxsize=1)
def load_spec() -> dict[str, Any]:
    with open(spec_path(), encoding="utf-8") as fh:
        spec: dict[str, Any] = json.load(fh)
    return spec


@functools.lru_cache(maxsize=1)
def _registry() -> Registry[Any]:
    resource = Resource.from_contents(load_spec(), default_specification=DRAFT202012)
    return Registry().with_resource(SPEC_URI, resource)


def _pointer(schema: str) -> str:
    if schema.startswith("#/"):
        return schema
    if schema not in load_spec()["components"]["schemas"]:
        raise KeyError(f"no schema {schema!r} under components.schemas")
    return f"#/components/schemas/{schema}"


@functools.lru_cache(maxsize=64)
def validator(schema: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": SPEC_URI + _pointer(schema)}, registry=_registry())


def errors(body: Any, schema: str) -> list[str]:
    """Every way ``body`` breaks ``schema`` (a component name or a ``#/...`` pointer)."""
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator(schema).iter_errors(body)
    ]


def validate(body: Any, schema: str) -> None:
    problems = errors(body, schema)
    if problems:
        raise AssertionError(f"body does not match {schema}: " + "; ".join(problems[:5]))
