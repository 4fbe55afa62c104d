"""Executions through a batch provider: one batch each, polled in the background, half price."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serve_helpers import AUTH, SEED_INPUTS, make_service, post, serving, wait_for

from kyro_openai import OpenAIBatchProvider
from kyro_openai.testing import Emulator, EmulatorConfig, serve

NOW = 1_700_000_000.0


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """An OpenAI batch emulator whose batches stay in progress until the clock moves 60 s."""
    with Emulator(EmulatorConfig(in_progress_seconds=60), clock=lambda: NOW) as emulator:
        yield emulator


def test_a_batch_execution_stays_processing_until_the_batch_is_done(
    tmp_path: Path, judges_dir: Path, emulator: Emulator
) -> None:
    """Through the Batch API an execution is one batch, processing while it runs, then done."""
    with serve(emulator) as api:
        service = make_service(
            [judges_dir],
            tmp_path / "data",
            lambda folder: OpenAIBatchProvider(base_url=api, api_key="emulated"),
            groups=1,
            poll_interval=0.05,
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
