"""Run one ``python -m kyro`` command that kills itself (SIGKILL) at a named cut point.

Usage: ``python tests/support/kyro_child.py CUT -- COMMAND ARGS...`` where ``CUT`` is one of
:data:`CUTS` or ``none``. The cut point is installed by wrapping kyro's own functions in this
process only, then ``kyro.cli.main`` runs the command exactly as ``python -m kyro`` would.
A SIGKILL gives kyro no chance to clean up: no ``finally``, no ``atexit``, no flush.

Cut points are installed on both batch providers; the command's ``--provider`` decides which
one meets them. On Message Batches there is no upload: ``mid_upload`` cuts the create body's
stream and ``after_upload`` falls after the shard was measured, before the create is sent.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import kyro_anthropic._provider
from kyro._state.schema import JobState
from kyro._state.store import StateStore
from kyro.cli import main
from kyro_anthropic import AnthropicBatchProvider
from kyro_anthropic._body import RequestsBody
from kyro_openai import OpenAIBatchProvider
from kyro_openai._upload import MultipartFile

__all__ = ["CHECK_CUTS", "CUTS", "STAGE_CUTS", "SUBMIT_CUTS"]

SUBMIT_CUTS = (
    "after_plan",
    "intent_saved",
    "mid_upload",
    "after_upload",
    "after_create",
    "between_shards",
)
"""Cut points met by ``submit``, in the order a submission meets them."""

CHECK_CUTS = ("mid_download", "download_marked", "after_results", "before_clear")
"""Cut points met by ``check``, in the order a collection meets them."""

CUTS = SUBMIT_CUTS + CHECK_CUTS

STAGE_CUTS = (
    "stage_aggregated",
    "stage_planning",
    "stage_written",
    "stage_committed",
    "stage_intent",
    "stage_uploaded",
    "stage_created",
)
"""Cut points of a pipeline's ``check`` as it goes from stage 0 to stage 1, in order: the
stage's outcomes written, the next stage half planned, its shards written, the new stage
saved (commit point), a batch's intent saved, its file uploaded, the batch created."""


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _after_save(when: Callable[[JobState], bool]) -> None:
    save = StateStore.save

    @functools.wraps(save)
    def wrapped(self: StateStore, state: JobState) -> None:
        save(self, state)
        if when(state):
            _die()

    StateStore.save = wrapped  # type: ignore[method-assign]


def _attempts(state: JobState) -> list[Any]:
    return [a for s in state.shards for a in s.attempts]


def _install(cut: str) -> None:
    if cut == "after_plan":

        def before_first_save(self: StateStore, state: JobState) -> None:
            _die()

        StateStore.save = before_first_save  # type: ignore[method-assign]
    elif cut == "intent_saved":
        _after_save(lambda s: any(a.batch_id is None for a in _attempts(s)))
    elif cut == "between_shards":
        _after_save(
            lambda s: (
                any(a.batch_id for a in _attempts(s))
                and any(not shard.attempts for shard in s.shards)
            )
        )
    elif cut == "download_marked":
        _after_save(lambda s: any(a.downloaded for a in _attempts(s)))
    elif cut == "mid_upload":
        for body_class in (MultipartFile, RequestsBody):
            _cut_stream(body_class)
    elif cut in ("after_upload", "after_create"):
        name = "_upload" if cut == "after_upload" else "_create"
        _die_after(OpenAIBatchProvider, name)
        if cut == "after_create":
            _die_after(AnthropicBatchProvider, "_create")
        else:
            _die_after(kyro_anthropic._provider, "scan_shard")
    elif cut == "mid_download":
        for provider_class in (OpenAIBatchProvider, AnthropicBatchProvider):
            _cut_results(provider_class)
    elif cut in ("after_results", "before_clear"):
        name = "finish" if cut == "after_results" else "clear"

        def die_first(self: StateStore, *args: Any, **kwargs: Any) -> None:
            _die()

        setattr(StateStore, name, die_first)
    elif cut.startswith("stage_"):
        _install_stage_cut(cut)
    elif cut != "none":
        raise SystemExit(f"unknown cut point {cut!r}; known: {', '.join(CUTS + STAGE_CUTS)}")


def _install_stage_cut(cut: str) -> None:
    """Cut points of the move from pipeline stage 0 to stage 1 inside ``check``."""
    import kyro._job.stage_job
    from kyro._build.shards import ShardBuilder

    if cut == "stage_aggregated":
        write_lines = kyro._job.stage_job.write_lines  # type: ignore[attr-defined]

        def written_then_die(path: Any, items: Any) -> int:
            count: int = write_lines(path, items)
            _die()
            return count

        setattr(kyro._job.stage_job, "write_lines", written_then_die)  # noqa: B010  # not re-exported
    elif cut == "stage_planning":
        add = ShardBuilder.add

        def add_then_die(self: ShardBuilder, request: Any) -> bool:
            added = add(self, request)
            if request.custom_id.startswith("s1-"):
                _die()
            return added

        ShardBuilder.add = add_then_die  # type: ignore[method-assign]
    elif cut == "stage_written":
        build = kyro._job.stage_job.build_stage  # type: ignore[attr-defined]

        def built_then_die(*args: Any, **kwargs: Any) -> Any:
            built = build(*args, **kwargs)
            _die()
            return built

        setattr(kyro._job.stage_job, "build_stage", built_then_die)  # noqa: B010  # not re-exported
    elif cut == "stage_committed":
        _after_save(lambda s: s.stage >= 1 and any(not shard.attempts for shard in s.shards))
    elif cut == "stage_intent":
        _after_save(
            lambda s: any(
                a.batch_id is None for shard in s.shards if shard.stage >= 1 for a in shard.attempts
            )
        )
    elif cut in ("stage_uploaded", "stage_created"):
        # In check, the first upload and creation are those of stage 1.
        _install("after_upload" if cut == "stage_uploaded" else "after_create")
    else:
        raise SystemExit(f"unknown cut point {cut!r}; known: {', '.join(STAGE_CUTS)}")


def _cut_stream(body_class: Any) -> None:
    stream = body_class.stream

    async def cut_stream(self: Any) -> AsyncIterator[bytes]:
        sent = 0
        async for chunk in stream(self):
            if sent == 2:  # the body's head and its first chunk are on the wire
                _die()
            sent += 1
            yield chunk

    body_class.stream = cut_stream


def _die_after(owner: Any, name: str) -> None:
    original = getattr(owner, name)

    async def then_die(*args: Any) -> Any:
        value = await original(*args)
        _die()
        return value

    setattr(owner, name, then_die)


def _cut_results(provider_class: Any) -> None:
    results = provider_class.results

    async def cut_results(self: Any, batch_id: str) -> AsyncIterator[Any]:
        async for line in results(self, batch_id):
            yield line
            _die()  # one line is in the download's temp file, the rest never comes

    provider_class.results = cut_results


if __name__ == "__main__":
    cut_point, separator, *command = sys.argv[1:]
    assert separator == "--", "usage: kyro_child.py CUT -- COMMAND ARGS..."
    _install(cut_point)
    sys.exit(main(command))
