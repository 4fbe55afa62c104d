"""Streaming a batch's result files (each line is classified by :mod:`kyro_openai.wire`).

A file's content is read in chunks and split on ``b"\\n"`` as it arrives, so memory stays flat
in the file size. A failed or dropped download is retried; when the connection drops after
lines were already yielded, the file is downloaded again and the lines already seen are
skipped (result files never change once written), up to the retry policy's ``max_retries``
resumptions — after that a :class:`kyro.ProviderError` is raised.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx

from kyro.provider import ResultError, ResultLine

__all__ = ["iter_lines", "missing_line"]


def missing_line(custom_id: str) -> ResultLine:
    """The outcome of a request that came back in no result file."""
    return ResultLine(
        custom_id=custom_id,
        ok=False,
        error=ResultError(
            code="missing",
            message="the request appears in neither the output nor the error file",
            retryable=True,
        ),
    )


async def iter_lines(
    open_response: Callable[[], Awaitable[httpx.Response]],
    *,
    max_resumes: int,
    sleep: Callable[[float], Awaitable[None]],
    give_up: Callable[[httpx.TransportError], Exception],
) -> AsyncIterator[bytes]:
    """Yield a download's non-empty lines (without ``b"\\n"``), resuming after a drop.

    ``open_response`` sends the (already retried) GET and returns a streaming 2xx response.
    The content must not change between downloads (result files never do): lines already
    yielded are skipped when the download starts again. After ``max_resumes`` drops,
    ``give_up(error)`` is raised, chained to the transport error.

    Example::

        async for line in iter_lines(open_response, max_resumes=2, sleep=anyio.sleep,
                                     give_up=lambda exc: KyroError(f"download failed: {exc}")):
            ...
    """
    done = 0  # complete lines consumed so far, blank ones included
    resumes = 0
    while True:
        response = await open_response()
        skip = done
        buffer = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                buffer += chunk
                start = 0
                while (end := buffer.find(b"\n", start)) != -1:
                    line = bytes(buffer[start:end])
                    start = end + 1
                    if skip:
                        skip -= 1
                        continue
                    done += 1
                    if line.strip():
                        yield line
                del buffer[:start]
        except httpx.TransportError as exc:
            if resumes >= max_resumes:
                raise give_up(exc) from exc
            resumes += 1
            await sleep(min(0.5 * 2 ** (resumes - 1), 8.0))
            continue
        finally:
            await response.aclose()
        if buffer.strip() and not skip:
            yield bytes(buffer)
        return
