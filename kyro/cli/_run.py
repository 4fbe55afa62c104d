"""``run``: submit and wait in one go — the synchronous path, local provider by default.

``python3 -m kyro run judges.yml transcripts/ --base-url http://127.0.0.1:11434/v1`` sends
every request straight to an OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp, LiteLLM,
OpenAI's live API, kyro's emulator), then prints the verdicts. With ``--provider openai`` it
submits a batch and polls until done instead.

A pipeline config (``depends_on``/``on_failure``) through a provider that answers live (one
whose class has ``complete``, as the local provider's does) is walked live by
:class:`kyro.KyroJudge`: each transcript's steps run as soon as what they wait for is decided,
``--concurrency`` transcripts at a time; the results file lands in the state folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import anyio

from kyro._config.loader import load_config
from kyro._exceptions import BatchValidationError
from kyro._job.job_error import BatchJobError
from kyro._live.live_judge import KyroJudge, new_run_id, run_to_file
from kyro._provider import LiveProvider
from kyro._state.store import StateStore
from kyro._verdicts.result_types import BatchRunResult
from kyro.cli._activity import run_closing
from kyro.cli._argtypes import interval_seconds
from kyro.cli._commands import add_command
from kyro.cli._costing import (
    add_cache_options,
    add_cost_options,
    cache_dir_of,
    format_cost,
    max_cost_of,
)
from kyro.cli._jobs import (
    add_output_options,
    check_exports,
    finish,
    report_job_error,
    tracked_judge,
    wait_for_result,
)
from kyro.cli._options import (
    add_fallback_options,
    add_job_options,
    add_vote_options,
    configure_logging,
    make_provider,
    parse_variables,
    state_dir_of,
    vote_settings,
)
from kyro.cli._plan import add_plan_options, transcript_paths
from kyro.cli._providers import answers_live
from kyro.cli._report import console

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``run``."""
    parser = add_command(
        subparsers,
        "run",
        epilog="examples:\n"
        "  python3 -m kyro run judges.yml transcripts/ --base-url http://127.0.0.1:11434/v1\n"
        "  python3 -m kyro run judges.yml data.jsonl --provider openai --interval 60\n"
        "  python3 -m kyro run pipeline.yml data.jsonl --base-url URL --concurrency 16",
    )
    parser.add_argument("config", help="the judges YAML file")
    parser.add_argument("transcripts", nargs="+", metavar="TRANSCRIPT")
    parser.add_argument(
        "--interval",
        type=interval_seconds,
        default=30.0,
        help="seconds between polls of a batch provider",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="transcripts a live pipeline run evaluates at once (default 8)",
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
    if answers_live(args.provider) and load_config(args.config).uses_pipeline:
        return _run_live(args, variables)
    max_cost = max_cost_of(args)
    judge, activity = tracked_judge(args)
    out = console()

    async def submit_and_wait() -> BatchRunResult | None:
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

    try:
        result = run_closing(judge, submit_and_wait, activity)
    except BatchJobError as exc:
        return report_job_error(exc, args)
    assert result is not None  # wait=True returns only a result
    return finish(result, args)


def _run_live(args: argparse.Namespace, variables: dict[str, str]) -> int:
    """Walk the pipeline for every transcript now, through the local provider."""
    if args.concurrency < 1:
        raise BatchValidationError(f"--concurrency must be at least 1, got {args.concurrency}")
    if max_cost_of(args) is not None:
        raise BatchValidationError(
            "--max-cost is not supported for a pipeline walked live through the local "
            "provider; submit it as a batch job (python3 -m kyro submit CONFIG TRANSCRIPTS "
            "--max-cost USD), which holds every stage to the budget, or run without it"
        )
    provider = make_provider(args)
    if not isinstance(provider, LiveProvider):
        raise BatchValidationError(f"the {args.provider!r} provider cannot run requests live")
    folder = cache_dir_of(args, Path(args.config))
    live = KyroJudge(
        args.config,
        provider=provider,
        runs=args.runs,
        vote=vote_settings(args),
        cache=folder if folder is not None else False,
    )
    store = StateStore(args.config, state_dir_of(args))
    check_exports(args, store.state_dir)
    store.ensure_dirs()
    run_id = new_run_id()
    out = console()

    async def go() -> BatchRunResult:
        async with live:
            if not args.quiet:
                stages = len(live.graph.stages)
                out.print(f"run {run_id}: walking the {stages}-stage pipeline live")
            result = await run_to_file(
                live,
                args.transcripts,
                store.results_path_for(run_id),
                job_id=run_id,
                variables=variables,
                concurrency=args.concurrency,
            )
            if not args.quiet:
                out.print(
                    "cache: off"
                    if folder is None
                    else f"cache: {live.cached_runs:,} runs answered by {folder} (not sent)"
                )
            return result

    return finish(anyio.run(go), args)
