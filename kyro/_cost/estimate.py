"""A job's cost before it is paid: tokens per judge and model, priced from the table.

:class:`CostEstimator` is fed the planned requests one by one (it keeps per judge × model
sums, never the requests) and prices the sums at the end. A request may carry several runs
as samples (``n``): its input is billed once and its output once per sample; the input it
saves over one request a run is kept, so the plan can show what ``n`` saves. Runs the cache
answers are counted, never billed.

Example::

    estimator = CostEstimator(load_prices(), "openai", batch=True)
    for request in plan_requests(config, transcripts, runs=3):
        estimator.add(judge_name, request)
    for line in estimator.lines():
        print(line.judge, line.model, line.estimate_usd, line.ceiling_usd)
"""

from __future__ import annotations

from typing import Any

import msgspec

from kyro._cost.prices import PriceTable, Rates, cost_usd, estimate_tokens
from kyro._exceptions import BatchValidationError, BudgetExceededError
from kyro._types import JudgeRequest, Message

__all__ = ["CostEstimator", "CostLine", "CostTotals", "check_budget", "max_tokens_of"]

_MAX_TOKEN_KEYS = ("max_completion_tokens", "max_tokens")


def max_tokens_of(params: dict[str, Any]) -> int | None:
    """The judge's output cap from its params (``max_completion_tokens`` or ``max_tokens``)."""
    for key in _MAX_TOKEN_KEYS:
        value = params.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


class CostLine(msgspec.Struct, kw_only=True):
    """The estimate for one judge × model: requests, tokens and USD (None when not priced).

    ``runs`` counts every run planned, ``cached_runs`` those the cache answers (not sent),
    ``requests`` the requests sent (fewer than the runs left when runs travel as ``n``
    samples). ``saved_input_tokens`` is what sending runs as samples saves; ``note`` says why
    a figure is missing (an unknown model, no output cap).
    """

    judge: str
    model: str
    runs: int = 0
    cached_runs: int = 0
    requests: int = 0
    input_tokens: int = 0
    typical_output_tokens: int = 0
    ceiling_output_tokens: int = 0
    saved_input_tokens: int = 0
    uncapped_samples: int = 0
    estimate_usd: float | None = None
    ceiling_usd: float | None = None
    saved_usd: float | None = None
    note: str | None = None


class CostTotals(msgspec.Struct, frozen=True, kw_only=True):
    """Sums over every line; a USD figure is None when any line could not be priced."""

    runs: int
    cached_runs: int
    requests: int
    input_tokens: int
    estimate_usd: float | None
    ceiling_usd: float | None
    saved_usd: float | None
    unpriced: tuple[str, ...]


class CostEstimator:
    """Accumulates planned requests per judge × model and prices them (see the module doc)."""

    __slots__ = ("_judge_line", "_last", "_lines", "batch", "provider", "table")

    def __init__(self, table: PriceTable, provider: str, *, batch: bool = True) -> None:
        self.table = table
        self.provider = provider
        self.batch = batch
        self._lines: dict[tuple[str, str], CostLine] = {}
        self._last: tuple[tuple[Message, ...], int] | None = None
        # The previous request's judge, model, params (and a copy, so a dict changed in place
        # is noticed), its line and output cap: the requests of one judge come in runs, and
        # this skips the lookups for every request after the first.
        self._judge_line: tuple[str, str, dict[str, Any], dict[str, Any], CostLine, int | None]
        self._judge_line = ("", "", {}, {}, CostLine(judge="", model=""), None)

    def _line(self, judge: str, model: str) -> CostLine:
        line = self._lines.get((judge, model))
        if line is None:
            line = self._lines[(judge, model)] = CostLine(judge=judge, model=model)
        return line

    def add(self, judge: str, request: JudgeRequest, *, samples: int = 1, count: int = 1) -> None:
        """Count ``count`` requests like ``request`` to be sent, each carrying ``samples`` runs."""
        last = self._last
        if last is not None and last[0] is request.messages:
            tokens = last[1]
        else:
            tokens = estimate_tokens(request.messages)
            self._last = (request.messages, tokens)
        self.add_totals(
            judge,
            request.model,
            request.params,
            samples=samples,
            requests=count,
            input_tokens=tokens * count,
        )

    def add_totals(
        self,
        judge: str,
        model: str,
        params: dict[str, Any],
        *,
        samples: int,
        requests: int,
        input_tokens: int,
    ) -> None:
        """Count ``requests`` requests of one judge × model (and ``params``) to be sent, each
        carrying ``samples`` runs, their estimated input tokens summing to ``input_tokens``:
        what :meth:`add` counts for each of them, added up at once."""
        last_judge, last_model, last_params, seen, line, cap = self._judge_line
        if not (
            judge == last_judge and model == last_model and params is last_params and params == seen
        ):
            line = self._line(judge, model)
            cap = max_tokens_of(params)
            self._judge_line = (judge, model, params, dict(params), line, cap)
        runs = samples * requests
        line.runs += runs
        line.requests += requests
        line.input_tokens += input_tokens
        line.saved_input_tokens += input_tokens * (samples - 1)
        if cap is None:
            line.uncapped_samples += runs
        else:
            line.ceiling_output_tokens += cap * runs
        typical = self.table.typical_output_tokens
        line.typical_output_tokens += (typical if cap is None else min(typical, cap)) * runs

    def add_cached(self, judge: str, model: str, runs: int = 1) -> None:
        """Count runs the cache answers: planned, never sent, never billed."""
        line = self._line(judge, model)
        line.runs += runs
        line.cached_runs += runs

    def lines(self) -> list[CostLine]:
        """Every judge × model line, priced (fresh copies), in the order first seen."""
        out = []
        for counted in self._lines.values():
            line = msgspec.structs.replace(counted)
            rates = self.table.rates(self.provider, line.model, batch=self.batch)
            if rates is None:
                line.note = self.table.unknown(self.provider, line.model)
            else:
                self._price(line, rates)
            out.append(line)
        return out

    def _price(self, line: CostLine, rates: Rates) -> None:
        line.estimate_usd = cost_usd(
            rates, input_tokens=line.input_tokens, output_tokens=line.typical_output_tokens
        )
        line.saved_usd = cost_usd(rates, input_tokens=line.saved_input_tokens, output_tokens=0)
        ceiling = line.ceiling_output_tokens
        if line.uncapped_samples:
            if rates.max_output_tokens is None:
                line.note = (
                    f"{line.uncapped_samples} run(s) set no max_tokens and the price table "
                    f"gives no output limit for {line.model!r}: the ceiling is unknown; set "
                    "`max_tokens` in the judge's params"
                )
                return
            # Without a cap each sample may write up to the model's output limit.
            ceiling += rates.max_output_tokens * line.uncapped_samples
            line.note = (
                f"{line.uncapped_samples} run(s) set no max_tokens: their ceiling is the "
                f"model's output limit ({rates.max_output_tokens:,} tokens)"
            )
        line.ceiling_output_tokens = ceiling
        line.ceiling_usd = cost_usd(rates, input_tokens=line.input_tokens, output_tokens=ceiling)

    def totals(self) -> CostTotals:
        """Sums over :meth:`lines` (which it prices)."""
        lines = self.lines()
        unpriced = tuple(dict.fromkeys(line.model for line in lines if line.estimate_usd is None))

        def total(values: list[float | None]) -> float | None:
            return None if any(v is None for v in values) else sum(v for v in values if v)

        return CostTotals(
            runs=sum(line.runs for line in lines),
            cached_runs=sum(line.cached_runs for line in lines),
            requests=sum(line.requests for line in lines),
            input_tokens=sum(line.input_tokens for line in lines),
            estimate_usd=total([line.estimate_usd for line in lines]),
            ceiling_usd=total([line.ceiling_usd for line in lines]),
            saved_usd=total([line.saved_usd for line in lines]),
            unpriced=unpriced,
        )


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 else f"${value:,.4f}"


def check_budget(
    totals: CostTotals, max_cost: float | None, *, spent_usd: float = 0.0, scope: str = ""
) -> None:
    """Raise :class:`BudgetExceededError` unless ``spent_usd`` + the ceiling fits ``max_cost``.

    A ceiling that cannot be priced (an unknown model, no output cap and no known limit)
    cannot be checked, so it is refused too. ``max_cost=None`` checks nothing. ``scope``
    says what the ceiling covers (added to the message).

    Example::

        check_budget(estimator.totals(), 5.0)    # raises when the worst case passes $5
    """
    if max_cost is None:
        return
    if isinstance(max_cost, bool) or not isinstance(max_cost, (int, float)) or max_cost < 0:
        raise BatchValidationError(f"max_cost must be a number of USD ≥ 0, got {max_cost!r}")
    spent = f" on top of ${spent_usd:,.4f} already spent" if spent_usd else ""
    if totals.ceiling_usd is None:
        why = (
            f"no price is known for {', '.join(totals.unpriced)}"
            if totals.unpriced
            else "an output ceiling is unknown (set max_tokens in the judges' params)"
        )
        raise BudgetExceededError(
            f"cannot hold the job to max_cost {_usd(max_cost)}: {why}; nothing was uploaded. "
            "Add the model's prices (--prices FILE or the config's `prices:`) or drop the "
            "budget",
            max_cost=max_cost,
            ceiling_usd=None,
            estimate_usd=totals.estimate_usd,
            spent_usd=spent_usd,
        )
    if spent_usd + totals.ceiling_usd > max_cost:
        estimate = f"${totals.estimate_usd:,.4f}" if totals.estimate_usd is not None else "unknown"
        raise BudgetExceededError(
            f"refused: the cost ceiling ${totals.ceiling_usd:,.4f} (typical {estimate}, "
            f"{totals.requests:,} requests{scope}){spent} passes max_cost {_usd(max_cost)}; "
            "nothing was uploaded. Lower max_tokens or runs, send fewer transcripts, or raise the "
            "budget",
            max_cost=max_cost,
            ceiling_usd=totals.ceiling_usd,
            estimate_usd=totals.estimate_usd,
            spent_usd=spent_usd,
        )
