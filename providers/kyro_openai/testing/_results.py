"""Writing a batch's output and error files by streaming its input file (memory stays flat).

Lines come out in a deterministic order that is *not* the input order (clients must join on
``custom_id``): line n of a file goes to bucket ``n % 7`` and the buckets are joined last
first, so short files come out exactly reversed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from kyro_openai.testing._faults import LineFault
from kyro_openai.testing._responder import chat_completion, choice_count, malform
from kyro_openai.testing._response_format import response_format_error
from kyro_openai.testing._wire import error_body, new_id
from kyro_openai.wire import LineError, LineResponse, OutputLine, RequestLine

__all__ = ["ResultSummary", "write_results"]

Reply = Callable[[dict[str, Any], str], str]
"""``(body, custom_id) -> content``, already synchronous."""

_BUCKETS = 7
_EXPIRED = LineError(
    code="batch_expired",
    message="This request could not be executed before the completion window expired.",
)


class ResultSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What writing the results produced (paths are ``None`` for files with no lines)."""

    output_path: Path | None = None
    output_lines: int = 0
    error_path: Path | None = None
    error_lines: int = 0
    completed: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class _ShuffledWriter:
    """A JSONL writer that spreads lines over bucket files and joins them out of order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = 0
        self._encoder = msgspec.json.Encoder()
        self._buffer = bytearray()
        self._parts = [path.with_name(f"{path.name}.{n}") for n in range(_BUCKETS)]
        self._files: list[BinaryIO] = [part.open("wb") for part in self._parts]

    def write(self, line: OutputLine[dict[str, Any]]) -> None:
        self._encoder.encode_into(line, self._buffer)
        self._buffer.extend(b"\n")
        self._files[self.lines % _BUCKETS].write(self._buffer)
        self.lines += 1

    def close(self, *, keep_empty: bool) -> Path | None:
        for stream in self._files:
            stream.close()
        path: Path | None = None
        if self.lines or keep_empty:
            with self.path.open("wb") as out:
                for part in reversed(self._parts):
                    with part.open("rb") as stream:
                        shutil.copyfileobj(stream, out, 1024 * 1024)
            path = self.path
        for part in self._parts:
            part.unlink()
        return path


def write_results(
    input_path: Path,
    out_dir: Path,
    *,
    batch_id: str,
    endpoint: str,
    done: int,
    expired: bool,
    reply: Reply,
    created: int,
    line_faults: Sequence[LineFault] = (),
    seed: int = 0,
    keep_empty_error_file: bool = False,
) -> ResultSummary:
    """Answer the first ``done`` requests and write the result files; the rest are absent
    (a cancelled batch) or ``batch_expired`` error lines (an expired one).

    Example::

        summary = write_results(Path("in.jsonl"), Path("out"), batch_id="batch_1",
                                endpoint="/v1/chat/completions", done=10, expired=False,
                                reply=lambda body, custom_id: "{}", created=0)
    """
    decoder = msgspec.json.Decoder(RequestLine[dict[str, Any]])
    output = _ShuffledWriter(out_dir / f"{batch_id}_output.jsonl")
    errors = _ShuffledWriter(out_dir / f"{batch_id}_error.jsonl")
    completed = failed = input_tokens = output_tokens = 0
    index = 0
    with input_path.open("rb") as stream:
        for raw in stream:
            if not raw.strip():
                continue
            request = decoder.decode(raw)
            index += 1
            custom_id = request.custom_id
            line_id = new_id("batch_req_", 32)
            if index > done:
                if expired:
                    errors.write(
                        OutputLine(id=line_id, custom_id=custom_id, response=None, error=_EXPIRED)
                    )
                    failed += 1
                continue
            fault = next((f for f in line_faults if f.matches(custom_id, seed)), None)
            mode = fault.mode if fault is not None else None
            if mode == "missing":
                continue
            if mode == "error" and fault is not None:
                message = (
                    fault.message or "The server had an error processing this request (emulated)."
                )
                error = LineError(code=fault.code or "server_error", message=message)
                errors.write(
                    OutputLine(id=line_id, custom_id=custom_id, response=None, error=error)
                )
                failed += 1
                continue
            status, body = _answer(request, endpoint, reply, created, fault)
            response = LineResponse(status_code=status, request_id=new_id("req_", 32), body=body)
            line = OutputLine(id=line_id, custom_id=custom_id, response=response, error=None)
            if status == 200:
                output.write(line)
                completed += 1
                usage = body["usage"]
                input_tokens += usage["prompt_tokens"]
                output_tokens += usage["completion_tokens"]
            else:
                errors.write(line)
                failed += 1
    return ResultSummary(
        output_path=output.close(keep_empty=False),
        output_lines=output.lines,
        error_path=errors.close(keep_empty=keep_empty_error_file),
        error_lines=errors.lines,
        completed=completed,
        failed=failed,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
    )


def _answer(
    request: RequestLine[dict[str, Any]],
    endpoint: str,
    reply: Reply,
    created: int,
    fault: LineFault | None,
) -> tuple[int, dict[str, Any]]:
    """The status code and body of one request's response."""
    if fault is not None and fault.mode == "http_error":
        message = fault.message or "The request was rejected (emulated)."
        code = fault.code or "invalid_request_error"
        return fault.status_code, error_body(message, code=code)
    if endpoint != "/v1/chat/completions":
        message = f"The kyro emulator answers only /v1/chat/completions, not {endpoint}."
        return 400, error_body(message, code="unsupported_endpoint")
    refused = response_format_error(request.body)
    if refused is not None:
        return 400, error_body(refused[0], param=refused[1])
    n = choice_count(request.body)
    if isinstance(n, str):
        return 400, error_body(n, param="n", code="invalid_value")
    try:
        # One reply per choice: ``n`` samples of the same prompt.
        contents = [reply(request.body, request.custom_id) for _ in range(n)]
    except Exception as exc:  # a broken responder shows up as failed lines, not a dead server
        message = f"The responder raised {type(exc).__name__}: {exc}"
        return 500, error_body(message, type="server_error", code="responder_error")
    finish_reason = "stop"
    if fault is not None and fault.mode == "malformed":
        malformed = [malform(content, request.custom_id) for content in contents]
        contents = [content for content, _ in malformed]
        finish_reason = malformed[0][1]
    return 200, chat_completion(
        request.body, contents, created=created, finish_reason=finish_reason
    )
