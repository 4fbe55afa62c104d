"""``python3 -m kyro`` (also the ``kyro`` script): one sub-command a module.

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``func(args) -> int`` as the handler; ``main`` dispatches and turns kyro's errors into the
documented exit codes (see :class:`kyro.cli._exit.ExitCode`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from kyro._exceptions import (
    BatchValidationError,
    BudgetExceededError,
    JobBusyError,
    KyroError,
    ProviderError,
)
from kyro._redact import redact
from kyro.cli._commands import COMMANDS
from kyro.cli._exit import ExitCode

__all__ = ["ExitCode", "main"]

_EPILOG = """\
examples:
  python3 -m kyro demo                                   # the whole job on a local emulator
  python3 -m kyro submit judges.yml transcripts/ --runs 3
  python3 -m kyro check judges.yml --wait --csv results.csv

exit status: 0 done, 1 --fail-on or --max-cost gate, 2 bad input,
3 pending, 4 job failed/expired/cancelled, 5 provider unreachable or refused,
70 internal error (a bug: the traceback is logged),
75 busy (another kyro process holds the job's lock: try again later).
`python3 -m kyro COMMAND --help` shows each command."""


def build_parser(
    command: str | None = None, *, lazy: bool = False, argv: Sequence[str] = ()
) -> argparse.ArgumentParser:
    """The top-level parser with every sub-command registered.

    ``lazy`` loads only the module of ``command`` (None: none at all); every other command is
    added by name and summary alone, which is all the top-level ``--help`` shows. With
    ``command`` and ``argv`` (the whole command line), the provider it asks for
    (``--provider``, else the command's default) adds its own options to that command's
    parser, so they parse and show in ``--help``.
    """
    parser = argparse.ArgumentParser(
        prog="kyro",
        description="LLM-as-judge evaluation at volume through provider Batch APIs.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = {module for name, module, _ in COMMANDS if name == command or not lazy}
    registered: set[str] = set()
    for name, module, summary in COMMANDS:
        if module not in wanted:
            subparsers.add_parser(name, help=summary)
        elif module not in registered:
            registered.add(module)
            importlib.import_module(f"kyro.cli.{module}").register(subparsers)
    if command is not None and argv:
        # Imported here: the top-level `--help` names no command and loads no provider code.
        from kyro.cli._providers import add_options

        add_options(subparsers, argv)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code (never raises kyro's own errors).

    Example::

        from kyro.cli import main
        code = main(["validate", "examples/judges.yml"])
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    try:
        parser = build_parser(command, lazy=True, argv=argv)
    except KyroError as exc:  # an unloadable provider, or its options clash with kyro's own
        _say(f"error: {exc}")
        return ExitCode.BAD_INPUT
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        from kyro.cli._providers import owners_of  # the error path only: it loads providers

        parser.error(f"unrecognized arguments: {' '.join(unknown)}{owners_of(unknown)}")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return ExitCode.BAD_INPUT
    try:
        return int(args.func(args))
    except BatchValidationError as exc:
        # With a file, the message reads `file:line:column: message`, as editors expect.
        _say(str(exc) if exc.path else f"error: {exc}")
        return ExitCode.BAD_INPUT
    except ProviderError as exc:
        _say(f"provider error: {exc}")
        return ExitCode.PROVIDER
    except JobBusyError as exc:
        _say(f"busy: {exc}")
        return ExitCode.BUSY
    except BudgetExceededError as exc:
        _say(f"error: {exc}")
        return ExitCode.GATE
    except KyroError as exc:
        _say(f"error: {exc}")
        return ExitCode.BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`kyro validate ... | head`): stop quietly, like other tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 141
    except Exception as exc:  # a bug in kyro: one line, the traceback kept for the report
        # Imported here: writing a crash log needs tempfile and traceback, which every
        # command that does not crash (and `--help`) would otherwise load for nothing.
        from kyro.cli._crash import report_internal_error

        return report_internal_error(exc, verbose=getattr(args, "verbose", 0))


def _say(message: str) -> None:
    print(redact(message), file=sys.stderr)
