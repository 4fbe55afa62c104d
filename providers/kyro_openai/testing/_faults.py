"""Fault injection: what can go wrong, on request, deterministically.

Faults are plain structs tagged by ``kind``, so the same JSON works through the control
endpoint (``POST /_emulator/faults``) and ``Faults.add``. HTTP faults fire on the next
``times`` matching calls (``None``: on every one), optionally only with ``probability``
drawn from the emulator's seeded random generator. Line faults and creation faults are
captured by each batch when it is created and apply to that batch only.

The armed faults live in :class:`kyro_openai.testing.Faults` (``_faultbook``).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from kyro.testing.faults import picked

__all__ = [
    "DropConnectionFault",
    "DropDownloadFault",
    "ExpireFault",
    "Fault",
    "HttpAction",
    "HttpErrorFault",
    "LatencyFault",
    "LineFault",
    "TokenLimitFault",
]

Scope = Literal["api", "files", "content", "batches", "chat"]
"""Which calls a fault hits: every ``/v1`` call, or one family of routes."""


class _Base(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="kind"
):
    pass


class HttpErrorFault(_Base, frozen=True, kw_only=True, tag="http_error"):
    """Answer matching calls with an error envelope: 429 (with Retry-After), 5xx, any status.

    Example::

        HttpErrorFault(status=429, retry_after=2, times=3)
    """

    status: int = 500
    code: str | None = None
    message: str | None = None
    type: str | None = None
    retry_after: float | None = None
    should_retry: bool | None = None
    times: int | None = 1
    probability: float | None = None
    scope: Scope = "api"


class DropConnectionFault(_Base, frozen=True, kw_only=True, tag="drop_connection"):
    """Close the connection without any response (the client sees a transport error)."""

    times: int | None = 1
    probability: float | None = None
    scope: Scope = "api"


class DropDownloadFault(_Base, frozen=True, kw_only=True, tag="drop_download"):
    """Send the headers and ``after_bytes`` of a file's content, then close the connection."""

    after_bytes: int = 1024
    times: int | None = 1
    probability: float | None = None
    scope: Scope = "content"


class LatencyFault(_Base, frozen=True, kw_only=True, tag="latency"):
    """Wait ``seconds`` (an async sleep) before answering matching calls."""

    seconds: float
    times: int | None = None
    probability: float | None = None
    scope: Scope = "api"


class LineFault(_Base, frozen=True, kw_only=True, tag="line"):
    """Make some requests of a batch fail or misbehave, chosen by custom_id or by fraction.

    ``mode``: ``error`` (error-file line with ``error.code``), ``http_error`` (error-file line
    whose ``response`` has ``status_code`` and an error envelope body, ``error`` null),
    ``malformed`` (a 200 reply whose content is not valid judge JSON) or ``missing`` (the
    request is in neither file). ``fraction`` picks requests by a seeded hash of the custom_id.

    Example::

        LineFault(mode="error", custom_ids=frozenset({"t0-j0-r0"}), code="server_error")
    """

    mode: Literal["error", "http_error", "malformed", "missing"] = "error"
    custom_ids: frozenset[str] = frozenset()
    fraction: float = 0.0
    code: str | None = None
    message: str | None = None
    status_code: int = 400

    def matches(self, custom_id: str, seed: int) -> bool:
        """Whether this fault applies to the request with ``custom_id``."""
        return picked(
            custom_id, custom_ids=self.custom_ids, fraction=self.fraction, seed=seed, salt=self.mode
        )


class TokenLimitFault(_Base, frozen=True, kw_only=True, tag="token_limit_exceeded"):
    """The next ``times`` batches fail validation with ``token_limit_exceeded``."""

    times: int = 1


class ExpireFault(_Base, frozen=True, kw_only=True, tag="expire"):
    """The next ``times`` batches expire once ``after_lines`` requests have finished."""

    after_lines: int = 0
    times: int = 1


Fault = (
    HttpErrorFault
    | DropConnectionFault
    | DropDownloadFault
    | LatencyFault
    | LineFault
    | TokenLimitFault
    | ExpireFault
)
"""Any fault; decode JSON with ``msgspec.json.decode(data, type=Fault)``."""

HttpAction = HttpErrorFault | DropConnectionFault | DropDownloadFault
