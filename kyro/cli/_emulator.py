"""``kyro emulator``: serve a Batch API emulator on 127.0.0.1 until interrupted.

``--provider openai`` (the default) serves the OpenAI Files + Batches emulator and prints its
base URL (``http://127.0.0.1:PORT/v1``); ``--provider anthropic`` serves the Message Batches
emulator and prints its base URL (``http://127.0.0.1:PORT``). The URL is the first line of
stdout, printed as soon as the socket is bound, so scripts can read it; any non-empty API key
is accepted. The emulators live in ``kyro_openai.testing`` and ``kyro_anthropic.testing`` (the
``emulator`` extra) and are imported only when this command runs.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
from typing import Any

import msgspec

from kyro.cli._commands import add_command
from kyro.cli._exit import ExitCode, serve_until_stopped

__all__ = ["register", "run"]

_EPILOG = """\
examples:
  python3 -m kyro emulator --port 8000
  python3 -m kyro emulator --in-progress-seconds 30 --fault '{"kind": "http_error", "status": 429}'
  OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=emulated python3 -m kyro run ...
  python3 -m kyro emulator --provider anthropic --port 8001 --in-progress-seconds 30
  ANTHROPIC_BASE_URL=http://127.0.0.1:8001 ANTHROPIC_API_KEY=emulated \\
    python3 -m kyro submit judges.yml transcripts/ --provider anthropic

control routes (no key needed): GET /_emulator/stats, POST|GET|DELETE /_emulator/faults,
POST /_emulator/clock/advance {"seconds": N}, POST /_emulator/batches/{id}/expire
(anthropic also: GET /_emulator/batches?contains=TEXT)."""


def register(subparsers: Any) -> None:
    """Add the ``emulator`` sub-command to the CLI's sub-parsers."""
    parser = add_command(
        subparsers,
        "emulator",
        description="Serve a stateful emulator of OpenAI's Files + Batches API and "
        "/v1/chat/completions, or of Anthropic's Message Batches API, with deterministic "
        "emulated judge verdicts.",
        epilog=_EPILOG,
    )
    parser.add_argument(
        "--provider",
        choices=["openai", "anthropic"],
        default="openai",
        help="which API to emulate (default openai)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    for phase in ("validating", "in-progress", "finalizing", "cancelling"):
        parser.add_argument(
            f"--{phase}-seconds",
            type=float,
            default=0.0,
            metavar="S",
            help=f"seconds a batch spends {phase.replace('-', ' ')} (default 0; anthropic: "
            "in-progress and cancelling only)",
        )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=None,
        help="requests per batch (openai 50000, anthropic 100000)",
    )
    parser.add_argument(
        "--max-bytes",
        type=int,
        default=None,
        help="input bytes per batch (openai 200 MiB, anthropic 256 MB)",
    )
    parser.add_argument(
        "--partial-fraction",
        type=float,
        default=None,
        help="share of requests finished when a batch is cancelled or expires",
    )
    parser.add_argument("--azure", action="store_true", help="Azure quirks (0-byte error file)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for probabilistic and fractional faults"
    )
    parser.add_argument("--data-dir", default=None, help="keep files here (default: a temp dir)")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="JSON",
        help="arm a fault at start, as POST /_emulator/faults takes it (repeatable)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Bind, print the base URL, and serve until SIGINT or SIGTERM.

    Example::

        run(parser.parse_args(["emulator", "--port", "0"]))   # prints http://127.0.0.1:…/v1
    """
    anthropic = args.provider == "anthropic"
    try:
        testing = importlib.import_module(f"kyro_{args.provider}.testing")
    except ImportError as exc:
        print(
            f"error: the emulator needs the 'emulator' extra ({exc}); "
            "install it with: pip install 'kyro[emulator]'",
            file=sys.stderr,
        )
        return ExitCode.BAD_INPUT
    unsupported = [
        flag
        for flag, given in (
            ("--validating-seconds", args.validating_seconds),
            ("--finalizing-seconds", args.finalizing_seconds),
            ("--azure", args.azure),
        )
        if anthropic and given
    ]
    if unsupported:
        print(
            f"error: {', '.join(unsupported)} do not apply to --provider anthropic: Message "
            "Batches go straight from in_progress to ended",
            file=sys.stderr,
        )
        return ExitCode.BAD_INPUT
    try:
        faults = [msgspec.json.decode(text, type=testing.Fault) for text in args.fault]
    except msgspec.MsgspecError as exc:
        print(f"error: bad --fault: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    config = _anthropic_config(testing, args) if anthropic else _openai_config(testing, args)
    with testing.Emulator(config, faults=faults) as emulator:
        return serve_until_stopped(functools.partial(testing.serve_forever, emulator), args)


def _openai_config(testing: Any, args: argparse.Namespace) -> Any:
    return testing.EmulatorConfig(
        validating_seconds=args.validating_seconds,
        in_progress_seconds=args.in_progress_seconds,
        finalizing_seconds=args.finalizing_seconds,
        cancelling_seconds=args.cancelling_seconds,
        max_requests=50_000 if args.max_requests is None else args.max_requests,
        max_bytes=200 * 1024 * 1024 if args.max_bytes is None else args.max_bytes,
        partial_fraction=args.partial_fraction,
        azure_mode=args.azure,
        seed=args.seed,
        data_dir=args.data_dir,
    )


def _anthropic_config(testing: Any, args: argparse.Namespace) -> Any:
    defaults = testing.EmulatorConfig()
    return testing.EmulatorConfig(
        in_progress_seconds=args.in_progress_seconds,
        canceling_seconds=args.cancelling_seconds,
        max_requests=defaults.max_requests if args.max_requests is None else args.max_requests,
        max_bytes=defaults.max_bytes if args.max_bytes is None else args.max_bytes,
        partial_fraction=(
            defaults.partial_fraction if args.partial_fraction is None else args.partial_fraction
        ),
        seed=args.seed,
        data_dir=args.data_dir,
    )
