"""What the HTML report shows, gathered in one pass over a results file, in bounded memory.

:func:`summarize_results` reads the results file (one transcript evaluation a line) once:
counts, per-judge (per-step) tallies, vote agreement, score histograms and token totals are
running sums (a pipeline's per-step outcomes too: ran, skipped, not triggered, not reached,
and the pass rate of each step's own and effective verdicts), and the per-transcript table is
a *sample* of at most ``max_rows`` rows — chosen at random with a fixed seed, transcripts
that did not pass weighted four times, so problems show up even in a million-transcript
result. Memory is the sample, whatever the size of the file.

Lines are read leniently: fields kyro may add later are ignored, and a verdict status kyro
does not know (a pipeline step's ``SKIPPED``) is counted under its own name. A line that is
not an evaluation is a :class:`BatchValidationError` naming the file and line.

:func:`summarize_cost` gives the cost figures alone (what ``check`` prints) from a lighter
pass that decodes only each run's status, usage and origin.

Example::

    data = summarize_results(Path("results.jsonl"), max_rows=500)
    data.transcripts, data.judges["tone"].counts
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, TypeVar

import msgspec

from kyro._cost.prices import PriceTable, cost_usd
from kyro._exceptions import BatchValidationError
from kyro._files import decode_lines

__all__ = [
    "JudgeSummary",
    "ReportData",
    "ReportRow",
    "RowVerdict",
    "StepSummary",
    "summarize_cost",
    "summarize_results",
]

_T = TypeVar("_T")
BINS = 10
_TEXT_LIMIT = 400
_PROBLEM_WEIGHT = 4.0


class _Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0


class _Error(msgspec.Struct):
    code: str = ""
    message: str = ""


class _Run(msgspec.Struct):
    run: int = 0
    status: str = "ERRORED"
    root_cause: str | None = None
    score: float | None = None
    error: _Error | None = None
    usage: _Usage | None = None
    origin: str | None = None


class _Verdict(msgspec.Struct):
    status: str = "ERRORED"
    votes: dict[str, int] = {}
    root_cause: str | None = None
    runs: list[_Run] = []
    error: _Error | None = None
    score: float | None = None
    model: str | None = None


class _CostRun(msgspec.Struct):
    status: str = "ERRORED"
    usage: _Usage | None = None
    origin: str | None = None


class _CostVerdict(msgspec.Struct):
    runs: list[_CostRun] = []
    model: str | None = None


class _CostEvaluation(msgspec.Struct):
    """What pricing reads of a results line (anything else is skipped, not decoded)."""

    verdicts: dict[str, _CostVerdict]


class _Step(msgspec.Struct):
    state: str = "RAN"
    effective: str = "ERRORED"
    status: str | None = None


class _Evaluation(msgspec.Struct):
    index: int
    status: str
    verdicts: dict[str, _Verdict]
    source: str = ""
    steps: dict[str, _Step] = {}


class RowVerdict(msgspec.Struct, frozen=True):
    """One judge's cell in a table row: status, vote tally, and each run's root cause."""

    status: str
    votes: str
    runs: tuple[tuple[int, str, str], ...]


class ReportRow(msgspec.Struct, frozen=True):
    """One sampled transcript of the table."""

    index: int
    source: str
    status: str
    verdicts: dict[str, RowVerdict]


class JudgeSummary(msgspec.Struct, kw_only=True):
    """One judge's (step's) tallies over the whole file."""

    counts: dict[str, int] = {}
    multi_run: int = 0
    disagreed: int = 0
    histogram: list[int] = msgspec.field(default_factory=lambda: [0] * BINS)
    scores: int = 0
    score_sum: float = 0.0
    models: dict[str, int] = {}

    @property
    def verdicts(self) -> int:
        """Verdicts counted (every status)."""
        return sum(self.counts.values())

    @property
    def pass_rate(self) -> float | None:
        """(SUCCESS + NA) / (SUCCESS + ERROR + NA); None without a valid verdict."""
        passed = self.counts.get("SUCCESS", 0) + self.counts.get("NA", 0)
        valid = passed + self.counts.get("ERROR", 0)
        return passed / valid if valid else None


class StepSummary(msgspec.Struct, kw_only=True):
    """One pipeline step's outcomes over the whole file (from each line's ``steps``).

    ``states`` counts RAN / SKIPPED / NOT_TRIGGERED / NOT_REACHED; ``own`` the step's own
    verdict statuses where it ran; ``effective`` the status dependents and the roll-up used
    (its own, or its fallback's when it failed and had one).
    """

    states: dict[str, int] = {}
    own: dict[str, int] = {}
    effective: dict[str, int] = {}

    @property
    def ran(self) -> int:
        """Transcripts the step ran for."""
        return self.states.get("RAN", 0)

    @property
    def pass_rate(self) -> float | None:
        """Its own verdicts: (SUCCESS + NA) / (SUCCESS + ERROR + NA) where it ran."""
        return _rate(self.own)

    @property
    def effective_pass_rate(self) -> float | None:
        """The effective statuses, fallbacks included, over the same valid statuses."""
        return _rate(self.effective)


def _rate(counts: Mapping[str, int]) -> float | None:
    passed = counts.get("SUCCESS", 0) + counts.get("NA", 0)
    valid = passed + counts.get("ERROR", 0)
    return passed / valid if valid else None


class ReportData(msgspec.Struct, kw_only=True):
    """Everything the report shows (see the module docstring)."""

    path: Path
    transcripts: int = 0
    statuses: dict[str, int] = {}
    judges: dict[str, JudgeSummary] = {}
    steps: dict[str, StepSummary] = {}
    runs: int = 0
    errored_runs: int = 0
    cached_runs: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    unmetered_runs: int = 0
    cost_usd: float | None = None
    cost_note: str | None = None
    rows: list[ReportRow] = []

    @property
    def pass_rate(self) -> float | None:
        """Transcripts SUCCESS / transcripts not errored."""
        success = self.statuses.get("SUCCESS", 0)
        judged = self.transcripts - self.statuses.get("ERRORED", 0)
        return success / judged if judged else None


def _clip(text: str | None) -> str:
    if not text:
        return ""
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


def _bin(score: float) -> int:
    return min(BINS - 1, max(0, int(score * BINS)))


def summarize_results(
    path: Path,
    *,
    max_rows: int = 1_000,
    prices: PriceTable | None = None,
    provider: str = "openai",
    model: str | None = None,
    batch: bool = True,
    seed: int = 0,
    judge_models: Mapping[str, str] | None = None,
) -> ReportData:
    """Read ``path`` once and return the report's figures and a sample of its rows.

    Cost is priced from ``prices`` (batch or live rates) per the model each verdict names,
    else the judge's in ``judge_models``, else ``model``; runs answered by the cache
    (``origin: cache``) are not billed. Without a price for some model, or when runs that got a
    reply report no usage (``unmetered_runs``), ``cost_usd`` is None and ``cost_note`` says why.
    """
    decoder = msgspec.json.Decoder(_Evaluation)
    data = ReportData(path=path)
    rng = random.Random(seed)
    heap: list[tuple[float, int, ReportRow]] = []
    tokens: dict[str | None, list[int]] = {}
    with _open_results(path) as file:
        for number, evaluation in enumerate(_read_lines(file, decoder, path)):
            _count(data, evaluation, tokens, model, judge_models or {})
            weight = 1.0 if evaluation.status == "SUCCESS" else _PROBLEM_WEIGHT
            # Larger keys win; rng.random() ** (1 / weight) is weighted reservoir sampling.
            key = rng.random() ** (1.0 / weight)
            if len(heap) < max_rows:
                heapq.heappush(heap, (key, number, _row(evaluation)))
            elif max_rows and key > heap[0][0]:
                heapq.heapreplace(heap, (key, number, _row(evaluation)))
    data.rows = sorted((row for _, _, row in heap), key=lambda row: row.index)
    _price(data, tokens, prices, provider, batch)
    return data


def summarize_cost(
    path: Path,
    *,
    prices: PriceTable | None = None,
    provider: str = "openai",
    model: str | None = None,
    batch: bool = True,
    judge_models: Mapping[str, str] | None = None,
) -> ReportData:
    """:func:`summarize_results`'s cost figures alone — ``cost_usd``, ``cost_note``, the token
    totals, ``cached_runs`` and ``unmetered_runs``, the same values — from a pass that
    decodes only what pricing reads (the rest of ``ReportData`` is left empty)."""
    decoder = msgspec.json.Decoder(_CostEvaluation)
    data = ReportData(path=path)
    tokens: dict[str | None, list[int]] = {}
    models = judge_models or {}
    with _open_results(path) as file:
        for evaluation in _read_lines(file, decoder, path):
            data.transcripts += 1
            for name, verdict in evaluation.verdicts.items():
                priced = verdict.model or models.get(name) or model
                for run in verdict.runs:
                    _bill(data, tokens, priced, run)
    _price(data, tokens, prices, provider, batch)
    return data


def _open_results(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as exc:
        raise BatchValidationError(
            f"cannot read the results file: {exc.strerror or exc}", path=path
        ) from None


def _read_lines(file: IO[bytes], decoder: msgspec.json.Decoder[_T], path: Path) -> Iterator[_T]:
    def bad_line(exc: Exception, number: int) -> BatchValidationError:
        return BatchValidationError(
            f"not a kyro results line: {exc}; give the results file that `check` wrote "
            "(one JSON evaluation per line)",
            path=path,
            line=number,
        )

    return decode_lines(file, decoder, bad_line)


def _bill(
    data: ReportData, tokens: dict[str | None, list[int]], model: str | None, run: _CostRun | _Run
) -> None:
    """Count one run's cost: answered by the cache (not billed), a reply without usage
    (unmetered), or its tokens under ``model``."""
    if run.origin == "cache":
        data.cached_runs += 1
    elif run.usage is None and run.status != "ERRORED":
        data.unmetered_runs += 1  # a reply, with no usage: its cost is not known
    elif run.usage is not None:
        sums = tokens.get(model)
        if sums is None:
            sums = tokens[model] = [0, 0, 0]
        sums[0] += run.usage.input_tokens
        sums[1] += run.usage.cached_input_tokens
        sums[2] += run.usage.output_tokens


def _count(
    data: ReportData,
    evaluation: _Evaluation,
    tokens: dict[str | None, list[int]],
    default_model: str | None,
    judge_models: Mapping[str, str],
) -> None:
    data.transcripts += 1
    data.statuses[evaluation.status] = data.statuses.get(evaluation.status, 0) + 1
    for name, outcome in evaluation.steps.items():
        step = data.steps.get(name)
        if step is None:
            step = data.steps[name] = StepSummary()
        step.states[outcome.state] = step.states.get(outcome.state, 0) + 1
        if outcome.state == "RAN" and outcome.status is not None:
            step.own[outcome.status] = step.own.get(outcome.status, 0) + 1
        step.effective[outcome.effective] = step.effective.get(outcome.effective, 0) + 1
    for name, verdict in evaluation.verdicts.items():
        judge = data.judges.get(name)
        if judge is None:
            judge = data.judges[name] = JudgeSummary()
        judge.counts[verdict.status] = judge.counts.get(verdict.status, 0) + 1
        model = verdict.model or judge_models.get(name) or default_model
        if model:
            judge.models[model] = judge.models.get(model, 0) + 1
        valid = set()
        for run in verdict.runs:
            data.runs += 1
            if run.status == "ERRORED":
                data.errored_runs += 1
            else:
                valid.add(run.status)
            if run.score is not None:
                judge.scores += 1
                judge.score_sum += run.score
                judge.histogram[_bin(run.score)] += 1
            _bill(data, tokens, model, run)
        if sum(1 for run in verdict.runs if run.status != "ERRORED") >= 2:
            judge.multi_run += 1
            if len(valid) > 1:
                judge.disagreed += 1


def _row(evaluation: _Evaluation) -> ReportRow:
    verdicts = {}
    for name, verdict in evaluation.verdicts.items():
        votes = ", ".join(f"{count} {status}" for status, count in verdict.votes.items() if count)
        runs = tuple(
            (
                run.run,
                run.status,
                _clip(
                    run.root_cause
                    or (f"{run.error.code}: {run.error.message}" if run.error else "")
                ),
            )
            for run in verdict.runs
        )
        if not runs and (verdict.root_cause or verdict.error):
            reason = verdict.root_cause or (
                f"{verdict.error.code}: {verdict.error.message}" if verdict.error else ""
            )
            runs = ((-1, verdict.status, _clip(reason)),)
        verdicts[name] = RowVerdict(status=verdict.status, votes=votes, runs=runs)
    return ReportRow(
        index=evaluation.index,
        source=_clip(evaluation.source),
        status=evaluation.status,
        verdicts=verdicts,
    )


def _price(
    data: ReportData,
    tokens: dict[str | None, list[int]],
    prices: PriceTable | None,
    provider: str,
    batch: bool,
) -> None:
    total = 0.0
    missing: list[str] = []
    for model, (input_tokens, cached, output) in tokens.items():
        data.input_tokens += input_tokens
        data.cached_input_tokens += cached
        data.output_tokens += output
        rates = None
        if prices is not None and model is not None:
            rates = prices.rates(provider, model, batch=batch)
        if rates is None:
            missing.append(model or "(no model recorded)")
            continue
        total += cost_usd(
            rates, input_tokens=input_tokens, cached_input_tokens=cached, output_tokens=output
        )
    if prices is None:
        data.cost_note = "no price table given"
    elif data.unmetered_runs:
        data.cost_note = (
            f"{data.unmetered_runs:,} run(s) reported no token usage (e.g. a callable judge "
            "that returns only the reply text), so the cost is not guessed; return a "
            "chat.completion dict with `usage` to have it priced"
        )
    elif missing:
        data.cost_note = (
            f"no price for {', '.join(sorted(missing))}: pass --model for results that record "
            "none, or add the model with --prices FILE"
        )
    else:
        data.cost_usd = total
