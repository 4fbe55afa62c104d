"""Encoding judge requests as Message Batches request lines: shape, contract, refusals."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import msgspec
import pytest

from kyro import BatchValidationError
from kyro._verdicts.vote import parse_reply
from kyro.provider import JudgeRequest, Message
from kyro_anthropic import (
    DEFAULT_MAX_TOKENS,
    VERDICT_SCHEMA,
    VERDICT_SYSTEM,
    VERDICT_TOOL,
    AnthropicBatchProvider,
    encode_request,
)
from tests.anthropic.anthropic_helpers import CREATE_ITEM_SCHEMA, MODEL, judge_request


def _line(request: JudgeRequest, **options: Any) -> dict[str, Any]:
    buffer = bytearray()
    encode_request(request, buffer, **options)
    assert buffer.endswith(b"\n")
    assert buffer.count(b"\n") == 1
    line: dict[str, Any] = json.loads(buffer)
    jsonschema.validate(line, CREATE_ITEM_SCHEMA)
    return line


def test_a_json_judge_becomes_a_forced_verdict_tool_call() -> None:
    """System messages and the contract go to ``system``; the verdict tool is forced."""
    line = _line(judge_request("t0-j0-r0"))
    params = line["params"]
    assert line["custom_id"] == "t0-j0-r0"
    assert params["model"] == MODEL
    assert params["max_tokens"] == DEFAULT_MAX_TOKENS
    assert params["system"] == "You are a strict evaluator.\n\n" + VERDICT_SYSTEM
    assert params["messages"] == [{"role": "user", "content": "Judge transcript t0-j0-r0."}]
    assert params["tools"] == [
        {"name": VERDICT_TOOL, "description": "Record the verdict.", "input_schema": VERDICT_SCHEMA}
    ]
    assert params["tool_choice"] == {"type": "tool", "name": VERDICT_TOOL}


def test_params_pass_through_and_max_tokens_is_overridable() -> None:
    """The judge's params land in ``params``; its ``max_tokens`` replaces the default."""
    params = {"max_tokens": 300, "temperature": 0, "stop_sequences": ["END"], "top_k": 5}
    line = _line(judge_request("t0-j0-r0", params=params))
    assert line["params"]["max_tokens"] == 300
    assert (line["params"]["temperature"], line["params"]["top_k"]) == (0, 5)
    assert line["params"]["stop_sequences"] == ["END"]
    assert list(line["params"]).count("max_tokens") == 1


def test_provider_max_tokens_default_is_used_when_params_set_none() -> None:
    """``AnthropicBatchProvider(max_tokens=…)`` is the default a judge may still override."""
    provider = AnthropicBatchProvider(api_key="k", max_tokens=512)
    buffer = bytearray()
    provider.encode(judge_request("t0-j0-r0"), buffer)
    provider.encode(judge_request("t1-j0-r0", params={"max_tokens": 64}), buffer)
    first, second = (json.loads(raw) for raw in buffer.splitlines())
    assert (first["params"]["max_tokens"], second["params"]["max_tokens"]) == (512, 64)


def test_a_text_judge_gets_no_tool() -> None:
    """Without ``json_output`` no tool is offered and no contract is added."""
    line = _line(judge_request("t0-j0-r0", json_output=False))
    assert "tools" not in line["params"]
    assert "tool_choice" not in line["params"]
    assert line["params"]["system"] == "You are a strict evaluator."


def test_extended_thinking_offers_the_tool_without_forcing_it() -> None:
    """The API refuses a forced tool with thinking on, so the choice becomes ``auto``."""
    thinking = {"type": "enabled", "budget_tokens": 1024}
    line = _line(judge_request("t0-j0-r0", params={"thinking": thinking, "max_tokens": 4096}))
    assert line["params"]["tool_choice"] == {"type": "auto"}
    assert line["params"]["thinking"] == thinking


def test_the_request_s_own_schema_replaces_the_provider_s() -> None:
    """A request carrying a verdict schema is encoded with it and without the local contract."""

    class WithSchema(JudgeRequest, frozen=True, kw_only=True):
        # A plain JSON Schema where the request type holds a ResponseSchema: encode must take it.
        response_schema: dict[str, Any] | None = None  # type: ignore[assignment]

    schema = {"type": "object", "properties": {"status": {"type": "string"}}}
    request = WithSchema(
        custom_id="t0-j0-r0",
        model=MODEL,
        messages=(Message(role="user", content="Judge."),),
        response_schema=schema,
    )
    line = _line(request)
    assert line["params"]["tools"][0]["input_schema"] == schema
    assert "system" not in line["params"]


def test_runs_sharing_params_encode_identically_but_for_the_custom_id() -> None:
    """Lines of runs that share messages and params differ only in their custom_id."""
    shared = {"temperature": 0}
    messages = (Message(role="user", content="Judge transcript 0."),)
    lines = [
        _line(
            JudgeRequest(custom_id=f"t0-j0-r{run}", model=MODEL, messages=messages, params=shared)
        )
        for run in range(3)
    ]
    bodies = {msgspec.json.encode(line["params"]) for line in lines}
    assert len(bodies) == 1
    assert [line["custom_id"] for line in lines] == ["t0-j0-r0", "t0-j0-r1", "t0-j0-r2"]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"max_completion_tokens": 10}, "'max_completion_tokens' is an OpenAI parameter"),
        ({"response_format": {"type": "json_object"}}, "forced tool call"),
        ({"seed": 1}, "'seed' is not a Messages API parameter"),
        ({"stream": True}, "params may not set 'stream'"),
        ({"tools": []}, "params may not set 'tools'"),
        ({"temperature": 2}, "it must be a number from 0 to 1"),
        ({"max_tokens": 0}, "it must be an integer of at least 1"),
        ({"max_tokens": True}, "it must be an integer of at least 1"),
    ],
)
def test_params_the_api_would_refuse_are_refused_at_plan_time(
    params: dict[str, Any], words: str
) -> None:
    """Bad params fail encoding with words saying the fix, not a day later per line."""
    with pytest.raises(BatchValidationError, match=words) as info:
        _line(judge_request("t0-j0-r0", params=params))
    assert "t0-j0-r0" in str(info.value)


@pytest.mark.parametrize("custom_id", ["t0.j0", "x" * 65, "id with space"])
def test_custom_ids_outside_the_api_pattern_are_refused(custom_id: str) -> None:
    """A custom_id the API would refuse at create fails encoding instead."""
    with pytest.raises(BatchValidationError, match="not valid for Anthropic"):
        _line(judge_request(custom_id))


def test_a_non_claude_model_is_refused_as_one_provider_per_job() -> None:
    """An OpenAI model in a job on the anthropic provider is refused, saying what to do."""
    with pytest.raises(BatchValidationError) as info:
        _line(judge_request("t0-j1-r0", model="gpt-4o-mini"))
    message = str(info.value)
    assert "'gpt-4o-mini'" in message
    assert "one job runs on one provider" in message
    assert "--provider openai" in message
    line = _line(judge_request("t0-j1-r0", model="my-proxy-model"), claude_only=False)
    assert line["params"]["model"] == "my-proxy-model"


def test_the_openai_endpoint_refuses_claude_models() -> None:
    """On OpenAI's own endpoint a Claude model is refused; a compatible server may take it."""
    from kyro_openai import OpenAIBatchProvider

    buffer = bytearray()
    with pytest.raises(BatchValidationError, match="--provider anthropic"):
        OpenAIBatchProvider(api_key="k").encode(judge_request("t0-j0-r0"), buffer)
    assert buffer == b""
    OpenAIBatchProvider(api_key="k", base_url="http://127.0.0.1:9/v1").encode(
        judge_request("t0-j0-r0"), buffer
    )
    assert json.loads(buffer)["body"]["model"] == MODEL


def test_roles_other_than_system_user_assistant_are_refused() -> None:
    """A ``tool`` message, or a request with only system messages, is a clear error."""
    odd = JudgeRequest(
        custom_id="t0-j0-r0", model=MODEL, messages=(Message(role="tool", content="x"),)
    )
    with pytest.raises(BatchValidationError, match="role 'tool'"):
        _line(odd)
    only_system = JudgeRequest(
        custom_id="t0-j0-r0", model=MODEL, messages=(Message(role="system", content="x"),)
    )
    with pytest.raises(BatchValidationError, match="no user message"):
        _line(only_system)


def test_the_verdict_schema_accepts_what_the_verdict_parser_reads() -> None:
    """An object valid under the verdict schema parses into a verdict with its fields."""
    verdict = {"status": "ERROR", "root_cause": "cites no source", "score": 0.2, "thinking": "…"}
    jsonschema.validate(verdict, VERDICT_SCHEMA)
    parsed = parse_reply(json.dumps(verdict))
    assert (parsed.status, parsed.root_cause, parsed.score) == ("ERROR", "cites no source", 0.2)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"status": "MAYBE", "root_cause": "x"}, VERDICT_SCHEMA)
