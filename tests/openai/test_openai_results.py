"""results(): streaming both result files, classifying lines, missing ids, drops, memory."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest

from kyro import KyroError, ProviderError
from kyro.provider import ResultLine
from kyro_openai import decode_output_line
from kyro_openai.wire import ChatBody, OutputLine
from kyro_openai.wire import classify_output_line as classify
from tests.openai.openai_fakes import FakeApi, batch_json


def ok_line(custom_id: str, content: str = '{"status": "SUCCESS"}') -> dict[str, Any]:
    """A successful chat completion line."""
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {
            "status_code": 200,
            "request_id": "req_1",
            "body": {
                "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 24, "completion_tokens": 15, "total_tokens": 39},
            },
        },
        "error": None,
    }


def http_error_line(custom_id: str, status: int, code: str | None) -> dict[str, Any]:
    """A line whose request reached the endpoint and was refused."""
    body = {"error": {"message": "refused", "type": "invalid_request_error", "code": code}}
    return {
        "id": "r",
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": "req_2", "body": body},
        "error": None,
    }


def error_line(custom_id: str, code: str) -> dict[str, Any]:
    """A line that failed without an HTTP reply."""
    return {
        "id": "r",
        "custom_id": custom_id,
        "response": None,
        "error": {
            "code": code,
            "message": "This request could not be executed before the completion window expired.",
        },
    }


def jsonl(*lines: dict[str, Any]) -> bytes:
    """Lines as a JSONL file."""
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def input_file(*ids: str) -> bytes:
    """An input file holding these custom_ids."""
    return b"".join(
        json.dumps(
            {
                "custom_id": i,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "m", "messages": []},
            }
        ).encode()
        + b"\n"
        for i in ids
    )


async def collect(api: FakeApi, batch_id: str = "batch_1", **options: Any) -> list[ResultLine]:
    """Every result line of a batch."""
    return [line async for line in api.provider(**options).results(batch_id)]


def as_line(data: dict[str, Any]) -> OutputLine[ChatBody]:
    """Decode a dict as a wire output line."""
    return msgspec.json.decode(json.dumps(data), type=OutputLine[ChatBody])


@pytest.mark.parametrize(
    ("line", "ok", "code", "retryable"),
    [
        (ok_line("a"), True, None, False),
        (
            http_error_line("a", 400, "context_length_exceeded"),
            False,
            "context_length_exceeded",
            False,
        ),
        (http_error_line("a", 400, None), False, "http_400", False),
        (http_error_line("a", 429, "rate_limit_exceeded"), False, "rate_limit_exceeded", True),
        (http_error_line("a", 429, "insufficient_quota"), False, "insufficient_quota", False),
        (http_error_line("a", 503, None), False, "http_503", True),
        (error_line("a", "batch_expired"), False, "batch_expired", True),
        (error_line("a", "batch_cancelled"), False, "batch_cancelled", True),
        ({**ok_line("a"), "error": {"code": "weird", "message": "x"}}, False, "weird", False),
        ({"custom_id": "a", "response": None, "error": None}, False, "no_response", False),
    ],
)
def test_classification_table(
    line: dict[str, Any], ok: bool, code: str | None, retryable: bool
) -> None:
    """ok only for error null + 2xx response; codes from error, body error, or http_<status>."""
    result = classify(as_line(line))
    assert result.ok is ok
    assert (result.error.code if result.error else None) == code
    assert (result.error.retryable if result.error else False) is retryable


def test_success_carries_content_and_usage() -> None:
    """A 200 line yields the assistant text and mapped token usage."""
    result = classify(as_line(ok_line("a", "verdict")))
    assert result.content == "verdict"
    assert result.usage is not None
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.total_tokens) == (
        24,
        15,
        39,
    )


async def test_output_then_error_file_each_id_once() -> None:
    """Both files are read, duplicates skipped, and no input lookup when the counts add up."""
    api = FakeApi()
    api.files["file-out"] = jsonl(ok_line("a"), ok_line("b"), ok_line("a"))
    api.files["file-err"] = jsonl(error_line("c", "batch_expired"))
    api.batches["batch_1"] = batch_json(
        status="expired",
        output_file_id="file-out",
        error_file_id="file-err",
        request_counts={"total": 3, "completed": 2, "failed": 1},
    )
    lines = await collect(api)
    assert [(line.custom_id, line.ok) for line in lines] == [("a", True), ("b", True), ("c", False)]
    assert "/v1/files/file-in/content" not in [r.url.path for r in api.requests]
    assert api.requests[1].headers["accept"] == "application/binary"


async def test_null_file_ids_and_zero_byte_error_file() -> None:
    """A null output id and Azure's 0-byte error file are both read as no lines."""
    api = FakeApi()
    api.files["file-err"] = b""
    api.files["file-in"] = input_file("a")
    api.batches["batch_1"] = batch_json(
        output_file_id=None,
        error_file_id="file-err",
        request_counts={"total": 1, "completed": 0, "failed": 0},
    )
    lines = await collect(api)
    assert [(line.custom_id, line.error.code if line.error else None) for line in lines] == [
        ("a", "missing")
    ]


async def test_missing_lines_are_reported_from_the_input_file() -> None:
    """Ids in the input file but in no result file come back as retryable 'missing'."""
    api = FakeApi()
    api.files["file-out"] = jsonl(ok_line("a"))
    api.files["file-in"] = input_file("a", "b", "c")
    api.batches["batch_1"] = batch_json(
        output_file_id="file-out", request_counts={"total": 3, "completed": 1, "failed": 0}
    )
    lines = await collect(api)
    missing = [line for line in lines if line.error and line.error.code == "missing"]
    assert [line.custom_id for line in missing] == ["b", "c"]
    assert all(line.error and line.error.retryable for line in missing)


async def test_results_of_a_running_batch_are_refused() -> None:
    """results() on a non-terminal batch says to poll first."""
    api = FakeApi()
    api.batches["batch_1"] = batch_json(status="in_progress")
    with pytest.raises(KyroError, match="still in_progress"):
        await collect(api)


async def test_transient_5xx_on_download_is_retried() -> None:
    """A 502 on the content GET before any line is retried."""
    api = FakeApi()
    api.files["file-out"] = jsonl(ok_line("a"))
    api.batches["batch_1"] = batch_json(
        output_file_id="file-out", request_counts={"total": 1, "completed": 1, "failed": 0}
    )
    api.script("GET", "/files/file-out/content", httpx.Response(502))
    lines = await collect(api)
    assert [line.custom_id for line in lines] == ["a"]


class DroppingStream(httpx.AsyncByteStream):
    """A body that sends some bytes, then loses the connection."""

    def __init__(self, data: bytes, cut: int) -> None:
        self.data = data
        self.cut = cut

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data[: self.cut]
        raise httpx.ReadError("connection reset by peer")


def dropping(data: bytes, cut: int) -> httpx.Response:
    """A 200 whose body drops after ``cut`` bytes."""
    return httpx.Response(200, stream=DroppingStream(data, cut))


async def test_dropped_download_resumes_without_repeating_lines() -> None:
    """A connection dropped mid-file is re-downloaded and already-yielded lines are skipped."""
    api = FakeApi()
    data = jsonl(*(ok_line(f"t{i}") for i in range(10)))
    api.files["file-out"] = data
    api.batches["batch_1"] = batch_json(
        output_file_id="file-out", request_counts={"total": 10, "completed": 10, "failed": 0}
    )
    cut = data.index(b"t4") + 10  # in the middle of the fifth line
    api.script("GET", "/files/file-out/content", dropping(data, cut))
    lines = await collect(api)
    assert [line.custom_id for line in lines] == [f"t{i}" for i in range(10)]
    downloads = [r for r in api.requests if r.url.path.endswith("/content")]
    assert len(downloads) == 2


async def test_download_that_keeps_dropping_raises_provider_error() -> None:
    """After max_retries resumptions a ProviderError chained from the drop is raised."""
    api = FakeApi()
    data = jsonl(ok_line("a"), ok_line("b"))
    api.files["file-out"] = data
    api.batches["batch_1"] = batch_json(output_file_id="file-out")
    api.script("GET", "/files/file-out/content", *(dropping(data, 5) for _ in range(3)))
    with pytest.raises(ProviderError, match="downloading file file-out") as info:
        await collect(api)
    assert info.value.status_code is None
    assert isinstance(info.value.__cause__, httpx.ReadError)


async def test_unreadable_line_is_an_error_not_a_crash() -> None:
    """A line of the wrong shape still reports its custom_id, as a failure."""
    api = FakeApi()
    api.files["file-out"] = jsonl({"custom_id": "a", "response": "garbage"}) + b"not json\n"
    api.files["file-in"] = input_file("a")
    api.batches["batch_1"] = batch_json(output_file_id="file-out")
    lines = await collect(api)
    assert [(line.custom_id, line.ok) for line in lines] == [("a", False)]


class BigOutput(httpx.AsyncByteStream):
    """An output file of ``lines`` ~2.6 KB lines generated on the fly (never held whole)."""

    def __init__(self, lines: int) -> None:
        self.lines = lines
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        padding = "x" * 2_400
        chunk: list[bytes] = []
        for index in range(self.lines):
            chunk.append(json.dumps(ok_line(f"t{index}", padding)).encode() + b"\n")
            if len(chunk) == 100:
                block = b"".join(chunk)
                self.sent += len(block)
                chunk = []
                yield block
        if chunk:
            block = b"".join(chunk)
            self.sent += len(block)
            yield block


@pytest.mark.slow
async def test_100mb_output_file_streams_with_flat_memory() -> None:
    """Reading a >100 MB output file keeps the traced peak far below the file's size."""
    count = 40_000
    api = FakeApi()
    stream = BigOutput(count)
    api.script("GET", "/files/file-big/content", lambda request: httpx.Response(200, stream=stream))
    api.batches["batch_1"] = batch_json(
        output_file_id="file-big",
        request_counts={"total": count, "completed": count, "failed": 0},
    )
    provider = api.provider()
    seen = 0
    tracemalloc.start()
    try:
        async for line in provider.results("batch_1"):
            seen += line.ok
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stream.sent > 100 * 1024 * 1024
    assert seen == count
    assert peak < 16 * 1024 * 1024  # the 40k-id seen-set plus a few chunks, not the file


def test_result_line_that_is_not_utf8_is_unreadable_not_a_crash() -> None:
    """A result line with bytes that are not UTF-8 reads as no line, whatever msgspec does."""
    assert decode_output_line(b'{"custom_id": "t0-j0-r0", "response": "\xff"}') is None
    assert decode_output_line(b'{"custom_id": "t0-j0-r0"}') is not None
