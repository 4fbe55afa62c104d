"""``OpenAIBatchProvider``: kyro's provider for the OpenAI Batch API (and Azure, and look-alikes).

Decisions, each one for a reason:

* **The key is checked lazily**, at the first network call, so a provider built without one
  can still ``encode`` and report ``limits`` (``kyro plan`` needs nothing else).
* **Uploads are streamed** from disk (:mod:`kyro_openai._upload`) and retried like any call: a
  duplicate upload only costs an orphan file.
* **Creating a batch is not retried blindly.** The API has no idempotency key, so after an
  answer that proves nothing was created (408, 409, 429, a refused connection) the create is
  simply sent again, but after an ambiguous failure (5xx, a timeout or a connection dropped
  after the request went out) the batch list is first searched for a batch made from the file
  just uploaded, and that batch is adopted instead of creating a second one.
* **Azure** (``azure=True``): ``api-key`` header, 100,000 requests per batch, the create body's
  ``endpoint`` without ``/v1`` (as in Azure's create examples; lines keep ``/v1/...``), and
  ``expires_after.anchor`` / ``expires_after.seconds`` upload fields as its docs spell them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import msgspec

from kyro import redact
from kyro.provider import (
    BatchLimits,
    BatchStatus,
    BatchValidationError,
    JudgeRequest,
    KyroError,
    ResultLine,
    line_parts,
    parse_timestamp,
)
from kyro_openai._api import BatchList, WireBatch
from kyro_openai._secret import Secret, check_expiry
from kyro_openai._status import batch_status
from kyro_openai.wire import (
    CHAT_COMPLETIONS_URL,
    InputId,
    classify_output_line,
    decode_output_line,
    encode_request,
)

if TYPE_CHECKING:  # httpx and the client plumbing are imported at the first call (see below)
    import httpx

    from kyro.provider import RetryPolicy
    from kyro_openai._http import Http, Sleep

__all__ = ["DEFAULT_MODEL", "OPENAI_LIMITS", "OpenAIBatchProvider"]

DEFAULT_MODEL = "gpt-4o-mini"
"""The model of judges that name none (judge, config, ``model=``/``--model``, ``KYRO_MODEL``)."""

OPENAI_LIMITS = BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024)
"""OpenAI's documented limits per batch: 50,000 requests and 200 MB per input file."""

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT = (600.0, 5.0)
"""Seconds a call may take, and seconds to connect (``timeout=None``)."""
AZURE_LIMITS = BatchLimits(max_requests=100_000, max_bytes=200 * 1024 * 1024)


class OpenAIBatchProvider:
    """Run kyro's batches on the OpenAI Batch API, Azure OpenAI, or an OpenAI-compatible server.

    Settings come from the arguments, else ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` (default
    ``https://api.openai.com/v1``), ``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID``.
    ``default_model`` (:data:`DEFAULT_MODEL`, ``gpt-4o-mini``) is the model of judges that name
    none anywhere else. ``structured_outputs`` says whether requests ask for a strict JSON
    schema of the verdict (``json_schema``) or JSON mode: None decides by model name
    (:func:`kyro_openai.supports_structured_outputs`), True/False force it. Pass your own
    ``client`` to control transport, timeouts and proxies (it is then not closed by
    :meth:`aclose`, and ``timeout`` is ignored); ``sleep`` is what retries wait with.

    Example::

        async with OpenAIBatchProvider() as provider:
            batch_id = await provider.submit(Path("shard-0.jsonl"), metadata={"kyro_job": "j1"})
            status = await provider.poll(batch_id)
    """

    name = "openai"
    default_model: str = DEFAULT_MODEL

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        client: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = anyio.sleep,
        limits: BatchLimits | None = None,
        azure: bool = False,
        file_expires_after: int | None = None,
        output_expires_after: int | None = None,
        endpoint: str = CHAT_COMPLETIONS_URL,
        timeout: float | httpx.Timeout | None = None,
        default_model: str = DEFAULT_MODEL,
        structured_outputs: bool | None = None,
    ) -> None:
        self.default_model = default_model
        self.structured_outputs = structured_outputs
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self._secret = Secret(key) if key else None
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip(
            "/"
        )
        self.organization = organization or os.environ.get("OPENAI_ORG_ID") or None
        self.project = project or os.environ.get("OPENAI_PROJECT_ID") or None
        self.azure = azure
        self.endpoint = endpoint
        self.limits = limits or (AZURE_LIMITS if azure else OPENAI_LIMITS)
        self.file_expires_after = check_expiry("file_expires_after", file_expires_after)
        self.output_expires_after = check_expiry("output_expires_after", output_expires_after)
        # The HTTP side (httpx, its client, the retries) is built at the first call: a
        # plan only encodes, and importing httpx would cost it more than its encoding does.
        self._client = client
        self._timeout = timeout
        self._retry = retry
        self._sleep = sleep
        self._made_http: Http | None = None

    @property
    def _http(self) -> Http:
        if self._made_http is None:
            import httpx

            from kyro.provider import RetryPolicy
            from kyro_openai._http import Http

            timeout = self._timeout
            self._made_http = Http(
                client=self._client
                or functools.partial(
                    httpx.AsyncClient,
                    timeout=httpx.Timeout(DEFAULT_TIMEOUT[0], connect=DEFAULT_TIMEOUT[1])
                    if timeout is None
                    else timeout,
                    follow_redirects=True,
                    limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
                ),
                base_url=self.base_url,
                headers=self._headers,
                retry=self._retry or RetryPolicy(),
                sleep=self._sleep,
                secret=self._secret,
                azure=self.azure,
                owns_client=self._client is None,
            )
        return self._made_http

    def __repr__(self) -> str:
        mode = ", azure=True" if self.azure else ""
        key = "set" if self._secret else "missing"
        return f"OpenAIBatchProvider(base_url={redact(self.base_url)!r}{mode}, api_key=<{key}>)"

    def check_credentials(self) -> None:
        """Raise :class:`kyro.KyroError` saying what to set when no call could authenticate:
        no key, or one an HTTP header cannot carry (a trailing carriage return, say).

        ``BatchJudge.submit`` calls it before it writes anything, so a job is never left
        behind that cannot be sent. The key itself never appears in the message.

        Example::

            OpenAIBatchProvider(api_key="").check_credentials()   # KyroError: no API key ...
        """
        from kyro.provider import header_problem
        from kyro_openai._http import bad_key_error, missing_key_error

        if self._secret is None:
            raise missing_key_error(self.azure)
        problem = header_problem(self._secret.reveal())
        if problem is not None:
            raise bad_key_error("OPENAI_API_KEY", problem)

    def _headers(self) -> dict[str, str]:
        self.check_credentials()
        assert self._secret is not None
        if self.azure:
            headers = {"api-key": self._secret.reveal()}
        else:
            headers = {"Authorization": f"Bearer {self._secret.reveal()}"}
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        return headers

    def encode(self, request: JudgeRequest, buffer: bytearray) -> None:
        """Append ``request`` as one batch input line for :attr:`endpoint`.

        On OpenAI's own endpoint a Claude model is refused (BatchValidationError): one job
        runs on one provider.

        Example::

            provider.encode(request, buffer)   # b'{"custom_id":...,"method":"POST",...}\\n'
        """
        if self.base_url == DEFAULT_BASE_URL and request.model.startswith("claude-"):
            raise BatchValidationError(
                f"model {request.model!r} (request {request.custom_id}) is a Claude model, "
                "which the OpenAI Batch API does not run, and one job runs on one provider. "
                "Run a Claude-only config with --provider anthropic, or split the judges into "
                "one config per provider"
            )
        encode_request(
            request, buffer, url=self.endpoint, structured_outputs=self.structured_outputs
        )

    def encode_parts(self, request: JudgeRequest) -> tuple[bytes, ...] | None:
        """:meth:`encode`'s line for ``request`` cut at its custom_id and message contents
        (:func:`kyro.provider.line_parts`), so a plan writes a judge's lines from one of them.

        Example::

            parts = provider.encode_parts(request)   # (b'{"custom_id":', b',"method":…', …)
        """
        return line_parts(self.encode, request)

    cache_scope = "openai-chat"
    """Whose answers these are, for kyro's reply cache: any chat-completions service."""

    def supports_samples(self, model: str) -> bool:
        """True: a chat completions body takes ``n``, so runs can travel as samples (the
        prompt billed once). Turn it off per config with ``samples: false``.
        """
        return True

    async def submit(self, path: Path, *, metadata: Mapping[str, str]) -> str:
        """Upload the shard at ``path`` (``purpose=batch``) and create a 24 h batch from it.

        Metadata is checked against OpenAI's caps (16 pairs, keys ≤ 64, values ≤ 512 chars)
        before anything is sent.

        Example::

            batch_id = await provider.submit(Path("shard-0.jsonl"), metadata={"kyro_job": "j1"})
        """
        from kyro_openai._submit import check_metadata

        meta = check_metadata(metadata)
        self._headers()  # fail on a missing key before touching the network
        file_id = await self._upload(Path(path))
        return await self._create(file_id, meta)

    async def _upload(self, path: Path) -> str:
        from kyro_openai._submit import upload_fields, upload_shard

        fields = upload_fields(self.file_expires_after, azure=self.azure)
        return await upload_shard(self._http, path, fields=fields)

    async def _create(self, file_id: str, metadata: dict[str, str]) -> str:
        endpoint = self.endpoint
        if self.azure and endpoint.startswith("/v1/"):
            endpoint = endpoint[3:]
        body: dict[str, Any] = {
            "input_file_id": file_id,
            "endpoint": endpoint,
            "completion_window": "24h",
            "metadata": metadata,
        }
        if self.output_expires_after is not None:
            body["output_expires_after"] = {
                "anchor": "created_at",
                "seconds": self.output_expires_after,
            }
        from kyro_openai._submit import create_batch

        return await create_batch(self._http, body, find_for_file=self._batch_for_file)

    async def _batch_for_file(self, file_id: str) -> str | None:
        """The id of a batch made from ``file_id``, if an earlier attempt did create one."""
        async for batch in self._list_batches():
            if batch.input_file_id == file_id:
                return batch.id
        return None

    async def _list_batches(self, created_after: float | None = None) -> AsyncIterator[WireBatch]:
        """Every batch, newest first, page by page — until the list ends, a page is empty, the
        cursor stops advancing (a server repeating ``last_id``), or, with ``created_after``, a
        whole page is older than that: so listing always ends, however long the history."""
        after: str | None = None
        from kyro_openai._http import decode_json

        cursors: set[str] = set()
        while True:
            params: dict[str, str | int] = {"limit": 100}
            if after is not None:
                params["after"] = after
            response = await self._http.call(
                functools.partial(self._http.build, "GET", "/batches", params=params),
                action="listing batches",
            )
            page: BatchList = decode_json(response, BatchList, "listing batches")
            data = page.data or []
            for batch in data:
                yield batch
            after = page.last_id or (data[-1].id if data else None)
            if not page.has_more or not data or after is None or after in cursors:
                return
            cursors.add(after)
            if created_after is not None and _all_older(data, created_after):
                return

    async def _retrieve(self, batch_id: str) -> WireBatch:
        from kyro_openai._http import decode_json

        action = f"retrieving batch {batch_id}"
        response = await self._http.call(
            lambda: self._http.build("GET", f"/batches/{batch_id}"),
            action=action,
            hint_404=self._hint_404_batch(batch_id),
        )
        batch: WireBatch = decode_json(response, WireBatch, action)
        return batch

    def _hint_404_batch(self, batch_id: str) -> str:
        return (
            f"no batch {batch_id} here: check the batch id, and that base_url "
            f"({self.base_url}) and the key belong to the account that created it"
        )

    async def poll(self, batch_id: str) -> BatchStatus:
        """The batch's current state, request counts, job-level errors and metadata.

        Example::

            status = await provider.poll("batch_abc123")
            status.state, status.request_counts.completed, status.terminal
        """
        return batch_status(await self._retrieve(batch_id))

    async def cancel(self, batch_id: str) -> BatchStatus:
        """Ask OpenAI to cancel: the batch turns ``cancelling``, then ``cancelled``.

        Cancelling a batch that already ended is not an error: its terminal status is returned.

        Example::

            status = await provider.cancel("batch_abc123")   # "cancelling"
        """
        from kyro_openai._http import decode_json

        action = f"cancelling batch {batch_id}"
        return await self._http.cancel(
            f"/batches/{batch_id}/cancel",
            action=action,
            hint_404=self._hint_404_batch(batch_id),
            status_of=lambda response: batch_status(decode_json(response, WireBatch, action)),
            poll=lambda: self.poll(batch_id),
        )

    async def find(
        self, metadata: Mapping[str, str], *, created_after: float | None = None
    ) -> list[BatchStatus]:
        """Every batch whose metadata contains all the given pairs.

        Walks the batch list (newest first) and always ends: at the last page, an empty page,
        a cursor that does not advance, or — with ``created_after`` (unix seconds) — the
        first page whose batches are all older than that.

        Example::

            orphans = await provider.find({"kyro_job": "j1", "kyro_shard": "0"})
        """
        wanted = dict(metadata)
        found: dict[str, BatchStatus] = {}  # by id: a page a server repeats counts once
        async for batch in self._list_batches(created_after):
            have = batch.metadata or {}
            if batch.id not in found and all(have.get(k) == v for k, v in wanted.items()):
                found[batch.id] = batch_status(batch)
        return list(found.values())

    async def results(self, batch_id: str) -> AsyncIterator[ResultLine]:
        """Stream the outcome of every request of a terminal batch, each ``custom_id`` once.

        Output file first, then the error file (either may be null or empty), then — when
        fewer ids came back than the batch holds — one ``missing`` line per input request seen
        in neither. Raises KyroError for a batch that is not terminal yet.

        Example::

            async for line in provider.results("batch_abc123"):
                print(line.custom_id, line.ok, line.content or line.error)
        """
        batch = await self._retrieve(batch_id)
        status = batch_status(batch)
        if not status.terminal:
            raise KyroError(
                f"batch {batch_id} is still {status.provider_status}: poll until it is "
                "completed, failed, expired or cancelled before reading its results"
            )
        from kyro_openai._results import missing_line

        seen: set[str] = set()
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            async for raw in self._file_lines(file_id):
                line = decode_output_line(raw)
                if line is None or line.custom_id in seen:
                    continue
                seen.add(line.custom_id)
                yield classify_output_line(line)
        total = status.request_counts.total
        if batch.input_file_id and (total == 0 or len(seen) < total):
            async for raw in self._file_lines(batch.input_file_id):
                try:
                    custom_id = msgspec.json.decode(raw, type=InputId).custom_id
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue
                if custom_id not in seen:
                    seen.add(custom_id)
                    yield missing_line(custom_id)

    def _file_lines(self, file_id: str) -> AsyncIterator[bytes]:
        return self._http.download_lines(
            f"/files/{file_id}/content",
            action=f"downloading file {file_id}",
            hint_404=f"file {file_id} is gone: result files expire 30 days after the batch",
        )

    async def aclose(self) -> None:
        """Close the HTTP client if this provider created it (an injected one is left open).

        Example::

            await provider.aclose()
        """
        if self._made_http is not None:  # nothing was ever opened otherwise
            await self._made_http.aclose()

    async def __aenter__(self) -> OpenAIBatchProvider:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def _all_older(batches: list[WireBatch], moment: float) -> bool:
    """True when every batch was created before ``moment`` (unix seconds)."""
    for batch in batches:
        created = parse_timestamp(batch.created_at)
        if created is None or created >= moment:
            return False
    return True
