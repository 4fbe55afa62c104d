"""The spec's response schemas, ready for jsonschema: ``$ref``s inlined, real-world nulls allowed.

The real service sends ``null`` for every optional field it has no value for (the spec's own
Batch example shows ``"errors": null`` and ``"failed_at": null``) but marks few of them
nullable. So here a property outside its object's ``required`` list, or marked
``nullable: true`` (OpenAPI 3.0 style, as the line schemas are), also accepts ``null``; so do
the list responses' ``first_id``/``last_id``, which are null for an empty list. Required
properties stay strict.

Example::

    from tests.spec_schemas import validate_component, validate_response

    validate_component("BatchRequestOutput", line)
    validate_response("/batches/{batch_id}", "get", response.json())
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jsonschema
from ruamel.yaml import YAML

__all__ = ["SPEC_PATH", "component_schema", "spec", "validate_component", "validate_response"]

SPEC_PATH = Path(__file__).resolve().parent / "spec" / "openai-batch-openapi.yaml"
_NULL = {"type": "null"}
_NULLABLE_REQUIRED = frozenset({"first_id", "last_id"})


@functools.cache
def spec() -> dict[str, Any]:
    """The OpenAPI document, loaded once."""
    loaded: dict[str, Any] = YAML(typ="safe").load(SPEC_PATH.read_text())
    return loaded


def _or_null(schema: Any) -> dict[str, Any]:
    return {"anyOf": [schema, _NULL]}


def _resolve(node: Any) -> Any:
    """``node`` with every ``$ref`` inlined and the null rules above applied."""
    if isinstance(node, list):
        return [_resolve(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _resolve(spec()["components"]["schemas"][name])
    out = {key: _resolve(value) for key, value in node.items() if not key.startswith("x-")}
    if out.pop("nullable", False):
        out = _or_null(out)
    elif isinstance(out.get("properties"), dict):
        required = set(out.get("required", ()))
        out["properties"] = {
            name: _or_null(prop) if name not in required or name in _NULLABLE_REQUIRED else prop
            for name, prop in out["properties"].items()
        }
    return out


@functools.cache
def component_schema(name: str) -> dict[str, Any]:
    """``components.schemas[name]``, resolved (see the module docstring)."""
    resolved: dict[str, Any] = _resolve(spec()["components"]["schemas"][name])
    return resolved


def validate_component(name: str, instance: Any) -> None:
    """Validate ``instance`` against a component schema (raises ``ValidationError``)."""
    jsonschema.Draft202012Validator(component_schema(name)).validate(instance)


def validate_response(path: str, method: str, instance: Any, status: str = "200") -> None:
    """Validate a JSON response body against the spec's schema for ``method path``.

    ``path`` is the spec's template relative to ``/v1``, e.g. ``/batches/{batch_id}``.
    """
    operation = spec()["paths"][path][method.lower()]
    schema = operation["responses"][status]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator(_resolve(schema)).validate(instance)
