"""Building a job's shards from any kind of transcript input, off the event loop.

Planning, rendering and encoding are CPU and file work, so they run in a worker thread. Sync
inputs are iterated there directly; an async iterable is pulled item by item from the event
loop (``anyio.from_thread``), so nothing materialises the whole set either way.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import msgspec

from kyro._build.plan_build import build_shards
from kyro._build.shards import BuildSummary
from kyro._config.judges import JudgesConfig
from kyro._exceptions import BatchValidationError
from kyro._job.stage_build import build_stage
from kyro._job.stage_files import TranscriptWriter
from kyro._provider import BatchProvider
from kyro._state.store import StateStore
from kyro._transcript_index import TranscriptIndexWriter
from kyro._transcripts import Transcript, aiter_transcripts, iter_transcripts
from kyro._verdicts.cache_gate import RequestGate

__all__ = ["build_job_shards"]


def _pull(transcripts: AsyncIterator[Transcript]) -> Iterator[Transcript]:
    """A sync iterator (for a worker thread) over an async one living on the event loop."""

    async def next_item() -> Transcript | None:
        try:
            return await transcripts.__anext__()
        except StopAsyncIteration:
            return None

    while True:
        item = anyio.from_thread.run(next_item)
        if item is None:
            return
        yield item


async def build_job_shards(
    config: JudgesConfig,
    transcripts: Any,
    *,
    runs: int,
    variables: dict[str, str],
    provider: BatchProvider,
    store: StateStore,
    samples: bool = False,
    gate: RequestGate | None = None,
    later: RequestGate | None = None,
) -> BuildSummary:
    """Write the job's shards and transcript index into the store's shard folder.

    ``samples`` sends each transcript × judge's runs as one request; ``gate`` answers runs
    from the reply cache (only the rest is written) and estimates the cost. For a pipeline,
    ``later`` is fed every later step's requests for every transcript (their ceiling).
    """
    store.ensure_dirs()
    shutil.rmtree(store.shards_dir, ignore_errors=True)  # leftovers of an interrupted plan
    shutil.rmtree(store.stages_dir, ignore_errors=True)
    store.ensure_dirs()
    if isinstance(transcripts, AsyncIterable):
        source: Iterator[Transcript] = _pull(aiter_transcripts(transcripts).__aiter__())
    else:
        source = iter_transcripts(transcripts)
    with store.writing(store.shards_dir):  # a full disk: a clear error, nothing sent
        if config.uses_pipeline:
            summary = await anyio.to_thread.run_sync(
                lambda: _first_stage(config, source, runs, variables, provider, store, gate, later)
            )
        else:
            summary = await anyio.to_thread.run_sync(
                lambda: build_shards(
                    config,
                    source,
                    encode=provider.encode,
                    limits=provider.limits,
                    directory=store.shards_dir,
                    runs=runs,
                    variables=variables,
                    samples=samples,
                    gate=gate,
                    encode_parts=getattr(provider, "encode_parts", None),
                )
            )
    if summary.transcripts == 0:
        raise BatchValidationError(
            "no transcripts were given, so there is nothing to submit; pass inline text, "
            "files, folders or a .jsonl dataset",
            path=config.path,
        )
    return summary


def _first_stage(
    config: JudgesConfig,
    source: Iterator[Transcript],
    runs: int,
    variables: dict[str, str],
    provider: BatchProvider,
    store: StateStore,
    gate: RequestGate | None,
    later: RequestGate | None,
) -> BuildSummary:
    """A pipeline's stage 0: its shards, plan, transcript index and kept transcripts."""
    count = 0

    def counted() -> Iterator[Transcript]:
        nonlocal count
        for transcript in source:
            count += 1
            yield transcript

    with (
        TranscriptIndexWriter(store.index_path) as index,
        TranscriptWriter(store.transcripts_path) as keep,
    ):
        summary, _ = build_stage(
            config,
            0,
            counted(),
            None,
            encode=provider.encode,
            limits=provider.limits,
            directory=store.shards_dir,
            plan_path=store.plan_path(0),
            runs=runs,
            variables=variables,
            index=index,
            keep=keep,
            gate=gate,
            later=later,
        )
    return msgspec.structs.replace(summary, transcripts=count)
