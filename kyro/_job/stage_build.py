"""Building one pipeline stage's shards: which transcripts qualify, rendered with what came before.

Stage *k* is built from two streams read in step, one line at a time: the job's kept
transcripts and the outcomes of the stages before *k*. For each transcript, the steps of
stage *k* that the DAG says run (:meth:`kyro._config.dag.StepGraph.decide`) are planned with the
upstream results their prompts read (``{{steps.<name>.…}}``); the transcripts that qualified
are listed in the stage's plan file, which is what the stage's aggregation reads back.

Stage 0 also keeps the transcripts and writes the transcript index, and renders every later
step once with stand-in upstream values, so a prompt that cannot be rendered for some
transcript is refused at submit — before anything is uploaded — never halfway through a job.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from kyro._build.shards import BuildSummary, EncodeFn, ShardBuilder
from kyro._config.judges import JudgesConfig
from kyro._exceptions import BatchValidationError
from kyro._files import atomic_writer
from kyro._job.stage_files import PlannedLine, StageOutcomes, TranscriptWriter
from kyro._plan.planner import Planner
from kyro._plan.preflight import Preflight
from kyro._transcript_index import TranscriptIndexWriter
from kyro._transcripts import Transcript
from kyro._types import BatchLimits
from kyro._verdicts.cache_gate import RequestGate
from kyro._verdicts.steps import step_values

__all__ = ["build_stage"]

_encoder = msgspec.json.Encoder()


def build_stage(
    config: JudgesConfig,
    stage: int,
    transcripts: Iterable[Transcript],
    outcomes: Iterator[StageOutcomes] | None,
    *,
    encode: EncodeFn,
    limits: BatchLimits,
    directory: Path,
    plan_path: Path,
    runs: int,
    variables: dict[str, str],
    index: TranscriptIndexWriter | None = None,
    keep: TranscriptWriter | None = None,
    gate: RequestGate | None = None,
    later: RequestGate | None = None,
) -> tuple[BuildSummary, int]:
    """Write stage ``stage``'s shards and plan; return the summary and how many transcripts
    qualified. ``outcomes`` (None for stage 0) must yield one line per transcript, in order.

    ``gate`` answers runs from the reply cache (only the rest is written; the plan still
    lists every qualifying transcript, so the stage's aggregation expects the cached runs)
    and prices what is sent. ``later`` (stage 0 only) is fed the requests of every later
    step for every transcript, rendered with stand-in upstream values: the pipeline's cost
    ceiling as if every transcript qualified for every later step.

    Every problem is collected (like :func:`kyro._build.plan_build.build_shards`); if any was
    found, the files written are deleted and one :class:`BatchValidationError` lists them.
    """
    graph = config.graph()
    position = {name: i for i, name in enumerate(graph.names)}
    steps = graph.stages[stage]
    preflight = Preflight(max_problems=20)
    planner = Planner(config, runs, variables, stage, preflight)
    steps_after = [position[n] for names in graph.stages[stage + 1 :] for n in names]
    checker = Planner(config, runs, variables, 0, preflight) if stage == 0 else None
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    builder = ShardBuilder(directory, encode, limits, preflight=preflight)
    qualified = 0
    buffer = bytearray()
    try:
        with atomic_writer(plan_path) as plan:
            for transcript in transcripts:
                if index is not None:
                    index.write(transcript)
                if keep is not None:
                    keep.write(transcript)
                verdicts = _outcome_of(transcript.index, outcomes, plan_path).verdicts
                own = {name: verdict.status for name, verdict in verdicts.items()}
                run = [position[n] for n in steps if graph.decide(n, own)[0] == "RUN"]
                if run:
                    wanted = frozenset().union(*(graph.ancestors(graph.names[j]) for j in run))
                    values = step_values(graph, wanted, verdicts)
                    requests = planner.requests_for(transcript, run, values)
                    for request in gate.take(requests) if gate is not None else requests:
                        builder.add(request)
                    _encoder.encode_into(PlannedLine(transcript.index, tuple(run)), buffer, -1)
                    buffer.extend(b"\n")
                    qualified += 1
                    if len(buffer) >= 1 << 20:
                        plan.write(buffer)
                        buffer.clear()
                if checker is not None and steps_after:
                    checked = checker.requests_for(transcript, steps_after)
                    if later is not None:
                        later.take(checked)
            if gate is not None:
                for request in gate.flush():
                    builder.add(request)
            plan.write(buffer)
            summary = builder.close()
            preflight.raise_if_any()
    except BaseException:
        builder.discard()
        raise
    return summary, qualified


_EMPTY = StageOutcomes(index=-1)


def _outcome_of(index: int, outcomes: Iterator[StageOutcomes] | None, where: Path) -> StageOutcomes:
    if outcomes is None:
        return _EMPTY
    line = next(outcomes, None)
    if line is None or line.index != index:
        raise BatchValidationError(
            f"the job's stage outcomes do not line up with its transcripts at transcript "
            f"#{index}; the state folder was changed by hand: cancel the job and submit again",
            path=where.parent,
        )
    return line
