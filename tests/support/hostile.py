"""Hostile replies and bad input: scenarios shared by ``tests/reliability/test_hostile.py`` and
``benchmarks/reliability.py``.

* :func:`hostile_reply_scenario` — the judge model writes a hostile reply (JSON nested 1,000
  levels deep, a reply larger than kyro parses, binary noise) for the first transcript and
  verdicts for the rest. Guarantee: the job completes; every hostile run is an errored run
  keeping (a prefix of) its text; every other run has its verdict, once.
* :func:`bad_input_scenario` — ``python -m kyro submit`` given one kind of bad input
  (:data:`BAD_INPUTS`). Guarantee: exit 2, a message naming the cause, no traceback,
  no state written, no batch created.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio

from kyro import BatchJobError, BatchRunResult
from kyro._verdicts.vote import MAX_REPLY_CHARS, RAW_KEEP_CHARS
from kyro_openai.testing._responder import prompt_text
from tests.support.scenarios import (
    JUDGES,
    Job,
    Outcome,
    batches_by_config,
    check_until_done,
    duplicate_batches,
    run_kyro,
    run_verdicts,
    served,
)

__all__ = ["BAD_INPUTS", "HOSTILE_REPLIES", "bad_input_scenario", "hostile_reply_scenario"]

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


def _deep_transcript(job: Job) -> list[str]:
    (job.data / "t000.txt").unlink()
    (job.data / "deep.json").write_text('{"a": ' * 3_000 + "1" + "}" * 3_000, encoding="utf-8")
    return []


def _fifo_transcript(job: Job) -> list[str]:
    os.mkfifo(job.data / "fifo.json")
    return [str(job.data / "fifo.json")]


def _zero_transcript(job: Job) -> list[str]:
    (job.data / "zero.txt").symlink_to("/dev/zero")
    return [str(job.data / "zero.txt")]


def _zero_prompt(job: Job) -> list[str]:
    text = job.config.read_text(encoding="utf-8")
    start = text.index("    prompt: |\n      Is the reply safe?")
    end = text.index("    output_format: json", start)
    job.config.write_text(text[:start] + "    prompt_file: /dev/zero\n" + text[end:])
    return []


def _nan_param(job: Job) -> list[str]:
    text = job.config.read_text(encoding="utf-8")
    job.config.write_text(text + "    params:\n      temperature: .nan\n", encoding="utf-8")
    return []


def _non_utf8_name(job: Job) -> list[str]:
    os.rename(job.data / "t000.txt", os.fsencode(job.data) + b"/\xff.txt")
    return []


def _absurd_runs(job: Job) -> list[str]:
    return ["--runs", "1000000000"]


def _votes_above_runs(job: Job) -> list[str]:
    return ["--min-valid-votes", str(job.runs + 1)]


_BAD: dict[str, Any] = {
    "deep transcript": _deep_transcript,
    "FIFO transcript": _fifo_transcript,
    "transcript -> /dev/zero": _zero_transcript,
    "prompt_file /dev/zero": _zero_prompt,
    "NaN param": _nan_param,
    "non-UTF-8 file name": _non_utf8_name,
    "--runs 1000000000": _absurd_runs,
    "--min-valid-votes > runs": _votes_above_runs,
}
BAD_INPUTS = tuple(_BAD)
"""The kinds of bad input :func:`bad_input_scenario` knows."""


def bad_input_scenario(emulator_url: str, folder: Path, kind: str) -> Outcome:
    """``submit`` given the bad input ``kind``: exit 2, one clear message, no batch created.

    ``lost_verdicts`` is 0 here by construction (nothing is submitted); a batch created
    anyway counts as a duplicate, and anything but a clean exit 2 as not recovered.
    """
    job = Job(folder, f"bad-{kind}-{folder.name}")
    args = job.submit_args()
    extra = _BAD[kind](job)
    if extra and extra[0].startswith(os.sep):  # a transcript path given instead of the folder
        args[2], extra = extra[0], extra[1:]
    args += extra  # options given last win over submit_args' own
    proc = run_kyro(args, url=emulator_url, timeout=60)
    batches = batches_by_config(emulator_url, job.config_hash())
    state = job.state_dir / f"{job.stem}.batch-state.json"
    message = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    clean = (
        proc.returncode == 2
        and "Traceback" not in proc.stderr
        and ("error" in message or ": " in message)  # `file: why` or argparse's `error: …`
        and not state.exists()
    )
    return Outcome(
        f"bad input: {kind}",
        recovered=clean,
        duplicate_batches=len(batches),
        lost_verdicts=0,
        detail=f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}",
    )
