"""Typed errors: each is raised by a public call, and the class raised before still catches it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import kyro
from kyro import (
    AuthenticationError,
    BatchJobError,
    BatchJudge,
    BatchRunResult,
    BatchValidationError,
    JobBusyError,
    JobPendingError,
    KyroError,
    KyroJudge,
    NoJobError,
    ProviderError,
    ProviderNotFoundError,
)
from kyro._files import FileLock
from kyro.provider import RetryPolicy
from kyro.testing import FakeProvider
from kyro_anthropic import AnthropicBatchProvider
from kyro_local import LocalProvider
from kyro_openai import OpenAIBatchProvider
from tests.judge.judge_helpers import write_config

NO_RETRY = RetryPolicy(max_retries=0)


def _judge(tmp_path: Path, provider: Any = None, **options: Any) -> BatchJudge:
    config = write_config(tmp_path)
    if isinstance(provider, AnthropicBatchProvider):  # it runs Claude models only
        config.write_text(config.read_text().replace("gpt-4o-mini", "claude-3-5-haiku-latest"))
    return BatchJudge(
        provider if provider is not None else FakeProvider(polls_until_done=3),
        config,
        state_dir=tmp_path / "state",
        **options,
    )


async def test_submit_while_a_job_is_pending_raises_job_pending_error(tmp_path: Path) -> None:
    """A second submit raises JobPendingError naming the pending job; BatchValidationError
    (what was raised before) still catches it, and the pending job is kept."""
    judge = _judge(tmp_path)
    job_id = await judge.submit(["first"])
    with pytest.raises(BatchValidationError) as info:
        await judge.submit(["second"])
    error = info.value
    assert type(error) is JobPendingError
    assert error.job_id == job_id
    assert error.path == str(judge.state_path)
    assert f"job {job_id}" in str(error)
    assert "python3 -m kyro cancel" in str(error)
    assert (await judge.status()).job_id == job_id


@pytest.mark.parametrize("call", ["check", "status", "cancel"])
async def test_acting_on_no_job_raises_no_job_error(tmp_path: Path, call: str) -> None:
    """check(), status() and cancel() with nothing submitted raise NoJobError, still a
    BatchValidationError naming the state file that is missing."""
    judge = _judge(tmp_path)
    with pytest.raises(BatchValidationError) as info:
        await getattr(judge, call)()
    error = info.value
    assert type(error) is NoJobError
    assert error.job_id is None
    assert error.path == str(judge.state_path)
    assert not judge.state_path.exists()


async def test_checking_another_job_id_raises_no_job_error_with_that_id(tmp_path: Path) -> None:
    """After a job finished, check() of another job id raises NoJobError carrying that id."""
    judge = _judge(tmp_path, FakeProvider())
    job_id = await judge.submit(["only"])
    assert (await judge.check(job_id)) is not None
    with pytest.raises(NoJobError) as info:
        await judge.check("kyro-20300101-000000-abcdef")
    assert info.value.job_id == "kyro-20300101-000000-abcdef"
    assert "job kyro-20300101-000000-abcdef" in str(info.value)


async def test_a_held_lock_raises_job_busy_error(tmp_path: Path) -> None:
    """check() while another holder keeps the job's lock raises JobBusyError, a KyroError
    naming the lock file and the holder's pid."""
    judge = _judge(tmp_path, lock_timeout=0.2)
    await judge.submit(["first"])
    lock_path = judge.state_dir / "judges.batch.lock"
    assert lock_path.is_file()
    lock = FileLock(lock_path, purpose="check")
    await lock.acquire()
    try:
        with pytest.raises(KyroError) as info:
            await judge.check()
    finally:
        lock.release()
    error = info.value
    assert type(error) is JobBusyError
    assert (error.lock_path, error.pid) == (str(lock_path), os.getpid())
    assert await judge.check() is None  # free again: the job is simply still pending


def _refusing(status: int, body: dict[str, Any]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        headers = {"x-request-id": "req_7", "request-id": "req_7"}  # OpenAI, Anthropic
        return httpx.Response(status, json=body, headers=headers)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def _openai(status: int) -> OpenAIBatchProvider:
    body = {"error": {"message": "Incorrect API key", "type": "x", "code": "invalid_api_key"}}
    return OpenAIBatchProvider(
        api_key="sk-test",
        base_url="http://127.0.0.1:9/v1",
        client=_refusing(status, body),
        retry=NO_RETRY,
    )


def _anthropic(status: int) -> AnthropicBatchProvider:
    body = {"type": "error", "error": {"type": "authentication_error", "message": "bad key"}}
    return AnthropicBatchProvider(
        api_key="sk-ant-test",
        base_url="http://127.0.0.1:9",
        client=_refusing(status, body),
        retry=NO_RETRY,
    )


@pytest.mark.parametrize("make", [_openai, _anthropic], ids=["openai", "anthropic"])
@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_key_at_submit_raises_authentication_error(
    tmp_path: Path, make: Callable[[int], Any], status: int
) -> None:
    """A 401 or 403 from a batch provider at submit raises AuthenticationError, still a
    ProviderError with the status code and request id."""
    judge = _judge(tmp_path, make(status))
    with pytest.raises(ProviderError) as info:
        await judge.submit(["first"])
    error = info.value
    assert type(error) is AuthenticationError
    assert error.status_code == status
    assert error.request_id == "req_7"


@pytest.mark.parametrize("make", [_openai, _anthropic], ids=["openai", "anthropic"])
async def test_other_error_statuses_stay_plain_provider_errors(
    tmp_path: Path, make: Callable[[int], Any]
) -> None:
    """A 400 is a ProviderError but not an AuthenticationError: only refused credentials are."""
    judge = _judge(tmp_path, make(400))
    with pytest.raises(ProviderError) as info:
        await judge.submit(["first"])
    assert type(info.value) is ProviderError
    assert info.value.status_code == 400


async def test_a_refused_key_on_a_live_run_raises_authentication_error(tmp_path: Path) -> None:
    """KyroJudge.run through a LocalProvider whose endpoint answers 401 raises
    AuthenticationError, still a ProviderError."""
    body = {"error": {"message": "no such key", "code": "invalid_api_key"}}
    provider = LocalProvider(
        "http://127.0.0.1:9/v1",
        api_key="sk-test",
        client=_refusing(401, body),
        retry=NO_RETRY,
        state_dir=tmp_path / "local",
    )
    live = KyroJudge(write_config(tmp_path), provider=provider)
    with pytest.raises(ProviderError) as info:
        await live.run("an exchange")
    assert type(info.value) is AuthenticationError
    assert info.value.status_code == 401


def test_an_unknown_provider_raises_provider_not_found_error() -> None:
    """get_provider() of an unknown name raises ProviderNotFoundError, still a KyroError,
    carrying the name and the providers that are installed."""
    with pytest.raises(KyroError) as info:
        kyro.get_provider("opnai")
    error = info.value
    assert type(error) is ProviderNotFoundError
    assert error.name == "opnai"
    assert {"openai", "local", "anthropic"} <= set(error.available)
    assert "unknown provider 'opnai'" in str(error)


async def test_a_cancelled_job_raises_batch_job_error_with_a_typed_result(tmp_path: Path) -> None:
    """A cancelled job's check() raises BatchJobError whose status is 'cancelled' and whose
    result is the partial BatchRunResult written to disk."""
    judge = _judge(tmp_path, FakeProvider(polls_until_done=5))
    job_id = await judge.submit(["first", "second"])
    await judge.cancel()
    with pytest.raises(BatchJobError) as info:
        await judge.check()
    error = info.value
    assert (error.job_id, error.status) == (job_id, "cancelled")
    assert isinstance(error.result, BatchRunResult)
    assert error.result.counts.transcripts == 2
    assert error.result.results_path.is_file()


async def test_result_counts_are_frozen(tmp_path: Path) -> None:
    """A finished result's counts cannot be changed behind the results file's back."""
    judge = _judge(tmp_path, FakeProvider())
    await judge.submit(["first"])
    result = await judge.check()
    assert result is not None
    assert result.counts.success == 1
    with pytest.raises(AttributeError):
        result.counts.success = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        result.counts.judges["tone"].success = 5  # type: ignore[misc]
    assert result.counts.judges["tone"].success == 1
