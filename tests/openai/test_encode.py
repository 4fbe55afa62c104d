"""OpenAI batch input lines: shape, spec conformance, params, and the per-run reuse."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from kyro import BatchValidationError, verdict_schema
from kyro._build.plan_build import build_shards
from kyro._contract import VERDICT_SCHEMA
from kyro._transcripts import Transcript
from kyro.provider import BatchLimits, JudgeRequest, Message
from kyro_openai import OPENAI_LIMITS, encode_request, supports_structured_outputs
from tests.plan_helpers import make_config, make_judge
from tests.spec_schemas import validate_component

# Stricter than the spec's BatchRequestInput (which requires nothing): what kyro promises.
LINE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["custom_id", "method", "url", "body"],
    "additionalProperties": False,
    "properties": {
        "custom_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
        "method": {"const": "POST"},
        "url": {"const": "/v1/chat/completions"},
        "body": {
            "type": "object",
            "required": ["model", "messages"],
            "not": {"required": ["stream"]},
            "properties": {
                "model": {"type": "string", "minLength": 1},
                "messages": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["role", "content"],
                        "additionalProperties": False,
                        "properties": {
                            "role": {"enum": ["system", "user"]},
                            "content": {"type": "string"},
                        },
                    },
                },
                "response_format": {
                    "oneOf": [
                        {"const": {"type": "json_object"}},
                        {
                            "type": "object",
                            "required": ["type", "json_schema"],
                            "properties": {
                                "type": {"const": "json_schema"},
                                "json_schema": {
                                    "type": "object",
                                    "required": ["name", "strict", "schema"],
                                },
                            },
                        },
                    ]
                },
            },
        },
    },
}


def check_line(raw: bytes) -> dict[str, Any]:
    """Validate one raw line against the spec and kyro's stricter schema; return it parsed."""
    assert raw.endswith(b"\n")
    assert raw.count(b"\n") == 1
    line: dict[str, Any] = json.loads(raw.decode("utf-8"))
    validate_component("BatchRequestInput", line)
    jsonschema.Draft202012Validator(LINE_SCHEMA).validate(line)
    return line


def make_request(custom_id: str = "t0-j0-r0", **kwargs: Any) -> JudgeRequest:
    kwargs.setdefault("model", "gpt-4o-mini")
    kwargs.setdefault("messages", (Message(role="user", content="Answer in JSON: 2+2?"),))
    return JudgeRequest(custom_id=custom_id, **kwargs)


def test_line_shape() -> None:
    """A request becomes {custom_id, method POST, url, body{model, messages, response_format}}."""
    buffer = bytearray()
    encode_request(make_request(), buffer)
    assert check_line(bytes(buffer)) == {
        "custom_id": "t0-j0-r0",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Answer in JSON: 2+2?"}],
            "response_format": {"type": "json_object"},
        },
    }


def test_params_are_merged_into_the_body() -> None:
    """The judge's params become body keys; no JSON output means no response_format."""
    buffer = bytearray()
    params = {"temperature": 0.2, "max_tokens": 300, "stop": ["\n\n"], "seed": 7}
    encode_request(make_request(params=params, json_output=False), buffer)
    body = check_line(bytes(buffer))["body"]
    assert "response_format" not in body
    assert {k: body[k] for k in params} == params


@pytest.mark.parametrize("key", ["model", "messages", "stream"])
def test_reserved_params_are_refused_without_touching_the_buffer(key: str) -> None:
    """params setting a key kyro owns (or stream) raise, and the buffer is left as it was."""
    buffer = bytearray(b"previous\n")
    with pytest.raises(BatchValidationError, match=key):
        encode_request(make_request("t9-j0-r0", params={key: 1}), buffer)
    assert buffer == b"previous\n"


def test_verdict_schema_becomes_structured_outputs_on_supporting_models() -> None:
    """A request with the verdict schema asks gpt-4o-mini for a strict json_schema reply."""
    buffer = bytearray()
    encode_request(make_request(response_schema=verdict_schema()), buffer)
    body = check_line(bytes(buffer))["body"]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "kyro_verdict", "strict": True, "schema": VERDICT_SCHEMA},
    }


@pytest.mark.parametrize(
    ("model", "forced", "kind"),
    [
        ("gpt-3.5-turbo", None, "json_object"),
        ("gpt-4o-2024-05-13", None, "json_object"),
        ("my-azure-deployment", None, "json_object"),
        ("my-azure-deployment", True, "json_schema"),
        ("gpt-4.1-mini", None, "json_schema"),
        ("gpt-4.1-mini", False, "json_object"),
    ],
)
def test_json_mode_where_structured_outputs_are_not_served(
    model: str, forced: bool | None, kind: str
) -> None:
    """Models without Structured Outputs get JSON mode; structured_outputs= forces either way."""
    buffer = bytearray()
    request = make_request(model=model, response_schema=verdict_schema())
    encode_request(request, buffer, structured_outputs=forced)
    assert check_line(bytes(buffer))["body"]["response_format"]["type"] == kind
    assert supports_structured_outputs(model) is (
        kind == "json_schema" if forced is None else not forced
    )


def test_judges_own_response_format_wins() -> None:
    """A response_format in params is sent as the judge wrote it, once, instead of kyro's."""
    own = {"type": "json_schema", "json_schema": {"name": "mine", "schema": {"type": "object"}}}
    buffer = bytearray()
    request = make_request(params={"response_format": own}, response_schema=verdict_schema())
    encode_request(request, buffer)
    assert bytes(buffer).count(b'"response_format"') == 1
    assert json.loads(buffer)["body"]["response_format"] == own


def test_reused_line_follows_the_response_format() -> None:
    """Two runs sharing messages but not structured-output support are not given one line."""
    messages = (Message(role="user", content="Grade it."),)
    lines = []
    for forced in (True, False):
        buffer = bytearray()
        request = make_request(messages=messages, response_schema=verdict_schema())
        encode_request(request, buffer, structured_outputs=forced)
        lines.append(json.loads(buffer)["body"]["response_format"]["type"])
    assert lines == ["json_schema", "json_object"]


def test_runs_reuse_the_line_but_change_the_custom_id() -> None:
    """Runs sharing one messages tuple give identical lines apart from custom_id."""
    messages = (
        Message(role="system", content="Be strict. JSON."),
        Message(role="user", content='ü\n"x"'),
    )
    params = {"temperature": 0}
    buffer = bytearray()
    for run in range(3):
        encode_request(make_request(f"t0-j0-r{run}", messages=messages, params=params), buffer)
    encode_request(make_request("t0-j0-r3", messages=messages, params={"temperature": 1}), buffer)
    encode_request(make_request("t0-j0-r4", messages=messages, model="gpt-4o"), buffer)
    encode_request(make_request("t0-j0-r5", messages=messages), buffer, url="/v1/other")
    lines = [json.loads(raw) for raw in buffer.splitlines()]
    assert [line["custom_id"] for line in lines] == [f"t0-j0-r{i}" for i in range(6)]
    assert lines[0]["body"] == lines[1]["body"] == lines[2]["body"]
    assert lines[3]["body"]["temperature"] == 1
    assert lines[4]["body"]["model"] == "gpt-4o"
    assert "temperature" not in lines[4]["body"]
    assert lines[5]["url"] == "/v1/other"


def test_params_changed_in_place_are_not_served_stale() -> None:
    """A params dict mutated between two requests is encoded afresh."""
    messages = (Message(role="user", content="JSON"),)
    params: dict[str, Any] = {"temperature": 0}
    buffer = bytearray()
    encode_request(make_request("t0-j0-r0", messages=messages, params=params), buffer)
    params["temperature"] = 1
    encode_request(make_request("t0-j0-r1", messages=messages, params=params), buffer)
    temps = [json.loads(raw)["body"]["temperature"] for raw in buffer.splitlines()]
    assert temps == [0, 1]


def test_utf8_without_bom_and_unescaped_text() -> None:
    """Lines are UTF-8 with no BOM; non-ASCII stays raw, control characters are escaped."""
    content = 'naïve 🚀 line\nbreak\ttab \u2028 "quoted" \\ JSON'
    buffer = bytearray()
    encode_request(make_request(messages=(Message(role="user", content=content),)), buffer)
    raw = bytes(buffer)
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert "naïve 🚀".encode() in raw
    assert check_line(raw)["body"]["messages"][0]["content"] == content


def test_openai_limits() -> None:
    """OpenAI's documented per-batch limits: 50,000 requests and 200 MB."""
    assert OPENAI_LIMITS.max_requests == 50_000
    assert OPENAI_LIMITS.max_bytes == 200 * 1024 * 1024


def test_every_written_line_matches_the_spec(tmp_path: Path) -> None:
    """Every line of planned, written shards validates against BatchRequestInput."""
    config = make_config(
        make_judge("a", "Reply in JSON about {{input}}", system="You are strict."),
        make_judge("b", "JSON: {{input.q}} / {{variables.product}}", model="gpt-4o",
                   params={"temperature": 0, "max_tokens": 50}),
    )  # fmt: skip
    transcripts = [
        Transcript(index=i, source=f"d.jsonl:{i + 1}", value={"q": f"question {i} ✓"})
        for i in range(25)
    ]
    summary = build_shards(
        config,
        transcripts,
        encode=encode_request,
        limits=BatchLimits(max_requests=20, max_bytes=1 << 20),
        directory=tmp_path,
        runs=3,
        variables={"product": "Acme"},
    )
    assert summary.requests == 150
    seen = set()
    for shard in summary.shards:
        for raw in Path(str(shard.path)).read_bytes().splitlines(keepends=True):
            line = check_line(raw)
            assert line["body"]["model"] == shard.model
            seen.add(line["custom_id"])
    assert len(seen) == 150
    assert all(re.fullmatch(r"t\d+-j[01]-r[0-2]", cid) for cid in seen)
