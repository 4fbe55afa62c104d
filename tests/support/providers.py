"""A provider that crashes at a chosen call: the fault seam for a job's remote steps.

:class:`CrashingProvider` wraps any :class:`~kyro.BatchProvider` and behaves exactly like it
until the ``at``-th call of one method, where it stands in for a crash: it raises
:class:`ProviderCrash` (the in-process stand-in for a dying process) or kills the process
with SIGKILL. ``reached`` says how far the crashing call gets first: 0 crashes before the
inner provider is asked, 1 after it answered (a batch exists, its id never returned), 2 after
it was asked twice (a duplicate batch exists too).
"""

from __future__ import annotations

import inspect
import os
import signal
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Literal

from kyro.provider import BatchLimits, BatchProvider, BatchStatus, JudgeRequest, ResultLine

__all__ = ["CrashingProvider", "ProviderCrash"]

Method = Literal["submit", "poll", "results", "cancel", "find"]


class ProviderCrash(BaseException):
    """Stands in for the process dying in the middle of a provider call.

    A ``BaseException``, as a real death is: no ``except Exception`` of kyro may handle it.
    """


class CrashingProvider:
    """``inner``, except that the ``at``-th call of ``method`` crashes (see the module doc).

    ``kill=True`` sends SIGKILL to this process instead of raising, for child processes.
    :meth:`disarm` makes every later call plain again; ``calls`` counts the calls of
    ``method`` so far.

    Example::

        provider = CrashingProvider(FakeProvider(), method="submit", at=2)
        with pytest.raises(ProviderCrash):
            await BatchJudge(provider, "judges.yml").submit(texts)
    """

    def __init__(
        self,
        inner: BatchProvider,
        *,
        method: Method = "submit",
        at: int = 1,
        reached: int = 0,
        kill: bool = False,
    ) -> None:
        if at < 1 or reached < 0:
            raise ValueError("at counts calls from 1; reached is 0 or more")
        self.inner = inner
        self.method = method
        self.at = at
        self.reached = reached
        self.kill = kill
        self.calls = 0
        self.armed = True

    def disarm(self) -> None:
        """Pass every later call straight to the inner provider."""
        self.armed = False

    def _crashes(self, method: Method) -> bool:
        if method != self.method:
            return False
        self.calls += 1
        return self.armed and self.calls == self.at

    def _crash(self) -> ProviderCrash:
        if self.kill:
            os.kill(os.getpid(), signal.SIGKILL)
        return ProviderCrash(f"crashed at call {self.at} of {self.method}")

    @property
    def name(self) -> str:
        """The inner provider's name (the state records it)."""
        return self.inner.name

    @property
    def limits(self) -> BatchLimits:
        """The inner provider's limits."""
        return self.inner.limits

    def __getattr__(self, name: str) -> Any:
        # Optional members (default_model, check_credentials, …) are the inner provider's.
        return getattr(self.inner, name)

    def encode(self, request: JudgeRequest, buffer: bytearray) -> None:
        """Encode as the inner provider does."""
        self.inner.encode(request, buffer)

    async def submit(self, path: Path, *, metadata: Mapping[str, str]) -> str:
        """Submit through the inner provider, crashing on the chosen call."""
        if not self._crashes("submit"):
            return await self.inner.submit(path, metadata=metadata)
        for _ in range(self.reached):
            await self.inner.submit(path, metadata=metadata)
        raise self._crash()

    async def poll(self, batch_id: str) -> BatchStatus:
        """Poll through the inner provider, crashing on the chosen call."""
        if not self._crashes("poll"):
            return await self.inner.poll(batch_id)
        for _ in range(self.reached):
            await self.inner.poll(batch_id)
        raise self._crash()

    async def results(self, batch_id: str) -> AsyncIterator[ResultLine]:
        """Stream the inner provider's results; on the chosen call, crash after ``reached``
        lines were yielded."""
        crashes = self._crashes("results")
        sent = 0
        async for line in self.inner.results(batch_id):
            if crashes and sent == self.reached:
                raise self._crash()
            yield line
            sent += 1
        if crashes:
            raise self._crash()

    async def cancel(self, batch_id: str) -> BatchStatus:
        """Cancel through the inner provider, crashing on the chosen call."""
        if not self._crashes("cancel"):
            return await self.inner.cancel(batch_id)
        for _ in range(self.reached):
            await self.inner.cancel(batch_id)
        raise self._crash()

    async def find(self, metadata: Mapping[str, str], **options: Any) -> list[BatchStatus]:
        """Find through the inner provider (passing ``created_after`` on where it is taken),
        crashing on the chosen call."""
        if options and not _takes_options(self.inner.find):
            options = {}
        if not self._crashes("find"):
            return await self.inner.find(metadata, **options)
        for _ in range(self.reached):
            await self.inner.find(metadata, **options)
        raise self._crash()

    async def aclose(self) -> None:
        """Close the inner provider."""
        await self.inner.aclose()


def _takes_options(find: Any) -> bool:
    parameters = inspect.signature(find).parameters.values()
    return any(p.kind is inspect.Parameter.VAR_KEYWORD or p.name != "metadata" for p in parameters)
