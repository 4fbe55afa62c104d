"""The batch line format's bytes, pinned: request lines and result lines against golden files.

The golden files were written by the encoder and the line writers as they stood before the
format got its one owner (``kyro_openai.wire``); every line must still come out byte for byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from kyro import verdict_schema
from kyro.provider import JudgeRequest, Message, ResponseSchema
from kyro_openai.wire import LineError, LineResponse, OutputLine, encode_request

DATA = Path(__file__).parent / "data"
_SCHEMA = verdict_schema()
_CUSTOM = ResponseSchema(
    name="custom", strict=False, schema={"type": "object", "properties": {"a": {"type": "integer"}}}
)
_SHARED = (
    Message(role="system", content="You are a judge. Reply with JSON."),
    Message(role="user", content='Transcript: «héllo» "quoted" \\ back\nnew line \u2028 ☃'),
)


def request_cases() -> list[tuple[JudgeRequest, dict[str, Any]]]:
    """Requests covering every branch of the encoder: formats, params, samples, url, reuse."""
    user = (Message(role="user", content="Is it relevant?"),)
    temperature = {"temperature": 0, "max_tokens": 300}
    return [
        (JudgeRequest(custom_id="t0-j0-r0", model="gpt-4o-mini", messages=user), {}),
        (JudgeRequest(custom_id="t0-j0-r1", model="gpt-4o-mini", messages=user), {}),
        (
            JudgeRequest(
                custom_id="t1-j0-r0", model="gpt-4o", messages=_SHARED, response_schema=_SCHEMA
            ),
            {},
        ),
        (
            JudgeRequest(
                custom_id="t1-j0-r1", model="gpt-4o", messages=_SHARED, response_schema=_SCHEMA
            ),
            {},
        ),
        (
            JudgeRequest(
                custom_id="t1-j1-r0",
                model="gpt-3.5-turbo",
                messages=_SHARED,
                response_schema=_SCHEMA,
                params=temperature,
            ),
            {},
        ),
        (
            JudgeRequest(
                custom_id="t1-j2-r0",
                model="gpt-4o-mini",
                messages=_SHARED,
                params={"response_format": {"type": "text"}, "seed": 7},
            ),
            {},
        ),
        (
            JudgeRequest(
                custom_id="t2-j0-r0",
                model="gpt-4o-mini",
                messages=user,
                params={"n": 1, "top_p": 0.5},
            ),
            {},
        ),
        (
            JudgeRequest(
                custom_id="t2-j1-r0",
                model="gpt-4.1",
                messages=user,
                response_schema=_CUSTOM,
                samples=3,
            ),
            {},
        ),
        (
            JudgeRequest(custom_id="t3-j0-r0", model="my-local", messages=user, json_output=False),
            {},
        ),
        (
            JudgeRequest(
                custom_id="t3-j1-r0", model="gpt-4o-mini", messages=user, response_schema=_SCHEMA
            ),
            {"structured_outputs": False},
        ),
        (
            JudgeRequest(
                custom_id="t3-j2-r0", model="deployment-x", messages=user, response_schema=_SCHEMA
            ),
            {"structured_outputs": True, "url": "/v1/chat/completions?api-version=x"},
        ),
    ]


def result_lines() -> list[OutputLine[Any]]:
    """Result lines as the emulator (dict bodies) and kyro_local (raw bodies) write them."""
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": '{"status":"SUCCESS"}'}}
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }
    raw = msgspec.Raw(b'{"choices":[{"message":{"content":"ok"}}]}')
    expired = LineError(code="batch_expired", message="not executed before the window expired")
    return [
        OutputLine(
            id="batch_req_1",
            custom_id="t0-j0-r0",
            response=LineResponse(status_code=200, request_id="req_1", body=completion),
            error=None,
        ),
        OutputLine(id="batch_req_2", custom_id="t0-j0-r1", response=None, error=expired),
        OutputLine(
            id="b_req_3",
            custom_id="t0-j1-r0",
            response=LineResponse(status_code=200, request_id=None, body=raw),
        ),
        OutputLine(
            id="b_req_4",
            custom_id="t0-j2-r0",
            response=LineResponse(status_code=502, request_id="r"),
            error=LineError(code="invalid_response", message="not JSON"),
        ),
        OutputLine(
            id="b_req_5",
            custom_id="line-5",
            error=LineError(code="timeout", message="no reply within 30 s"),
        ),
    ]


def test_request_lines_match_the_golden_file_byte_for_byte() -> None:
    """Every request encodes to exactly the bytes the encoder wrote before the move."""
    buffer = bytearray()
    for request, options in request_cases():
        encode_request(request, buffer, **options)
    golden = (DATA / "wire_request_lines.jsonl").read_bytes()
    assert buffer.count(b"\n") == len(request_cases())
    assert bytes(buffer).splitlines() == golden.splitlines()
    assert bytes(buffer) == golden


def test_result_lines_match_the_golden_file_byte_for_byte() -> None:
    """Result lines written through the shared structs keep the writers' former bytes."""
    encoder = msgspec.json.Encoder()
    written = b"".join(encoder.encode(line) + b"\n" for line in result_lines())
    golden = (DATA / "wire_result_lines.jsonl").read_bytes()
    assert written.splitlines() == golden.splitlines()
    assert written == golden
