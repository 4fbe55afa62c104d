"""Running an execution's items: the one interface the workers use, and its BatchJudge form.

An :class:`Executor` gets an execution's items and the config of its judge version and
reports each item's outcome as it finishes. Two ship: :class:`kyro.serve.LiveExecutor`
(a live provider, item by item) and :class:`BatchJudgeExecutor` here, for batch providers.

:class:`BatchJudgeExecutor` runs an execution as one :class:`kyro.BatchJudge` job (or, with
``groups``, a few) with its own state folder under the data folder, so everything BatchJudge
guarantees holds: the intent is on disk before each remote step, and a restarted server
resumes the job with ``check()`` — adopting the batch it already created — instead of sending
it again. The execution is one batch at half price, its items ``processing`` while the batch
is polled every ``poll_interval`` seconds; a pipeline config runs as BatchJudge's staged job
(each ``check`` that finds a stage done submits the next). Groups are fixed by the
execution's size, never by what is left, so a resumed group is the same job with the same
items; a group whose outcomes are recorded is skipped on resume. The jobs use no reply cache:
every item is sent.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import anyio
import anyio.to_thread
import msgspec
import tenacity

from kyro import (
    BatchJobError,
    BatchJudge,
    BatchRunResult,
    BatchValidationError,
    KyroError,
    ProviderError,
)
from kyro.provider import BatchProvider
from kyro.serve._outcomes import failed_outcome, outcomes_of

__all__ = [
    "BatchJudgeExecutor",
    "Executor",
    "ProviderFactory",
    "Reporter",
    "Work",
    "transcript_value",
]

_log = logging.getLogger("kyro.serve")

ProviderFactory = Callable[[Path], BatchProvider]
"""Makes the provider for one group, given a folder the provider may keep its files in."""


class Work(msgspec.Struct, frozen=True, kw_only=True):
    """An execution to run: every input (index order), those already done, the config file."""

    execution_id: str
    config_path: Path
    evaluators: tuple[str, ...]
    inputs: tuple[dict[str, Any], ...]
    done: frozenset[int] = frozenset()


class Reporter(Protocol):
    """Where an executor reports progress.

    ``started`` is queued for the next commit (progress shown to clients; always written
    before the item's outcome); ``finished`` returns once the outcomes are committed.
    """

    async def started(self, indices: Sequence[int]) -> None:
        """These items are being evaluated now."""
        ...

    async def finished(self, outcomes: Sequence[Any]) -> None:
        """These items are done (``ItemOutcome`` each); committed when this returns."""
        ...


class Executor(Protocol):
    """Runs the items of one execution, reporting each as it finishes."""

    async def execute(self, work: Work, report: Reporter) -> None:
        """Run every item of ``work`` not in ``work.done``; return when all are reported."""
        ...

    def forget(self, execution_id: str) -> None:
        """Drop whatever the executor kept on disk for a finished execution."""
        ...

    async def aclose(self) -> None:
        """Release what the executor holds (connections) when the server stops."""
        ...


class BatchJudgeExecutor:
    """:class:`Executor` through BatchJudge jobs (see the module docstring).

    Example::

        executor = BatchJudgeExecutor(
            lambda folder: OpenAIBatchProvider(),
            jobs_dir=Path("serve-data/jobs"),
            poll_interval=60,
        )
    """

    def __init__(
        self,
        provider: ProviderFactory,
        *,
        jobs_dir: Path,
        groups: int = 1,
        workers: int = 8,
        poll_interval: float = 30.0,
        max_wait: float = 300.0,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        if groups < 1 or workers < 1:
            raise ValueError("groups and workers must be at least 1")
        self.provider = provider
        self.jobs_dir = jobs_dir
        self.groups = groups
        self.poll_interval = poll_interval
        self.max_wait = max_wait
        self._sleep = sleep
        self._limiter = anyio.CapacityLimiter(workers)
        self._threads = anyio.CapacityLimiter(workers + 8)  # submits, plus polls of batches

    def forget(self, execution_id: str) -> None:
        shutil.rmtree(self.jobs_dir / execution_id, ignore_errors=True)

    async def aclose(self) -> None:
        """Nothing to close: each BatchJudge call makes and closes its own provider."""

    async def execute(self, work: Work, report: Reporter) -> None:
        size = math.ceil(len(work.inputs) / self.groups)
        async with anyio.create_task_group() as tasks:
            for start in range(0, len(work.inputs), size):
                indices = range(start, min(start + size, len(work.inputs)))
                if all(i in work.done for i in indices):
                    continue
                tasks.start_soon(self._group, work, start // size, indices, report)

    async def _group(self, work: Work, number: int, indices: range, report: Reporter) -> None:
        folder = self.jobs_dir / work.execution_id / f"group-{number}"
        try:
            result = await self._run(work, folder, indices, report)
        except BatchJobError as exc:
            # The job ended failed, expired or cancelled: keep what it finished.
            partial = exc.result if isinstance(exc.result, BatchRunResult) else None
            why = f"the provider's batch ended {exc.status}"
            outcomes = outcomes_of(partial, indices, work.evaluators, f"batch_{exc.status}", why)
        except KyroError as exc:
            _log.warning(
                "execution %s group %s failed: %s", work.execution_id, number, type(exc).__name__
            )
            code = "provider_error" if isinstance(exc, ProviderError) else "invalid_request"
            # The message alone: its file prefix would name the server's own folders.
            message = exc.message if isinstance(exc, BatchValidationError) else str(exc)
            outcomes = [failed_outcome(i, code, message) for i in indices]
        else:
            outcomes = outcomes_of(result, indices, work.evaluators, "missing", "no result")
        await report.finished(outcomes)
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(folder, ignore_errors=True))

    async def _run(
        self, work: Work, folder: Path, indices: range, report: Reporter
    ) -> BatchRunResult:
        """Submit the group (or resume it), then check until it is done.

        Its items show ``processing`` from the moment a worker takes the group up.
        """
        await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
        stem = work.config_path.stem
        resumable = await anyio.Path(folder / f"{stem}.batch-state.json").exists()
        resumable |= await anyio.Path(folder / f"{stem}.batch-done.json").exists()
        async with self._limiter:
            await report.started(indices)
            if not resumable:
                transcripts = [transcript_value(work.inputs[i]) for i in indices]
                await self._retrying(self._step, work, folder, transcripts)
            result = await self._retrying(self._step, work, folder, None)
        while result is None:
            await self._sleep(self.poll_interval)
            result = await self._retrying(self._step, work, folder, None)
        assert isinstance(result, BatchRunResult)
        return result

    async def _step(
        self, work: Work, folder: Path, transcripts: list[dict[str, Any]] | None
    ) -> BatchRunResult | None:
        """One BatchJudge call — ``submit(transcripts)``, or ``check()`` when None — run on an
        event loop of its own in a worker thread.

        BatchJudge writes its state durably (an fsync per write) from its event loop; on the
        server's loop that would stall every request. In a thread, those waits overlap and the
        server keeps answering. The provider is made for this call and closed after it, and
        all job state is on disk, so nothing crosses between loops. When the server stops, the
        call is cancelled within a tenth of a second, as a crash would stop it — which
        BatchJudge's write-ahead state is made for: the next start resumes it.
        """
        stop = threading.Event()

        async def call() -> BatchRunResult | None:
            judge = BatchJudge(
                self.provider(folder / "provider"), work.config_path, state_dir=folder, cache=False
            )
            outcome: list[BatchRunResult | Exception | None] = []

            async def run() -> None:
                try:
                    if transcripts is not None:
                        await judge.submit(transcripts)
                        outcome.append(None)
                    else:
                        outcome.append(await judge.check())
                except Exception as exc:  # raised below, outside the task group's wrapping
                    outcome.append(exc)
                finally:
                    tasks.cancel_scope.cancel()
                    with anyio.CancelScope(shield=True):
                        await judge.provider.aclose()

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_cancel_when, stop, tasks.cancel_scope)
                tasks.start_soon(run)
            if not outcome:  # stopped
                return None
            if isinstance(outcome[0], Exception):
                raise outcome[0]
            return outcome[0]

        try:
            return await anyio.to_thread.run_sync(
                anyio.run, call, abandon_on_cancel=True, limiter=self._threads
            )
        except anyio.get_cancelled_exc_class():
            stop.set()
            raise

    async def _retrying(self, call: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """``call(*args)``, tried again for as long as the provider is unreachable or busy.

        Giving up while a batch may exist would lose work that is being paid for, so only a
        refusal (400, 401, 403, 404, 422: a wrong key or a rejected request) fails the group;
        a restart resumes anything still being retried.
        """
        retrying = tenacity.AsyncRetrying(
            wait=tenacity.wait_exponential(multiplier=1, max=self.max_wait)
            + tenacity.wait_random(0, 1),
            retry=tenacity.retry_if_exception(_transient),
            before_sleep=_log_retry,
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await call(*args)
        raise AssertionError("unreachable: tenacity re-raises the last error")


async def _cancel_when(stop: threading.Event, scope: anyio.CancelScope) -> None:
    """Cancel ``scope`` once another thread sets ``stop`` (a thread's Event cannot be awaited)."""
    while not stop.is_set():  # noqa: ASYNC110 - set from the server's loop, in another thread
        await anyio.sleep(0.1)
    scope.cancel()


_REFUSALS = frozenset({400, 401, 403, 404, 422})


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.status_code not in _REFUSALS


def _log_retry(state: tenacity.RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    status = getattr(exc, "status_code", None)
    _log.warning(
        "provider unavailable (%s, HTTP %s); retry %d in %.0f s",
        type(exc).__name__,
        status,
        state.attempt_number,
        state.upcoming_sleep,
    )


def transcript_value(value: dict[str, Any]) -> dict[str, Any]:
    """An input as the judges see it: ``{{input.request}}`` and friends; nulls left out."""
    return {key: v for key, v in value.items() if v is not None}
