"""Result lines mapped to kyro's outcomes: succeeded, errored (retryable or not), canceled,
expired, and a tool_use reply read by kyro's verdict parser."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from kyro._verdicts.vote import parse_reply
from kyro.provider import ResultLine
from kyro_anthropic import AnthropicBatchProvider, classify_result
from kyro_anthropic._results import decode_line
from kyro_anthropic._wire import WireResult
from kyro_anthropic.testing import Emulator, LineFault
from tests.anthropic.anthropic_helpers import write_shard


async def _run(provider: AnthropicBatchProvider, path: Path) -> dict[str, ResultLine]:
    batch_id = await provider.submit(path, metadata={})
    status = await provider.poll(batch_id)
    assert status.terminal
    return {line.custom_id: line async for line in provider.results(batch_id)}


async def test_a_tool_use_reply_becomes_text_the_verdict_parser_reads(
    provider: AnthropicBatchProvider, tmp_path: Path
) -> None:
    """Succeeded lines are ok; the tool's input is the reply and parses into a verdict."""
    ids = write_shard(provider, tmp_path / "s.jsonl", 3)
    lines = await _run(provider, tmp_path / "s.jsonl")
    assert sorted(lines) == sorted(ids)
    for line in lines.values():
        assert line.ok
        assert line.error is None
        verdict = parse_reply(line.content)
        assert verdict.status in ("SUCCESS", "ERROR", "NA")
        assert "Emulated verdict" in (verdict.root_cause or "")
        assert line.usage is not None
        assert line.usage.total_tokens == line.usage.input_tokens + line.usage.output_tokens > 0


@pytest.mark.parametrize(
    ("error_type", "retryable"),
    [
        ("overloaded_error", True),
        ("api_error", True),
        ("rate_limit_error", True),
        ("timeout_error", True),
        ("invalid_request_error", False),
        ("permission_error", False),
        ("billing_error", False),
    ],
)
async def test_errored_lines_are_retryable_only_when_they_clear_with_time(
    provider: AnthropicBatchProvider,
    emulator: Emulator,
    tmp_path: Path,
    error_type: str,
    retryable: bool,
) -> None:
    """An errored request keeps its error type as code, retryable for load and server errors."""
    write_shard(provider, tmp_path / "s.jsonl", 2)
    emulator.faults.add(
        LineFault(mode="errored", error_type=error_type, custom_ids=frozenset({"t0-j0-r0"}))
    )
    lines = await _run(provider, tmp_path / "s.jsonl")
    failed = lines["t0-j0-r0"]
    assert not failed.ok
    assert failed.error is not None
    assert (failed.error.code, failed.error.retryable) == (error_type, retryable)
    assert failed.error.message == f"Injected {error_type} (emulated)."
    assert lines["t1-j0-r0"].ok


async def test_a_request_refused_when_the_batch_ran_is_not_retryable(
    emulator: Emulator, tmp_path: Path
) -> None:
    """A model the service does not know comes back errored, not_found_error, not retried."""
    import httpx

    from tests.anthropic.anthropic_helpers import fast_provider

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.app)) as client:
        provider = fast_provider(client, base_url="http://emulator", claude_only=False)
        write_shard(provider, tmp_path / "s.jsonl", 1, model="not-a-claude-model")
        (line,) = (await _run(provider, tmp_path / "s.jsonl")).values()
    assert line.error is not None
    assert (line.error.code, line.error.retryable) == ("not_found_error", False)


async def test_expired_and_canceled_requests_are_retryable_and_name_the_batch_state(
    provider: AnthropicBatchProvider, emulator: Emulator, tmp_path: Path
) -> None:
    """An expired batch ends EXPIRED: finished lines ok, the rest batch_expired, retryable."""
    write_shard(provider, tmp_path / "s.jsonl", 4)
    emulator.faults.expire_next(after_lines=1)
    batch_id = await provider.submit(tmp_path / "s.jsonl", metadata={})
    status = await provider.poll(batch_id)
    assert (status.state, status.request_counts.completed, status.request_counts.failed) == (
        "expired",
        1,
        3,
    )
    lines = [line async for line in provider.results(batch_id)]
    codes = sorted((line.error.code, line.error.retryable) for line in lines if line.error)
    assert codes == [("batch_expired", True)] * 3
    canceled = classify_result("t0", WireResult(type="canceled"))
    assert canceled.error is not None
    assert (canceled.error.code, canceled.error.retryable) == ("batch_cancelled", True)


async def test_a_prose_reply_stays_text_and_the_parser_errors_it(
    provider: AnthropicBatchProvider, emulator: Emulator, tmp_path: Path
) -> None:
    """A succeeded reply that is prose is returned as is; parsing it gives an errored run."""
    write_shard(provider, tmp_path / "s.jsonl", 1)
    emulator.faults.add(LineFault(mode="malformed", fraction=1.0))
    (line,) = (await _run(provider, tmp_path / "s.jsonl")).values()
    assert (line.ok, line.content) == (True, "I think it is fine.")
    verdict = parse_reply(line.content)
    assert verdict.status == "ERRORED"
    assert verdict.raw == "I think it is fine."


def test_unreadable_lines_are_reported_not_dropped() -> None:
    """A line with a custom_id but no readable result is a no_response failure; junk is None."""
    odd = decode_line(b'{"custom_id": "t0", "result": 7}')
    assert odd is not None
    assert odd.error is not None
    assert (odd.custom_id, odd.error.code, odd.error.retryable) == ("t0", "no_response", False)
    assert decode_line(b"not json") is None
    flat = decode_line(
        msgspec.json.encode(
            {
                "custom_id": "t1",
                "result": {"type": "errored", "error": {"type": "error", "message": "boom"}},
            }
        )
    )
    assert flat is not None
    assert flat.error is not None
    assert (flat.error.code, flat.error.message, flat.error.retryable) == (
        "api_error",
        "boom",
        True,
    )
