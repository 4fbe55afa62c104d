"""BatchJudge end to end: submit in one process, check in others, over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kyro_openai.testing import Emulator, EmulatorConfig
from tests.judge.judge_helpers import JUDGES, WORKER, batches_per_shard, run_worker, write_config

pytestmark = pytest.mark.slow  # submit and check in separate processes


def _worker_setup(tmp_path: Path, served: str) -> tuple[Path, tuple[str, str, str]]:
    """A judges config in ``tmp_path``; its state folder, and the arguments every worker takes
    first (base URL, config, state folder)."""
    config = write_config(tmp_path)
    state_dir = tmp_path / "state"
    return state_dir, (served, str(config), str(state_dir))


@pytest.mark.parametrize("emulator_config", [EmulatorConfig(in_progress_seconds=60)])
def test_submit_exits_then_later_processes_check_until_done(
    tmp_path: Path, emulator: Emulator, served: str
) -> None:
    """A job submitted by one process is collected by later ones, then stays collected."""
    state_dir, common = _worker_setup(tmp_path, served)
    job_id = run_worker("submit", *common, "--transcripts", "7", "--runs", "2")["job_id"]
    assert (state_dir / "judges.batch-state.json").is_file()
    assert batches_per_shard(served, job_id) == {"0": 1, "1": 1, "2": 1, "3": 1, "4": 1, "5": 1}

    assert run_worker("check", *common) == {"pending": True}
    emulator.advance(60)
    result = run_worker("check", *common)

    assert result["job_id"] == job_id
    assert result["counts"]["transcripts"] == 7
    assert result["counts"].get("errored_runs", 0) == 0
    assert [e["index"] for e in result["evaluations"]] == list(range(7))
    for evaluation in result["evaluations"]:
        assert sorted(evaluation["verdicts"]) == sorted(JUDGES)
        for status, votes in evaluation["verdicts"].values():
            assert status in ("SUCCESS", "ERROR", "NA")
            assert votes["ERRORED"] == 0
            assert sum(votes.values()) == 2
    results_path = Path(result["results_path"])
    lines = results_path.read_text().splitlines()
    assert [json.loads(line)["index"] for line in lines] == list(range(7))
    assert not (state_dir / "judges.batch-state.json").exists()
    assert run_worker("check", *common) == result


def test_two_concurrent_checks_finalize_once(
    tmp_path: Path, emulator: Emulator, served: str
) -> None:
    """Two processes checking a finished job at once: one finalizes, both return its result."""
    state_dir, common = _worker_setup(tmp_path, served)
    job_id = run_worker("submit", *common, "--transcripts", "6")["job_id"]
    shards = len(batches_per_shard(served, job_id))
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), "check", *common],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in outputs]
    first, second = (json.loads(out.strip().splitlines()[-1]) for out, _ in outputs)

    assert first == second
    assert first["job_id"] == job_id
    assert first["counts"]["transcripts"] == 6
    assert len(list((state_dir / "judges.batch").glob("results-*.jsonl"))) == 1
    assert emulator.stats().downloads == shards  # each output file fetched by one process only
