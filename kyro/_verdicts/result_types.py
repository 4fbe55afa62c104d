"""What a finished job hands back: run, judge, transcript and job verdicts.

Every level carries one status. Run and judge level: ``SUCCESS``, ``ERROR`` or ``NA`` (the
judge's own word) or ``ERRORED`` (no verdict: the request failed, the reply was not a verdict,
or too few runs were valid). Transcript and job level: ``SUCCESS`` (every judge passed —
SUCCESS or NA), ``ERROR`` (every judge failed), ``PARTIAL`` (a mix) or ``ERRORED``.

Status rules, chosen so that nothing is ever hidden:

* a transcript with any ``ERRORED`` judge verdict is ``ERRORED`` as a whole (the verdicts of
  its other judges are still in ``verdicts``), and it is counted in ``counts.errored``;
* the job's status is computed over the transcripts that are not errored: ``SUCCESS`` if all
  of them succeeded, ``ERROR`` if all failed, else ``PARTIAL``; errored transcripts are
  counted separately in ``counts.errored`` (check it, or ``result.complete``); a job with no
  transcript that is not errored is ``ERRORED``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal, overload

import msgspec

from kyro._types import ResultError, Usage

__all__ = [
    "BatchRunResult",
    "Evaluations",
    "JudgeCounts",
    "JudgeVerdict",
    "ResultCounts",
    "RunVerdict",
    "StepCounts",
    "StepOutcome",
    "TranscriptEvaluation",
    "job_status",
    "rolled_up",
    "transcript_status",
]

VerdictStatus = Literal["SUCCESS", "ERROR", "NA", "ERRORED"]
OverallStatus = Literal["SUCCESS", "ERROR", "PARTIAL", "ERRORED"]
StepState = Literal["RAN", "SKIPPED", "NOT_TRIGGERED", "NOT_REACHED"]
EffectiveStatus = Literal[
    "SUCCESS", "ERROR", "NA", "ERRORED", "SKIPPED", "NOT_TRIGGERED", "NOT_REACHED"
]


class RunVerdict(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One run of one judge on one transcript: the judge's reply, parsed.

    ``status`` is the judge's verdict, or ``ERRORED`` when there is none; ``error`` then says
    why (``unparseable_reply``, ``invalid_verdict``, ``missing`` or the provider's code) and
    ``raw`` keeps the reply text when there was one. A valid reply is fully represented by its
    fields, so its raw text is not kept. ``root_cause`` is optional in a reply (``None`` when
    the judge gave none). ``origin`` is ``"cache"`` when the reply came from the reply cache
    (asked and paid for by an earlier job; ``usage`` is what it cost then), else absent.

    Example::

        RunVerdict(run=0, status="ERROR", root_cause="The answer cites no source.")
    """

    run: int
    status: VerdictStatus
    root_cause: str | None = None
    thinking: str | None = None
    score: float | None = None
    raw: str | None = None
    error: ResultError | None = None
    usage: Usage | None = None
    origin: Literal["cache"] | None = None

    @property
    def valid(self) -> bool:
        """True when this run produced a verdict that takes part in the vote."""
        return self.status != "ERRORED"


class JudgeVerdict(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One judge's majority verdict on one transcript, with the runs it was voted from.

    ``votes`` counts the runs per status (``SUCCESS``, ``ERROR``, ``NA``, and ``ERRORED`` for
    runs that gave no verdict and took no part in the vote). ``root_cause`` comes from the
    first run (by run index) that agrees with the majority. ``error`` says why the verdict is
    ``ERRORED`` (``too_few_valid_runs``, ``tie``). ``score`` is the mean score of the valid
    runs that gave one (None when none did).

    Example::

        verdict = evaluation.verdicts["relevance"]
        verdict.status, verdict.votes      # 'SUCCESS', {'SUCCESS': 2, 'ERROR': 1, ...}
    """

    judge: str
    status: VerdictStatus
    votes: dict[str, int]
    root_cause: str | None = None
    runs: tuple[RunVerdict, ...] = ()
    error: ResultError | None = None
    score: float | None = None

    @property
    def passed(self) -> bool:
        """True for SUCCESS and NA."""
        return self.status == "SUCCESS" or self.status == "NA"


class StepOutcome(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """What one pipeline step did for one transcript (see the README's "Pipelines").

    ``state`` is ``RAN`` (its verdict is in :attr:`TranscriptEvaluation.verdicts`, its status
    copied here), ``SKIPPED`` (a dependency did not pass: ``reason`` names it) or
    ``NOT_TRIGGERED`` (a fallback whose step did not fail: ``reason`` says how it ended) or
    ``NOT_REACHED`` (a batch job ended — failed, expired, cancelled, over budget — before its
    stage ran; the transcript is then ``ERRORED``: it has no complete verdict).
    ``effective`` is the status dependents and the roll-up used: the step's own, or — when it
    failed and its fallback ran — the fallback's effective one, from step ``effective_from``.

    Example::

        outcome = evaluation.steps["resolution"]
        outcome.state, outcome.status, outcome.effective, outcome.effective_from
        # ('RAN', 'ERROR', 'SUCCESS', 'escalation_review')
    """

    step: str
    state: StepState
    effective: EffectiveStatus
    status: VerdictStatus | None = None
    reason: str | None = None
    effective_from: str | None = None


class TranscriptEvaluation(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Every judge's verdict on one transcript: one line of the results file.

    ``source`` is the transcript's path (``data/t1.json``) or ``inline:<index>``; ``preview``
    is a short excerpt of an inline transcript. ``verdicts`` maps judge names to verdicts, in
    the config's judge order. For a pipeline, ``verdicts`` holds the steps that ran and
    ``steps`` every step's :class:`StepOutcome` (ran, skipped or not triggered, and the
    effective verdict the roll-up used); ``status`` is rolled up from effective verdicts.

    Example::

        for evaluation in result.evaluations:
            if evaluation.status != "SUCCESS":
                print(evaluation.source, {n: v.status for n, v in evaluation.verdicts.items()})
    """

    index: int
    source: str
    status: OverallStatus
    verdicts: dict[str, JudgeVerdict]
    preview: str | None = None
    steps: dict[str, StepOutcome] = {}


class JudgeCounts(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """How one judge voted across all transcripts.

    Example::

        tone = result.counts.judges["tone"]
        print(tone.success, tone.error, tone.na, tone.errored, tone.mean_score)
    """

    success: int = 0
    error: int = 0
    na: int = 0
    errored: int = 0
    scored: int = 0
    score_sum: float = 0.0

    @property
    def mean_score(self) -> float | None:
        """The mean of this judge's verdict scores (None when no verdict had a score)."""
        return self.score_sum / self.scored if self.scored else None


class StepCounts(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """How often one pipeline step ran, was skipped or not triggered, and fell back.

    ``fell_back`` counts the transcripts where the step failed and its fallback's verdict
    took its place.

    Example::

        result.counts.steps["resolution"].ran, result.counts.steps["resolution"].fell_back
    """

    ran: int = 0
    skipped: int = 0
    not_triggered: int = 0
    fell_back: int = 0
    not_reached: int = 0


class ResultCounts(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Totals of a job: transcripts per status, runs, and per-judge verdicts.

    ``requests`` is transcripts × judges × runs (for a pipeline, the requests its steps
    made: skipped and untriggered steps send none); ``errored_runs`` those that gave no verdict
    (``missing_runs`` of them never came back at all); ``unexpected_lines`` counts result lines
    whose custom_id belongs to no request of the job (ignored, but never silently).

    Example::

        result.counts.success, result.counts.errored, result.counts.judges["tone"].error

    ``judges`` counts verdicts of judges that ran; ``steps`` (pipelines only) counts per step
    how often it ran, was skipped, was not triggered and fell back. Frozen, like the
    result that holds it (kyro counts with a private builder while it writes the results).
    """

    transcripts: int = 0
    success: int = 0
    error: int = 0
    partial: int = 0
    errored: int = 0
    requests: int = 0
    errored_runs: int = 0
    missing_runs: int = 0
    unexpected_lines: int = 0
    judges: dict[str, JudgeCounts] = {}
    steps: dict[str, StepCounts] = {}


_CHECKPOINT_EVERY = 256


class Evaluations:
    """A lazy, re-iterable, indexable view of the results file: one
    :class:`TranscriptEvaluation` per line, in transcript-index order.

    Nothing is held in memory: every iteration reads the file again, line by line.
    ``len()`` is known without reading. ``evaluations[i]`` (negative too) reads one line: the
    first lookup scans the file once and keeps the offset of every 256th line (a few KB for a
    million lines), so later lookups seek close by and read at most 256 lines. A slice gives
    a list. The file must stay where it is while you use the view.

    Example::

        len(result.evaluations)                      # number of transcripts
        result.evaluations[41].status                # one evaluation, read from disk
        failed = [e.index for e in result.evaluations if e.status == "ERROR"]
    """

    __slots__ = ("_checkpoints", "_count", "path")

    def __init__(self, path: Path, count: int) -> None:
        self.path = path
        self._count = count
        self._checkpoints: list[int] | None = None

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, item: int) -> TranscriptEvaluation: ...

    @overload
    def __getitem__(self, item: slice) -> list[TranscriptEvaluation]: ...

    def __getitem__(self, item: int | slice) -> TranscriptEvaluation | list[TranscriptEvaluation]:
        if isinstance(item, slice):
            return [self[i] for i in range(*item.indices(self._count))]
        if isinstance(item, bool) or not isinstance(item, int):
            raise TypeError(f"evaluations are indexed by int, not {type(item).__name__}")
        position = item + self._count if item < 0 else item
        if not 0 <= position < self._count:
            raise IndexError(f"evaluation {item} out of range for {self._count} transcripts")
        checkpoints = self._offsets()
        block = position // _CHECKPOINT_EVERY
        decoder = msgspec.json.Decoder(TranscriptEvaluation)
        with self.path.open("rb") as file:
            file.seek(checkpoints[block])
            skip = position - block * _CHECKPOINT_EVERY
            for line in file:
                if not line.strip():
                    continue
                if skip == 0:
                    return decoder.decode(line)
                skip -= 1
        raise IndexError(f"the results file {self.path} ends before evaluation {item}")

    def _offsets(self) -> list[int]:
        """Byte offsets of lines 0, 256, 512, … (non-blank lines), found in one scan."""
        if self._checkpoints is None:
            offsets: list[int] = []
            seen = 0
            offset = 0
            with self.path.open("rb") as file:
                for line in file:
                    if line.strip():
                        if seen % _CHECKPOINT_EVERY == 0:
                            offsets.append(offset)
                        seen += 1
                    offset += len(line)
            self._checkpoints = offsets
        return self._checkpoints

    def __iter__(self) -> Iterator[TranscriptEvaluation]:
        decoder = msgspec.json.Decoder(TranscriptEvaluation)
        with self.path.open("rb") as file:
            for line in file:
                if line.strip():
                    yield decoder.decode(line)

    def __repr__(self) -> str:
        return f"<Evaluations {self._count} from {str(self.path)!r}>"


class BatchRunResult(msgspec.Struct, frozen=True, kw_only=True):
    """A finished job: its status, totals, summed token usage and the results file.

    ``evaluations`` reads the results file lazily (see :class:`Evaluations`), so a result of a
    million transcripts costs no memory until you iterate. ``complete`` is False when any
    transcript is errored. ``models`` maps each judge to the model that ran it. ``failure`` is
    set when every request failed with one and the same error that retrying cannot fix (a
    rejected key, a model the provider does not know): no verdict at all, and why.

    Example::

        result = await judge.check()
        if result is not None:
            print(result.status, result.counts.success, result.usage.total_tokens)
            print(result.results_path)          # one JSON line per transcript
    """

    job_id: str
    status: OverallStatus
    counts: ResultCounts
    usage: Usage
    results_path: Path
    evaluations: Evaluations
    models: dict[str, str] = {}
    failure: ResultError | None = None

    @property
    def complete(self) -> bool:
        """True when no transcript is errored."""
        return self.counts.errored == 0


def transcript_status(verdicts: Iterable[JudgeVerdict]) -> OverallStatus:
    """A transcript's status from its judges' verdicts (see the module docstring).

    Example::

        transcript_status([success_verdict, na_verdict])     # 'SUCCESS'
        transcript_status([success_verdict, error_verdict])  # 'PARTIAL'
    """
    return rolled_up(verdict.status for verdict in verdicts)


def rolled_up(statuses: Iterable[str]) -> OverallStatus:
    """The overall status of verdict statuses (SUCCESS/NA pass, ERROR fails, ERRORED wins).

    Example::

        rolled_up(["SUCCESS", "ERROR"])   # 'PARTIAL'
    """
    passed = failed = 0
    for status in statuses:
        if status == "ERRORED":
            return "ERRORED"
        if status == "ERROR":
            failed += 1
        else:
            passed += 1
    if failed == 0:
        return "SUCCESS" if passed else "ERRORED"
    return "ERROR" if passed == 0 else "PARTIAL"


def job_status(counts: ResultCounts) -> OverallStatus:
    """A job's status from its transcript counts (see the module docstring).

    Example::

        job_status(ResultCounts(transcripts=10, success=9, errored=1))   # 'SUCCESS'
    """
    if counts.success + counts.error + counts.partial == 0:
        return "ERRORED"
    if counts.error == 0 and counts.partial == 0:
        return "SUCCESS"
    if counts.success == 0 and counts.partial == 0:
        return "ERROR"
    return "PARTIAL"
