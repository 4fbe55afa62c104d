"""OpenAIBatchProvider over a MockTransport: settings, headers, upload, create, poll, errors."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import anyio
import httpx
import msgspec
import pytest

from kyro import KyroError, ProviderError
from kyro.provider import BatchProvider, BatchState, JudgeRequest, Message, RetryPolicy
from kyro_openai import OpenAIBatchProvider
from tests.openai.openai_fakes import BASE, KEY, FakeApi, SleepLog, batch_json, error_json
from tests.openai.openai_spec import validate


@pytest.fixture
def shard(tmp_path: Path) -> Path:
    """A two-line shard written with the provider's own encoder."""
    provider = OpenAIBatchProvider(api_key="k")
    buffer = bytearray()
    for index in range(2):
        provider.encode(
            JudgeRequest(
                custom_id=f"t{index}-j0-r0",
                model="gpt-4o-mini",
                messages=(Message(role="user", content="hi"),),
            ),
            buffer,
        )
    path = tmp_path / "shard-0"
    path.write_bytes(bytes(buffer))
    return path


def test_provider_satisfies_the_protocol_and_limits() -> None:
    """The provider is a BatchProvider named openai with OpenAI's and Azure's limits."""
    provider = OpenAIBatchProvider(api_key="k")
    assert isinstance(provider, BatchProvider)
    assert provider.name == "openai"
    assert (provider.limits.max_requests, provider.limits.max_bytes) == (50_000, 200 * 1024**2)
    assert OpenAIBatchProvider(api_key="k", azure=True).limits.max_requests == 100_000


def test_environment_supplies_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """OPENAI_BASE_URL, OPENAI_ORG_ID and OPENAI_PROJECT_ID are read when no argument is given."""
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-1")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-1")
    provider = OpenAIBatchProvider(api_key="k")
    assert (provider.base_url, provider.organization, provider.project) == (
        "http://127.0.0.1:9/v1",
        "org-1",
        "proj-1",
    )


def test_default_base_url_is_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without argument or environment the base URL is api.openai.com/v1."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert OpenAIBatchProvider(api_key="k").base_url == "https://api.openai.com/v1"


async def test_missing_key_fails_at_the_first_call(
    monkeypatch: pytest.MonkeyPatch, shard: Path
) -> None:
    """Without a key the provider still builds and encodes, but a call names OPENAI_API_KEY."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    api = FakeApi()
    provider = OpenAIBatchProvider(client=api.client(), base_url=BASE)
    with pytest.raises(KyroError, match="OPENAI_API_KEY"):
        await provider.submit(shard, metadata={})
    assert api.requests == []


def test_key_is_hidden_in_repr() -> None:
    """Neither repr nor str of the provider shows the key."""
    provider = OpenAIBatchProvider(api_key=KEY)
    assert KEY not in repr(provider)
    assert KEY not in str(provider)
    assert "api_key=<set>" in repr(provider)


async def test_headers_bearer_and_routing_only_when_set() -> None:
    """Bearer auth always; OpenAI-Organization and OpenAI-Project only when configured."""
    api = FakeApi()
    api.batches["batch_1"] = batch_json()
    await api.provider().poll("batch_1")
    await api.provider(organization="org-9", project="proj-9").poll("batch_1")
    bare, routed = api.requests
    assert bare.headers["authorization"] == f"Bearer {KEY}"
    assert "openai-organization" not in bare.headers
    assert "openai-project" not in bare.headers
    assert routed.headers["openai-organization"] == "org-9"
    assert routed.headers["openai-project"] == "proj-9"


async def test_azure_mode_uses_the_api_key_header() -> None:
    """Azure mode sends api-key and no Authorization header."""
    api = FakeApi()
    api.batches["batch_1"] = batch_json()
    base = "https://res.openai.azure.com/openai/v1"
    await api.provider(azure=True, base_url=base).poll("batch_1")
    (request,) = api.requests
    assert request.headers["api-key"] == KEY
    assert "authorization" not in request.headers
    assert str(request.url) == f"{base}/batches/batch_1"


async def test_submit_uploads_a_streamed_jsonl_then_creates_the_batch(shard: Path) -> None:
    """submit sends a spec-valid multipart upload and a spec-valid create body."""
    api = FakeApi()
    provider = api.provider(file_expires_after=7200, output_expires_after=3600)
    batch_id = await provider.submit(shard, metadata={"kyro_job": "j1", "kyro_shard": "0"})
    assert batch_id in api.batches
    ((fields, filename, data),) = api.uploads
    assert fields == {
        "purpose": "batch",
        "expires_after[anchor]": "created_at",
        "expires_after[seconds]": "7200",
        "file": "<binary>",
    }
    assert filename == "shard-0.jsonl"
    assert data == await anyio.Path(shard).read_bytes()
    upload, create = api.requests
    assert int(upload.headers["content-length"]) == len(upload.content)
    body = json.loads(create.content)
    assert body == {
        "input_file_id": "file-1",
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        "metadata": {"kyro_job": "j1", "kyro_shard": "0"},
        "output_expires_after": {"anchor": "created_at", "seconds": 3600},
    }


async def test_azure_create_uses_the_documented_endpoint_form(shard: Path) -> None:
    """Azure's create body says /chat/completions, as in Azure's examples, and dotted expiry."""
    api = FakeApi()
    provider = api.provider(azure=True, file_expires_after=1_209_600)
    api.script("POST", "/batches", lambda request: httpx.Response(200, json=batch_json("b-az")))
    assert await provider.submit(shard, metadata={}) == "b-az"
    body = json.loads(api.requests[1].content)
    assert body["endpoint"] == "/chat/completions"


class TrackingStream(httpx.AsyncBaseTransport):
    """A transport that consumes the request body chunk by chunk, as a socket would."""

    def __init__(self) -> None:
        self.chunks: list[int] = []
        self.was_preloaded = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Count body chunks of an upload, then answer like the API."""
        if request.url.path.endswith("/files"):
            self.was_preloaded = isinstance(request.stream, httpx.ByteStream)
            assert isinstance(request.stream, httpx.AsyncByteStream)
            async for chunk in request.stream:
                self.chunks.append(len(chunk))
            return httpx.Response(
                200,
                json={
                    "id": "file-big",
                    "object": "file",
                    "bytes": 1,
                    "created_at": 1,
                    "filename": "x.jsonl",
                    "purpose": "batch",
                    "status": "processed",
                },
            )
        return httpx.Response(200, json=batch_json("batch_big", status="validating"))


async def test_upload_streams_from_disk_in_small_chunks(tmp_path: Path) -> None:
    """A 20 MB shard goes out in ≤64 KiB chunks, never as one in-memory body."""
    import tracemalloc

    path = tmp_path / "big.jsonl"
    line = b'{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{}}\n'
    with path.open("wb") as handle:
        for _ in range(20 * 1024 * 1024 // len(line)):
            handle.write(line)
    transport = TrackingStream()
    provider = OpenAIBatchProvider(
        api_key="k", base_url=BASE, client=httpx.AsyncClient(transport=transport)
    )
    tracemalloc.start()
    try:
        assert await provider.submit(path, metadata={}) == "batch_big"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not transport.was_preloaded
    assert sum(transport.chunks) > path.stat().st_size
    assert max(transport.chunks) <= 64 * 1024
    assert peak < 4 * 1024 * 1024


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({f"k{i}": "v" for i in range(17)}, "at most 16"),
        ({"k" * 65: "v"}, "max 64"),
        ({"k": "v" * 513}, "max 512"),
    ],
)
async def test_metadata_caps_are_checked_before_any_call(
    shard: Path, metadata: dict[str, str], message: str
) -> None:
    """Metadata over OpenAI's caps is refused before anything is sent."""
    api = FakeApi()
    with pytest.raises(KyroError, match=message):
        await api.provider().submit(shard, metadata=metadata)
    assert api.requests == []


def test_expiry_outside_the_documented_range_is_refused() -> None:
    """file_expires_after must lie within 1 h..30 d."""
    with pytest.raises(KyroError, match="3600"):
        OpenAIBatchProvider(api_key="k", file_expires_after=60)


async def test_ambiguous_create_adopts_the_batch_made_from_the_file(shard: Path) -> None:
    """After a read timeout on create, the batch made from our file is found and adopted."""
    api = FakeApi()

    def create_then_time_out(request: httpx.Request) -> httpx.Response:
        api._create(request)
        raise httpx.ReadTimeout("lost the answer", request=request)

    api.script("POST", "/batches", create_then_time_out)
    batch_id = await api.provider().submit(shard, metadata={"kyro_job": "j1"})
    assert list(api.batches) == [batch_id]
    assert [r.method + " " + r.url.path for r in api.requests] == [
        "POST /v1/files",
        "POST /v1/batches",
        "GET /v1/batches",
    ]


async def test_create_retried_after_a_5xx_when_nothing_was_made(shard: Path) -> None:
    """A 500 on create is retried after checking that no batch came of it."""
    api = FakeApi()
    api.script("POST", "/batches", httpx.Response(500, json=error_json("server_error")))
    batch_id = await api.provider().submit(shard, metadata={})
    assert list(api.batches) == [batch_id]
    methods = [r.method + " " + r.url.path for r in api.requests]
    assert methods == ["POST /v1/files", "POST /v1/batches", "GET /v1/batches", "POST /v1/batches"]


async def test_create_429_is_resent_without_a_lookup(shard: Path) -> None:
    """A 429 on create proves nothing was made, so it is simply sent again."""
    api = FakeApi()
    api.script("POST", "/batches", httpx.Response(429, headers={"retry-after": "1"}))
    await api.provider().submit(shard, metadata={})
    assert [r.url.path for r in api.requests] == ["/v1/files", "/v1/batches", "/v1/batches"]


async def test_poll_maps_status_counts_errors_and_metadata() -> None:
    """poll reads state, counts, job errors (token_limit_exceeded retry-later) and metadata."""
    api = FakeApi()
    api.batches["batch_1"] = batch_json(
        status="failed",
        request_counts={"total": 10, "completed": 0, "failed": 0},
        metadata={"kyro_job": "j1"},
        errors={
            "object": "list",
            "data": [
                {
                    "code": "token_limit_exceeded",
                    "message": "Enqueued token limit reached",
                    "param": None,
                    "line": None,
                },
                {"code": "invalid_json_line", "message": "bad", "param": None, "line": 3},
            ],
        },
    )
    status = await api.provider().poll("batch_1")
    assert status.state == "failed"
    assert status.terminal
    assert status.request_counts.total == 10
    assert status.metadata == {"kyro_job": "j1"}
    assert status.created_at == 1711471533.0
    assert [(e.code, e.line, e.retry_later) for e in status.errors] == [
        ("token_limit_exceeded", None, True),
        ("invalid_json_line", 3, False),
    ]


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("validating", "pending"),
        ("in_progress", "running"),
        ("finalizing", "finalizing"),
        ("completed", "completed"),
        ("failed", "failed"),
        ("expired", "expired"),
        ("cancelling", "cancelling"),
        ("cancelled", "cancelled"),
        ("Validating", "pending"),
        ("InProgress", "running"),
        ("Completed", "completed"),
        ("something_new", "pending"),
    ],
)
async def test_status_mapping_is_case_insensitive(raw: str, state: BatchState) -> None:
    """Every OpenAI status (and Azure's capitalised ones) maps; unknown ones read pending."""
    api = FakeApi()
    api.batches["batch_1"] = batch_json(status=raw)
    status = await api.provider().poll("batch_1")
    assert (status.state, status.provider_status) == (state, raw)


async def test_azure_iso_timestamps_and_null_counts() -> None:
    """ISO-8601 created_at and null request_counts members are accepted."""
    api = FakeApi()
    api.batches["batch_1"] = batch_json(
        status="Completed",
        created_at="2024-03-26T16:45:33Z",
        request_counts={"total": None, "completed": None, "failed": None},
        metadata=None,
        errors={"object": "list", "data": None},
    )
    status = await api.provider(azure=True).poll("batch_1")
    assert status.created_at == 1711471533.0
    assert (status.request_counts.total, status.request_counts.failed) == (0, 0)
    assert status.metadata == {}


async def test_cancel_returns_cancelling() -> None:
    """cancel posts to /cancel and maps the answer."""
    api = FakeApi()
    api.batches["batch_1"] = batch_json(status="in_progress")
    status = await api.provider().cancel("batch_1")
    assert status.state == "cancelling"
    assert api.requests[0].url.path == "/v1/batches/batch_1/cancel"


async def test_find_pages_through_the_list_and_filters_by_metadata() -> None:
    """find walks pages with after=last_id (limit 100) and keeps matching metadata only."""
    api = FakeApi()
    for index in range(230):
        meta = {"kyro_job": "j1" if index in (5, 150) else "other", "kyro_shard": str(index)}
        api.batches[f"b{index}"] = batch_json(f"b{index}", metadata=meta, created_at=index)
    found = await api.provider().find({"kyro_job": "j1"})
    assert sorted(status.batch_id for status in found) == ["b150", "b5"]
    queries = [dict(r.url.params) for r in api.requests]
    assert queries == [
        {"limit": "100"},
        {"limit": "100", "after": "b130"},
        {"limit": "100", "after": "b30"},
    ]


@pytest.mark.parametrize(
    ("status", "code", "hint"),
    [
        (401, "invalid_api_key", "OPENAI_API_KEY"),
        (404, None, "check the batch id"),
        (429, "insufficient_quota", "billing"),
        (500, "server_error", "try again later"),
        (400, "invalid_request", "rejected"),
    ],
)
async def test_errors_carry_status_code_request_id_and_a_hint(
    status: int, code: str | None, hint: str
) -> None:
    """An error answer becomes a ProviderError with its fields and advice on what to do."""
    api = FakeApi()
    reply = httpx.Response(status, json=error_json(code), headers={"x-request-id": "req_42"})
    api.script("GET", "/batches/batch_1", *([reply] * 3))
    with pytest.raises(ProviderError, match=hint) as info:
        await api.provider().poll("batch_1")
    error = info.value
    assert (error.status_code, error.code, error.request_id, error.provider) == (
        status,
        code,
        "req_42",
        "openai",
    )


async def test_transport_failure_is_a_provider_error_without_status() -> None:
    """Connection failures become ProviderError(status_code=None) chained from httpx."""
    api = FakeApi()
    api.script("GET", "/batches/batch_1", *([httpx.ConnectError("refused")] * 3))
    with pytest.raises(ProviderError, match="no answer") as info:
        await api.provider().poll("batch_1")
    assert info.value.status_code is None
    assert isinstance(info.value.__cause__, httpx.ConnectError)


async def test_429_storm_honours_retry_after() -> None:
    """A run of 429s is waited out with exactly the delays the server asked for."""
    api = FakeApi()
    api.batches["batch_1"] = batch_json(status="in_progress")
    storm = [httpx.Response(429, headers={"retry-after": str(s)}) for s in (1, 2, 4, 7)]
    api.script("GET", "/batches/batch_1", *storm)
    sleep = SleepLog()
    status = await api.provider(sleep=sleep, retry=RetryPolicy(max_retries=5)).poll("batch_1")
    assert status.state == "running"
    assert sleep.delays == [1.0, 2.0, 4.0, 7.0]


async def test_key_never_reaches_errors_or_debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    """A failing call logged at DEBUG leaks the key into no log record and no error text."""
    api = FakeApi()
    echo = httpx.Response(
        401, json=error_json("invalid_api_key", f"Incorrect API key provided: {KEY}")
    )
    api.script("GET", "/batches/batch_1", echo)
    provider = api.provider()
    with caplog.at_level(logging.DEBUG), pytest.raises(ProviderError) as info:
        await provider.poll("batch_1")
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)
    assert "<secret>" in str(info.value)
    assert caplog.records, "expected debug records from the provider"
    for record in caplog.records:
        assert KEY not in record.getMessage()


async def test_unparseable_success_body_is_a_clear_error() -> None:
    """A 200 that is not a Batch raises KyroError naming the call."""
    api = FakeApi()
    api.script("GET", "/batches/batch_1", httpx.Response(200, content=b"<html>"))
    with pytest.raises(KyroError, match="retrieving batch batch_1"):
        await api.provider().poll("batch_1")


async def test_owned_client_is_closed_and_injected_one_is_not() -> None:
    """aclose closes only a client the provider made itself."""
    client = httpx.AsyncClient()
    async with OpenAIBatchProvider(api_key="k", client=client):
        pass
    assert not client.is_closed
    own = OpenAIBatchProvider(api_key="k")
    made = own._http.client
    await own.aclose()
    assert made.is_closed
    await client.aclose()


async def test_own_client_is_made_at_first_use_only() -> None:
    """A provider that never calls the network makes no HTTP client, so closing it awaits
    nothing; one that does makes exactly one and keeps it."""
    own = OpenAIBatchProvider(api_key="k")
    assert own._http._client is None
    closing = own.aclose()
    with pytest.raises(StopIteration):
        closing.send(None)
    first = own._http.client
    assert isinstance(first, httpx.AsyncClient)
    assert own._http.client is first
    await own.aclose()
    assert first.is_closed


def test_encode_delegates_to_the_line_encoder() -> None:
    """encode writes a BatchRequestInput line for the configured endpoint."""
    buffer = bytearray()
    OpenAIBatchProvider(api_key="k", endpoint="/v1/responses").encode(
        JudgeRequest(custom_id="a", model="m", messages=(Message(role="user", content="x"),)),
        buffer,
    )
    line = msgspec.json.decode(bytes(buffer))
    validate("BatchRequestInput", line)
    assert line["url"] == "/v1/responses"


async def test_cancel_of_a_finished_batch_returns_its_terminal_status() -> None:
    """OpenAI's 400 for cancelling a completed batch becomes that batch's status."""
    api = FakeApi()
    api.batches["batch_1"] = batch_json(status="completed")
    refusal = httpx.Response(
        400, json=error_json(None, "Cannot cancel a batch with status 'completed'.")
    )
    api.script("POST", "/batches/batch_1/cancel", refusal)
    status = await api.provider().cancel("batch_1")
    assert status.state == "completed"
