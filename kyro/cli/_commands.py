"""The sub-commands in the order ``--help`` lists them: name, summary and the module that runs it.

Only the module of the command being run is imported — with what it needs: the builder, httpx,
rich, a provider — so ``python3 -m kyro --help`` (and a mistyped command) answers without
loading any of them; the list of commands is printed from the summaries here.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["COMMANDS", "add_command", "summary"]

COMMANDS: tuple[tuple[str, str, str], ...] = (
    (
        "demo",
        "_demo",
        "run the bundled example end to end on a local emulator (no key, no network)",
    ),
    ("validate", "_validate", "check a judges config and list its judges"),
    ("plan", "_plan", "show the requests, shards and bytes a submit would produce"),
    (
        "submit",
        "_jobs",
        "submit transcripts × judges × runs as batch jobs, save the state, and exit",
    ),
    ("check", "_jobs", "poll the job once (or --wait) and print the verdicts when it is done"),
    ("status", "_jobs", "show each batch's progress (never collects results)"),
    ("cancel", "_jobs", "cancel the job's unfinished batches"),
    (
        "run",
        "_run",
        "submit, wait and print the verdicts in one go (local provider by default)",
    ),
    (
        "eval",
        "_eval",
        "run a component over a dataset and score every output (pass rate, exit 1 under "
        "--fail-under)",
    ),
    ("serve", "_serve", "serve judges over a batch-execute REST API (self-hosted)"),
    ("report", "_htmlreport", "write a results file as one self-contained HTML report"),
    ("cache", "_cachecmd", "show or clear the reply cache"),
    (
        "emulator",
        "_emulator",
        "serve a local emulator of a provider's Batch API (OpenAI or Anthropic)",
    ),
)
"""(command, module under ``kyro.cli`` whose ``register`` adds it, one-line summary)."""

_SUMMARIES = {name: text for name, _module, text in COMMANDS}


def summary(command: str) -> str:
    """The one-line summary ``--help`` shows for ``command``.

    Example::

        summary("plan")   # 'show the requests, shards and bytes a submit would produce'
    """
    return _SUMMARIES[command]


def add_command(
    subparsers: Any, name: str, *, epilog: str, description: str | None = None
) -> argparse.ArgumentParser:
    """Add sub-command ``name`` with its summary as ``--help`` shows it, and its ``epilog``
    (examples) and ``description`` printed as written.

    Example::

        parser = add_command(subparsers, "plan", epilog="examples:\n  python3 -m kyro plan ...")
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=summary(name),
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser
