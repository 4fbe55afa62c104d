"""The ``Emulator``: the state behind the routes, and its Python control API."""

from __future__ import annotations

import inspect
import shutil
import tempfile
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.to_thread
import msgspec

from kyro_openai.testing._app import create_app
from kyro_openai.testing._batches import BatchBook
from kyro_openai.testing._config import EmulatorConfig
from kyro_openai.testing._faultbook import Faults
from kyro_openai.testing._faults import Fault
from kyro_openai.testing._responder import Responder, ScriptedResponder, default_responder
from kyro_openai.testing._store import FileStore
from kyro_openai.testing._wire import BatchObject, FileObject

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["Emulator", "EmulatorStats"]


class EmulatorStats(msgspec.Struct, frozen=True, kw_only=True):
    """Counters for tests: calls served, objects created, faults fired, chat concurrency.

    Example::

        assert emulator.stats().batches_created == 1
    """

    requests: int = 0
    files_uploaded: int = 0
    files_deleted: int = 0
    batches_created: int = 0
    batches_cancelled: int = 0
    downloads: int = 0
    chat_completions: int = 0
    chat_in_flight: int = 0
    chat_max_in_flight: int = 0
    faults_fired: int = 0


class _Counters:
    def __init__(self) -> None:
        self.values: dict[str, int] = dict.fromkeys(EmulatorStats.__struct_fields__, 0)

    def bump(self, name: str, by: int = 1) -> None:
        self.values[name] += by
        if name == "chat_in_flight":
            high = max(self.values["chat_max_in_flight"], self.values["chat_in_flight"])
            self.values["chat_max_in_flight"] = high


class Emulator:
    """A stateful emulator of OpenAI's Files + Batches API and ``/v1/chat/completions``.

    ``app`` is the ASGI application: mount it in-process with ``httpx.ASGITransport`` or
    serve it with :func:`kyro_openai.testing.serve`. Batches move on the emulator's clock
    (``clock() + offset``; :meth:`advance` moves the offset) each time they are read. Files
    live in ``config.data_dir`` or in a temporary folder removed by :meth:`close`. The
    responder answers batch lines from a worker thread (async ones on the event loop) and
    chat calls on the event loop.

    Example::

        emulator = Emulator(EmulatorConfig(in_progress_seconds=60), clock=lambda: 0.0)
        transport = httpx.ASGITransport(app=emulator.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://emulator/v1",
                                     headers={"Authorization": "Bearer test"}) as client:
            ...
        emulator.advance(60)            # the batch completes on its next read
        emulator.faults.rate_limit(times=2, retry_after=1)
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        responder: Responder | None = None,
        clock: Callable[[], float] = time.time,
        faults: Iterable[Fault] = (),
    ) -> None:
        self.config = config or EmulatorConfig()
        self.responder: Responder = responder or default_responder
        self._clock = clock
        self._offset = 0.0
        if self.config.data_dir is not None:
            root = Path(self.config.data_dir)
            self._cleanup: weakref.finalize[Any, Any] | None = None
        else:
            root = Path(tempfile.mkdtemp(prefix="kyro-emulator-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, root, True)
        self.root = root
        self.store = FileStore(root / "files")
        self.faults = Faults(self.config.seed)
        self.faults.add(*faults)
        self.counters = _Counters()
        self.book = BatchBook(self)
        self.app: Starlette = create_app(self)

    def now(self) -> float:
        """The emulator's current time (unix seconds)."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (or back, with a negative value)."""
        self._offset += seconds

    @property
    def batches(self) -> list[BatchObject]:
        """Every batch created so far, oldest first, as last observed (not advanced)."""
        return [entry.wire for entry in self.book.entries.values()]

    @property
    def files(self) -> list[FileObject]:
        """Every file stored now (uploads and results), oldest first."""
        return [stored.obj for stored in self.store.files.values()]

    def stats(self) -> EmulatorStats:
        """A snapshot of the counters."""
        values = dict(self.counters.values, faults_fired=self.faults.fired)
        return EmulatorStats(**values)

    def expire(self, batch_id: str, *, completed_lines: int | None = None) -> None:
        """Make a batch expire now; ``completed_lines`` requests finished first (default:
        as many as its progress says). Takes effect on the batch's next read.

        Example::

            emulator.expire(batch_id, completed_lines=3)
        """
        self.book.force_expire(batch_id, self.now(), completed_lines)

    def close(self) -> None:
        """Remove the temporary data folder (a no-op with an explicit ``data_dir``)."""
        if self._cleanup is not None:
            self._cleanup()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def reply_in_thread(self, body: dict[str, Any], custom_id: str) -> str:
        """Call the responder from a worker thread (async responders run on the event loop)."""
        result = self._call_responder(body, custom_id)
        if inspect.isawaitable(result):
            return anyio.from_thread.run(_wait, result)
        return result

    async def reply(self, body: dict[str, Any]) -> str:
        """Call the responder for a ``/v1/chat/completions`` request."""
        result = self._call_responder(body, None)
        if inspect.isawaitable(result):
            return await result
        return result

    def _call_responder(self, body: dict[str, Any], custom_id: str | None) -> str | Awaitable[str]:
        if isinstance(self.responder, ScriptedResponder):
            return self.responder.reply(body, custom_id=custom_id)
        return self.responder(body)


async def _wait(awaitable: Awaitable[str]) -> str:
    return await awaitable
