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

from kyro._config.judges import JudgesConfig
from kyro._cost.estimate import CostEstimator
from kyro._cost.prices import PriceTable, load_prices
from kyro._provider import BatchProvider
from kyro._state.store import StateStore
from kyro._verdicts.cache_gate import RequestGate
from kyro._verdicts.job_cache import JobCache

__all__ = [
    "CacheSetting",
    "cache_dir_for",
    "cache_scope_of",
    "default_cache_dir",
    "open_gate",
    "price_table",
    "reuse_dir_of",
    "wants_samples",
]

CacheSetting = bool | str | Path
"""``True`` (the default folder), ``False`` (off) or a folder."""

_REUSE = "reuse"


def default_cache_dir(config_path: Path) -> Path:
    """``.kyro/cache`` beside the config: shared by plan, submit, check and live runs."""
    return config_path.resolve().parent / ".kyro" / "cache"


def cache_dir_for(setting: CacheSetting, config_path: Path) -> Path | None:
    """The cache folder a setting names, or None when off."""
    if setting is False:
        return None
    if setting is True:
        return default_cache_dir(config_path)
    return Path(setting)


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


def cache_scope_of(provider: BatchProvider) -> str:
    """The provider's scope in the reply cache (``cache_scope``, else its name).

    Providers that give the same answers for the same model share a scope — the OpenAI
    Batch API and a chat-completions endpoint run live both say ``openai-chat`` — so a batch
    job and a live run of one config answer each other from the cache.
    """
    return str(getattr(provider, "cache_scope", provider.name))


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
