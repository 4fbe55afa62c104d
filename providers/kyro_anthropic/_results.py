"""Streaming a batch's results JSONL and turning every line into kyro's neutral outcome.

The results are read with the OpenAI provider's resumable download
(:func:`kyro_openai.iter_download_lines`): in chunks, split on ``b"\\n"`` as they arrive, so
memory stays flat in their size; a download dropped after some lines is fetched again and the
lines already seen are skipped (results never change once a batch has ended), up to the retry
policy's ``max_retries`` resumptions.

Outcomes, line by line:

* ``succeeded`` → ``ok``; the reply is the verdict tool's ``input`` (as compact JSON) when the
  Message holds a ``tool_use`` block, else its text blocks joined — exactly what
  kyro's reply parser reads. Usage is ``input_tokens`` (cache reads and writes included) and
  ``output_tokens``.
* ``errored`` → the error's ``type`` is the code; ``api_error``, ``overloaded_error``,
  ``rate_limit_error`` and ``timeout_error`` clear with time and are retryable, the rest
  (``invalid_request_error``, ``authentication_error``, ``permission_error``,
  ``billing_error``, ``not_found_error``…) need a fix and are not.
* ``canceled`` → ``batch_cancelled`` and ``expired`` → ``batch_expired``, both retryable
  (kyro resubmits them within ``max_resubmits``), named like the OpenAI provider's codes.
"""

from __future__ import annotations

import msgspec

from kyro.provider import ResultError, ResultLine, Usage
from kyro_anthropic._retry import RETRYABLE_ERROR_TYPES
from kyro_anthropic._wire import ResultLine as WireLine
from kyro_anthropic._wire import WireMessage, WireResult

__all__ = ["classify", "decode_line", "reply_text"]

_DECODER = msgspec.json.Decoder(WireLine)
_encoder = msgspec.json.Encoder()


def reply_text(message: WireMessage) -> str | None:
    """The text kyro's verdict parser reads: the tool call's input as JSON, else the text.

    Example::

        reply_text(WireMessage(content=[ContentBlock(type="tool_use", name="record_verdict",
                                                     input={"status": "SUCCESS"})]))
        # '{"status":"SUCCESS"}'
    """
    texts: list[str] = []
    for block in message.content:
        if block.type == "tool_use" and block.input is not None:
            return _encoder.encode(block.input).decode()
        if block.type == "text" and block.text:
            texts.append(block.text)
    return "".join(texts) if texts else None


def _usage(message: WireMessage) -> Usage | None:
    wire = message.usage
    if wire is None:
        return None
    inputs = (
        (wire.input_tokens or 0)
        + (wire.cache_creation_input_tokens or 0)
        + (wire.cache_read_input_tokens or 0)
    )
    outputs = wire.output_tokens or 0
    return Usage(
        input_tokens=inputs,
        output_tokens=outputs,
        total_tokens=inputs + outputs,
        # Prompt-cache reads are billed at the cached-input price (cache writes as input).
        cached_input_tokens=wire.cache_read_input_tokens or 0,
    )


def _failure(custom_id: str, code: str, message: str, retryable: bool) -> ResultLine:
    error = ResultError(code=code, message=message, retryable=retryable)
    return ResultLine(custom_id=custom_id, ok=False, error=error)


def classify(custom_id: str, result: WireResult | None) -> ResultLine:
    """The neutral outcome of one result line.

    Example::

        classify("t0-j0-r0", WireResult(type="expired")).error.code   # 'batch_expired'
    """
    kind = result.type if result is not None else None
    if result is not None and kind == "succeeded" and result.message is not None:
        message = result.message
        return ResultLine(
            custom_id=custom_id, ok=True, content=reply_text(message), usage=_usage(message)
        )
    if kind == "canceled":
        return _failure(custom_id, "batch_cancelled", "the batch was canceled first", True)
    if kind == "expired":
        return _failure(custom_id, "batch_expired", "the batch expired before this ran", True)
    if result is not None and kind == "errored":
        envelope = result.error
        inner = envelope.error if envelope is not None else None
        code = (inner.type if inner is not None else None) or "api_error"
        text = (inner.message if inner is not None else None) or (
            envelope.message if envelope is not None else None
        )
        return _failure(custom_id, code, text or code, code in RETRYABLE_ERROR_TYPES)
    return _failure(
        custom_id, "no_response", f"the result line has no readable outcome ({kind!r})", False
    )


def decode_line(raw: bytes) -> ResultLine | None:
    """One results line as an outcome; None for a line without a readable ``custom_id``."""
    try:
        line = _DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        try:
            loose = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return None
        custom_id = loose.get("custom_id") if isinstance(loose, dict) else None
        if not isinstance(custom_id, str):
            return None
        return classify(custom_id, None)
    return classify(line.custom_id, line.result)
