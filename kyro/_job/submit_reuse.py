"""What a submit decides before it builds: samples or not, which cache, which prices.

Kept apart from :class:`~kyro.BatchJudge` so the job code only calls three functions:
:func:`wants_samples`, :func:`open_gate` and :func:`reuse_dir_of`.

* Runs travel as samples (one request with ``n`` = runs) when runs > 1, the judge allows it
  (``samples=True``), the config does (``samples:`` not false) and the provider says it
  supports ``n`` for every model of the config (``supports_samples(model)``; providers
  without the method do not).
* The cache is a folder (default ``.kyro/cache`` beside the config), or off.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from kyro._config.judges import JudgesConfig
from kyro._cost.estimate import CostEstimator
from kyro._cost.prices import PriceTable, load_prices
from kyro._provider import BatchProvider
from kyro._verdicts.cache_gate import RequestGate
from kyro._verdicts.job_cache import JobCache
from kyro._verdicts.reply_cache import (
    CacheSetting,
    cache_dir_for,
    cache_scope_of,
    default_cache_dir,
)

if TYPE_CHECKING:  # its decoders take milliseconds to build, which `plan` does not need
    from kyro._state.store import StateStore

__all__ = [
    "PIPELINE_SCOPE",
    "CacheSetting",
    "cache_dir_for",
    "cache_scope_of",
    "default_cache_dir",
    "later_gate",
    "open_gate",
    "price_table",
    "reuse_dir_of",
    "wants_samples",
]


_REUSE = "reuse"

PIPELINE_SCOPE = "; a pipeline: every later step counted for every transcript"
"""What a pipeline's submit-time ceiling covers, as the budget refusal says it."""


def price_table(prices: PriceTable | str | Path | None, config: JudgesConfig) -> PriceTable:
    """The price table: given, or loaded from a file, with the config's ``prices:`` on top."""
    if isinstance(prices, PriceTable):
        table = prices
        if config.prices:
            table = table.merged(config.prices, "the config's `prices:`")
        return table
    return load_prices(prices, overrides=config.prices)


def wants_samples(provider: BatchProvider, config: JudgesConfig, runs: int, allowed: bool) -> bool:
    """True when this job's runs should travel as ``n`` samples (see the module docstring)."""
    if runs < 2 or not allowed or not config.samples:
        return False
    supports = getattr(provider, "supports_samples", None)
    if supports is None:
        return False
    return all(supports(judge.model) for judge in config.judges)


def reuse_dir_of(store: StateStore) -> Path:
    """Where a job keeps its side of the cache (cleared with the job)."""
    return store.work_dir / _REUSE


def open_gate(
    config: JudgesConfig,
    provider: str,
    store: StateStore,
    *,
    cache: CacheSetting,
    prices: PriceTable,
    scope: str | None = None,
    max_bytes: int | None = None,
) -> tuple[RequestGate, CostEstimator, JobCache | None]:
    """The submit's gate: through a fresh job cache (unless off) and a batch-price estimator.

    ``provider`` names the prices; ``scope`` the cache keys (default: the provider's name).
    """
    estimator = CostEstimator(prices, provider, batch=True)
    names = [judge.name for judge in config.judges]
    folder = cache_dir_for(cache, config.path)
    if folder is None:
        return RequestGate(names, estimator=estimator), estimator, None
    reuse = reuse_dir_of(store)
    shutil.rmtree(reuse, ignore_errors=True)  # a leftover of an interrupted submit
    job_cache = JobCache.create(reuse, folder, provider=scope or provider, max_bytes=max_bytes)
    try:
        gate = job_cache.gate(names, estimator)
    except BaseException:
        job_cache.close()
        raise
    return gate, estimator, job_cache


def later_gate(config: JudgesConfig, estimator: CostEstimator) -> RequestGate:
    """The gate a pipeline's stage 0 feeds every later step's requests through (no cache):
    they are priced into ``estimator`` as if every transcript reached every step, the upper
    bound the budget is checked against before anything is uploaded."""
    return RequestGate([judge.name for judge in config.judges], estimator=estimator)
