"""``run``: submit and wait in one go — the synchronous path, local provider by default.

``python3 -m kyro run judges.yml transcripts/ --base-url http://127.0.0.1:11434/v1`` sends
every request straight to an OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp, LiteLLM,
OpenAI's live API, kyro's emulator), then prints the verdicts. With ``--provider openai`` it
submits a batch and polls until done instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import anyio

from kyro._exceptions import BatchJobError
from kyro._results import BatchRunResult
from kyro.cli._argtypes import interval_seconds
from kyro.cli._costing import (
    add_cache_options,
    add_cost_options,
    cache_dir_of,
    format_cost,
    max_cost_of,
)
from kyro.cli._jobs import (
    add_output_options,
    finish,
    report_job_error,
    tracked_judge,
    wait_for_result,
)
from kyro.cli._options import (
    add_fallback_options,
    add_job_options,
    add_plan_options,
    add_vote_options,
    configure_logging,
    parse_variables,
)
from kyro.cli._plan import transcript_paths
from kyro.cli._report import console

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``run``."""
    parser = subparsers.add_parser(
        "run",
        help="submit, wait and print the verdicts in one go (local provider by default)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  python3 -m kyro run judges.yml transcripts/ --base-url http://127.0.0.1:11434/v1\n"
        "  python3 -m kyro run judges.yml data.jsonl --provider openai --interval 60",
    )
    parser.add_argument("config", help="the judges YAML file")
    parser.add_argument("transcripts", nargs="+", metavar="TRANSCRIPT")
    parser.add_argument(
        "--interval",
        type=interval_seconds,
        default=30.0,
        help="seconds between polls of a batch provider",
    )
    add_plan_options(parser)
    add_vote_options(parser)
    add_fallback_options(parser)
    add_output_options(parser)
    add_job_options(parser, default_provider="local")
    add_cost_options(parser)
    add_cache_options(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    configure_logging(args.verbose)
    variables = parse_variables(args.var)
    max_cost = max_cost_of(args)
    judge, activity = tracked_judge(args)
    out = console()

    async def go() -> BatchRunResult | None:
        try:
            job_id = await judge.submit(
                transcript_paths(args.transcripts),
                runs=args.runs,
                variables=variables,
                max_cost=max_cost,
            )
            if not args.quiet:
                if judge.last_estimate is not None:
                    hits = judge.last_estimate.totals().cached_runs
                    folder = cache_dir_of(args, Path(args.config))
                    for line in format_cost(judge.last_estimate, hits=hits, cache=folder):
                        print(line)
                out.print(f"job {job_id} submitted through the {judge.provider.name} provider")
            return await wait_for_result(
                judge, job_id, wait=True, interval=args.interval, activity=activity
            )
        finally:
            await judge.aclose()

    try:
        with activity:
            result = anyio.run(go)
    except BatchJobError as exc:
        return report_job_error(exc, args)
    assert result is not None  # wait=True returns only a result
    return finish(result, args)
