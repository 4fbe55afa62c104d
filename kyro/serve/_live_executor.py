"""Running executions through a live provider, item by item, with :class:`kyro.KyroJudge`.

Each item is one ``KyroJudge.run`` — every judge of the config, or the whole pipeline walked
for that item (roots together, dependents once their dependencies pass) — and is recorded
the moment it ends: ``processing`` when it starts, ``completed`` or ``failed`` as soon as its
own evaluation is done, whatever the other items are doing. At most ``concurrency`` items
are evaluated at once across all executions (first come, first served, so concurrent
executions share the slots fairly); the provider bounds the requests in flight on its own.

What a restart re-sends: an item's outcome is committed to the store (group commit, see
:mod:`kyro.serve._journal`) before it counts as done, and a restarted server evaluates only
items not recorded as completed or failed. So an item finished before a crash is never sent
again; an item that was in flight — its requests sent, its outcome not yet committed — is
sent again from the start (every run of every step it needed). With a live endpoint those
few requests may be billed twice. How many: at most ``in_flight`` items (default four
times ``concurrency``) are sent and not yet recorded at any moment — ``concurrency`` being
evaluated, the rest finished and waiting for their commit, so a slow disk does not idle the
provider. In practice that is the items being evaluated plus those that finished during
the one commit under way; the cap binds only when the judge answers faster than the store
commits (an instant judge at 1,000 items a second with 15 ms commits on a busy machine
keeps about 15 items waiting). Use a batch provider where no request may ever be paid for
twice.

The service keeps no reply cache: every item is sent, and posting the same input twice gets
two independent judgments.
"""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import anyio.to_thread

from kyro import BatchValidationError, KyroError, KyroJudge, ProviderError
from kyro.provider import LiveProvider
from kyro.serve._executor import Reporter, Work, transcript_value
from kyro.serve._outcomes import evaluation_outcome, failed_outcome
from kyro.serve._records import ItemOutcome

__all__ = ["LiveExecutor"]

_log = logging.getLogger("kyro.serve")


class LiveExecutor:
    """:class:`~kyro.serve.Executor` through a live provider (see the module docstring).

    ``provider`` is shared by every execution (``kyro_local.LocalProvider`` over an
    OpenAI-compatible endpoint or a callable) and closed by :meth:`aclose`.

    Example::

        executor = LiveExecutor(LocalProvider(base_url=URL, concurrency=16), concurrency=16)
    """

    def __init__(
        self, provider: LiveProvider, *, concurrency: int = 16, in_flight: int | None = None
    ) -> None:
        if not isinstance(provider, LiveProvider):
            raise TypeError(
                f"{type(provider).__name__} cannot run requests live (it has no "
                "complete(request)); use BatchJudgeExecutor for a batch provider"
            )
        in_flight = 4 * concurrency if in_flight is None else in_flight
        if concurrency < 1 or in_flight < concurrency:
            raise ValueError("concurrency must be at least 1, and in_flight at least concurrency")
        self.provider = provider
        self.concurrency = concurrency
        self.in_flight = in_flight
        # fast_acquire: a free slot is taken with no trip round the event loop per item;
        # waiters are served in order either way.
        self._evaluating = anyio.Semaphore(concurrency, fast_acquire=True)
        self._unrecorded = anyio.Semaphore(in_flight, fast_acquire=True)
        self._judges: dict[Path, KyroJudge] = {}

    def forget(self, execution_id: str) -> None:
        """Nothing to drop: a live execution keeps nothing outside the store."""

    async def aclose(self) -> None:
        """Close the provider (its connections)."""
        await self.provider.aclose()

    async def execute(self, work: Work, report: Reporter) -> None:
        judge = await self._judge(work.config_path)
        async with anyio.create_task_group() as tasks:
            for index in range(len(work.inputs)):
                if index in work.done:
                    continue
                await self._unrecorded.acquire()
                tasks.start_soon(self._item, judge, work, index, report)

    async def _judge(self, config: Path) -> KyroJudge:
        """The KyroJudge of a version's config (made once: a version never changes); without
        a reply cache, like the service's batch jobs: every execution is sent."""
        judge = self._judges.get(config)
        if judge is None:
            made = await anyio.to_thread.run_sync(
                lambda: KyroJudge(config, provider=self.provider, cache=False)
            )
            judge = self._judges.setdefault(config, made)
        return judge

    async def _item(self, judge: KyroJudge, work: Work, index: int, report: Reporter) -> None:
        """Evaluate one item and report its outcome; it holds one of the ``in_flight`` slots
        (taken by :meth:`execute`) until its outcome is committed."""
        try:
            await self._evaluating.acquire()
            try:
                await report.started((index,))
                outcome = await self._evaluate(judge, work, index)
            finally:
                self._evaluating.release()
            await report.finished((outcome,))
        finally:
            self._unrecorded.release()

    async def _evaluate(self, judge: KyroJudge, work: Work, index: int) -> ItemOutcome:
        try:
            evaluation = await judge.run(transcript_value(work.inputs[index]))
        except KyroError as exc:  # a refused credential, a template the input cannot fill
            _log.warning(
                "execution %s item %d failed: %s", work.execution_id, index, type(exc).__name__
            )
            code = "provider_error" if isinstance(exc, ProviderError) else "invalid_request"
            message = exc.message if isinstance(exc, BatchValidationError) else str(exc)
            return failed_outcome(index, code, message)
        except Exception as exc:  # a bug must cost this item, not the execution
            _log.error(
                "execution %s item %d: internal error (%s)",
                work.execution_id,
                index,
                type(exc).__name__,
            )
            return failed_outcome(index, "internal_error", "the server failed on this item")
        return evaluation_outcome(index, evaluation, work.evaluators)
