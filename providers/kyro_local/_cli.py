"""The local provider on the command line: its options, and the provider they describe.

``LocalProvider.add_cli_options`` and ``from_cli_args`` (kyro's command-line hooks) are thin
wrappers around :func:`add_options` and :func:`options_from`, so every command that takes
``--provider local`` — ``plan``, ``submit``, ``check``, ``status``, ``cancel``, ``run``,
``serve``, ``eval`` — knows the same two options: ``--local-concurrency`` and ``--handler``.
"""

from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path
from typing import Any

from kyro.provider import BatchValidationError

__all__ = ["add_options", "import_handler", "options_from"]

DEFAULT_CONCURRENCY = 16


def add_options(group: argparse._ArgumentGroup) -> None:
    """Add ``--local-concurrency`` and ``--handler`` to a command's parser."""
    group.add_argument(
        "--local-concurrency",
        type=int,
        metavar="N",
        help=f"requests the local provider runs at once (default: the command's live "
        f"concurrency — serve's --concurrency, eval's --judge-concurrency — else "
        f"{DEFAULT_CONCURRENCY})",
    )
    group.add_argument(
        "--handler",
        metavar="MODULE:FUNCTION",
        help="judge with a Python callable instead of an endpoint: it takes the chat request "
        "body (a dict) and returns the reply text",
    )


def options_from(args: argparse.Namespace, *, state_dir: Path) -> dict[str, Any]:
    """``LocalProvider``'s keyword arguments for the parsed command line.

    The backend is ``--handler`` (imported now), else ``--base-url``, else ``OPENAI_BASE_URL``
    (with ``OPENAI_API_KEY``); batches live under ``<state_dir>/local``. Raises
    :class:`kyro.provider.BatchValidationError` naming the option and the fix.
    """
    concurrency = _concurrency(args)
    options: dict[str, Any] = {"state_dir": state_dir / "local", "concurrency": concurrency}
    spec = getattr(args, "handler", None)
    base_url = getattr(args, "base_url", None)
    if spec:
        if base_url:
            raise BatchValidationError(
                "pass --base-url (an endpoint) or --handler (a Python callable), not both"
            )
        options["handler"] = import_handler(spec)
        return options
    base_url = base_url or os.environ.get("OPENAI_BASE_URL")
    if not base_url:
        raise BatchValidationError(
            "the local provider needs an OpenAI-compatible endpoint or a Python callable: "
            "pass --base-url (e.g. http://127.0.0.1:11434/v1 for Ollama), set "
            "OPENAI_BASE_URL, or pass --handler MODULE:FUNCTION"
        )
    options["base_url"] = base_url
    options["api_key"] = os.environ.get("OPENAI_API_KEY")
    return options


def _concurrency(args: argparse.Namespace) -> int:
    value = getattr(args, "local_concurrency", None)
    flag = "--local-concurrency"
    if value is None:  # the command's own live concurrency, when it has one
        value = getattr(args, "live_concurrency", None)
        flag = "the concurrency"
    if value is None:
        return DEFAULT_CONCURRENCY
    if value < 1:
        raise BatchValidationError(f"{flag} must be at least 1, got {value}")
    return int(value)


def import_handler(spec: str) -> Any:
    """The callable ``MODULE:FUNCTION`` names; a clear error when it cannot be had."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise BatchValidationError(f"--handler {spec!r}: write it as MODULE:FUNCTION")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:  # the module's own import may fail any way at all
        raise BatchValidationError(
            f"--handler {spec!r}: cannot import it ({type(exc).__name__}: {exc}); check the "
            "module is on PYTHONPATH and defines the function"
        ) from None
    if not callable(handler):
        raise BatchValidationError(f"--handler {spec!r} is not callable")
    return handler
