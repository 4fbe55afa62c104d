"""LocalProvider's memory stays flat in the shard's size."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from kyro_local import LocalProvider


async def _peak_while_running(shard: Path, state_dir: Path) -> tuple[int, int]:
    async def handler(body: dict[str, Any]) -> str:
        await anyio.lowlevel.checkpoint()
        return '{"status": "SUCCESS", "root_cause": "fine"}'

    provider = LocalProvider(handler=handler, concurrency=64, state_dir=state_dir)
    tracemalloc.start()
    try:
        batch_id = await provider.submit(shard, metadata={})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    ok = 0
    async for line in provider.results(batch_id):
        ok += line.ok
    return peak, ok


@pytest.mark.slow
async def test_peak_memory_is_flat_in_shard_size(make_shard: Any, tmp_path: Path) -> None:
    """Ten times the lines (20,000) adds under a fifth of the shard's size to the peak.

    Reading the shard whole, or keeping anything per line, would add far more; what remains
    is a constant (buffers of the bounded window, garbage awaiting collection).
    """
    text = "transcript " * 60
    small = make_shard([f"{text}{i}" for i in range(2_000)])
    large = make_shard([f"{text}{i}" for i in range(20_000)])
    small_peak, small_ok = await _peak_while_running(small, tmp_path / "small")
    large_peak, large_ok = await _peak_while_running(large, tmp_path / "large")
    assert (small_ok, large_ok) == (2_000, 20_000)
    assert large_peak - small_peak < large.stat().st_size / 5, (small_peak, large_peak)
