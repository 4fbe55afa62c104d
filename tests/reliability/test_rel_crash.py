"""kill -9 at every cut point of submit and check, then the same command again.

Guarantee (DESIGN, "State and crash safety"): a crash anywhere may cost an orphan upload,
never a second batch, and nothing finished is lost — exactly one batch per shard, every run
verdict exactly once in the results file, no torn file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _kyro_child import CHECK_CUTS, CUTS, SUBMIT_CUTS
from _scenarios import SHARDS, EmulatorProcess, crash_scenario


def test_the_matrix_has_every_cut_point() -> None:
    """At least eight cut points, covering both the submitting and the checking process."""
    assert len(CUTS) >= 8
    assert {"after_plan", "mid_upload", "after_upload", "intent_saved", "after_create"} <= set(
        SUBMIT_CUTS
    )
    assert {"mid_download", "after_results", "before_clear"} <= set(CHECK_CUTS)


@pytest.mark.parametrize("cut", CUTS)
def test_kill_then_rerun_recovers_exactly_once(
    emulator_process: EmulatorProcess, tmp_path: Path, cut: str
) -> None:
    """A SIGKILL at ``cut`` and a re-run leave one batch per shard and every verdict once."""
    outcome = crash_scenario(emulator_process.url, tmp_path / "job", cut)
    assert outcome.recovered, outcome.detail
    assert outcome.duplicate_batches == 0
    assert outcome.lost_verdicts == 0
    assert SHARDS == 2
