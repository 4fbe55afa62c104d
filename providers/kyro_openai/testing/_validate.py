"""Input-file validation at the ``validating`` step, streamed line by line like the real service.

Each bad line yields one error (the first problem found) with its 1-based line number, up to
``max_errors``; counting goes on to the end so ``too_many_tasks`` is exact. Blank lines are
skipped but still numbered.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from kyro_openai.testing._faults import LineFault
from kyro_openai.testing._wire import BatchErrorItem

__all__ = ["ValidationResult", "normalize_endpoint", "validate_input_file"]

_DECODER = msgspec.json.Decoder()


class ValidationResult(msgspec.Struct, frozen=True, kw_only=True):
    """What validation learned: request count, the one model, and the errors found."""

    total: int = 0
    model: str | None = None
    errors: tuple[BatchErrorItem, ...] = ()
    planned_failures: int = 0


def normalize_endpoint(url: str, *, azure: bool) -> str:
    """``/chat/completions`` → ``/v1/chat/completions`` in Azure mode; otherwise unchanged."""
    if azure and not url.startswith("/v1/"):
        return "/v1" + url
    return url


def _check_line(
    raw: bytes, lineno: int, endpoint: str, azure: bool
) -> tuple[BatchErrorItem | None, str | None, str | None]:
    """(error, custom_id, model) for one non-blank line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"Line {lineno} is not valid UTF-8 (byte {exc.start} of the line)."
        return BatchErrorItem(code="invalid_json_line", message=message, line=lineno), None, None
    try:
        line: Any = _DECODER.decode(text)
    except msgspec.DecodeError as exc:
        message = f"Line {lineno} is not valid JSON: {exc}."
        return BatchErrorItem(code="invalid_json_line", message=message, line=lineno), None, None

    def bad(param: str, message: str, code: str = "invalid_request") -> BatchErrorItem:
        return BatchErrorItem(code=code, message=message, param=param, line=lineno)

    if not isinstance(line, dict):
        return bad("", "Each line must be a JSON object."), None, None
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return bad("custom_id", "Missing required parameter: 'custom_id'."), None, None
    if line.get("method") != "POST":
        return bad("method", "Invalid 'method': only 'POST' is supported."), custom_id, None
    url = line.get("url")
    if not isinstance(url, str):
        return bad("url", "Missing required parameter: 'url'."), custom_id, None
    if normalize_endpoint(url, azure=azure) != endpoint:
        message = f"The url '{url}' does not match the batch endpoint '{endpoint}'."
        return bad("url", message, "url_mismatch"), custom_id, None
    body = line.get("body")
    if not isinstance(body, dict):
        return bad("body", "Missing required parameter: 'body'."), custom_id, None
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return bad("body.model", "Missing required parameter: 'body.model'."), custom_id, None
    return None, custom_id, model


def validate_input_file(
    path: Path,
    *,
    endpoint: str,
    max_requests: int,
    max_bytes: int,
    max_errors: int = 10,
    azure: bool = False,
    line_faults: Sequence[LineFault] = (),
    seed: int = 0,
) -> ValidationResult:
    """Validate a batch input file without loading it into memory.

    Example::

        result = validate_input_file(Path("in.jsonl"), endpoint="/v1/chat/completions",
                                     max_requests=50_000, max_bytes=200 * 2**20)
        [error.code for error in result.errors]     # e.g. ["duplicate_custom_id"]
    """
    size = path.stat().st_size
    if size > max_bytes:
        message = f"The input file is {size} bytes; a batch input file may hold {max_bytes}."
        return ValidationResult(errors=(BatchErrorItem(code="file_too_large", message=message),))
    failing = [fault for fault in line_faults if fault.mode in ("error", "http_error")]
    errors: list[BatchErrorItem] = []
    seen: set[str] = set()
    first_model: str | None = None
    total = planned_failures = 0
    with path.open("rb") as stream:
        for lineno, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            total += 1
            error, custom_id, model = _check_line(raw, lineno, endpoint, azure)
            if error is None and custom_id is not None:
                if custom_id in seen:
                    message = f"The custom_id '{custom_id}' is used more than once."
                    error = BatchErrorItem(
                        code="duplicate_custom_id", message=message, param="custom_id", line=lineno
                    )
                elif first_model is None:
                    first_model = model
                elif model != first_model:
                    message = (
                        f"Line {lineno} uses model '{model}' but the batch uses "
                        f"'{first_model}'; a batch may use one model only."
                    )
                    error = BatchErrorItem(
                        code="model_mismatch", message=message, param="body.model", line=lineno
                    )
            if custom_id is not None:
                seen.add(custom_id)
                if any(fault.matches(custom_id, seed) for fault in failing):
                    planned_failures += 1
            if error is not None and len(errors) < max_errors:
                errors.append(error)
    if total == 0:
        errors.append(BatchErrorItem(code="empty_file", message="The input file is empty."))
    elif total > max_requests:
        message = f"The input file has {total} requests; a batch may hold {max_requests}."
        errors.append(BatchErrorItem(code="too_many_tasks", message=message))
    return ValidationResult(
        total=total,
        model=first_model,
        errors=tuple(errors),
        planned_failures=planned_failures,
    )
