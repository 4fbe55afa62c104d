"""What a job costs: the price table, the token estimator and the arithmetic.

**The price table** ships as package data (``kyro/_data/prices.json``) with the date it was
read and its source; :func:`load_prices` returns it, merged with a user's prices (a JSON or
YAML file of the same shape, or the config's ``prices:`` mapping). Prices are USD per million
tokens: ``input``, ``cached_input`` (input the provider served from its own prompt cache) and
``output``, for live calls; batch prices are either given (``batch_input`` …) or derived from
the provider's ``batch_discount`` (OpenAI and Anthropic both bill batches at 50 %). A dated
snapshot (``gpt-4o-mini-2024-07-18``) is priced as its base name when it has no entry of its
own. A model the table does not know has no price: :meth:`PriceTable.rates` returns ``None``
and every figure built on it says so, never a guess.

**The token estimator** (:func:`estimate_tokens`) counts, for each message, 3 tokens of
framing plus one token per 4 bytes of UTF-8 content (rounded up), and 3 tokens that prime the
reply. Four bytes per token is the usual rule of thumb for English with OpenAI's and
Anthropic's tokenizers; counting bytes rather than characters makes text outside ASCII
(3 bytes a CJK character, about one token each) come out higher, as it does for real. It is
an estimate: the real count comes back in each reply's usage, and ``check`` prices that.

**Output tokens** are estimated twice: the *ceiling* is the judge's ``max_tokens`` (or
``max_completion_tokens``) — or, without one, the model's output limit from the table — and
the *typical* figure is the table's ``typical_output_tokens`` (a JSON verdict with a short
root cause), capped by the ceiling. The budget gate compares the ceiling.

Example::

    table = load_prices()
    rates = table.rates("openai", "gpt-4o-mini", batch=True)
    cost_usd(rates, input_tokens=1_000_000, output_tokens=200_000)   # 0.075 + 0.06 = 0.135
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from kyro._exceptions import BatchValidationError
from kyro._types import Message, Usage

__all__ = [
    "ModelPrice",
    "PriceTable",
    "ProviderPrices",
    "Rates",
    "cost_usd",
    "estimate_tokens",
    "load_prices",
    "message_tokens",
    "usage_cost",
]

MESSAGE_OVERHEAD_TOKENS = 3
"""Tokens of framing counted per message (role and separators)."""

REPLY_PRIMING_TOKENS = 3
"""Tokens counted once per request for the start of the assistant's reply."""

BYTES_PER_TOKEN = 4

_PER_MILLION = 1_000_000
_DATED = re.compile(r"^(.+?)-\d{4}-\d{2}-\d{2}$")


class ModelPrice(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One model's prices, USD per million tokens (batch prices optional: derived if absent)."""

    input: float
    output: float
    cached_input: float | None = None
    batch_input: float | None = None
    batch_cached_input: float | None = None
    batch_output: float | None = None
    max_output_tokens: int | None = None


class ProviderPrices(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One provider's models and the discount its Batch API gives (0.5 = half price)."""

    models: dict[str, ModelPrice] = {}
    batch_discount: float | None = None


class _TableFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    providers: dict[str, ProviderPrices] = {}
    as_of: str | None = None
    source: str | None = None
    currency: str = "USD"
    unit: str = "per 1M tokens"
    typical_output_tokens: int | None = None


class Rates(msgspec.Struct, frozen=True, kw_only=True):
    """The three prices (USD per million tokens) that apply to one model in one mode.

    ``cached_input`` equals ``input`` when the table gives no cached price.
    """

    input: float
    cached_input: float
    output: float
    max_output_tokens: int | None = None


class PriceTable(msgspec.Struct, frozen=True, kw_only=True):
    """Prices per provider and model, with where they come from.

    ``sources`` lists the shipped table's date and source first, then every override applied.

    Example::

        table = load_prices(Path("prices.yml"))
        table.rates("openai", "gpt-4o", batch=False).output    # 10.0
    """

    providers: dict[str, ProviderPrices]
    as_of: str
    sources: tuple[str, ...]
    typical_output_tokens: int = 150

    def price(self, provider: str, model: str) -> ModelPrice | None:
        """The table's entry for a model (a dated snapshot falls back to its base name)."""
        entry = self.providers.get(provider)
        if entry is None:
            return None
        found = entry.models.get(model)
        if found is None:
            dated = _DATED.match(model)
            if dated is not None:
                found = entry.models.get(dated[1])
        return found

    def rates(self, provider: str, model: str, *, batch: bool) -> Rates | None:
        """The prices that apply to ``model`` in batch or live mode, or None when unknown."""
        price = self.price(provider, model)
        if price is None:
            return None
        cached = price.cached_input if price.cached_input is not None else price.input
        if not batch:
            return Rates(
                input=price.input,
                cached_input=cached,
                output=price.output,
                max_output_tokens=price.max_output_tokens,
            )
        discount = self.providers[provider].batch_discount
        factor = 1.0 if discount is None else discount
        batch_cached = price.batch_cached_input
        if batch_cached is None:
            batch_cached = (
                price.batch_input
                if price.cached_input is None and price.batch_input is not None
                else cached * factor
            )
        return Rates(
            input=price.batch_input if price.batch_input is not None else price.input * factor,
            cached_input=batch_cached,
            output=price.batch_output if price.batch_output is not None else price.output * factor,
            max_output_tokens=price.max_output_tokens,
        )

    def unknown(self, provider: str, model: str) -> str:
        """The message for a model the table has no price for."""
        return (
            f"no price known for {provider} model {model!r} (price table of {self.as_of}); "
            "add it to a prices file (--prices FILE) or the config's `prices:` key"
        )

    def merged(self, data: Mapping[str, Any], origin: str) -> PriceTable:
        """This table with ``data`` (the prices-file shape) laid over it, model by model.

        ``origin`` names where ``data`` came from, for error messages and ``sources``.
        """
        try:
            extra = msgspec.convert(data, _TableFile)
        except msgspec.ValidationError as exc:
            raise BatchValidationError(
                f"{origin}: invalid prices: {exc}; each model needs `input` and `output` "
                "(USD per million tokens) and may give `cached_input`, `batch_input`, "
                "`batch_cached_input`, `batch_output` and `max_output_tokens`"
            ) from None
        _check_values(extra, origin)
        providers = dict(self.providers)
        for name, prices in extra.providers.items():
            base = providers.get(name, ProviderPrices())
            discount = (
                prices.batch_discount if prices.batch_discount is not None else base.batch_discount
            )
            providers[name] = ProviderPrices(
                models={**base.models, **prices.models}, batch_discount=discount
            )
        source = f"{origin}" + (f" ({extra.as_of})" if extra.as_of else "")
        return PriceTable(
            providers=providers,
            as_of=self.as_of,
            sources=(*self.sources, source),
            typical_output_tokens=(
                extra.typical_output_tokens
                if extra.typical_output_tokens is not None
                else self.typical_output_tokens
            ),
        )


def _check_values(table: _TableFile, origin: str) -> None:
    for provider, prices in table.providers.items():
        if prices.batch_discount is not None and not 0 < prices.batch_discount <= 1:
            raise BatchValidationError(
                f"{origin}: providers.{provider}.batch_discount must be in (0, 1] "
                f"(0.5 = half price), got {prices.batch_discount}"
            )
        for model, price in prices.models.items():
            for field in price.__struct_fields__:
                value = getattr(price, field)
                if value is not None and value < 0:
                    raise BatchValidationError(
                        f"{origin}: providers.{provider}.models.{model}.{field} must not be "
                        f"negative, got {value}"
                    )
    if table.typical_output_tokens is not None and table.typical_output_tokens < 1:
        raise BatchValidationError(f"{origin}: typical_output_tokens must be ≥ 1")


def _shipped() -> PriceTable:
    text = resources.files("kyro").joinpath("_data/prices.json").read_bytes()
    data = msgspec.json.decode(text, type=_TableFile)
    return PriceTable(
        providers=data.providers,
        as_of=data.as_of or "unknown",
        sources=(f"kyro's price table of {data.as_of}: {data.source}",),
        typical_output_tokens=data.typical_output_tokens or 150,
    )


def load_prices(
    path: Path | str | None = None, *, overrides: Mapping[str, Any] | None = None
) -> PriceTable:
    """The shipped price table, then a user's prices file, then ``overrides`` (a config's).

    The file is JSON, or YAML when it ends in ``.yml``/``.yaml``, in the shape of the shipped
    table: ``{"providers": {"openai": {"models": {"my-model": {"input": 1, "output": 2}}}}}``.

    Example::

        load_prices("prices.yml").rates("openai", "my-model", batch=True)
    """
    table = _shipped()
    if path is not None:
        table = table.merged(_read_prices_file(Path(path)), str(path))
    if overrides:
        table = table.merged(overrides, "the config's `prices:`")
    return table


def _read_prices_file(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BatchValidationError(
            f"cannot read the prices file: {exc.strerror or exc}", path=path
        ) from None
    is_yaml = path.suffix.lower() in (".yml", ".yaml")
    import json  # here: only a user's prices file is JSON read by the standard library

    try:
        data = YAML(typ="safe").load(text) if is_yaml else json.loads(text)
    except (ValueError, YAMLError) as exc:
        raise BatchValidationError(
            f"the prices file is not valid {'YAML' if is_yaml else 'JSON'}: {exc}",
            path=path,
        ) from None
    if not isinstance(data, Mapping):
        raise BatchValidationError(
            "the prices file must hold a mapping with a `providers:` key", path=path
        )
    return data


def estimate_tokens(messages: tuple[Message, ...] | list[Message]) -> int:
    """Estimated input tokens of a request's messages (see the module docstring for the rule).

    Example::

        estimate_tokens((Message(role="user", content="x" * 400),))   # 3 + 100 + 3 = 106
    """
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        content = message.content
        size = len(content) if content.isascii() else len(content.encode("utf-8"))
        total += MESSAGE_OVERHEAD_TOKENS + math.ceil(size / BYTES_PER_TOKEN)
    return total


def message_tokens(size: int) -> int:
    """Estimated tokens of one message whose content is ``size`` UTF-8 bytes: what
    :func:`estimate_tokens` counts for it (a request adds :data:`REPLY_PRIMING_TOKENS`).

    Example::

        message_tokens(400)   # 3 + 100 = 103
    """
    return MESSAGE_OVERHEAD_TOKENS + -(-size // BYTES_PER_TOKEN)


def cost_usd(
    rates: Rates, *, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0
) -> float:
    """USD for the given tokens. ``input_tokens`` includes ``cached_input_tokens``.

    Example::

        cost_usd(Rates(input=2.5, cached_input=1.25, output=10), input_tokens=2_000,
                 cached_input_tokens=1_000, output_tokens=100)
        # (1000 × 2.5 + 1000 × 1.25 + 100 × 10) / 1e6 = 0.00475
    """
    cached = min(cached_input_tokens, input_tokens)
    return (
        (input_tokens - cached) * rates.input
        + cached * rates.cached_input
        + output_tokens * rates.output
    ) / _PER_MILLION


def usage_cost(rates: Rates, usage: Usage) -> float:
    """USD for a reply's (or a job's summed) usage."""
    return cost_usd(
        rates,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_input_tokens=usage.cached_input_tokens,
    )
