"""Executions through a batch provider: one batch each, polled in the background, half price."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from kyro.provider import RetryPolicy
from kyro.serve import ProviderFactory
from kyro_openai import OpenAIBatchProvider
from kyro_openai.testing import Emulator, EmulatorConfig, HttpErrorFault, serve
from tests.serve.serve_helpers import (
    AUTH,
    SEED_INPUTS,
    batch,
    make_service,
    post,
    serving,
    wait_for,
)

NOW = 1_700_000_000.0


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """An OpenAI batch emulator whose batches stay in progress until the clock moves 60 s."""
    with Emulator(EmulatorConfig(in_progress_seconds=60), clock=lambda: NOW) as emulator:
        yield emulator


@pytest.mark.slow  # end to end over HTTP
def test_a_batch_execution_stays_processing_until_the_batch_is_done(
    tmp_path: Path, judges_dir: Path, emulator: Emulator
) -> None:
    """Through the Batch API an execution is one batch, processing while it runs, then done."""
    with serve(emulator) as api:
        service = make_service(
            [judges_dir],
            tmp_path / "data",
            batch(lambda folder: OpenAIBatchProvider(base_url=api, api_key="emulated")),
        )
        with serving(service) as base, httpx.Client(base_url=base, headers=AUTH) as client:
            execution_id = post(client, "relevance", {"inputs": SEED_INPUTS, "tags": ["batch"]})
            deadline = time.monotonic() + 20
            while emulator.stats().batches_created == 0:
                assert time.monotonic() < deadline, "no batch was created"
                time.sleep(0.02)
            time.sleep(0.3)  # several polls while the batch is in progress
            view = client.get(f"/v1/judges/batch-executions/{execution_id}/").json()
            assert view["status"] == "processing"
            assert [i["status"] for i in view["items"]] == ["processing"] * 3
            emulator.advance(60)
            view = wait_for(client, execution_id)
    assert view["status"] == "completed"
    assert view["completed_count"] == 3
    for item in view["items"]:
        (result,) = item["evaluator_results"]
        assert result["evaluator_name"] == "Relevance"
        assert result["score"] in (1.0, 0.0, None)
        assert "emulated" in (result["justification"] or "").lower()
    stats = emulator.stats()
    assert stats.batches_created == 1
    assert stats.files_uploaded == 1
    assert stats.chat_completions == 0


async def _short(seconds: float) -> None:
    await anyio.sleep(min(seconds, 0.05))


def _no_retries(api: str) -> ProviderFactory:
    return lambda folder: OpenAIBatchProvider(
        base_url=api, api_key="emulated", retry=RetryPolicy(max_retries=0)
    )


@pytest.mark.slow  # the service retries an outage end to end
def test_a_provider_outage_is_retried_until_it_ends(tmp_path: Path, judges_dir: Path) -> None:
    """Calls failing with 503 are tried again by the service until they pass: one batch."""
    with Emulator(EmulatorConfig(), clock=lambda: NOW) as emulator, serve(emulator) as api:
        emulator.faults.server_error(times=4, status=503)
        service = make_service(
            [judges_dir], tmp_path / "data", batch(_no_retries(api), sleep=_short)
        )
        with serving(service) as base, httpx.Client(base_url=base, headers=AUTH) as client:
            view = wait_for(client, post(client, "relevance", {"inputs": SEED_INPUTS}))
        stats = emulator.stats()
    assert view["status"] == "completed", view["items"][0]["error"]
    assert view["completed_count"] == 3
    assert stats.faults_fired == 4
    assert stats.batches_created == 1


def test_a_refusing_provider_fails_the_execution(tmp_path: Path, judges_dir: Path) -> None:
    """A 401 is not retried: the items fail with the provider's error, no batch is made."""
    with Emulator(EmulatorConfig(), clock=lambda: NOW) as emulator, serve(emulator) as api:
        emulator.faults.add(HttpErrorFault(status=401, code="invalid_api_key", times=None))
        service = make_service(
            [judges_dir], tmp_path / "data", batch(_no_retries(api), sleep=_short)
        )
        with serving(service) as base, httpx.Client(base_url=base, headers=AUTH) as client:
            view = wait_for(client, post(client, "relevance", {"inputs": SEED_INPUTS}))
        stats = emulator.stats()
    assert view["status"] == "failed"
    assert view["error"]["code"] == "all_items_failed"
    codes = {item["error"]["code"] for item in view["items"]}
    assert codes == {"provider_error"}
    assert "HTTP 401" in view["items"][0]["error"]["message"]
    assert "emulated" not in view["items"][0]["error"]["message"]
    assert stats.batches_created == 0
    assert stats.faults_fired == 1


def test_the_same_inputs_twice_are_judged_twice(tmp_path: Path, judges_dir: Path) -> None:
    """The service keeps no reply cache: a second execution of the same inputs is sent again
    as its own batch, and no cache folder is written."""
    with Emulator(EmulatorConfig(), clock=lambda: NOW) as emulator, serve(emulator) as api:
        factory = batch(lambda _: OpenAIBatchProvider(base_url=api, api_key="emulated"))
        service = make_service([judges_dir], tmp_path / "data", factory)
        with serving(service) as base, httpx.Client(base_url=base, headers=AUTH) as client:
            views = [
                wait_for(client, post(client, "relevance", {"inputs": SEED_INPUTS}))
                for _ in range(2)
            ]
        stats = emulator.stats()
    assert [v["completed_count"] for v in views] == [3, 3]
    assert stats.batches_created == 2
    assert stats.files_uploaded == 2
    assert not [p for p in (tmp_path / "data").rglob("*") if "cache" in p.name]
