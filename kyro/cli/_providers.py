"""The command line's way to a provider: the registry and the class's own hooks, no names.

A command that works through a provider (``plan``, ``submit``, ``check``, ``status``,
``cancel``, ``run``, ``serve``, ``eval``) marks its parser with :func:`mark`. Before parsing,
:func:`add_options` finds the ``--provider`` the command line names (or the command's default),
imports that one class through the registry, and lets it add its own options
(``add_cli_options``); after parsing, :func:`build` builds it (``from_cli_args``, else the
class with ``base_url=``) — see :class:`kyro.provider.CommandLineHooks` — and
:func:`answers_live` tells a command whether the class answers requests live. A third-party
provider registered in the ``kyro.providers`` entry-point group gets every one of those
commands as is.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kyro._exceptions import KyroError
from kyro._provider import BatchProvider
from kyro._registry import available_providers, checked_provider, get_provider, provider_class

__all__ = ["add_options", "answers_live", "build", "mark", "owners_of", "runs_on_submit"]

_MARK = "provider_hooks"


def mark(
    parser: argparse.ArgumentParser, *, default: Callable[[Sequence[str]], str] | None = None
) -> None:
    """Say that ``parser``'s command builds the provider its ``--provider`` names.

    ``default`` picks the provider from the command's arguments when ``--provider`` is not
    given (``eval``: ``local``, or ``openai`` with ``--batch``); without it, the default of
    the parser's ``--provider``.
    """
    parser.set_defaults(**{_MARK: default or True})


def add_options(subparsers: Any, argv: Sequence[str]) -> None:
    """Add the options of the provider ``argv`` asks for to its command's parser.

    Nothing is imported for a command that builds no provider. Raises the registry's
    :class:`kyro.KyroError` for an unknown or unloadable provider (before its options could
    be taken for typos), and one when the provider's options clash with kyro's.
    """
    if not argv or argv[0] not in subparsers.choices:
        return
    parser: argparse.ArgumentParser = subparsers.choices[argv[0]]
    marked = parser.get_default(_MARK)
    if not marked:
        return
    default = marked(argv[1:]) if callable(marked) else parser.get_default("provider")
    name = _requested(argv[1:], default)
    parser.set_defaults(provider=name)  # a chosen default reaches the command as it was used
    hook = getattr(provider_class(name), "add_cli_options", None)
    if hook is None:
        return
    group = parser.add_argument_group(f"options of the {name} provider")
    try:
        hook(group)
    except argparse.ArgumentError as exc:
        raise KyroError(
            f"the {name} provider's command-line options clash with kyro's own ({exc}); "
            "its add_cli_options should prefix them with the provider's name"
        ) from exc


def owners_of(unknown: Sequence[str]) -> str:
    """A hint naming the installed providers whose own options the unparsed arguments are,
    e.g. `` (--handler is an option of the local provider: add --provider local)``; empty
    when none is. Every installed provider is imported: this runs on the error path only.
    """
    options = dict.fromkeys(arg.split("=", 1)[0] for arg in unknown if arg.startswith("--"))
    if not options:
        return ""
    offered = {name: _options_of(name) for name in _installed()}
    by_owners: dict[tuple[str, ...], list[str]] = {}
    for option in options:
        owners = tuple(name for name, theirs in offered.items() if option in theirs)
        if owners:
            by_owners.setdefault(owners, []).append(option)
    hints = [
        f"{' and '.join(owned)} {'is an option' if len(owned) == 1 else 'are options'} of "
        f"the {'/'.join(owners)} provider: add {' or '.join(f'--provider {o}' for o in owners)}"
        for owners, owned in by_owners.items()
    ]
    return f" ({'; '.join(hints)})" if hints else ""


def _installed() -> list[str]:
    try:
        return sorted(available_providers())
    except KyroError:  # two distributions claim one name: no hint rather than a second error
        return []


def _options_of(name: str) -> set[str]:
    """The option strings the provider ``name`` adds (none when it cannot be loaded)."""
    try:
        hook = getattr(provider_class(name), "add_cli_options", None)
        if hook is None:
            return set()
        parser = argparse.ArgumentParser(add_help=False)
        hook(parser.add_argument_group(name))
    except Exception:  # a broken plugin: its own error shows when it is asked for
        return set()
    return set(parser._option_string_actions)


def _requested(argv: Sequence[str], default: str) -> str:
    # Abbreviations as the command's parser takes them (`--prov`): one it reads as --provider
    # is --provider here too, and one it finds ambiguous is refused there anyway.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--provider", default=default)
    known, _ = pre.parse_known_args(argv)
    return str(known.provider)


def build(args: argparse.Namespace, *, state_dir: Path) -> BatchProvider:
    """The provider ``args.provider`` names, built by its class from the parsed options."""
    name: str = args.provider
    hook = getattr(provider_class(name), "from_cli_args", None)
    if hook is not None:
        return checked_provider(name, hook(args, state_dir=state_dir))
    base_url = getattr(args, "base_url", None)
    return get_provider(name, **({"base_url": base_url} if base_url else {}))


def runs_on_submit(provider: object) -> bool:
    """Whether ``provider.submit`` runs the requests itself before it returns."""
    return bool(getattr(provider, "runs_on_submit", False))


def answers_live(name: str) -> bool:
    """Whether the class registered as ``name`` answers requests live (has ``complete``).

    An unknown name is False here; building it raises the registry's own error.
    """
    try:
        cls = provider_class(name)
    except KyroError:
        return False
    return callable(getattr(cls, "complete", None))
