"""Finding providers by name: the ``kyro.providers`` entry points plus a small built-in table.

A provider package registers itself exactly like a third-party plugin would::

    [project.entry-points."kyro.providers"]
    openai = "kyro_openai:OpenAIBatchProvider"

The built-in table names ``openai``, ``anthropic`` and ``local`` as well, so a source checkout that
is only on ``PYTHONPATH`` (no installed metadata) still finds them. An entry point that repeats a
built-in target, or that two copies of one installation both declare, is the same provider and
merges silently; two *different* targets claiming one name are a :class:`~kyro.KyroError` naming
both distributions, raised when that name is asked for. Nothing is imported until
:func:`get_provider` loads the one provider it was asked for, so ``import kyro`` stays
provider-free.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from kyro._exceptions import KyroError, ProviderNotFoundError
from kyro._provider import BatchProvider

__all__ = [
    "available_providers",
    "checked_provider",
    "get_provider",
    "provider_class",
    "provider_default_model",
    "provider_pricing",
]

ENTRY_POINT_GROUP = "kyro.providers"
_BUILTIN_SOURCE = "kyro (built-in)"
_BUILTINS: Mapping[str, str] = {
    "anthropic": "kyro_anthropic:AnthropicBatchProvider",
    "local": "kyro_local:LocalProvider",
    "openai": "kyro_openai:OpenAIBatchProvider",
}


class _EntryPointLike(Protocol):
    """What the registry reads from an entry point (``importlib.metadata.EntryPoint`` fits)."""

    @property
    def name(self) -> str: ...

    @property
    def value(self) -> str: ...

    @property
    def dist(self) -> Any: ...


_installed: list[_EntryPointLike] | None = None


def _installed_entry_points() -> Iterable[_EntryPointLike]:
    # Imported on first use: importlib.metadata costs a command that never looks a provider up.
    # Read once per process: finding them reads every installed distribution's metadata, and
    # one command asks several times (its options, the provider's hooks, building it).
    global _installed
    if _installed is None:
        import importlib.metadata

        _installed = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    return _installed


def _source(entry_point: _EntryPointLike) -> str:
    dist = getattr(entry_point, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    return str(name) if name else f"an unnamed distribution ({entry_point.value})"


class _Registry:
    """Name → target claims gathered from the built-in table and the given entry points."""

    def __init__(self, entry_points: Iterable[_EntryPointLike] | None = None) -> None:
        found = _installed_entry_points() if entry_points is None else entry_points
        # name -> target -> what claims it (first claim first): the built-in table or entry
        # points, whose distributions are named only in an error (reading a distribution's
        # name parses its metadata, which a command that finds no clash never needs).
        self._claims: dict[str, dict[str, list[str | _EntryPointLike]]] = {}
        for name, target in _BUILTINS.items():
            self._claims.setdefault(name, {}).setdefault(target, []).append(_BUILTIN_SOURCE)
        for entry_point in found:
            target = entry_point.value.split("[")[0].replace(" ", "")
            self._claims.setdefault(entry_point.name, {}).setdefault(target, []).append(entry_point)

    @staticmethod
    def _sources(claims: list[str | _EntryPointLike]) -> list[str]:
        """The distinct names of what made ``claims``, first claim first."""
        names = (claim if isinstance(claim, str) else _source(claim) for claim in claims)
        return list(dict.fromkeys(names))

    def target(self, name: str) -> str:
        """The ``module:attr`` registered for ``name``; :class:`ProviderNotFoundError` when
        unknown, KyroError when contested."""
        targets = self._claims.get(name)
        if not targets:
            names = sorted(self.names())
            known = ", ".join(names) or "none"
            raise ProviderNotFoundError(
                f"unknown provider {name!r}: available providers are {known}. Install the "
                f"package that registers it in the {ENTRY_POINT_GROUP!r} entry-point group.",
                name=name,
                available=names,
            )
        if len(targets) > 1:
            claims = "; ".join(
                f"{' and '.join(self._sources(claims))} -> {target}"
                for target, claims in targets.items()
            )
            raise KyroError(
                f"provider name {name!r} is claimed by more than one distribution ({claims}); "
                "uninstall one of them so the name is unambiguous."
            )
        return next(iter(targets))

    def names(self) -> list[str]:
        """Every name with exactly one target."""
        return sorted(name for name, targets in self._claims.items() if len(targets) == 1)

    def available(self) -> dict[str, str]:
        """Name → target for every provider; KyroError when any name is contested."""
        return {name: self.target(name) for name in sorted(self._claims)}

    def load(self, name: str, options: Mapping[str, Any]) -> BatchProvider:
        """Import the provider registered as ``name`` and build it with ``options``."""
        return self.checked(name, self.factory(name)(**options))

    def checked(self, name: str, provider: object) -> BatchProvider:
        """``provider`` itself when it implements the protocol; KyroError naming it otherwise."""
        if not isinstance(provider, BatchProvider):
            raise KyroError(
                f"provider {name!r} ({self.target(name)}) built a {type(provider).__name__}, "
                "which does not implement kyro.provider.BatchProvider."
            )
        return provider

    def factory(self, name: str) -> Any:
        """The object registered as ``name`` (a provider class), imported but not called."""
        target = self.target(name)
        module_name, _, attr_path = target.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
            for attr in attr_path.split(".") if attr_path else ():
                obj = getattr(obj, attr)
        except (ImportError, AttributeError) as exc:
            raise KyroError(
                f"provider {name!r} is registered as {target!r} but could not be loaded: {exc}. "
                "Reinstall the package that provides it."
            ) from exc
        return obj


def available_providers() -> dict[str, str]:
    """Every provider kyro can find, as name → ``"module:attr"``, sorted by name.

    Raises :class:`~kyro.KyroError` when two distributions claim the same name.

    Example::

        >>> kyro.available_providers()
        {'local': 'kyro_local:LocalProvider', 'openai': 'kyro_openai:OpenAIBatchProvider'}
    """
    return _Registry().available()


def get_provider(name: str, /, **options: Any) -> BatchProvider:
    """Build the provider registered as ``name``, passing ``options`` to its constructor.

    The provider's package is imported only now. An unknown name raises
    :class:`~kyro.ProviderNotFoundError` (a :class:`~kyro.KyroError`) listing the available
    ones.

    Example::

        provider = kyro.get_provider("openai", base_url="http://127.0.0.1:8000/v1")
    """
    return _Registry().load(name, options)


def provider_default_model(name: str) -> str | None:
    """The default model the provider registered as ``name`` documents, without building it.

    Read from the provider class's ``default_model`` attribute; None when it names none.

    Example::

        provider_default_model("openai")   # 'gpt-4o-mini'
    """
    value = getattr(_Registry().factory(name), "default_model", None)
    return value if isinstance(value, str) and value.strip() else None


def provider_class(name: str) -> Any:
    """The object registered as ``name`` (a provider class), imported but not called.

    What the command line asks for a provider's class-level hooks (see
    :class:`kyro.provider.CommandLineHooks`). An unknown name raises :class:`~kyro.KyroError`.

    Example::

        provider_class("openai").default_model   # 'gpt-4o-mini'
    """
    return _Registry().factory(name)


def checked_provider(name: str, provider: object) -> BatchProvider:
    """``provider`` (built by the class registered as ``name``) once it is a BatchProvider.

    Example::

        checked_provider("acme", AcmeProvider.from_cli_args(args, state_dir=folder))
    """
    return _Registry().checked(name, provider)


def provider_pricing(name: str) -> tuple[str, bool]:
    """Whose prices apply to the provider registered as ``name``, and whether batch prices.

    A provider class may say ``prices_from = "openai"`` (its requests are billed as that
    provider's, by model name) and ``live_prices = True`` (it sends them live, not in a
    batch); otherwise its own name and batch prices. An unknown name is priced as itself.

    Example::

        provider_pricing("local")    # ('openai', False): live requests at OpenAI's prices
    """
    try:
        factory = _Registry().factory(name)
    except KyroError:
        return name, True
    source = getattr(factory, "prices_from", None)
    live = getattr(factory, "live_prices", False) is True
    return (source if isinstance(source, str) and source else name), not live
