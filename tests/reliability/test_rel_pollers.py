"""Several ``check`` processes polling one job at the same moment.

Guarantee: the lock serialises them, so the job is finalized once (each batch downloaded
once), every poller reports the same result, and exactly one results file exists, whole.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.scenarios import SHARDS, EmulatorProcess, pollers_scenario

pytestmark = pytest.mark.slow  # several check processes at once


@pytest.mark.parametrize("pollers", [2, 4])
def test_concurrent_pollers_finalize_once(
    emulator_process: EmulatorProcess, tmp_path: Path, pollers: int
) -> None:
    """``pollers`` concurrent ``check --wait`` runs: one finalization, identical results."""
    before = emulator_process.stats()["downloads"]
    outcome = pollers_scenario(emulator_process.url, tmp_path / "job", pollers)
    downloads = emulator_process.stats()["downloads"] - before
    assert outcome.recovered, outcome.detail
    assert outcome.duplicate_batches == 0
    assert outcome.lost_verdicts == 0
    assert downloads == SHARDS  # one output file per batch, fetched by one poller only
