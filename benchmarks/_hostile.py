"""Hostile replies and bad input: scenarios shared by ``tests/reliability/test_hostile.py`` and
``benchmarks/reliability.py``.

* :func:`hostile_reply_scenario` — the judge model writes a hostile reply (JSON nested 1,000
  levels deep, a reply larger than kyro parses, binary noise) for the first transcript and
  verdicts for the rest. Guarantee: the job completes; every hostile run is an errored run
  keeping (a prefix of) its text; every other run has its verdict, once.
* :func:`bad_input_scenario` — ``python -m kyro submit`` given one kind of bad input.
  Guarantee: exit 2, a one-line message naming the cause, no traceback, no batch created.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
from _scenarios import (
    JUDGES,
    Job,
    Outcome,
    batches_by_config,
    check_until_done,
    duplicate_batches,
    run_verdicts,
    served,
)

from kyro import BatchJobError, BatchRunResult
from kyro._verdicts import MAX_REPLY_CHARS, RAW_KEEP_CHARS
from kyro_openai.testing._responder import prompt_text

__all__ = ["HOSTILE_REPLIES", "hostile_reply_scenario"]

HOSTILE_REPLIES: dict[str, str] = {
    "deep": '{"verdict": ' * 1_000 + '"SUCCESS"' + "}" * 1_000,
    "huge": '{"status": "SUCCESS", "root_cause": "' + "x" * MAX_REPLY_CHARS + '"}',
    "binary": bytes(range(256)).decode("latin-1") * 8,
}
"""Replies a transcript can steer a judge model into writing, by kind."""


def _responder(hostile: str) -> Any:
    def respond(body: dict[str, Any]) -> str:
        if "question 0 of" in prompt_text(body):
            return hostile
        return json.dumps({"status": "SUCCESS", "root_cause": "answers the question"})

    return respond


def hostile_reply_scenario(folder: Path, kind: str) -> Outcome:
    """One job whose first transcript draws the hostile reply ``kind`` from every judge."""
    hostile = HOSTILE_REPLIES[kind]
    job = Job(folder, f"hostile-{kind}-{folder.name}")
    name = f"hostile reply: {kind}"
    with served(responder=_responder(hostile)) as (_, url):

        async def go() -> tuple[BatchRunResult | BatchJobError, BatchRunResult | None]:
            judge = job.judge(url)
            try:
                await judge.submit([job.data], runs=job.runs)
                result = await check_until_done(judge)
                return result, await judge.check()  # collected: the same result from disk
            finally:
                await judge.aclose()

        result, again = anyio.run(go)
        batches = batches_by_config(url, job.config_hash())
    dupes = duplicate_batches(batches, result.job_id)
    if not isinstance(result, BatchRunResult):
        return Outcome(name, recovered=False, duplicate_batches=dupes, lost_verdicts=job.requests)
    found, errored = run_verdicts(result.results_path)
    expected = {
        (t, j, r) for t in range(1, job.transcripts) for j in JUDGES for r in range(job.runs)
    }
    lost = len(expected - set(found)) + sum(n - 1 for n in found.values())
    lost += len(set(found) - expected)
    hostile_runs = len(JUDGES) * job.runs
    kept = 0
    first = next(iter(result.evaluations))
    for verdict in first.verdicts.values():
        for run in verdict.runs:
            raw = run.raw or ""
            if run.status == "ERRORED" and raw and hostile.startswith(raw[:RAW_KEEP_CHARS]):
                kept += 1
    lost += hostile_runs - kept  # a hostile run without its text is a lost verdict
    recovered = again is not None and again.counts == result.counts and errored == hostile_runs
    return Outcome(
        name,
        recovered=recovered,
        duplicate_batches=dupes,
        lost_verdicts=lost,
        detail=f"{errored} errored runs, {kept} keeping their text",
    )
