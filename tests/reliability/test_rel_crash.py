"""kill -9 at every cut point of submit and check, then the same command again — on both
batch providers (OpenAI: batches found by metadata; Anthropic: no metadata, found by the
intent's time and request count).

Guarantee (DESIGN, "State and crash safety"): a crash anywhere may cost an orphan upload,
never a second batch, and nothing finished is lost — exactly one batch per shard, every run
verdict exactly once in the results file, no torn file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.kyro_child import CHECK_CUTS, CUTS, STAGE_CUTS, SUBMIT_CUTS
from tests.support.scenarios import PROVIDERS, SHARDS, EmulatorProcess, crash_scenario
from tests.support.stage_scenarios import stage_crash_scenario

pytestmark = pytest.mark.slow  # kill -9 child processes at every cut point


def test_the_matrix_has_every_cut_point() -> None:
    """At least eight cut points, covering both the submitting and the checking process."""
    assert len(CUTS) >= 8
    assert {"after_plan", "mid_upload", "after_upload", "intent_saved", "after_create"} <= set(
        SUBMIT_CUTS
    )
    assert {"mid_download", "after_results", "before_clear"} <= set(CHECK_CUTS)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("cut", CUTS)
def test_kill_then_rerun_recovers_exactly_once(
    emulator_process: EmulatorProcess, tmp_path: Path, cut: str, provider: str
) -> None:
    """A SIGKILL at ``cut`` and a re-run leave one batch per shard and every verdict once."""
    if provider == "openai":
        outcome = crash_scenario(emulator_process.url, tmp_path / "job", cut)
    else:
        # Message Batches keep no metadata: another scenario's same-size batch made within the
        # clock-skew window would make recovery refuse to guess (its documented answer, tested
        # in tests/anthropic), so each scenario runs alone in a workspace of its own.
        with EmulatorProcess(provider=provider) as own:
            outcome = crash_scenario(own.url, tmp_path / "job", cut, provider=provider)
    assert outcome.recovered, outcome.detail
    assert outcome.duplicate_batches == 0
    assert outcome.lost_verdicts == 0
    assert SHARDS == 2


@pytest.mark.parametrize("cut", STAGE_CUTS)
def test_kill_between_pipeline_stages_then_rerun_recovers_exactly_once(
    emulator_process: EmulatorProcess, tmp_path: Path, cut: str
) -> None:
    """A SIGKILL at ``cut`` while check moves a pipeline from stage 0 to stage 1, then check
    again: no duplicate batch, every verdict of every stage once (as a live walk gives them)."""
    outcome = stage_crash_scenario(emulator_process.url, tmp_path / "job", cut)
    assert outcome.recovered, outcome.detail
    assert outcome.duplicate_batches == 0
    assert outcome.lost_verdicts == 0
