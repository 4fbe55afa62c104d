"""``AnthropicBatchProvider``: kyro's provider for Anthropic's Message Batches API.

Decisions, each one for a reason:

* **Over httpx directly**, no vendor SDK: ``x-api-key`` and ``anthropic-version`` on every
  call, retries shaped like the vendor SDK's (:mod:`kyro_anthropic._http`).
* **The key is checked lazily**, at the first network call, so a provider built without one
  can still ``encode`` and report ``limits`` (``kyro plan`` needs nothing else).
* **One JSON POST per shard**, its body streamed from the shard file with a known length
  (:mod:`kyro_anthropic._body`); limits are checked before anything is sent.
* **Creating a batch is not retried blindly**: the API has no idempotency key. After an answer
  that proves nothing was made (408, 409, 429, a refused connection) the create is sent again;
  after an ambiguous failure (5xx, a timeout, a connection dropped once the body was out) the
  batches created since are searched first (:mod:`kyro_anthropic._adopt`).
* **Crash recovery without metadata**: :meth:`find` matches on creation time and request
  count, never on a tag the API does not keep; see :mod:`kyro_anthropic._adopt` for the rule.
* **Results are fetched from** ``results_url`` only when it is on the same origin as
  ``base_url`` (else from ``/v1/messages/batches/{id}/results``), so the key never travels to
  another host.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import TracebackType

import anyio
import httpx

from kyro.provider import (
    BatchLimits,
    BatchState,
    BatchStatus,
    JudgeRequest,
    KyroError,
    RequestCounts,
    ResultLine,
    RetryPolicy,
    header_problem,
    parse_timestamp,
)
from kyro_anthropic._adopt import (
    DEFAULT_CLOCK_SKEW,
    Intent,
    ambiguity,
)
from kyro_anthropic._body import RequestsBody, scan_shard
from kyro_anthropic._encode import ANTHROPIC_LIMITS, DEFAULT_MAX_TOKENS, encode_request
from kyro_anthropic._http import (
    API_VERSION,
    Http,
    Secret,
    Sleep,
)
from kyro_anthropic._results import decode_line
from kyro_anthropic._retry import ANTHROPIC_RETRY, MAX_RETRY_AFTER, retry_wait
from kyro_anthropic._wire import BatchList, MessageBatch

__all__ = ["AnthropicBatchProvider", "batch_status"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MODEL = "claude-haiku-4-5"
DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=5.0)
_BATCHES = "/v1/messages/batches"
_SAFE_TO_RESEND = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class _Ambiguous(Exception):
    """A create attempt that may or may not have made a batch."""

    def __init__(self, response: httpx.Response | None, cause: Exception | None) -> None:
        super().__init__("ambiguous create")
        self.response = response
        self.cause = cause


def batch_status(batch: MessageBatch) -> BatchStatus:
    """The neutral status of a Message Batch.

    ``in_progress`` is running and ``canceling`` cancelling. ``ended`` — the only terminal
    status — reads as ``cancelled`` when a cancel was asked for, ``expired`` when some requests
    expired, and ``completed`` otherwise; per-request outcomes come from :meth:`results`. An
    unknown status is reported as pending with the raw text kept.

    Example::

        batch_status(MessageBatch(id="msgbatch_1", processing_status="ended")).terminal  # True
    """
    raw = batch.processing_status or ""
    state: BatchState
    counts = batch.request_counts
    if raw == "in_progress":
        state = "running"
    elif raw == "canceling":
        state = "cancelling"
    elif raw == "ended":
        if batch.cancel_initiated_at:
            state = "cancelled"
        elif counts is not None and counts.expired:
            state = "expired"
        else:
            state = "completed"
    else:
        state = "pending"
    return BatchStatus(
        batch_id=batch.id,
        state=state,
        request_counts=RequestCounts(
            total=counts.total if counts else 0,
            completed=counts.succeeded if counts else 0,
            failed=(counts.errored + counts.canceled + counts.expired) if counts else 0,
        ),
        created_at=parse_timestamp(batch.created_at),
        provider_status=batch.processing_status,
    )


class AnthropicBatchProvider:
    """Run kyro's batches on Anthropic's Message Batches API (Claude models).

    Settings come from the arguments, else ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL``
    (default ``https://api.anthropic.com``), as the vendor SDK reads them. ``max_tokens`` is
    the default for judges whose ``params`` set none; ``clock_skew`` widens the crash-recovery
    window (see :mod:`kyro_anthropic._adopt`); ``workspace_id`` is sent as
    ``anthropic-workspace-id`` for keys that span workspaces; ``retry`` defaults to the vendor
    SDK's rule (:data:`kyro_anthropic.ANTHROPIC_RETRY`); ``claude_only=False`` lets
    models not named ``claude-…`` through (a compatible server with its own names). Pass your
    own ``client`` to control transport (it is then not closed by :meth:`aclose`); ``sleep``
    is what retries wait with.

    Example::

        async with AnthropicBatchProvider() as provider:
            batch_id = await provider.submit(Path("shard-0.jsonl"), metadata={})
            status = await provider.poll(batch_id)
    """

    name = "anthropic"
    default_model = DEFAULT_MODEL
    json_mode_needs_mention = False  # the verdict comes through a forced tool call

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        client: httpx.AsyncClient | None = None,
        retry: RetryPolicy = ANTHROPIC_RETRY,
        sleep: Sleep = anyio.sleep,
        limits: BatchLimits | None = None,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        clock_skew: float = DEFAULT_CLOCK_SKEW,
        workspace_id: str | None = None,
        claude_only: bool = True,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("ANTHROPIC_API_KEY")
        self._secret = Secret(key) if key else None
        base = base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL
        self.base_url = base.rstrip("/")
        if limits is not None and (
            limits.max_requests > ANTHROPIC_LIMITS.max_requests
            or limits.max_bytes > ANTHROPIC_LIMITS.max_bytes
        ):
            raise KyroError(
                f"limits {limits} exceed what one Anthropic batch takes "
                f"({ANTHROPIC_LIMITS.max_requests} requests, {ANTHROPIC_LIMITS.max_bytes} bytes)"
            )
        self.limits = limits or ANTHROPIC_LIMITS
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise KyroError(f"max_tokens must be an integer of at least 1, got {max_tokens!r}")
        self.max_tokens = max_tokens
        if clock_skew < 0:
            raise KyroError(f"clock_skew must be 0 or more seconds, got {clock_skew}")
        self.clock_skew = clock_skew
        self.workspace_id = workspace_id
        self.claude_only = claude_only
        owns_client = client is None
        if client is None:
            client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        attempts = retry.max_retries + 1
        read = client.timeout.read if client.timeout.read is not None else 600.0
        self.submit_window = attempts * (read + MAX_RETRY_AFTER) + 60.0
        """The longest one submit can take: each attempt timing out, then its longest wait."""
        self._http = Http(
            client=client,
            base_url=self.base_url,
            headers=self._headers,
            retry=retry,
            sleep=sleep,
            secret=self._secret,
            owns_client=owns_client,
        )

    def __repr__(self) -> str:
        key = "set" if self._secret else "missing"
        return f"AnthropicBatchProvider(base_url={self.base_url!r}, api_key=<{key}>)"

    def check_credentials(self) -> None:
        """Raise :class:`kyro.KyroError` saying what to set when no call could authenticate:
        no key, or one an HTTP header cannot carry. ``BatchJudge.submit`` calls it before it
        writes anything; the key itself never appears in the message.

        Example::

            AnthropicBatchProvider(api_key="").check_credentials()   # KyroError: no API key
        """
        if self._secret is None:
            raise KyroError(
                "no API key for the anthropic provider: set ANTHROPIC_API_KEY, or pass "
                "api_key= to AnthropicBatchProvider"
            )
        problem = header_problem(self._secret.reveal())
        if problem is not None:
            raise KyroError(
                f"the API key cannot be used: {problem}. Set ANTHROPIC_API_KEY again to the "
                "key alone (no quotes, spaces or line breaks), or pass api_key="
            )

    def _headers(self) -> dict[str, str]:
        self.check_credentials()
        assert self._secret is not None
        headers = {"x-api-key": self._secret.reveal(), "anthropic-version": API_VERSION}
        if self.workspace_id:
            headers["anthropic-workspace-id"] = self.workspace_id
        return headers

    def encode(self, request: JudgeRequest, buffer: bytearray) -> None:
        """Append ``request`` as one Message Batches request line (see ``_encode``).

        Example::

            provider.encode(request, buffer)   # b'{"custom_id":...,"params":{...}}\\n'
        """
        encode_request(request, buffer, max_tokens=self.max_tokens, claude_only=self.claude_only)

    # -- submit --------------------------------------------------------------------------

    async def submit(self, path: Path, *, metadata: Mapping[str, str]) -> str:
        """Create one batch from the shard at ``path``; return its id.

        ``metadata`` is not sent (the API keeps none); its ``kyro_intent_at`` and
        ``kyro_requests`` are what :meth:`find` matches on after a crash.

        Example::

            batch_id = await provider.submit(Path("shard-0.jsonl"), metadata={})
        """
        self._headers()  # fail on a missing key before touching the network
        body = await scan_shard(Path(path), self.limits)
        return await self._create(body)

    async def _create(self, body: RequestsBody) -> str:
        action = f"creating a batch from {body.path.name}"
        started = time.time()
        http = self._http

        async def attempt() -> httpx.Response:
            request = http.build("POST", _BATCHES, content=body.stream(), headers=body.headers())
            try:
                response = await http.send_once(request)
            except httpx.TransportError as exc:
                if isinstance(exc, _SAFE_TO_RESEND):
                    raise  # nothing reached the server: resent by the retry policy
                raise _Ambiguous(None, exc) from exc
            if response.status_code >= 500 and response.headers.get("x-should-retry") != "false":
                await response.aread()
                await response.aclose()
                raise _Ambiguous(response, None)
            return response

        attempts = 0
        while True:
            attempts += 1
            if attempts > 1:
                adopted = await self._created_since(started, body.requests, action)
                if adopted is not None:
                    return adopted
            try:
                response = await http.call_send(attempt, action=action)
            except _Ambiguous as exc:
                if attempts > http.retry.max_retries:
                    # A batch may exist: the job's intent stays open and find() settles it.
                    if exc.response is not None:
                        raise http.fail(exc.response, action=action, hint_404="") from None
                    cause = exc.cause or exc
                    raise http.unreachable(cause, action=action) from cause
                await http.sleep(retry_wait(exc.response, attempts - 1, http.retry))
                continue
            batch: MessageBatch = self._http.decode(response, MessageBatch, action)
            return batch.id

    async def _created_since(self, started: float, requests: int, action: str) -> str | None:
        intent = Intent(started - self.clock_skew, requests)
        found = [batch async for batch in self._candidates(intent)]
        if len(found) > 1:
            raise ambiguity(found, f"{action} got no clear answer")
        return found[0].id if found else None

    # -- list / find -----------------------------------------------------------------------

    async def _list_batches(self) -> AsyncIterator[MessageBatch]:
        """Every batch of the workspace, newest first, page after page (``after_id``)."""
        after: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": 100}
            if after is not None:
                params["after_id"] = after
            response = await self._http.call(
                functools.partial(self._http.build, "GET", _BATCHES, params=params),
                action="listing batches",
            )
            page: BatchList = self._http.decode(response, BatchList, "listing batches")
            for batch in page.data:
                yield batch
            after = page.last_id or (page.data[-1].id if page.data else None)
            if not page.has_more or not page.data or after is None:
                return

    async def _candidates(self, intent: Intent) -> AsyncIterator[MessageBatch]:
        async for batch in self._list_batches():
            if intent.too_old(batch):
                return  # the list is newest first: nothing older can match
            if intent.matches(batch):
                yield batch

    async def find(self, metadata: Mapping[str, str]) -> list[BatchStatus]:
        """Every batch that could be the one submitted with ``metadata`` (none confirmed).

        A candidate was created within ``clock_skew`` before ``kyro_intent_at`` and
        ``clock_skew`` plus :attr:`submit_window` after it, holds
        exactly ``kyro_requests`` requests and has no cancel asked for; a missing fact widens
        the search. Candidates come back with empty metadata, since the API keeps none: the
        caller decides, and kyro's jobs refuse to guess between several.

        Example::

            found = await provider.find({"kyro_intent_at": "2026-01-05T10:00:00+00:00",
                                         "kyro_requests": "40"})
        """
        intent = Intent.from_metadata(
            metadata, clock_skew=self.clock_skew, submit_window=self.submit_window
        )
        return [batch_status(batch) async for batch in self._candidates(intent)]

    # -- poll / cancel ---------------------------------------------------------------------

    def _hint_404(self, batch_id: str) -> str:
        return (
            f"no batch {batch_id} here: check the batch id, and that base_url "
            f"({self.base_url}) and the key belong to the workspace that created it"
        )

    async def _retrieve(self, batch_id: str) -> MessageBatch:
        action = f"retrieving batch {batch_id}"
        response = await self._http.call(
            lambda: self._http.build("GET", f"{_BATCHES}/{batch_id}"),
            action=action,
            hint_404=self._hint_404(batch_id),
        )
        batch: MessageBatch = self._http.decode(response, MessageBatch, action)
        return batch

    async def poll(self, batch_id: str) -> BatchStatus:
        """The batch's current state and request counts.

        Example::

            status = await provider.poll("msgbatch_01")
            status.state, status.terminal
        """
        return batch_status(await self._retrieve(batch_id))

    async def cancel(self, batch_id: str) -> BatchStatus:
        """Ask Anthropic to cancel: the batch turns ``canceling``, then ``ended``.

        Cancelling a batch that already ended is not an error: its terminal status is returned.

        Example::

            status = await provider.cancel("msgbatch_01")   # "cancelling"
        """
        action = f"cancelling batch {batch_id}"
        return await self._http.cancel(
            f"{_BATCHES}/{batch_id}/cancel",
            action=action,
            hint_404=self._hint_404(batch_id),
            status_of=lambda response: batch_status(
                self._http.decode(response, MessageBatch, action)
            ),
            poll=lambda: self.poll(batch_id),
        )

    # -- results -----------------------------------------------------------------------------

    def _results_url(self, batch: MessageBatch) -> str:
        own = httpx.URL(self.base_url)
        url = batch.results_url
        if url:
            given = httpx.URL(url)
            if (given.scheme, given.host, given.port) == (own.scheme, own.host, own.port):
                return url
        return f"{_BATCHES}/{batch.id}/results"

    async def results(self, batch_id: str) -> AsyncIterator[ResultLine]:
        """Stream the outcome of every request of an ended batch, each ``custom_id`` once.

        Requests absent from the results are not invented here (the API keeps no input file
        to list them from): kyro's job counts them as ``missing``. Raises KyroError for a
        batch that has not ended.

        Example::

            async for line in provider.results("msgbatch_01"):
                print(line.custom_id, line.ok, line.content or line.error)
        """
        batch = await self._retrieve(batch_id)
        status = batch_status(batch)
        if not status.terminal:
            raise KyroError(
                f"batch {batch_id} is still {status.provider_status}: poll until it has "
                "ended before reading its results"
            )
        seen: set[str] = set()
        async for raw in self._http.download_lines(
            self._results_url(batch),
            action=f"downloading the results of batch {batch_id}",
            hint_404=f"the results of {batch_id} are gone: they are kept 29 days",
        ):
            line = decode_line(raw)
            if line is None or line.custom_id in seen:
                continue
            seen.add(line.custom_id)
            yield line

    async def aclose(self) -> None:
        """Close the HTTP client if this provider created it (an injected one is left open).

        Example::

            await provider.aclose()
        """
        await self._http.aclose()

    async def __aenter__(self) -> AnthropicBatchProvider:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
