"""Cost and cache options shared by ``plan`` and ``submit``, and the lines they print.

``--prices FILE`` lays a prices file over kyro's table, ``--max-cost USD`` refuses a submit
whose ceiling passes it (exit 1, nothing uploaded), ``--cache-dir DIR`` / ``--no-cache``
choose the reply cache (default: ``.kyro/cache`` beside the config), ``--no-samples`` sends
each run as its own request instead of one request with ``n`` samples.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from pathlib import Path

from kyro._cost.estimate import CostEstimator, CostLine
from kyro._cost.prices import PriceTable, load_prices
from kyro._exceptions import BatchValidationError
from kyro._verdicts.cache_gate import RequestGate
from kyro._verdicts.reply_cache import CACHE_FILE, ReplyCache, RequestKeys

__all__ = [
    "actual_cost_line",
    "add_cache_options",
    "add_cost_options",
    "cache_dir_of",
    "format_cost",
    "make_gate",
    "max_cost_of",
]


def add_cost_options(parser: argparse.ArgumentParser) -> None:
    """``--prices``, ``--max-cost`` and ``--no-samples``."""
    parser.add_argument(
        "--prices", metavar="FILE", help="a prices file (JSON or YAML) over kyro's price table"
    )
    parser.add_argument(
        "--max-cost",
        type=float,
        metavar="USD",
        help="refuse (exit 1, nothing uploaded) when the cost ceiling passes USD",
    )
    parser.add_argument(
        "--no-samples",
        dest="samples",
        action="store_false",
        help="send every run as its own request (default: one request with n = runs, the "
        "prompt billed once, where the provider and model support it)",
    )


def add_cache_options(parser: argparse.ArgumentParser) -> None:
    """``--cache-dir`` and ``--no-cache``."""
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="the reply cache folder (default: .kyro/cache beside the config)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the reply cache"
    )


def cache_dir_of(args: argparse.Namespace, config_path: Path) -> Path | None:
    """The cache folder the options choose, or None with ``--no-cache``."""
    if getattr(args, "no_cache", False):
        return None
    if getattr(args, "cache_dir", None):
        return Path(args.cache_dir)
    return config_path.resolve().parent / ".kyro" / "cache"


def max_cost_of(args: argparse.Namespace) -> float | None:
    """``--max-cost``, checked."""
    value: float | None = getattr(args, "max_cost", None)
    if value is not None and not value >= 0:
        raise BatchValidationError(f"--max-cost must be a number of USD ≥ 0, got {value}")
    return value


def make_gate(
    judges: list[str],
    provider: str,
    prices: PriceTable,
    cache_dir: Path | None,
    *,
    create: bool = False,
    scope: str | None = None,
) -> tuple[RequestGate, CostEstimator, ReplyCache | None]:
    """A gate over the cache (opened only if it exists, unless ``create``) and an estimator.

    ``scope`` is the provider's scope in the reply cache (``cache_scope_of(provider)``, what
    BatchJudge uses); without one, the provider's name.
    """
    estimator = CostEstimator(prices, provider, batch=True)
    cache = None
    if cache_dir is not None and (create or (cache_dir / CACHE_FILE).exists()):
        cache = ReplyCache(cache_dir)
    keys = RequestKeys(scope or provider) if cache is not None else None
    return RequestGate(judges, cache=cache, keys=keys, estimator=estimator), estimator, cache


def prices_of(args: argparse.Namespace) -> PriceTable:
    """kyro's price table with ``--prices`` laid over it."""
    return load_prices(getattr(args, "prices", None))


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.4f}"


def format_cost(
    estimator: CostEstimator, *, hits: int, cache: Path | None, pipeline: bool = False
) -> Iterator[str]:
    """The cost and cache lines ``plan`` and ``submit`` print (``pipeline``: a pipeline's
    submit, whose later steps are priced as if every transcript reached them)."""
    lines: list[CostLine] = estimator.lines()
    totals = estimator.totals()
    table = estimator.table
    yield (
        f"cost ({estimator.provider}, {'batch' if estimator.batch else 'live'} prices of "
        f"{table.as_of}; input tokens estimated from the rendered messages):"
    )
    header = ("judge", "model", "runs", "cached", "requests", "in tokens", "typical", "ceiling")
    rows = [
        (
            line.judge,
            line.model,
            f"{line.runs:,}",
            f"{line.cached_runs:,}",
            f"{line.requests:,}",
            f"{line.input_tokens:,}",
            _usd(line.estimate_usd),
            _usd(line.ceiling_usd),
        )
        for line in lines
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        yield (
            "  "
            + "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    yield (
        f"  total: typical {_usd(totals.estimate_usd)}, ceiling {_usd(totals.ceiling_usd)} "
        f"(output up to max_tokens; typical reply {table.typical_output_tokens} tokens)"
    )
    if totals.saved_usd:
        yield (
            f"  runs sent as n samples save {_usd(totals.saved_usd)} of input "
            f"({sum(line.saved_input_tokens for line in lines):,} tokens billed once, not per run)"
        )
    for line in lines:
        if line.note:
            yield f"  note: {line.judge} / {line.model}: {line.note}"
    if pipeline:
        yield (
            "  note: a pipeline: steps after the first stage are counted as if every "
            "transcript reached them (the most they can cost); the cache is asked stage by stage"
        )
    if cache is None:
        yield "cache: off"
    else:
        yield f"cache: {hits:,} of {totals.runs:,} runs answered by {cache} (not sent, not billed)"


def actual_cost_line(
    results: Path, models: Mapping[str, str], provider: str, prices: PriceTable
) -> str:
    """The line ``check`` prints: what the job cost, from the usage its replies reported.

    ``models`` maps each judge to the model that ran it (``BatchRunResult.models``). The
    provider's usage is priced as it says (:func:`kyro._registry.provider_pricing`): the
    local provider's live requests at OpenAI's live prices, batch providers at batch prices.
    """
    from kyro._registry import provider_pricing
    from kyro._report.data import summarize_cost

    provider, batch = provider_pricing(provider)
    data = summarize_cost(
        results, prices=prices, provider=provider, judge_models=models, batch=batch
    )
    cached = ""
    if data.cached_runs:
        cached = f"; {data.cached_runs:,} runs answered by the cache, not billed"
    if data.cost_usd is None:
        return f"cost: unknown — {data.cost_note}{cached}"
    return (
        f"cost: {_usd(data.cost_usd)} at {provider} {'batch' if batch else 'live'} prices of "
        f"{prices.as_of} "
        f"({data.input_tokens:,} input tokens, {data.cached_input_tokens:,} of them cached, "
        f"{data.output_tokens:,} output){cached}"
    )
