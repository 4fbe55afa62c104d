"""``submit``, ``check``, ``status`` and ``cancel``: a batch job from the command line.

A cron job runs ``kyro submit`` once and ``kyro check`` on a schedule; the exit code says
what happened (0 complete, 3 still pending, 4 job failed/expired/cancelled — see
:class:`kyro.cli._exit.ExitCode`), and ``--fail-on`` turns verdicts into a failing code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import anyio

from kyro._exceptions import BatchValidationError, ProviderError
from kyro._job.batch_judge import BatchJudge
from kyro._job.job_error import BatchJobError
from kyro._verdicts.result_types import BatchRunResult
from kyro.cli._activity import Activity, ProgressProvider, run_closing
from kyro.cli._argtypes import interval_seconds
from kyro.cli._commands import add_command
from kyro.cli._costing import (
    actual_cost_line,
    add_cache_options,
    add_cost_options,
    cache_dir_of,
    format_cost,
    max_cost_of,
    prices_of,
)
from kyro.cli._exit import ExitCode
from kyro.cli._htmlreport import add_report_options, write_html_report
from kyro.cli._options import (
    add_fallback_options,
    add_job_options,
    add_vote_options,
    configure_logging,
    make_judge,
    make_provider,
    parse_variables,
)
from kyro.cli._plan import add_plan_options, transcript_paths
from kyro.cli._report import (
    check_export_path,
    console,
    export_csv,
    export_jsonl,
    print_progress,
    print_summary,
)

__all__ = [
    "add_output_options",
    "check_exports",
    "finish",
    "register",
    "report_job_error",
    "tracked_judge",
    "wait_for_result",
]


def register(subparsers: Any) -> None:
    """Add ``submit``, ``check``, ``status`` and ``cancel``."""
    submit = add_command(
        subparsers,
        "submit",
        epilog="examples:\n  python3 -m kyro submit judges.yml transcripts/ --runs 3\n"
        "  python3 -m kyro submit judges.yml data.jsonl --var product=Acme",
    )
    submit.add_argument("config", help="the judges YAML file")
    submit.add_argument("transcripts", nargs="+", metavar="TRANSCRIPT")
    add_plan_options(submit)
    add_vote_options(submit)
    add_job_options(submit)
    add_cost_options(submit)
    add_cache_options(submit)
    submit.set_defaults(func=_submit)

    check = add_command(
        subparsers,
        "check",
        epilog="examples:\n  python3 -m kyro check judges.yml            # exit 3 while pending\n"
        "  python3 -m kyro check judges.yml --wait --interval 60 --csv results.csv\n"
        "  python3 -m kyro check judges.yml --fail-on partial   # CI gate",
    )
    check.add_argument("config", help="the judges YAML file the job was submitted with")
    check.add_argument("--job", help="the job id (default: the config's pending job)")
    check.add_argument("--wait", action="store_true", help="poll until the job is done")
    check.add_argument(
        "--interval", type=interval_seconds, default=30.0, help="seconds between polls with --wait"
    )
    add_output_options(check)
    add_vote_options(check)
    add_fallback_options(check)
    add_job_options(check)
    check.add_argument(
        "--report", metavar="FILE.html", help="also write the results as an HTML report"
    )
    add_report_options(check)
    check.set_defaults(func=_check)

    for name, func in (("status", _status), ("cancel", _cancel)):
        parser = add_command(
            subparsers, name, epilog=f"example:\n  python3 -m kyro {name} judges.yml"
        )
        parser.add_argument("config", help="the judges YAML file the job was submitted with")
        parser.add_argument("--job", help="the job id (default: the config's pending job)")
        add_job_options(parser)
        parser.set_defaults(func=func)


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--output``, ``--csv`` and ``--fail-on``."""
    parser.add_argument("--output", metavar="FILE.jsonl", help="also write the results here")
    parser.add_argument("--csv", metavar="FILE.csv", help="one row per transcript × judge")
    parser.add_argument(
        "--fail-on",
        action="append",
        choices=["error", "partial", "errored"],
        default=[],
        help="exit 1 when any transcript is ERROR (error), ERROR or PARTIAL (partial), or has "
        "no verdict (errored); repeatable",
    )


def tracked_judge(args: argparse.Namespace) -> tuple[BatchJudge, Activity]:
    """The command's BatchJudge, its provider wrapped to report progress on a terminal.

    The export targets (``--output``, ``--csv``) are checked first, so a bad one is refused
    before the job is submitted or collected.
    """
    activity = Activity(console(), enabled=not args.quiet)
    judge = make_judge(args, ProgressProvider(make_provider(args), activity))
    check_exports(args, judge.state_dir)
    return judge, activity


def check_exports(args: argparse.Namespace, state_dir: Path) -> None:
    """Refuse bad ``--output``/``--csv`` targets before any work is done."""
    targets = {option: getattr(args, option, None) for option in ("output", "csv")}
    for option, target in targets.items():
        if target:
            check_export_path(Path(target), f"--{option}", state_dir, args.config)
    if (
        targets["output"]
        and targets["csv"]
        and Path(targets["output"]).resolve() == Path(targets["csv"]).resolve()
    ):
        raise BatchValidationError("--output and --csv name the same file; give two files")


def _submit(args: argparse.Namespace) -> int:
    configure_logging(args.verbose)
    variables = parse_variables(args.var)
    max_cost = max_cost_of(args)
    judge, activity = tracked_judge(args)
    out = console()

    def submit() -> Awaitable[str]:
        return judge.submit(
            transcript_paths(args.transcripts),
            runs=args.runs,
            variables=variables,
            max_cost=max_cost,
        )

    try:
        job_id = run_closing(judge, submit, activity)
    except ProviderError as exc:
        print(f"provider error: {exc}", file=sys.stderr)
        if judge.state_path.exists():
            print(
                f"the job is saved in {judge.state_path}: run the same submit again to "
                "resume it (batches already created are adopted, never duplicated)",
                file=sys.stderr,
            )
        return ExitCode.PROVIDER
    if args.quiet:
        out.print(job_id)
    else:
        if judge.last_estimate is not None:
            gate_hits = judge.last_estimate.totals().cached_runs
            folder = cache_dir_of(args, Path(args.config))
            pipeline = judge.load().uses_pipeline
            lines = format_cost(
                judge.last_estimate, hits=gate_hits, cache=folder, pipeline=pipeline
            )
            for line in lines:
                print(line)
        out.print(f"submitted job {job_id}; state saved in {judge.state_path}")
        provider = "" if args.provider == "openai" else f" --provider {args.provider}"
        out.print(f"collect it later with: python3 -m kyro check {args.config}{provider}")
    return ExitCode.OK


async def wait_for_result(
    judge: BatchJudge,
    job: str | None,
    *,
    wait: bool,
    interval: float,
    activity: Activity | None = None,
) -> BatchRunResult | None:
    """check() once, or until done with ``wait``, showing the counts between polls.

    The counts come from the state check() just saved, so waiting costs one poll per batch
    per interval and nothing more.
    """
    while True:
        result = await judge.check(job)
        if result is not None or not wait:
            return result
        progress = judge.saved_progress()
        if activity is not None and progress is not None:
            activity.show(
                f"waiting for the provider ({progress.phase}): {progress.totals.completed:,} "
                f"of {progress.requests:,} requests done; next poll in {interval:g}s"
            )
        await anyio.sleep(interval)


def finish(result: BatchRunResult, args: argparse.Namespace) -> int:
    """Print the summary, write the exports, and apply ``--fail-on``.

    A job whose every request failed with one and the same error (a rejected key, an unknown
    model) ends with that reason and exit 5, not a table of errored rows and exit 0.
    """
    out = console()
    if result.failure is not None:
        failure = result.failure
        print(
            f"provider error: every one of the job's {result.counts.requests:,} requests "
            f"failed with {failure.code}: {failure.message}. No verdict was produced; fix "
            "what the provider names (the API key, the model name, the account) and submit "
            f"again. Details: {result.results_path}",
            file=sys.stderr,
        )
        return ExitCode.PROVIDER
    print_summary(result, out, quiet=args.quiet)
    if not args.quiet and args.config:
        out.print(
            actual_cost_line(
                result.results_path,
                result.models,
                getattr(args, "provider", "openai"),
                prices_of(args),
            )
        )
    if getattr(args, "report", None):
        provider = getattr(args, "provider", "openai")
        written = write_html_report(
            result.results_path,
            Path(args.report),
            args,
            provider=provider,
            judge_models=result.models,
        )
        out.print(written)
    if args.output:
        export_jsonl(result, Path(args.output))
        out.print(f"wrote {args.output}")
    if args.csv:
        export_csv(result, Path(args.csv))
        out.print(f"wrote {args.csv}")
    counts = result.counts
    failing = {
        "error": counts.error > 0,
        "partial": counts.error + counts.partial > 0,
        "errored": counts.errored > 0,
    }
    hit = [gate for gate in args.fail_on if failing[gate]]
    if hit:
        out.print(f"--fail-on {', '.join(hit)}: verdicts fail the gate")
        return ExitCode.GATE
    return ExitCode.OK


def report_job_error(exc: BatchJobError, args: argparse.Namespace) -> int:
    """Print why the job ended, its provider errors and its partial results; exit 4."""
    out = console()
    out.print(f"job {exc.job_id} ended {exc.status}")
    for error in exc.errors:
        where = f" (line {error.line})" if error.line is not None else ""
        out.print(f"  {error.code}{where}: {error.message}")
    if exc.result is not None:
        finish(exc.result, args)
    print(f"error: {exc}", file=sys.stderr)
    return ExitCode.JOB_FAILED


def _check(args: argparse.Namespace) -> int:
    configure_logging(args.verbose)
    judge, activity = tracked_judge(args)

    def wait() -> Awaitable[BatchRunResult | None]:
        return wait_for_result(
            judge, args.job, wait=args.wait, interval=args.interval, activity=activity
        )

    try:
        result = run_closing(judge, wait, activity)
    except BatchJobError as exc:
        return report_job_error(exc, args)
    if result is None:
        if not args.quiet:
            console().print("still pending: check again later")
        return ExitCode.PENDING
    return finish(result, args)


def _status(args: argparse.Namespace) -> int:
    configure_logging(args.verbose)
    judge = make_judge(args)

    progress = run_closing(judge, lambda: judge.status(args.job))
    if progress.phase == "done":
        console().print(
            f"job {progress.job_id} is done and collected ({progress.requests:,} requests); "
            f"`python3 -m kyro check {args.config}` prints its verdicts again"
        )
    else:
        print_progress(progress, console())
    return ExitCode.OK


def _cancel(args: argparse.Namespace) -> int:
    configure_logging(args.verbose)
    judge = make_judge(args)

    progress = run_closing(judge, lambda: judge.cancel(args.job))
    print_progress(progress, console())
    console().print(f"cancel requested; run `python3 -m kyro check {args.config}` to collect")
    return ExitCode.OK
