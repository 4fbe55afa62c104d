"""Runs as samples on the OpenAI wire: ``n`` in the body, every choice read back in order."""

from __future__ import annotations

import json

import msgspec
import pytest

from kyro import BatchValidationError
from kyro.provider import JudgeRequest, Message, Usage
from kyro_openai import encode_request
from kyro_openai.wire import ChatBody, OutputLine
from kyro_openai.wire import classify_output_line as classify

MESSAGES = (Message(role="user", content="Reply in JSON: is it polite?"),)


def _body(request: JudgeRequest) -> dict[str, object]:
    buffer = bytearray()
    encode_request(request, buffer)
    line: dict[str, object] = json.loads(buffer)
    body = line["body"]
    assert isinstance(body, dict)
    return body


def test_samples_become_n_and_one_sample_sends_none() -> None:
    """samples=3 writes "n": 3; samples=1 writes no n, even right after an n request."""
    three = JudgeRequest(custom_id="t0-j0-r0", model="m", messages=MESSAGES, samples=3)
    one = JudgeRequest(custom_id="t0-j0-r1", model="m", messages=MESSAGES)
    assert _body(three)["n"] == 3
    assert "n" not in _body(one)
    # Same messages object as the previous line: the reuse path must not copy "n" over.
    buffer = bytearray()
    encode_request(three, buffer)
    encode_request(one, buffer)
    first, second = (json.loads(raw) for raw in buffer.splitlines())
    assert first["body"]["n"] == 3
    assert "n" not in second["body"]


def test_users_own_n_is_refused() -> None:
    """params.n other than 1 is refused (it would multiply the bill behind kyro's back);
    n: 1 is dropped, so kyro's own n is the only one sent."""
    request = JudgeRequest(custom_id="t0-j0-r0", model="m", messages=MESSAGES, params={"n": 5})
    with pytest.raises(BatchValidationError, match="params may not set n") as info:
        encode_request(request, bytearray())
    assert "runs" in str(info.value)
    alone = JudgeRequest(
        custom_id="t0-j0-r0", model="m", messages=MESSAGES, params={"n": 1}, samples=3
    )
    assert _body(alone)["n"] == 3
    mixed = JudgeRequest(
        custom_id="t0-j0-r0", model="m", messages=MESSAGES, params={"n": 1, "temperature": 0}
    )
    body = _body(mixed)
    assert "n" not in body
    assert body["temperature"] == 0


def test_classify_reads_every_choice_in_index_order() -> None:
    """A 200 line with several choices lists them by index; usage keeps cached tokens."""
    body = {
        "choices": [
            {"index": 1, "message": {"content": "B"}},
            {"index": 0, "message": {"content": "A"}},
            {"index": 2, "message": {"content": "C"}},
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 30,
            "total_tokens": 130,
            "prompt_tokens_details": {"cached_tokens": 64},
        },
    }
    raw = {"custom_id": "t0-j0-r0", "response": {"status_code": 200, "body": body}}
    line = classify(msgspec.json.decode(json.dumps(raw), type=OutputLine[ChatBody]))
    assert line.ok
    assert line.content == "A"
    assert line.choices == ("A", "B", "C")
    assert line.usage == Usage(
        input_tokens=100, output_tokens=30, total_tokens=130, cached_input_tokens=64
    )
    single = {
        "custom_id": "x",
        "response": {"status_code": 200, "body": {"choices": [{"message": {"content": "only"}}]}},
    }
    one = classify(msgspec.json.decode(json.dumps(single), type=OutputLine[ChatBody]))
    assert (one.content, one.choices) == ("only", ())
