"""Input-file validation at the validating step: each failure code with its line number."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kyro_openai.testing import EmulatorConfig
from tests.emulator.emulator_helpers import (
    NOW,
    created_and_read,
    jsonl,
    request_line,
)


def _without(key: str) -> dict[str, Any]:
    line = request_line("x")
    del line[key]
    return line


CASES = [
    ([request_line("a"), "{not json"], "invalid_json_line", 2, None),
    ([request_line("a"), _without("custom_id")], "invalid_request", 2, "custom_id"),
    ([{**request_line("a"), "method": "GET"}], "invalid_request", 1, "method"),
    ([_without("url")], "invalid_request", 1, "url"),
    ([_without("body")], "invalid_request", 1, "body"),
    ([{**request_line("a"), "body": {"messages": []}}], "invalid_request", 1, "body.model"),
    (
        [request_line("a"), request_line("b"), request_line("a")],
        "duplicate_custom_id",
        3,
        "custom_id",
    ),
    ([request_line("a"), request_line("b", model="gpt-4o")], "model_mismatch", 2, "body.model"),
    ([request_line("a", url="/v1/embeddings")], "url_mismatch", 1, "url"),
    (["[1, 2]"], "invalid_request", 1, ""),
]


@pytest.mark.parametrize(("lines", "code", "line", "param"), CASES)
async def test_bad_line_fails_the_batch_with_its_line(
    client: httpx.AsyncClient, lines: list[Any], code: str, line: int, param: str | None
) -> None:
    """A bad input line fails the batch with its code and 1-based line number."""
    batch = await created_and_read(client, jsonl(lines))
    assert batch["status"] == "failed"
    assert batch["failed_at"] == int(NOW)
    assert batch["in_progress_at"] is None
    assert batch["output_file_id"] is None
    assert batch["error_file_id"] is None
    assert batch["errors"]["object"] == "list"
    [error] = batch["errors"]["data"]
    assert (error["code"], error["line"], error["param"]) == (code, line, param)
    assert error["message"]


async def test_blank_lines_are_skipped_but_numbered(client: httpx.AsyncClient) -> None:
    """Blank lines do not count as requests, yet later line numbers still include them."""
    data = jsonl([request_line("a"), "", request_line("a")])
    batch = await created_and_read(client, data)
    assert batch["errors"]["data"][0]["line"] == 3


async def test_several_bad_lines_are_all_reported(client: httpx.AsyncClient) -> None:
    """Each bad line contributes its own error, in file order."""
    data = jsonl(["oops", request_line("a"), request_line("a"), "{"])
    batch = await created_and_read(client, data)
    found = [(e["code"], e["line"]) for e in batch["errors"]["data"]]
    assert found == [("invalid_json_line", 1), ("duplicate_custom_id", 3), ("invalid_json_line", 4)]


async def test_empty_file(client: httpx.AsyncClient) -> None:
    """A file with no requests fails with ``empty_file`` and no line number."""
    batch = await created_and_read(client, b"\n")
    [error] = batch["errors"]["data"]
    assert (error["code"], error["line"]) == ("empty_file", None)


@pytest.mark.parametrize("config", [EmulatorConfig(max_requests=3)])
async def test_too_many_tasks(client: httpx.AsyncClient) -> None:
    """More requests than the configured limit fail with ``too_many_tasks``."""
    ok = await created_and_read(client, jsonl([request_line(f"a{i}") for i in range(3)]))
    assert ok["status"] == "completed"
    data = jsonl([request_line(f"a{i}") for i in range(4)])
    batch = await created_and_read(client, data)
    [error] = batch["errors"]["data"]
    assert error["code"] == "too_many_tasks"
    assert "4 requests" in error["message"]


async def test_default_request_limit_is_50000(client: httpx.AsyncClient) -> None:
    """The default limit is OpenAI's 50,000 requests per batch."""
    line = '{"custom_id":"c%d","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}\n'
    data = "".join(line % i for i in range(50_001)).encode()
    batch = await created_and_read(client, data)
    assert [e["code"] for e in batch["errors"]["data"]] == ["too_many_tasks"]


@pytest.mark.parametrize("config", [EmulatorConfig(max_bytes=100)])
async def test_byte_limit(client: httpx.AsyncClient) -> None:
    """A file over the configured byte limit fails before any line is read."""
    batch = await created_and_read(client, jsonl([request_line("a")] * 2))
    [error] = batch["errors"]["data"]
    assert (error["code"], error["line"]) == ("file_too_large", None)


async def test_line_that_is_not_utf8_fails_with_its_byte(client: httpx.AsyncClient) -> None:
    """Bytes that are not UTF-8 fail the batch at their line, naming the byte, on any msgspec."""
    data = jsonl([request_line("a")]) + b'{"custom_id": "b\xff"}\n'
    batch = await created_and_read(client, data)
    assert batch["status"] == "failed"
    (error,) = batch["errors"]["data"]
    assert (error["code"], error["line"]) == ("invalid_json_line", 2)
    assert error["message"] == "Line 2 is not valid UTF-8 (byte 16 of the line)."
