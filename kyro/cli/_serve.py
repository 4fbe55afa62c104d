"""``kyro serve``: the batch-execute REST service over your judge configs, on 127.0.0.1.

The service lives in ``kyro.serve`` (the ``serve`` extra: starlette, uvicorn), imported only
when this command runs. The provider is built through the registry by its own class (its
options come from the class's ``add_cli_options``, see :mod:`kyro.cli._providers`): a provider
that answers live (the local one's default) is one shared provider, items evaluated as they
come; a batch provider gets an instance per BatchJudge call, each execution one batch.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from pathlib import Path
from typing import Any

import anyio

from kyro._exceptions import BatchValidationError
from kyro._provider import BatchProvider, LiveProvider
from kyro._registry import available_providers
from kyro.cli._commands import add_command
from kyro.cli._exit import ExitCode, serve_until_stopped
from kyro.cli._options import make_provider
from kyro.cli._providers import answers_live, mark

__all__ = ["register"]

_EPILOG = """\
examples:
  export KYRO_SERVE_API_KEYS="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
  python3 -m kyro serve --judges judges/ --base-url http://127.0.0.1:11434/v1
  python3 -m kyro serve --judges relevance.yml --handler mymodule:judge_reply --port 9000
  python3 -m kyro serve --judges judges/ --provider openai --poll-interval 60   # half price

  curl -X POST http://127.0.0.1:8080/v1/judges/relevance/batch-execute/ \\
    -H "Authorization: Api-Key ${KYRO_SERVE_API_KEYS}" -H "Content-Type: application/json" \\
    -d '{"inputs": [{"request": "What is the capital of France?", "response": "Paris."}]}'

keys: KYRO_SERVE_API_KEYS (comma-separated) and/or --api-keys-file (one a line); clients
send `Authorization: Api-Key <key>` (or Bearer). Everything the service keeps lives under
--data-dir (a SQLite database, judge versions, in-flight jobs); a restart resumes it."""


def register(subparsers: Any) -> None:
    """Add the ``serve`` sub-command to the CLI's sub-parsers."""
    parser = add_command(
        subparsers,
        "serve",
        description="Serve the judges of your configs over a REST API: POST request/response "
        "pairs to /v1/judges/{judge_id}/batch-execute/, poll the status URL for results.",
        epilog=_EPILOG,
    )
    parser.add_argument(
        "--judges",
        nargs="+",
        required=True,
        metavar="DIR_OR_FILE",
        help="judge configs: YAML files, or folders of them (each config is one judge)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any free)")
    parser.add_argument(
        "--data-dir", default="kyro-serve-data", help="where the service keeps its state"
    )
    parser.add_argument("--api-keys-file", help="a file of API keys, one a line")
    parser.add_argument(
        "--provider",
        default="local",
        help="provider name (default local: live calls, --base-url or --handler; installed: "
        f"{', '.join(sorted(available_providers()))}); `--provider NAME --help` shows its options",
    )
    parser.add_argument(
        "--base-url",
        help="the provider's base URL (default: its own setting, e.g. OPENAI_BASE_URL)",
    )
    parser.add_argument(
        "--concurrency",
        dest="live_concurrency",
        type=int,
        default=16,
        metavar="N",
        help="a provider that answers live: items evaluated at once across all executions, "
        "and the default of its own limit on requests in flight (the local provider's "
        "--local-concurrency); default 16; a crash re-sends at most four times this many items",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=8,
        help="batch jobs submitted or checked at once (batch providers; default 8)",
    )
    parser.add_argument(
        "--poll-interval", type=float, default=30.0, help="seconds between batch polls"
    )
    parser.add_argument(
        "--max-body-bytes", type=int, default=8 * 1024 * 1024, help="largest request body"
    )
    parser.add_argument(
        "--grace", type=float, default=10.0, help="seconds running work may finish at shutdown"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log debug lines too")
    parser.set_defaults(func=run)
    mark(parser)


def run(args: argparse.Namespace) -> int:
    """Build the service from the options and serve until SIGINT or SIGTERM."""
    try:
        from kyro.serve import (
            BatchJudgeExecutor,
            Executor,
            KeyRing,
            LiveExecutor,
            build_service,
            configure_logging,
            load_keys,
            run_server,
        )
    except ImportError as exc:
        print(
            f"error: kyro serve needs the 'serve' extra ({exc}); "
            "install it with: pip install 'kyro[serve]'",
            file=sys.stderr,
        )
        return ExitCode.BAD_INPUT
    for flag, value in (
        ("--concurrency", args.live_concurrency),
        ("--workers", args.workers),
        ("--max-body-bytes", args.max_body_bytes),
    ):
        if value < 1:
            raise BatchValidationError(f"{flag} must be at least 1")
    keys_file = Path(args.api_keys_file) if args.api_keys_file else None
    keys = KeyRing(load_keys(os.environ.get("KYRO_SERVE_API_KEYS"), keys_file))

    # Built before the service touches its data folder, so bad provider options stop the
    # start with nothing written; building a provider does not touch the disk or network.
    live = _live_provider(args, Path(args.data_dir) / "jobs")

    def executor(jobs: Path) -> Executor:
        if live is not None:
            return LiveExecutor(live, concurrency=args.live_concurrency)
        return BatchJudgeExecutor(
            lambda folder: make_provider(args, state_dir=folder),
            jobs_dir=jobs,
            workers=args.workers,
            poll_interval=args.poll_interval,
        )

    configure_logging(logging.DEBUG if args.verbose else logging.INFO)
    try:
        service = build_service(
            args.judges,
            data_dir=Path(args.data_dir),
            executor=executor,
            keys=keys,
            max_body_bytes=args.max_body_bytes,
            grace=args.grace,
        )
    except BaseException:
        if live is not None:
            anyio.run(live.aclose)
        raise
    return serve_until_stopped(functools.partial(run_server, service), args)


def _live_provider(args: argparse.Namespace, jobs: Path) -> LiveProvider | None:
    """The one provider every execution shares when the class answers live (its files, if
    any, under ``jobs``); None for a batch provider, built once here to check its options
    and closed — each execution builds its own."""
    provider: BatchProvider = make_provider(args, state_dir=jobs)
    if answers_live(args.provider) and isinstance(provider, LiveProvider):
        return provider
    anyio.run(provider.aclose)
    if answers_live(args.provider):  # the class has `complete`, what it built has not
        raise BatchValidationError(f"the {args.provider!r} provider cannot run requests live")
    return None
