"""The emulator's settings: timings, limits and the seed of its random choices."""

from __future__ import annotations

import msgspec

__all__ = ["EmulatorConfig"]


class EmulatorConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the emulated Message Batches service behaves.

    ``in_progress_seconds``: how long a batch runs before it ends (0: it has ended by the first
    read after its creation). ``canceling_seconds``: how long ``canceling`` lasts.
    ``partial_fraction``: the share of requests already finished when a batch is cancelled or
    expires (the rest come back ``canceled`` / ``expired``). ``expiry_seconds``: when a batch
    still running expires (24 h, as the real service). ``retention_seconds``: how long results
    stay downloadable after creation (29 days).

    Example::

        EmulatorConfig(in_progress_seconds=60, partial_fraction=0.5)
    """

    in_progress_seconds: float = 0.0
    canceling_seconds: float = 0.0
    partial_fraction: float = 0.5
    expiry_seconds: float = 24 * 3600.0
    retention_seconds: float = 29 * 24 * 3600.0
    max_requests: int = 100_000
    max_bytes: int = 256_000_000
    seed: int = 0
    data_dir: str | None = None
