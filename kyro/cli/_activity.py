"""Live progress for the CLI's long steps: planning, upload, a local run, polling, download.

:class:`Activity` is one transient rich progress line on a terminal and nothing at all
otherwise (a pipe, a file, ``--quiet``), so logs and cron mail stay plain.
:class:`ProgressProvider` wraps the command's provider and reports what ``BatchJudge`` asks
of it — every encoded request while planning, each upload, each local run, each downloaded
line — through the public provider protocol only, so the library needs no progress hooks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Protocol, TypeVar

import anyio
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from kyro._exceptions import KyroError
from kyro._files import ClosedOnExit
from kyro._provider import BatchProvider
from kyro._types import BatchLimits, BatchStatus, JudgeRequest, ResultLine
from kyro.cli._providers import runs_on_submit

__all__ = ["Activity", "Closes", "ProgressProvider", "run_closing"]

_T = TypeVar("_T")

_EVERY = 256  # requests between two updates of the planning line
_LOCAL_WATCH_SECONDS = 0.25


class Activity(ClosedOnExit):
    """One live status line (spinner, text, elapsed time) while a long step runs; leaving the
    ``with`` block (or :meth:`close`) takes it off the terminal.

    Disabled (every method a no-op) when ``enabled`` is false or the console is not a terminal.

    Example::

        with Activity(console(), enabled=not args.quiet) as activity:
            activity.show("uploading shard 0")
    """

    def __init__(self, out: Console, *, enabled: bool = True) -> None:
        self.enabled = enabled and out.is_terminal
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if self.enabled:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=out,
                transient=True,
            )

    def __enter__(self) -> Activity:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("starting…", total=None)
        return self

    def close(self) -> None:
        """Take the line off the terminal (idempotent)."""
        if self._progress is not None:
            self._progress.stop()

    def show(self, text: str) -> None:
        """Replace the line's text (thread-safe: planning reports from a worker thread)."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, description=text)


class ProgressProvider:
    """A provider that does exactly what ``inner`` does and reports it to an :class:`Activity`.

    Example::

        judge = BatchJudge(ProgressProvider(provider, activity), "judges.yml")
    """

    def __init__(self, inner: BatchProvider, activity: Activity) -> None:
        self.inner = inner
        self.activity = activity
        self._encoded = 0

    @property
    def name(self) -> str:
        """The wrapped provider's name (the job's state records it)."""
        return self.inner.name

    @property
    def limits(self) -> BatchLimits:
        """The wrapped provider's limits."""
        return self.inner.limits

    def check_credentials(self) -> None:
        """The wrapped provider's credentials check, if it has one."""
        check = getattr(self.inner, "check_credentials", None)
        if check is not None:
            check()

    @property
    def default_model(self) -> str | None:
        """The wrapped provider's default model, if it names one."""
        return getattr(self.inner, "default_model", None)

    @property
    def cache_scope(self) -> str:
        """The wrapped provider's scope in the reply cache."""
        return str(getattr(self.inner, "cache_scope", self.inner.name))

    def supports_samples(self, model: str) -> bool:
        """Whether the wrapped provider takes runs as ``n`` samples for ``model``."""
        supports = getattr(self.inner, "supports_samples", None)
        return bool(supports(model)) if supports is not None else False

    def encode(self, request: JudgeRequest, buffer: bytearray) -> None:
        """Encode through the wrapped provider, counting requests for the planning line."""
        self.inner.encode(request, buffer)
        self._encoded += 1
        if self._encoded % _EVERY == 0:
            self.activity.show(f"planning: {self._encoded:,} requests written")

    def encode_parts(self, request: JudgeRequest) -> tuple[bytes, ...] | None:
        """The wrapped provider's line parts, when it has them and no line counts requests
        (lines written from parts never pass through :meth:`encode`)."""
        parts = getattr(self.inner, "encode_parts", None)
        if parts is None or self.activity.enabled:
            return None
        result: tuple[bytes, ...] | None = parts(request)
        return result

    async def submit(self, path: Path, *, metadata: Mapping[str, str]) -> str:
        """Submit through the wrapped provider; a provider that runs the requests itself
        (``runs_on_submit``) reports them as they end."""
        shard = metadata.get("kyro_shard", "?")
        runs = runs_on_submit(self.inner)
        verb = "running" if runs else "uploading"
        self.activity.show(f"{verb} shard {shard} ({path.name})")
        if not runs or not self.activity.enabled:
            return await self.inner.submit(path, metadata=metadata)
        # The run's own error is re-raised after the group, so it is never wrapped in an
        # exception group (the CLI maps each KyroError to its exit code).
        batch_id: str | None = None
        failure: Exception | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(self._watch_local, shard, dict(metadata))
            try:
                batch_id = await self.inner.submit(path, metadata=metadata)
            except Exception as exc:
                failure = exc
            finally:
                group.cancel_scope.cancel()
        if failure is not None:
            raise failure
        assert batch_id is not None
        return batch_id

    async def _watch_local(self, shard: str, metadata: dict[str, str]) -> None:
        while True:
            await anyio.sleep(_LOCAL_WATCH_SECONDS)
            try:
                found = await self.inner.find(metadata)
            except KyroError:
                continue  # progress is best effort; the run itself reports real failures
            for status in found:
                counts = status.request_counts
                done = counts.completed + counts.failed
                self.activity.show(f"running shard {shard}: {done:,} of {counts.total:,} requests")

    async def poll(self, batch_id: str) -> BatchStatus:
        """Poll through the wrapped provider."""
        self.activity.show(f"polling {batch_id}")
        return await self.inner.poll(batch_id)

    def results(self, batch_id: str) -> AsyncIterator[ResultLine]:
        """Stream the wrapped provider's results, counting lines for the download line."""
        return self._results(batch_id)

    async def _results(self, batch_id: str) -> AsyncIterator[ResultLine]:
        count = 0
        self.activity.show(f"downloading {batch_id}")
        async for line in self.inner.results(batch_id):
            count += 1
            if count % _EVERY == 0:
                self.activity.show(f"downloading {batch_id}: {count:,} lines")
            yield line

    async def cancel(self, batch_id: str) -> BatchStatus:
        """Cancel through the wrapped provider."""
        self.activity.show(f"cancelling {batch_id}")
        return await self.inner.cancel(batch_id)

    async def find(self, metadata: Mapping[str, str]) -> list[BatchStatus]:
        """Find through the wrapped provider."""
        return await self.inner.find(metadata)

    async def aclose(self) -> None:
        """Close the wrapped provider."""
        await self.inner.aclose()


class Closes(Protocol):
    """What holds connections to close when a command is done: a judge, a provider."""

    async def aclose(self) -> None:
        """Close the connections."""


def run_closing(
    resource: Closes | None, step: Callable[[], Awaitable[_T]], activity: Activity | None = None
) -> _T:
    """Run ``step`` on a new event loop (under ``activity``'s display, if given), then close
    ``resource`` (a judge or a provider: its connections) however it ended; return what
    ``step`` returned.

    Example::

        progress = run_closing(judge, lambda: judge.status(job_id))
    """

    async def go() -> _T:
        try:
            return await step()
        finally:
            if resource is not None:
                await resource.aclose()

    if activity is None:
        return anyio.run(go)
    with activity:
        return anyio.run(go)
