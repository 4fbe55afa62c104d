"""Counting a job's results while they are written: mutable tallies that build frozen counts.

The public :class:`~kyro.ResultCounts`, :class:`~kyro.JudgeCounts` and
:class:`~kyro.StepCounts` are frozen, like the :class:`~kyro.BatchRunResult` that holds them.
Writing a results file counts one transcript at a time, so the writers keep a
:class:`CountsBuilder` and call :meth:`CountsBuilder.build` once, at the end.
"""

from __future__ import annotations

from collections.abc import Iterable

from kyro._verdicts.result_types import (
    JudgeCounts,
    OverallStatus,
    ResultCounts,
    StepCounts,
    StepOutcome,
    VerdictStatus,
)

__all__ = ["CountsBuilder", "JudgeTally", "StepTally"]


class JudgeTally:
    """How one judge voted so far; :meth:`build` gives the frozen :class:`JudgeCounts`."""

    __slots__ = ("error", "errored", "na", "score_sum", "scored", "success")

    def __init__(self) -> None:
        self.success = self.error = self.na = self.errored = self.scored = 0
        self.score_sum = 0.0

    def add(self, status: VerdictStatus, score: float | None = None) -> None:
        """Count one verdict (and its score, when it has one)."""
        if status == "SUCCESS":
            self.success += 1
        elif status == "ERROR":
            self.error += 1
        elif status == "NA":
            self.na += 1
        else:
            self.errored += 1
        if score is not None:
            self.scored += 1
            self.score_sum += score

    def build(self) -> JudgeCounts:
        """The counts so far, frozen."""
        return JudgeCounts(**{name: getattr(self, name) for name in self.__slots__})


class StepTally:
    """How often one pipeline step ran so far; :meth:`build` gives the frozen
    :class:`StepCounts`."""

    __slots__ = ("fell_back", "not_reached", "not_triggered", "ran", "skipped")

    def __init__(self) -> None:
        self.ran = self.skipped = self.not_triggered = self.fell_back = self.not_reached = 0

    def add(self, outcome: StepOutcome) -> None:
        """Count one transcript's outcome of this step."""
        if outcome.state == "RAN":
            self.ran += 1
        elif outcome.state == "SKIPPED":
            self.skipped += 1
        elif outcome.state == "NOT_REACHED":
            self.not_reached += 1
        else:
            self.not_triggered += 1
        if outcome.effective_from is not None:
            self.fell_back += 1

    def build(self) -> StepCounts:
        """The counts so far, frozen."""
        return StepCounts(**{name: getattr(self, name) for name in self.__slots__})


class CountsBuilder:
    """A job's totals while its results are counted; :meth:`build` gives :class:`ResultCounts`.

    ``judges`` (and, for a pipeline, ``steps``) name the tallies that exist from the start,
    in order, so a judge that never voted still shows with zero counts.

    Example::

        builder = CountsBuilder(judges=("tone",))
        builder.add("SUCCESS")
        builder.judge("tone").add("SUCCESS", 0.9)
        builder.build().judges["tone"].success     # 1
    """

    __slots__ = (
        "error",
        "errored",
        "errored_runs",
        "judges",
        "missing_runs",
        "partial",
        "requests",
        "steps",
        "success",
        "transcripts",
        "unexpected_lines",
    )

    def __init__(
        self,
        *,
        judges: Iterable[str] = (),
        steps: Iterable[str] = (),
        transcripts: int = 0,
        requests: int = 0,
        unexpected_lines: int = 0,
    ) -> None:
        self.transcripts = transcripts
        self.requests = requests
        self.unexpected_lines = unexpected_lines
        self.success = self.error = self.partial = self.errored = 0
        self.errored_runs = self.missing_runs = 0
        self.judges = {name: JudgeTally() for name in judges}
        self.steps = {name: StepTally() for name in steps}

    def add(self, status: OverallStatus) -> None:
        """Count one transcript's status."""
        if status == "SUCCESS":
            self.success += 1
        elif status == "ERROR":
            self.error += 1
        elif status == "PARTIAL":
            self.partial += 1
        else:
            self.errored += 1

    def judge(self, name: str) -> JudgeTally:
        """The tally of judge ``name`` (created on first use)."""
        tally = self.judges.get(name)
        if tally is None:
            tally = self.judges[name] = JudgeTally()
        return tally

    def step(self, name: str) -> StepTally:
        """The tally of pipeline step ``name`` (created on first use)."""
        tally = self.steps.get(name)
        if tally is None:
            tally = self.steps[name] = StepTally()
        return tally

    def build(self) -> ResultCounts:
        """The totals so far, frozen."""
        return ResultCounts(
            transcripts=self.transcripts,
            success=self.success,
            error=self.error,
            partial=self.partial,
            errored=self.errored,
            requests=self.requests,
            errored_runs=self.errored_runs,
            missing_runs=self.missing_runs,
            unexpected_lines=self.unexpected_lines,
            judges={name: tally.build() for name, tally in self.judges.items()},
            steps={name: tally.build() for name, tally in self.steps.items()},
        )
