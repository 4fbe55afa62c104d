"""Majority vote and status rules through a whole job, on replies scripted per request."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from kyro import BatchJudge, BatchRunResult, VoteSettings
from kyro_openai.testing import Emulator, ScriptedResponder
from tests.judge.judge_helpers import NOW, emulator_provider, write_config


def _reply(status: str, cause: str = "") -> str:
    return json.dumps({"status": status, "root_cause": cause or f"because {status.lower()}"})


S, E, N = _reply("SUCCESS"), _reply("ERROR"), _reply("NA")
GARBAGE = "The reply looks fine to me."
FENCED = "```json\n" + _reply("SUCCESS", "fenced but fine") + "\n```"

# transcript -> judge index -> the three runs' replies
SCRIPT = {
    0: {0: [S, S, E], 1: [FENCED, S, S]},  # 2:1 majority; fenced JSON is a vote
    1: {0: [S, E, GARBAGE], 1: [N, N, S]},  # 1:1 tie -> ERROR (default rule); NA passes
    2: {0: [E, E, E], 1: [E, E, N]},  # every judge failed
    3: {0: [GARBAGE, GARBAGE, S], 1: [S, S, S]},  # one valid run < min_valid_votes=2
}


async def _run_job(
    tmp_path: Path, script: dict[int, dict[int, list[str]]], vote: VoteSettings
) -> tuple[Emulator, BatchRunResult]:
    by_id = {
        f"t{t}-j{j}-r{r}": reply
        for t, judges in script.items()
        for j, replies in judges.items()
        for r, reply in enumerate(replies)
    }
    emulator = Emulator(responder=ScriptedResponder(by_custom_id=by_id), clock=lambda: NOW)
    judge = BatchJudge(
        emulator_provider(emulator, max_requests=7),
        write_config(tmp_path),
        state_dir=tmp_path / "state",
        vote=vote,
        samples=False,  # the replies are scripted per run's custom_id
    )
    await judge.submit([f"exchange {t}" for t in script], runs=3)
    result = await judge.check()
    assert result is not None
    return emulator, result


async def test_majority_vote_ties_parse_errors_and_every_status(tmp_path: Path) -> None:
    """Votes, the default tie rule, min_valid_votes and the transcript/job statuses all hold."""
    emulator, result = await _run_job(tmp_path, SCRIPT, VoteSettings(min_valid_votes=2))
    evaluations = list(result.evaluations)

    relevance = evaluations[0].verdicts["relevance"]
    assert (relevance.status, relevance.votes) == (
        "SUCCESS",
        {"SUCCESS": 2, "ERROR": 1, "NA": 0, "ERRORED": 0},
    )
    assert [run.status for run in relevance.runs] == ["SUCCESS", "SUCCESS", "ERROR"]
    assert evaluations[0].verdicts["tone"].root_cause == "fenced but fine"

    tie = evaluations[1].verdicts["relevance"]
    assert (tie.status, tie.votes["ERRORED"], tie.root_cause) == ("ERROR", 1, "because error")
    garbage_run = tie.runs[2]
    assert (garbage_run.status, garbage_run.raw) == ("ERRORED", GARBAGE)
    assert garbage_run.error is not None
    assert garbage_run.error.code == "unparseable_reply"
    assert evaluations[1].verdicts["tone"].status == "NA"

    too_few = evaluations[3].verdicts["relevance"]
    assert too_few.status == "ERRORED"
    assert too_few.votes == {"SUCCESS": 1, "ERROR": 0, "NA": 0, "ERRORED": 2}
    assert too_few.error is not None
    assert too_few.error.code == "too_few_valid_runs"
    assert [run.raw for run in too_few.runs] == [GARBAGE, GARBAGE, None]

    assert [e.status for e in evaluations] == ["SUCCESS", "PARTIAL", "ERROR", "ERRORED"]
    counts = result.counts
    assert (counts.success, counts.partial, counts.error, counts.errored) == (1, 1, 1, 1)
    assert counts.errored_runs == 3
    assert counts.judges["relevance"].errored == 1
    assert result.status == "PARTIAL"
    assert not result.complete

    usages = [b.usage for b in emulator.batches if b.usage is not None]
    assert len(usages) == len(emulator.batches) == 4  # 24 requests, 7 per batch
    assert all(u.total_tokens > 0 for u in usages)
    assert result.usage.input_tokens == sum(u.input_tokens for u in usages)
    assert result.usage.output_tokens == sum(u.output_tokens for u in usages)
    assert result.usage.total_tokens == result.usage.input_tokens + result.usage.output_tokens


@pytest.mark.parametrize(
    ("replies", "job_status"),
    [([S, S, N], "SUCCESS"), ([E, E, S], "ERROR"), ([GARBAGE] * 3, "ERRORED")],
)
async def test_uniform_jobs_take_the_status_of_their_transcripts(
    tmp_path: Path, replies: list[str], job_status: str
) -> None:
    """A job whose transcripts all pass, all fail, or all lack verdicts says so."""
    script = {t: {0: replies, 1: replies} for t in range(2)}
    _, result = await _run_job(tmp_path, script, VoteSettings())
    assert result.status == job_status
    assert [e.status for e in result.evaluations] == [job_status, job_status]
    assert result.counts.errored == (2 if job_status == "ERRORED" else 0)


async def test_check_logs_how_fast_it_aggregated_and_stored_replies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """At INFO, check says how many result lines it aggregated in how long, and how many
    replies it stored in the reply cache (what ``check -v`` prints)."""
    emulator = Emulator(clock=lambda: NOW)
    judge = BatchJudge(
        emulator_provider(emulator),
        write_config(tmp_path),
        state_dir=tmp_path / "state",
        cache=tmp_path / "cache",
    )
    job_id = await judge.submit([f"exchange {t}" for t in range(5)])
    with caplog.at_level(logging.INFO, logger="kyro"):
        result = await judge.check()
    assert result is not None
    requests = result.counts.requests
    assert re.search(
        rf"job {job_id}: aggregated {requests} result lines into 5 transcripts in [\d.]+ s "
        r"\([\d,]+ lines/s; [\d.]+ s of CPU\)",
        caplog.text,
    )
    assert f"job {job_id}: reply cache: stored {requests} replies" in caplog.text
