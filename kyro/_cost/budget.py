"""Holding a job's resubmissions to the budget its submit was given (``max_cost``).

A submit records its budget, the cost ceiling of what it sent, and the blended prices of the
job (USD per million input, cached-input and output tokens, weighted by the estimate; exact
for a job of one model) at batch and at live rates. Before a check sends requests again, it
asks :func:`resubmit_refusal`: what the job has cost so far (its usage, at the blended batch
prices) plus the ceiling of the requests about to be sent (the job's average ceiling per
request, at live prices when the fallback runs them) must fit the budget. When it does not,
nothing is sent again and the job finishes with those runs errored, and the reason is logged.

A pipeline's later stages are held to the same budget: before stage *k* is sent,
:func:`stage_refusal` asks whether what the job has cost so far plus the stage's own ceiling
(its requests as planned, rendered with the upstream verdicts) fits; when it does not, the
stage is not sent and the job ends ``over_budget`` (see :mod:`kyro._job.stage_job`).

Example::

    refusal = resubmit_refusal(state, result.usage, lines=120, via_fallback=False)
    if refusal is not None:
        log.warning(refusal)
"""

from __future__ import annotations

import msgspec

from kyro._cost.estimate import CostEstimator
from kyro._cost.prices import Rates, cost_usd
from kyro._types import Usage

__all__ = ["JobBudget", "budget_of", "resubmit_refusal", "spent_usd", "stage_refusal"]


class JobBudget(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What a job's state keeps to check resubmissions against ``max_cost``."""

    max_cost: float
    ceiling_usd: float
    lines: int
    batch: tuple[float, float, float]
    live: tuple[float, float, float]


def _blend(estimator: CostEstimator, batch: bool) -> tuple[float, float, float] | None:
    weights = [0.0, 0.0, 0.0]
    totals = [0, 0, 0]
    for line in estimator.lines():
        rates = estimator.table.rates(estimator.provider, line.model, batch=batch)
        if rates is None:
            return None
        for i, (tokens, rate) in enumerate(
            (
                (line.input_tokens, rates.input),
                (line.input_tokens, rates.cached_input),
                (line.typical_output_tokens, rates.output),
            )
        ):
            weights[i] += tokens * rate
            totals[i] += tokens
    return (
        weights[0] / totals[0] if totals[0] else 0.0,
        weights[1] / totals[1] if totals[1] else 0.0,
        weights[2] / totals[2] if totals[2] else 0.0,
    )


def budget_of(estimator: CostEstimator, max_cost: float | None, lines: int) -> JobBudget | None:
    """The budget record of a submit (None without ``max_cost`` or a priced ceiling)."""
    ceiling = estimator.totals().ceiling_usd
    if max_cost is None or ceiling is None or lines < 1:
        return None
    batch = _blend(estimator, True)
    live = _blend(estimator, False)
    if batch is None or live is None:
        return None
    return JobBudget(max_cost=max_cost, ceiling_usd=ceiling, lines=lines, batch=batch, live=live)


def resubmit_refusal(
    budget: JobBudget | None, usage: Usage, *, lines: int, via_fallback: bool
) -> str | None:
    """Why sending ``lines`` requests again would pass the budget, or None when it fits."""
    if budget is None or lines < 1:
        return None
    spent = spent_usd(budget, usage)
    per_line = budget.ceiling_usd / budget.lines
    if via_fallback and budget.batch[2]:
        per_line *= budget.live[2] / budget.batch[2]  # live prices for the fallback
    need = per_line * lines
    if spent + need <= budget.max_cost:
        return None
    return (
        f"not sending {lines:,} requests again: ${spent:,.4f} spent so far plus their ceiling "
        f"${need:,.4f} passes max_cost ${budget.max_cost:,.4f}; their runs stay errored "
        "(submit them in a new job, or raise the budget)"
    )


def spent_usd(budget: JobBudget, usage: Usage) -> float:
    """What ``usage`` (the job's replies so far) cost at the job's blended batch prices."""
    batch = Rates(input=budget.batch[0], cached_input=budget.batch[1], output=budget.batch[2])
    return cost_usd(
        batch,
        input_tokens=usage.input_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        output_tokens=usage.output_tokens,
    )


def stage_refusal(
    budget: JobBudget | None, usage: Usage, ceiling_usd: float | None, *, stage: int, requests: int
) -> str | None:
    """Why sending a pipeline's stage ``stage`` (``requests`` requests, ``ceiling_usd`` at
    most) would pass the budget, or None when it fits (or the job has no budget).

    A stage the prices at hand cannot price (a check run without the prices file its submit
    had) is held to the job's average ceiling per request, as recorded at submit.
    """
    if budget is None or requests < 1:
        return None
    spent = spent_usd(budget, usage)
    if ceiling_usd is None:
        ceiling_usd = budget.ceiling_usd / budget.lines * requests
    if spent + ceiling_usd <= budget.max_cost:
        return None
    return (
        f"stage {stage} was not sent: ${spent:,.4f} spent so far plus its cost ceiling "
        f"${ceiling_usd:,.4f} ({requests:,} requests) passes max_cost ${budget.max_cost:,.4f}"
    )
