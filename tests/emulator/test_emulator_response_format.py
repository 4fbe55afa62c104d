"""``response_format`` on the emulator: checked like the real service, and honoured in replies."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from kyro import verdict_schema
from tests.emulator.emulator_helpers import (
    created_and_read,
    jsonl,
    read_lines,
    request_line,
)

VERDICT = verdict_schema()
STRICT = {
    "type": "json_schema",
    "json_schema": {"name": VERDICT.name, "strict": True, "schema": VERDICT.schema},
}


def _chat(
    response_format: Any, prompt: str = "Grade it.", model: str = "gpt-4o-mini"
) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "response_format": response_format,
    }


async def test_strict_schema_reply_has_exactly_the_schema_properties(
    client: httpx.AsyncClient,
) -> None:
    """With the strict verdict schema, the default reply holds exactly its four properties."""
    response = await client.post("/chat/completions", json=_chat(STRICT))
    assert response.status_code == 200
    reply = json.loads(response.json()["choices"][0]["message"]["content"])
    assert set(reply) == {"thinking", "status", "root_cause", "score"}
    assert reply["status"] in ("SUCCESS", "ERROR", "NA")
    assert reply["score"] is None


@pytest.mark.parametrize(
    ("response_format", "prompt", "model", "param", "words"),
    [
        ({"type": "json_object"}, "Grade it.", "gpt-4o-mini", "messages", "the word 'json'"),
        ({"type": "xml"}, "json", "gpt-4o-mini", "response_format.type", "Supported values"),
        ("json", "json", "gpt-4o-mini", "response_format", "expected an object"),
        ({}, "json", "gpt-4o-mini", "response_format.type", "Missing required parameter"),
        (
            {"type": "json_schema"},
            "x",
            "gpt-4o-mini",
            "response_format.json_schema",
            "Missing required parameter",
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "bad name!", "schema": {}}},
            "x",
            "gpt-4o-mini",
            "response_format.json_schema.name",
            "does not match pattern",
        ),
        (STRICT, "x", "gpt-3.5-turbo", "response_format", "not supported with this model"),
        (
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "v",
                    "strict": True,
                    "schema": {"type": "object", "properties": {"status": {"type": "string"}}},
                },
            },
            "x",
            "gpt-4o-mini",
            "response_format.json_schema",
            "'additionalProperties' is required to be supplied and to be false",
        ),
        (
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "v",
                    "strict": True,
                    "schema": {
                        "type": "object",
                        "properties": {"status": {"type": "string"}, "score": {"type": "number"}},
                        "required": ["status"],
                        "additionalProperties": False,
                    },
                },
            },
            "x",
            "gpt-4o-mini",
            "response_format.json_schema",
            "Missing 'score'",
        ),
    ],
)
async def test_bad_response_format_is_a_400_naming_the_parameter(
    client: httpx.AsyncClient,
    response_format: Any,
    prompt: str,
    model: str,
    param: str,
    words: str,
) -> None:
    """Each response_format the real service refuses is a 400 with its param and reason."""
    response = await client.post("/chat/completions", json=_chat(response_format, prompt, model))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert words in error["message"]


async def test_batch_line_with_a_bad_response_format_fails_alone(
    client: httpx.AsyncClient,
) -> None:
    """In a batch, a line whose response_format is refused fails with a 400; the others run."""
    good = request_line("good")
    good["body"]["response_format"] = STRICT
    bad = request_line("bad")  # JSON mode, and the prompt never says JSON
    bad["body"]["response_format"] = {"type": "json_object"}
    batch = await created_and_read(client, jsonl([good, bad]))
    assert batch["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    [ok] = await read_lines(client, batch["output_file_id"])
    [failed] = await read_lines(client, batch["error_file_id"])
    assert ok["custom_id"] == "good"
    reply = json.loads(ok["response"]["body"]["choices"][0]["message"]["content"])
    assert set(reply) == {"thinking", "status", "root_cause", "score"}
    assert failed["custom_id"] == "bad"
    assert failed["response"]["status_code"] == 400
    assert failed["response"]["body"]["error"]["param"] == "messages"
