"""Crash scenarios for pipeline jobs: kill -9 while ``check`` moves from stage 0 to stage 1.

The pipeline: two roots on two models (``relevance``, ``safety``), ``resolution`` after both
with ``review`` as its ``on_failure`` — three stages. The emulator's default responder gives
each prompt a fixed verdict, so the verdicts every stage should hold are known in advance:
the same pipeline walked live (``KyroJudge`` over the emulator's chat endpoint) says which
transcript × step × run must appear in the results file, exactly once.
"""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any

import anyio

from kyro import KyroJudge
from kyro_local import LocalProvider
from tests.support.scenarios import (
    API_KEY,
    FAST_RETRY,
    Job,
    Outcome,
    batches_by_config,
    duplicate_batches,
    run_kyro,
    torn_files,
)

__all__ = ["PipelineJob", "stage_crash_scenario"]

_PIPELINE = """\
version: 1
model: gpt-4o-mini
# scenario {tag}: the tag makes the config's hash, and so its batches' metadata, unique
steps:
  - name: relevance
    prompt: "Does the reply answer the question? Reply with JSON only. {{{{input}}}}"
    output_format: json
  - name: safety
    model: gpt-4o
    prompt: "Is the reply safe? Reply with JSON only. {{{{input}}}}"
    output_format: json
  - name: resolution
    depends_on: [relevance, safety]
    on_failure: review
    prompt: "Relevance said {{{{steps.relevance.status}}}}. Resolved? JSON only. {{{{input}}}}"
    output_format: json
  - name: review
    prompt: "Failed: {{{{steps.resolution.root_cause}}}}. Minor? JSON only. {{{{input}}}}"
    output_format: json
"""


class PipelineJob(Job):
    """A :class:`Job` whose config is the three-stage pipeline above."""

    def __init__(self, folder: Path, tag: str, *, transcripts: int = 8, runs: int = 2) -> None:
        super().__init__(folder, tag, transcripts=transcripts, runs=runs)
        self.config.write_text(_PIPELINE.format(tag=tag), encoding="utf-8")

    def expected(self, url: str) -> collections.Counter[tuple[int, str, int]]:
        """Every (transcript, step, run) the pipeline runs, from a live walk of the same job."""

        async def walk() -> collections.Counter[tuple[int, str, int]]:
            provider = LocalProvider(
                base_url=url, api_key=API_KEY, retry=FAST_RETRY, state_dir=self.folder / "live"
            )
            found: collections.Counter[tuple[int, str, int]] = collections.Counter()
            # No reply cache: the batch job runs without one too, and every run must be sent.
            live_judge = KyroJudge(self.config, provider=provider, runs=self.runs, cache=False)
            async with live_judge as live:
                stream = live.run_many([self.data])
                async for evaluation in stream:
                    for name, verdict in evaluation.verdicts.items():
                        for run in verdict.runs:
                            found[(evaluation.index, name, run.run)] += 1
            return found

        return anyio.run(walk)


def _results_runs(path: Path) -> tuple[collections.Counter[tuple[int, str, int]], int]:
    found: collections.Counter[tuple[int, str, int]] = collections.Counter()
    stages_reached = 0
    with path.open("rb") as file:
        for raw in file:
            evaluation: dict[str, Any] = json.loads(raw)
            for name, verdict in evaluation["verdicts"].items():
                for run in verdict.get("runs", []):
                    if run["status"] != "ERRORED" or run.get("error", {}).get("code") != "missing":
                        found[(evaluation["index"], name, run["run"])] += 1
            ran = [s for s, o in evaluation.get("steps", {}).items() if o["state"] == "RAN"]
            stages_reached = max(stages_reached, len(ran))
    return found, stages_reached


def stage_crash_scenario(emulator_url: str, folder: Path, cut: str) -> Outcome:
    """SIGKILL ``check`` at ``cut`` between stage 0 and stage 1, run ``check`` again.

    Guarantee: no batch beyond one per (shard, attempt), every run verdict of every stage
    exactly once (compared with a live walk of the same pipeline), no torn file.
    """
    name = f"pipeline kill -9 {cut}"
    job = PipelineJob(folder, f"stage-{cut}-{folder.name}")
    url = emulator_url

    def failed(detail: str, dupes: int = 0) -> Outcome:
        return Outcome(
            name, recovered=False, duplicate_batches=dupes, lost_verdicts=0, detail=detail
        )

    first = run_kyro(job.submit_args(), url=url)
    if first.returncode != 0:
        return failed(f"submit: {first.stderr[-500:]}")
    killed = run_kyro(job.check_args(), url=url, cut=cut)
    if killed.returncode >= 0:
        return failed(f"cut point not reached (exit {killed.returncode}) {killed.stderr[-500:]}")
    torn_after_kill = torn_files(job.state_dir)
    rerun = run_kyro(job.check_args(), url=url)
    if rerun.returncode != 0:
        return failed(f"re-run: {rerun.stderr[-500:]}")
    finished = job.finished()
    batches = batches_by_config(url, job.config_hash())
    dupes = duplicate_batches(batches, finished["job_id"] if finished else None)
    if finished is None:
        return failed("no finished job", dupes)
    found, _ = _results_runs(Path(finished["results_path"]))
    expected = job.expected(url)
    lost = len(set(expected) - set(found)) + sum(n - 1 for n in found.values())
    lost += len(set(found) - set(expected))
    stages = {(b.get("metadata") or {}).get("kyro_stage") for b in batches}
    torn = torn_after_kill or torn_files(job.state_dir)
    recovered = not torn and {"0", "1"} <= stages
    detail = f"torn: {torn}" if torn else f"stages sent: {sorted(s for s in stages if s)}"
    return Outcome(
        name, recovered=recovered, duplicate_batches=dupes, lost_verdicts=lost, detail=detail
    )
