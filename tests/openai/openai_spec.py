"""Validate what the OpenAI provider sends against the spec's request schemas."""

from __future__ import annotations

import email.parser
import email.policy
import functools
from pathlib import Path
from typing import Any

import httpx
import jsonschema
from ruamel.yaml import YAML

SPEC_PATH = Path(__file__).resolve().parents[1] / "spec" / "openai-batch-openapi.yaml"


@functools.cache
def spec() -> dict[str, Any]:
    """The OpenAPI document, loaded once."""
    loaded: dict[str, Any] = YAML(typ="safe").load(SPEC_PATH.read_text())
    return loaded


def validate(name: str, instance: Any) -> None:
    """Validate ``instance`` against ``components.schemas[name]`` (raises ValidationError)."""
    schema = {**spec(), "$ref": f"#/components/schemas/{name}"}
    jsonschema.Draft202012Validator(schema).validate(instance)


def parse_multipart(request: httpx.Request) -> tuple[dict[str, str], str, bytes]:
    """The form fields, the file part's filename and the file bytes of a multipart request."""
    head = b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n"
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.content)
    assert message.is_multipart()
    fields: dict[str, str] = {}
    filename, data = "", b""
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(name, str)
        assert isinstance(payload, bytes)
        if part.get_filename() is not None:
            filename, data = str(part.get_filename()), payload
            fields[name] = "<binary>"
        else:
            fields[name] = payload.decode()
    return fields, filename, data


def validate_create_file(request: httpx.Request) -> tuple[dict[str, str], str, bytes]:
    """Check a POST /files request against CreateFileRequest; return its parsed parts."""
    fields, filename, data = parse_multipart(request)
    instance: dict[str, Any] = {}
    for key, value in fields.items():
        if key.startswith(("expires_after[", "expires_after.")):  # OpenAI's form, Azure's form
            sub = key[len("expires_after[") :].rstrip("]")
            instance.setdefault("expires_after", {})[sub] = (
                int(value) if sub == "seconds" else value
            )
        else:
            instance[key] = value
    validate("CreateFileRequest", instance)
    return fields, filename, data
