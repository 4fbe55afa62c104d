"""How the emulator behaves: lifecycle timings, limits and flavour (OpenAI or Azure)."""

from __future__ import annotations

import msgspec

__all__ = ["EmulatorConfig"]

_MB = 1024 * 1024


class EmulatorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Timings, limits and quirks of one emulator.

    A batch spends ``validating_seconds`` validating, ``in_progress_seconds`` running (its
    request counts grow linearly over that time), ``finalizing_seconds`` finalizing, and a
    cancelled batch ``cancelling_seconds`` cancelling — all measured on the emulator's clock
    and applied lazily whenever a batch is read, so zero timings complete a batch on its
    first read.

    ``partial_fraction`` fixes the share of requests that finished when a batch is cancelled
    or expires (``None``: the share that the timings say had finished by then).
    ``azure_mode`` gives a successful batch an ``error_file_id`` pointing at a 0-byte file,
    accepts endpoints without the ``/v1`` prefix and never lets a batch expire on its own,
    as Azure does. ``seed`` drives every random choice (probabilistic HTTP faults, which
    requests a fractional line fault picks), so a run can be replayed.

    Example::

        EmulatorConfig(validating_seconds=1, in_progress_seconds=5, max_requests=1_000)
    """

    validating_seconds: float = 0.0
    in_progress_seconds: float = 0.0
    finalizing_seconds: float = 0.0
    cancelling_seconds: float = 0.0
    completion_window_seconds: int = 24 * 3600
    max_requests: int = 50_000
    max_bytes: int = 200 * _MB
    max_validation_errors: int = 10
    partial_fraction: float | None = None
    azure_mode: bool = False
    organization: str = "org-emulator"
    token_limit: int = 2_000_000
    seed: int = 0
    data_dir: str | None = None
