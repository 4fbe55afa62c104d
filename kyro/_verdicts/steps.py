"""A pipeline transcript's outcome: every step's state, effective verdicts, and the roll-up.

Given the verdicts of the steps that ran for one transcript, the rest follows from the DAG
(:mod:`kyro._config.dag`): which steps were skipped or not triggered and why, whose verdict is each
step's effective one, and the transcript's status. Live runs (``KyroJudge``) and staged batch
jobs build their results here, so both say exactly the same thing about the same verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import IO

import msgspec

from kyro._config.dag import StepGraph
from kyro._types import Usage
from kyro._verdicts.counting import CountsBuilder
from kyro._verdicts.result_types import (
    BatchRunResult,
    Evaluations,
    JudgeVerdict,
    StepOutcome,
    TranscriptEvaluation,
    job_status,
    rolled_up,
)

__all__ = ["ResultsWriter", "pipeline_evaluation", "step_values", "tally"]


def step_values(
    graph: StepGraph, names: frozenset[str], verdicts: Mapping[str, JudgeVerdict]
) -> dict[str, dict[str, str]]:
    """What ``{{steps.<name>.status|score|root_cause}}`` reads for the steps ``names``.

    ``status`` is the step's own verdict, or ``SKIPPED``/``NOT_TRIGGERED``; ``score`` the
    verdict's :attr:`~kyro.JudgeVerdict.score`, the mean score of its valid runs (empty when
    none gave one); ``root_cause`` the verdict's (empty when none).

    Example::

        step_values(graph, graph.ancestors("resolution"), {"grounded": verdict, ...})
    """
    own = {name: verdict.status for name, verdict in verdicts.items()}
    values: dict[str, dict[str, str]] = {}
    for name in names:
        verdict = verdicts.get(name)
        if verdict is None:
            values[name] = {"status": graph.decide(name, own)[0], "score": "", "root_cause": ""}
            continue
        score = verdict.score
        values[name] = {
            "status": verdict.status,
            "score": "" if score is None else f"{score:g}",
            "root_cause": verdict.root_cause or "",
        }
    return values


def pipeline_evaluation(
    graph: StepGraph,
    *,
    index: int,
    source: str,
    verdicts: Mapping[str, JudgeVerdict],
    preview: str | None = None,
    reached: int | None = None,
    not_reached: str | None = None,
) -> TranscriptEvaluation:
    """One transcript's evaluation from the verdicts of the steps that ran for it.

    ``reached`` (a batch job that ended early) is how many stages ran: a step of a later
    stage that did not run is ``NOT_REACHED``, and so is the transcript's roll-up (ERRORED);
    ``not_reached`` is the reason written on those steps (default: the job ended first).

    A config without links gives no ``steps`` (every judge ran; ``verdicts`` says it all).

    Example::

        evaluation = pipeline_evaluation(graph, index=0, source="inline:0", verdicts=ran)
        evaluation.steps["tone"].state       # 'RAN', 'SKIPPED' or 'NOT_TRIGGERED'
    """
    own = {name: verdict.status for name, verdict in verdicts.items()}
    steps: dict[str, StepOutcome] = {}
    for name in graph.names:
        if reached is not None and graph.stage[name] >= reached and name not in own:
            why = not_reached or f"the job ended before stage {graph.stage[name]} ran"
            steps[name] = StepOutcome(
                step=name, state="NOT_REACHED", effective="NOT_REACHED", reason=why
            )
            continue
        effective, source_step = graph.effective(name, own)
        taken_from = source_step if source_step != name else None
        if name in own:
            steps[name] = StepOutcome(
                step=name,
                state="RAN",
                status=verdicts[name].status,
                effective=effective,  # type: ignore[arg-type]
                effective_from=taken_from,
            )
        else:
            state, reason = graph.decide(name, own)
            assert state != "RUN", f"step {name!r} should have run"  # the walk ran every RUN
            steps[name] = StepOutcome(
                step=name,
                state=state,
                reason=reason,
                effective=effective,  # type: ignore[arg-type]
            )
    if not graph.is_pipeline:  # plain judges: exactly what a batch job's results say
        steps = {}
    counted = (steps[name].effective for name in graph.rolled_up) if steps else own.values()
    status = rolled_up("ERRORED" if s == "NOT_REACHED" else s for s in counted if s != "SKIPPED")
    ordered = {name: verdicts[name] for name in graph.names if name in verdicts}
    return TranscriptEvaluation(
        index=index, source=source, status=status, verdicts=ordered, preview=preview, steps=steps
    )


def tally(counts: CountsBuilder, evaluation: TranscriptEvaluation) -> Usage:
    """Count one evaluation into ``counts`` (transcripts, runs, judges, steps); return its usage
    (runs the reply cache answered are not counted: an earlier job paid for them).

    Example::

        counts = CountsBuilder()
        usage = sum((tally(counts, e) for e in evaluations), Usage())
    """
    counts.transcripts += 1
    counts.add(evaluation.status)
    usage = Usage()
    for name, verdict in evaluation.verdicts.items():
        counts.requests += len(verdict.runs)
        counts.errored_runs += verdict.votes.get("ERRORED", 0)
        counts.missing_runs += sum(
            1 for r in verdict.runs if r.error is not None and r.error.code == "missing"
        )
        counts.judge(name).add(verdict.status)
        for run in verdict.runs:
            if run.usage is not None and run.origin != "cache":  # paid for by an earlier job
                usage = usage + run.usage
    for name, outcome in evaluation.steps.items():
        counts.step(name).add(outcome)
    return usage


class ResultsWriter:
    """Writes evaluations to an open results file, one a line, counting them as it goes.

    Example::

        with atomic_writer(path) as file:
            writer = ResultsWriter(file, graph.names, pipeline=graph.is_pipeline)
            for evaluation in evaluations:
                writer.add(evaluation)
            writer.flush()
        result = writer.result(job_id, path)
    """

    _FLUSH_AT = 1 << 20
    _encoder = msgspec.json.Encoder()

    def __init__(
        self, file: IO[bytes], names: tuple[str, ...], *, pipeline: bool, unexpected: int = 0
    ) -> None:
        self.file = file
        self.counts = CountsBuilder(
            judges=names, steps=names if pipeline else (), unexpected_lines=unexpected
        )
        self.usage = Usage()
        self._buffer = bytearray()

    def add(self, evaluation: TranscriptEvaluation) -> None:
        """Count and write one evaluation."""
        self.usage = self.usage + tally(self.counts, evaluation)
        self._encoder.encode_into(evaluation, self._buffer, -1)
        self._buffer.extend(b"\n")
        if len(self._buffer) >= self._FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered (call it before the file is closed)."""
        self.file.write(self._buffer)
        self._buffer.clear()

    def result(self, job_id: str, path: Path) -> BatchRunResult:
        """The run's result, once the file at ``path`` is complete."""
        counts = self.counts.build()
        return BatchRunResult(
            job_id=job_id,
            status=job_status(counts),
            counts=counts,
            usage=self.usage,
            results_path=path,
            evaluations=Evaluations(path, counts.transcripts),
        )
