"""LocalProvider: run a shard's requests right now, behind the batch provider protocol.

``submit`` does the work itself — it returns once every line has an outcome — and leaves the
batch on disk (see ``kyro_local._store``), so ``poll``/``results`` from this process or any
later one read it like a finished remote batch.
"""

from __future__ import annotations

import argparse
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import anyio
import anyio.to_thread
import httpx
import msgspec

from kyro.provider import (
    AuthenticationError,
    BatchError,
    BatchLimits,
    BatchState,
    BatchStatus,
    BatchValidationError,
    JudgeRequest,
    KyroError,
    ProviderError,
    RequestCounts,
    ResultLine,
    RetryPolicy,
    header_problem,
    is_terminal,
)
from kyro_local._backends import CallableBackend, Handler, HttpBackend
from kyro_local._cli import add_options as add_cli_options
from kyro_local._cli import options_from as options_from_cli
from kyro_local._results import read_results
from kyro_local._run import BatchRun
from kyro_local._store import BatchRecord, BatchStore, count_lines, owner_alive
from kyro_openai import DEFAULT_MODEL, classify_output_line, decode_output_line, encode_request
from kyro_openai.wire import LineError, OutputLine, RequestLine

__all__ = ["DEFAULT_LIMITS", "LocalProvider", "default_state_dir"]

_input_decoder = msgspec.json.Decoder(RequestLine[msgspec.Raw])
_output_encoder = msgspec.json.Encoder()

DEFAULT_LIMITS = BatchLimits(max_requests=1_000_000, max_bytes=2 * 1024 * 1024 * 1024)


def default_state_dir() -> Path:
    """``$XDG_CACHE_HOME/kyro/local`` (``~/.cache/kyro/local``): the same from any cwd."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "kyro" / "local"


class LocalProvider:
    """Runs requests immediately against an OpenAI-compatible endpoint or a Python callable.

    Give exactly one backend: ``base_url`` (``{base_url}/chat/completions`` receives each
    line's body — OpenAI, Ollama, vLLM, llama.cpp's server, LiteLLM, kyro's emulator) or
    ``handler`` (sync or async; takes the body dict, returns the reply text or a
    chat.completion-shaped dict). At most ``concurrency`` requests run at once, each attempt
    bounded by ``timeout`` seconds and retried per ``retry`` (429/5xx/timeouts/connection
    errors). Batches live under ``state_dir`` (default :func:`default_state_dir`). Like the
    command line, ``base_url`` defaults to ``OPENAI_BASE_URL`` and ``api_key`` to
    ``OPENAI_API_KEY`` (pass ``api_key=""`` to send none). ``default_model`` is the model of
    judges that name none (``gpt-4o-mini``; any name your endpoint serves).

    Example::

        provider = LocalProvider(base_url="http://127.0.0.1:11434/v1", concurrency=8)
        batch_id = await provider.submit(Path("shard-0.jsonl"), metadata={"job": "j1"})
        async for line in provider.results(batch_id):
            print(line.custom_id, line.content if line.ok else line.error)
    """

    name = "local"
    default_model: str = DEFAULT_MODEL
    runs_on_submit = True
    """``submit`` runs the requests itself before it returns (progress asks ``find``)."""
    prices_from = "openai"
    """Whose price table prices this provider's usage, by model name (a chat-completions
    endpoint bills like OpenAI's; a model the table does not know is reported unknown)."""
    live_prices = True
    """Every request is sent live, so live prices apply, not batch ones."""

    @classmethod
    def add_cli_options(cls, group: argparse._ArgumentGroup) -> None:
        """``--local-concurrency`` (requests at once) and ``--handler MODULE:FUNCTION`` (a
        Python callable as the backend): the command line's hook."""
        add_cli_options(group)

    @classmethod
    def from_cli_args(cls, args: argparse.Namespace, *, state_dir: Path) -> LocalProvider:
        """The provider the command line asks for: ``--handler``, else ``--base-url`` (else
        ``OPENAI_BASE_URL``) with ``OPENAI_API_KEY``, its batches under ``<state_dir>/local``;
        ``--local-concurrency`` requests at once (default: the command's live concurrency,
        ``args.live_concurrency``, else 16)."""
        return cls(**options_from_cli(args, state_dir=state_dir))

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        handler: Handler | None = None,
        concurrency: int = 16,
        timeout: float | None = 300.0,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        client: httpx.AsyncClient | None = None,
        state_dir: str | Path | None = None,
        limits: BatchLimits = DEFAULT_LIMITS,
        default_model: str = DEFAULT_MODEL,
        structured_outputs: bool | None = None,
    ) -> None:
        self.default_model = default_model
        self.structured_outputs = structured_outputs
        if base_url is not None and handler is not None:
            raise ValueError(
                "LocalProvider needs exactly one backend: base_url='http://host:port/v1' "
                "(an OpenAI-compatible endpoint) or handler=fn (a Python callable)"
            )
        if handler is None:
            # Like the command line: the endpoint and its key default to the environment.
            base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
            if base_url is None:
                raise ValueError(
                    "LocalProvider needs a backend: pass base_url='http://host:port/v1' (an "
                    "OpenAI-compatible endpoint), set OPENAI_BASE_URL, or pass handler=fn"
                )
            if api_key is None and client is None:
                api_key = os.environ.get("OPENAI_API_KEY") or None
        self._api_key = api_key
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        if handler is not None and (client is not None or api_key is not None):
            raise ValueError("client= and api_key= apply to base_url=, not to handler=")
        self.limits = limits
        self.concurrency = concurrency
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.state_dir = self.state_dir.expanduser().absolute()
        self._store = BatchStore(self.state_dir)
        self._runs: dict[str, BatchRun] = {}
        self._live: anyio.Semaphore | None = None
        self._backend: HttpBackend | CallableBackend
        if base_url is not None:
            self._backend = HttpBackend(
                base_url,
                api_key=api_key,
                timeout=timeout,
                retry=retry,
                sleep=sleep,
                client=client,
            )
        else:
            assert handler is not None
            self._backend = CallableBackend(
                handler, timeout=timeout, retry=retry, sleep=sleep, concurrency=concurrency
            )

    def __repr__(self) -> str:
        return (
            f"LocalProvider(endpoint={self._backend.endpoint!r}, "
            f"concurrency={self.concurrency}, state_dir={str(self.state_dir)!r})"
        )

    def check_credentials(self) -> None:
        """Raise :class:`kyro.KyroError` when the key given (or read from ``OPENAI_API_KEY``)
        cannot travel in an HTTP header; a local endpoint may need no key at all.

        Example::

            LocalProvider(base_url="http://127.0.0.1:8000/v1", api_key="k\r").check_credentials()
        """
        if self._api_key:
            problem = header_problem(self._api_key)
            if problem is not None:
                raise KyroError(
                    f"the API key cannot be used: {problem}. Set OPENAI_API_KEY again to the "
                    "key alone (no quotes, spaces or line breaks), or pass api_key="
                )

    @property
    def cache_scope(self) -> str:
        """Whose answers this provider gives, for kyro's reply cache.

        A chat-completions endpoint answers like the OpenAI provider does for the same model
        (``"openai-chat"``), so a live run and a batch job of one config share cached replies;
        a Python callable is its own scope (``"callable:<name>"``).
        """
        endpoint = self._backend.endpoint
        return endpoint if endpoint.startswith("callable:") else "openai-chat"

    def encode(self, request: JudgeRequest, buffer: bytearray) -> None:
        """Append ``request`` as one OpenAI batch input line (the format every shard uses).

        The encoder is ``kyro_openai.encode_request`` itself, so a shard built for either
        provider runs on the other: a batch's leftovers can be finished here unchanged.
        ``structured_outputs`` (None: by model name) picks json_schema or JSON mode.
        """
        encode_request(request, buffer, structured_outputs=self.structured_outputs)

    async def complete(self, request: JudgeRequest) -> ResultLine:
        """Run one request now and return its outcome (what ``kyro.KyroJudge`` calls).

        The same backend, retries and timeouts as a batch line, and the same reading of the
        reply; at most ``concurrency`` requests are in flight at once across all callers.
        A failed request is a ``ResultLine`` with ``ok=False``; only a refused credential
        (HTTP 401/403), which would fail every request alike, raises
        :class:`kyro.AuthenticationError` (a :class:`ProviderError`).

        Example::

            line = await provider.complete(request)
            line.ok, line.content
        """
        buffer = bytearray()
        encode_request(request, buffer, structured_outputs=self.structured_outputs)
        body = _input_decoder.decode(buffer).body
        if self._live is None:  # fast_acquire: a free slot is taken with no loop trip
            self._live = anyio.Semaphore(self.concurrency, fast_acquire=True)
        live = self._live
        await live.acquire()
        try:
            response, error = await self._backend(body)
        except Exception as exc:  # a backend bug must not sink the other requests
            response = None
            error = LineError(code="local_error", message=f"{type(exc).__name__}: {exc}")
        finally:
            live.release()
        if response is not None and response.status_code in (401, 403):
            raise AuthenticationError(
                f"{self._backend.endpoint} refused the credentials"
                + (f": {error.message}" if error is not None else "")
                + "; check the API key (OPENAI_API_KEY for the command line)",
                status_code=response.status_code,
                code=error.code if error is not None else None,
                request_id=response.request_id,
                provider=self.name,
            )
        out = OutputLine(
            id="live_req_1", custom_id=request.custom_id, response=response, error=error
        )
        line = decode_output_line(_output_encoder.encode(out))
        assert line is not None  # it was encoded just above, custom_id included
        return classify_output_line(line)

    async def submit(self, path: Path, *, metadata: Mapping[str, str]) -> str:
        """Run every request of the shard at ``path``; return the batch id once all have ended.

        Cancelled runs (:meth:`cancel`, or the caller's own cancel scope) end as ``cancelled``
        with their finished lines kept; the id is returned (or the cancellation re-raised).
        """
        path = Path(path)
        if not path.is_file():
            raise BatchValidationError("no shard file to submit", path=path)
        meta = dict(metadata)
        for key, value in meta.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"metadata must map str to str, got {key!r}: {value!r}")
        total = await anyio.to_thread.run_sync(count_lines, path)
        record = BatchRecord(
            batch_id=self._store.new_id(),
            state="running",
            metadata=meta,
            created_at=time.time(),
            counts=RequestCounts(total=total),
            endpoint=self._backend.endpoint,
            pid=os.getpid(),
            host=socket.gethostname(),
        )
        try:
            await anyio.to_thread.run_sync(self._store.create, record, path)
            run = BatchRun(self._store, record, self._backend, concurrency=self.concurrency)
            self._runs[record.batch_id] = run
            try:
                await run.run()
            finally:
                self._runs.pop(record.batch_id, None)
        except OSError as exc:
            # A full disk or a read-only folder: the batch's lines so far stay on disk, and
            # a later check adopts the batch (found by its metadata) and sends the rest.
            raise BatchValidationError(
                f"cannot write the local provider's batch files here ({exc.strerror or exc}); "
                "free some space or make the folder writable, then run the same command again",
                path=self.state_dir,
            ) from exc
        return record.batch_id

    async def poll(self, batch_id: str) -> BatchStatus:
        """The batch's state and counts; a batch whose process died reads as ``expired``."""
        run = self._runs.get(batch_id)
        if run is not None:
            state: BatchState = "cancelling" if run.cancelling else "running"
            return _status(run.snapshot(state))
        return _status(await self._load(batch_id))

    def results(self, batch_id: str) -> AsyncIterator[ResultLine]:
        """Stream every request's outcome; those with none are ``missing``/``batch_cancelled``.

        On a batch still running, streams the outcomes so far and reports nothing missing.
        """
        return self._results(batch_id)

    async def _results(self, batch_id: str) -> AsyncIterator[ResultLine]:
        run = self._runs.get(batch_id)
        record = run.snapshot("running") if run is not None else None
        if record is None:
            record = await self._load(batch_id)
        async for line in read_results(self._store.folder(batch_id), record):
            yield line

    async def cancel(self, batch_id: str) -> BatchStatus:
        """Stop the batch, keeping finished lines; its other requests report ``batch_cancelled``.

        In the process running it, the run stops at once. From another process, a marker asks
        the running process to stop (it checks about once a second; this waits up to ~3 s
        for it and may return ``cancelling``); a batch whose process is gone is marked
        cancelled here.
        """
        run = self._runs.get(batch_id)
        if run is not None:
            run.cancel()
            await run.done.wait()
            return _status(run.record)
        record = await self._load(batch_id)
        if is_terminal(record.state):
            return _status(record)
        if not owner_alive(record):
            record = msgspec.structs.replace(
                record, state="cancelled", finished_at=time.time(), errors=()
            )
            await anyio.to_thread.run_sync(self._store.write, record)
            return _status(record)
        await anyio.to_thread.run_sync(self._store.request_cancel, batch_id)
        with anyio.move_on_after(3 * BatchRun.checkpoint_interval):
            while not is_terminal(record.state):
                await anyio.sleep(0.05)
                record = await self._load(batch_id)
        return _status(record)

    async def find(self, metadata: Mapping[str, str]) -> list[BatchStatus]:
        """Batches under ``state_dir`` whose metadata holds every given pair, oldest first."""
        wanted = dict(metadata).items()
        records = await anyio.to_thread.run_sync(lambda: list(self._store.records()))
        found = []
        for record in sorted(records, key=lambda r: r.created_at):
            if wanted <= record.metadata.items():
                found.append(await self.poll(record.batch_id))
        return found

    async def aclose(self) -> None:
        """Close the HTTP client (when this provider created it)."""
        await self._backend.aclose()

    async def _load(self, batch_id: str) -> BatchRecord:
        try:
            record = await anyio.to_thread.run_sync(self._store.read, batch_id)
        except (OSError, msgspec.DecodeError) as exc:
            raise ProviderError(
                f"cannot read local batch {batch_id} under {self.state_dir}: {exc}",
                code="unreadable_batch",
                provider=self.name,
            ) from exc
        if record is None:
            raise ProviderError(
                f"no local batch {batch_id} under {self.state_dir}: was it submitted with "
                "another state_dir?",
                code="batch_not_found",
                provider=self.name,
            )
        if record.state in ("running", "cancelling"):
            if not owner_alive(record):
                record = _interrupted(record)
                await anyio.to_thread.run_sync(self._store.write, record)
            elif record.state == "running" and self._store.cancel_requested(batch_id):
                record = msgspec.structs.replace(record, state="cancelling")
        return record


def _interrupted(record: BatchRecord) -> BatchRecord:
    message = (
        f"the process running this batch (pid {record.pid}) stopped before it finished; "
        "finished requests are kept, the others are reported as missing"
    )
    error = BatchError(code="interrupted", message=message, retry_later=True)
    return msgspec.structs.replace(
        record, state="expired", finished_at=time.time(), errors=(error,)
    )


def _status(record: BatchRecord) -> BatchStatus:
    interrupted = any(e.code == "interrupted" for e in record.errors)
    return BatchStatus(
        batch_id=record.batch_id,
        state=record.state,
        request_counts=record.counts,
        errors=record.errors,
        metadata=record.metadata,
        created_at=record.created_at,
        provider_status="interrupted" if interrupted else record.state,
    )
