"""``kyro serve``: the batch-execute REST service over your judge configs, on 127.0.0.1.

The service lives in ``kyro.serve`` (the ``serve`` extra: starlette, uvicorn), imported only
when this command runs. The provider is built lazily through the registry: the local
provider is one shared live provider (items evaluated as they come); a batch provider gets
an instance per BatchJudge call, each execution one batch.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from kyro._exceptions import BatchValidationError
from kyro._provider import BatchProvider
from kyro._registry import available_providers, get_provider
from kyro.cli._commands import add_command
from kyro.cli._exit import ExitCode, serve_until_stopped

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
        help="provider name (default local: live calls; installed: "
        f"{', '.join(sorted(available_providers()))})",
    )
    parser.add_argument(
        "--base-url", help="the provider's base URL (default: OPENAI_BASE_URL for local)"
    )
    parser.add_argument(
        "--handler",
        metavar="MODULE:FUNCTION",
        help="judge with a Python callable instead of an endpoint (local provider)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=16,
        help="local provider: items evaluated at once across all executions, and requests "
        "in flight (default 16); a crash re-sends at most twice this many items",
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
    for name in ("concurrency", "workers", "max_body_bytes"):
        if getattr(args, name) < 1:
            raise BatchValidationError(f"--{name.replace('_', '-')} must be at least 1")
    keys_file = Path(args.api_keys_file) if args.api_keys_file else None
    keys = KeyRing(load_keys(os.environ.get("KYRO_SERVE_API_KEYS"), keys_file))
    factory = _provider_factory(args)

    def executor(jobs: Path) -> Executor:
        if args.provider == "local":
            return LiveExecutor(factory(jobs / "local"), concurrency=args.concurrency)
        return BatchJudgeExecutor(
            factory, jobs_dir=jobs, workers=args.workers, poll_interval=args.poll_interval
        )

    configure_logging(logging.DEBUG if args.verbose else logging.INFO)
    service = build_service(
        args.judges,
        data_dir=Path(args.data_dir),
        executor=executor,
        keys=keys,
        max_body_bytes=args.max_body_bytes,
        grace=args.grace,
    )
    return serve_until_stopped(functools.partial(run_server, service), args)


def _provider_factory(args: argparse.Namespace) -> Any:
    """A function making a provider, its files (if any) in the folder it is given."""
    options: dict[str, Any] = {}
    if args.provider == "local":
        options["concurrency"] = args.concurrency
        if args.handler:
            options["handler"] = _import_handler(args.handler)
        else:
            url = args.base_url or os.environ.get("OPENAI_BASE_URL")
            if not url:
                raise BatchValidationError(
                    "the local provider needs an OpenAI-compatible endpoint or a callable: "
                    "pass --base-url (e.g. http://127.0.0.1:11434/v1) or --handler MODULE:FUNC"
                )
            options["base_url"] = url
            options["api_key"] = os.environ.get("OPENAI_API_KEY")
    else:
        if args.handler:
            raise BatchValidationError("--handler works with the local provider only")
        if args.base_url:
            options["base_url"] = args.base_url
    if args.provider not in available_providers():
        raise BatchValidationError(
            f"no provider {args.provider!r}; installed: {', '.join(sorted(available_providers()))}"
        )

    def factory(folder: Path) -> BatchProvider:
        if args.provider != "local":
            return get_provider(args.provider, **options)
        return get_provider(args.provider, state_dir=folder, **options)

    return factory


def _import_handler(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise BatchValidationError(f"--handler {spec!r}: write it as MODULE:FUNCTION")
    try:
        handler = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise BatchValidationError(
            f"--handler {spec!r}: cannot import it ({type(exc).__name__}); check the module is "
            "on PYTHONPATH and defines the function"
        ) from None
    if not callable(handler):
        raise BatchValidationError(f"--handler {spec!r} is not callable")
    return handler
