"""Submitting a shard: the streamed upload, then a batch created without blind duplicates.

OpenAI has no idempotency key, so a create is resent as is only after an answer that proves
nothing was made (408, 409, 429 — handled by :func:`kyro.provider.send_with_retries` — or a refused
connection). After an ambiguous failure (a 5xx, a timeout or a connection dropped once the
request was out) the batch list is searched for a batch made from the file just uploaded, and
that batch is adopted rather than a second one created. Uploads are retried freely: a
duplicate upload only leaves an orphan file.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import tenacity

from kyro.provider import KyroError
from kyro_openai._api import FileObject, WireBatch
from kyro_openai._http import Http, decode_json, transport_error
from kyro_openai._secret import check_expiry
from kyro_openai._upload import MultipartFile

__all__ = ["check_expiry", "check_metadata", "create_batch", "upload_fields", "upload_shard"]

_SAFE_TO_RESEND = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class _AmbiguousCreate(Exception):
    """A create attempt that may or may not have made a batch."""

    def __init__(self, response: httpx.Response | None, cause: Exception | None) -> None:
        super().__init__("ambiguous create")
        self.response = response
        self.cause = cause


def check_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    if len(metadata) > 16:
        raise KyroError(f"batch metadata has {len(metadata)} pairs; OpenAI allows at most 16")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise KyroError(f"batch metadata must map strings to strings; got {key!r}: {value!r}")
        if len(key) > 64:
            raise KyroError(f"batch metadata key {key[:20]!r}… is {len(key)} chars; max 64")
        if len(value) > 512:
            raise KyroError(f"batch metadata value of {key!r} is {len(value)} chars; max 512")
    return dict(metadata)


def upload_fields(expires_after: int | None, *, azure: bool) -> dict[str, str]:
    """The form fields of an upload: ``purpose=batch`` and the optional expiry.

    Example::

        upload_fields(7200, azure=False)
        # {'purpose': 'batch', 'expires_after[anchor]': 'created_at',
        #  'expires_after[seconds]': '7200'}
    """
    fields = {"purpose": "batch"}
    if expires_after is not None:
        left, right = ("expires_after.", "") if azure else ("expires_after[", "]")
        fields[f"{left}anchor{right}"] = "created_at"
        fields[f"{left}seconds{right}"] = str(expires_after)
    return fields


async def upload_shard(http: Http, path: Path, *, fields: Mapping[str, str]) -> str:
    """Upload ``path`` as ``multipart/form-data`` streamed from disk; return the file id."""

    def make() -> httpx.Request:
        body = MultipartFile(path, fields=fields)
        return http.build("POST", "/files", content=body.stream(), headers=body.headers())

    action = f"uploading {path.name}"
    response = await http.call(make, action=action)
    return str(decode_json(response, FileObject, action).id)


async def create_batch(
    http: Http,
    body: dict[str, Any],
    *,
    find_for_file: Callable[[str], Awaitable[str | None]],
) -> str:
    """``POST /batches`` with ``body``; adopt an earlier attempt's batch after an ambiguity."""
    file_id = str(body["input_file_id"])
    action = f"creating a batch from file {file_id}"

    async def attempt_create() -> httpx.Response:
        try:
            response = await http.send_once(http.build("POST", "/batches", json=body))
        except httpx.TransportError as exc:
            if isinstance(exc, _SAFE_TO_RESEND):
                raise
            raise _AmbiguousCreate(None, exc) from exc
        if response.status_code >= 500:
            await response.aread()
            raise _AmbiguousCreate(response, None)
        return response

    policy = http.retry
    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(policy.max_retries + 1),
        wait=tenacity.wait_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff),
        retry=tenacity.retry_if_exception_type(_AmbiguousCreate),
        sleep=http.sleep,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    adopted = await find_for_file(file_id)
                    if adopted is not None:
                        return adopted
                response = await http.call_send(attempt_create, action=action)
    except _AmbiguousCreate as exc:
        if exc.response is not None:
            raise http.fail(exc.response, action=action, hint_404="") from None
        cause = exc.cause or exc
        raise transport_error(cause, action=action, base_url=http.base_url) from exc.cause
    return str(decode_json(response, WireBatch, action).id)
