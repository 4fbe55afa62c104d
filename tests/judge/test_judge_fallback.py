"""A fallback provider finishes what a batch left unfinished, instead of another 24 h batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from kyro import BatchJudge
from kyro.cli import main
from kyro_local import LocalProvider
from kyro_openai.testing import Emulator
from tests.judge.judge_helpers import JUDGES, emulator_provider, write_config


@pytest.mark.slow  # end to end over HTTP
async def test_fallback_finishes_an_expired_batch_remainder(
    tmp_path: Path, emulator: Emulator, served: str
) -> None:
    """An expired batch's unfinished requests run through the local fallback, keeping run ids."""
    config = write_config(tmp_path)
    emulator.faults.expire_next(after_lines=4)
    fallback = LocalProvider(base_url=served, api_key="sk-test", state_dir=tmp_path / "local")
    judge = BatchJudge(emulator_provider(emulator), config, fallback=fallback, samples=False)
    transcripts = [f"user: question {i}\nassistant: answer {i}" for i in range(5)]
    try:
        await judge.submit(transcripts, runs=2)
        result = await judge.check()
    finally:
        await judge.provider.aclose()
        await fallback.aclose()

    assert result is not None
    assert result.counts.transcripts == 5
    assert result.counts.errored == 0
    assert result.counts.errored_runs == 0
    assert len(emulator.batches) == 1  # the remainder did not become a second batch
    fallback_batches = list((tmp_path / "local").iterdir())
    assert len(fallback_batches) == 1
    # 5 transcripts × 2 judges × 2 runs = 20 requests; 4 finished in the batch, 16 locally.
    output = (fallback_batches[0] / "output.jsonl").read_text().splitlines()
    assert len(output) == 16
    for evaluation in result.evaluations:
        assert set(evaluation.verdicts) == set(JUDGES)
        for verdict in evaluation.verdicts.values():
            assert [run.run for run in verdict.runs] == [0, 1]
            assert sum(verdict.votes.values()) == 2


@pytest.mark.slow  # end to end over HTTP
def test_check_fallback_option_finishes_the_remainder(
    tmp_path: Path, emulator: Emulator, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``kyro check --fallback-base-url`` sends an expired batch's remainder to that endpoint."""
    config = write_config(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    emulator.faults.expire_next(after_lines=2)
    for name in ("one", "two"):
        (tmp_path / f"{name}.txt").write_text(f"{name} transcript", encoding="utf-8")
    one, two = str(tmp_path / "one.txt"), str(tmp_path / "two.txt")
    assert main(["submit", str(config), one, two, "-q", "--base-url", served]) == 0
    code = main(
        [
            "check",
            str(config),
            "-q",
            "--base-url",
            served,
            "--fallback-base-url",
            served,
            "--max-resubmits",
            "1",
        ]
    )
    assert code == 0
    assert len(emulator.batches) == 1
    local = list((tmp_path / ".kyro" / "local").iterdir())
    assert len(local) == 1
    assert len((local[0] / "output.jsonl").read_text().splitlines()) == 2  # 4 requests, 2 done
