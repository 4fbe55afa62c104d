"""``eval``: run a component over a dataset, score every output, print the pass rate.

``python3 -m kyro eval app.agent:answer dataset.jsonl --scorer exact_match`` runs now; LLM
judges (``--scorer correctness``, ``--scorer 'llm:Is the reply under 50 words?'``) go to an
OpenAI-compatible endpoint (``--base-url``) through the local provider, or through any
``--provider``. With ``--batch`` the component runs now and the judges go through a Batch API
(``openai`` unless ``--provider`` says otherwise) as one job: the command prints the job id and
exits, and ``python3 -m kyro eval --check JOB_ID`` collects it later (exit 3 while it is
pending). The judge provider is built by its own class, with its own options (see
:mod:`kyro.cli._providers`).

A scorer with options reads ``name:key=value,key=value`` (values are JSON when they parse:
``true``, ``0.01``, ``["a","b"]``; else text) or ``name:{"key": value}`` for values holding
commas, e.g. ``--scorer 'contains:value=refund,ignore_case=true'``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec

from kyro._exceptions import BatchValidationError
from kyro._provider import BatchProvider
from kyro._registry import available_providers
from kyro.cli._activity import run_closing
from kyro.cli._argtypes import interval_seconds
from kyro.cli._commands import add_command
from kyro.cli._exit import ExitCode
from kyro.cli._options import configure_logging, make_provider
from kyro.cli._providers import mark
from kyro.cli._report import console
from kyro.eval import BatchEvalResult, check_eval, evaluate, scorer, submit_eval
from kyro.eval._scorers import SCORER_NAMES
from kyro.eval._scoring import ScorerSpec, plan_scorers

__all__ = ["register"]

_OPTION_START = re.compile(r",(?=\s*[A-Za-z_]\w*=)")
_SHOWN_FAILURES = 10


def register(subparsers: Any) -> None:
    """Add ``eval``."""
    parser = add_command(
        subparsers,
        "eval",
        epilog="examples:\n"
        "  python3 -m kyro eval app:answer data.jsonl --scorer exact_match --fail-under 0.9\n"
        "  python3 -m kyro eval app:answer data.jsonl --scorer correctness \\\n"
        "      --base-url http://127.0.0.1:11434/v1 --model llama3.1\n"
        "  python3 -m kyro eval app:answer data.jsonl --scorer 'llm:Is it polite?' --batch\n"
        "  python3 -m kyro eval --check eval-20250101-120000-abc123 --wait\n"
        f"\ndeterministic scorers: {', '.join(SCORER_NAMES)}",
    )
    parser.add_argument("component", nargs="?", help="the component, as module:function")
    parser.add_argument("dataset", nargs="?", help="a .jsonl file: one item a line")
    parser.add_argument(
        "--scorer", action="append", default=[], metavar="SCORER", help="repeatable"
    )
    parser.add_argument("--batch", action="store_true", help="judges as a batch job; exit")
    parser.add_argument("--check", metavar="JOB_ID", help="collect a --batch job")
    parser.add_argument(
        "--wait", action="store_true", help="with --batch or --check: poll until done"
    )
    parser.add_argument(
        "--interval", type=interval_seconds, default=30.0, help="seconds between polls"
    )
    parser.add_argument("--concurrency", type=int, default=10, help="items at once (10)")
    parser.add_argument("--timeout", type=float, help="seconds per item")
    parser.add_argument(
        "--unpack-input", action="store_true", help="call component(**input) for dict inputs"
    )
    parser.add_argument("--model", help="the judges' model (default: KYRO_MODEL)")
    parser.add_argument(
        "--provider",
        help="judge provider (default local, judging live; openai with --batch or --check; "
        f"installed: {', '.join(sorted(available_providers()))})",
    )
    parser.add_argument("--base-url", help="the judges' API base URL (default OPENAI_BASE_URL)")
    parser.add_argument(
        "--judge-concurrency",
        dest="live_concurrency",
        type=int,
        default=16,
        metavar="N",
        help="live judge requests at once (16; a provider's own option may say otherwise)",
    )
    parser.add_argument("--state-dir", default=".kyro/eval", help="where eval jobs are kept")
    parser.add_argument("--output", metavar="FILE.jsonl", help="write every item result here")
    parser.add_argument("--csv", metavar="FILE.csv", help="one row per item")
    parser.add_argument("--fail-under", type=float, metavar="RATE", help="exit 1 below it")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the essentials")
    parser.set_defaults(func=_eval)
    mark(parser, default=default_provider)


def default_provider(argv: Sequence[str]) -> str:
    """The judge provider without ``--provider``: ``local`` (live), ``openai`` for a batch job
    (``--batch``, ``--check``)."""
    pre = argparse.ArgumentParser(add_help=False)  # abbreviations as the command takes them
    pre.add_argument("--batch", action="store_true")
    pre.add_argument("--check")
    known, _ = pre.parse_known_args(argv)
    return "openai" if known.batch or known.check else "local"


def parse_scorer(text: str) -> ScorerSpec:
    """One ``--scorer`` value as a scorer spec (see the module docstring)."""
    name, sep, rest = text.partition(":")
    if not sep or name == "llm":
        return text
    if not rest.strip():
        return name
    if rest.lstrip().startswith("{"):
        try:
            options = msgspec.json.decode(rest)
        except msgspec.DecodeError as exc:
            raise BatchValidationError(
                f"--scorer {text!r}: the options are not JSON: {exc}"
            ) from None
        if not isinstance(options, dict):
            raise BatchValidationError(f"--scorer {text!r}: the options must be a JSON object")
    else:
        options = {}
        for part in _OPTION_START.split(rest):
            key, eq, value = part.partition("=")
            if not eq:
                raise BatchValidationError(
                    f"--scorer {text!r}: write options as key=value, not {part!r}"
                )
            options[key.strip()] = _value(value)
    try:
        return scorer(name, **options)
    except ValueError as exc:
        raise BatchValidationError(f"--scorer {text!r}: {exc}") from None


def _value(text: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text


def _provider(args: argparse.Namespace) -> BatchProvider:
    """The judges' provider, built by its class from the options (batches under
    ``--state-dir`` for a provider that keeps files)."""
    if not args.provider:  # a parser built without the command line (the provider unknown)
        args.provider = "openai" if args.batch or args.check else "local"
    return make_provider(args, state_dir=Path(args.state_dir))


def _eval(args: argparse.Namespace) -> int:
    configure_logging(args.verbose)
    if args.fail_under is not None and not 0.0 <= args.fail_under <= 1.0:
        raise BatchValidationError(f"--fail-under is a pass rate in 0–1, not {args.fail_under}")
    if args.check:
        return _collect(args)
    if not args.component or not args.dataset:
        raise BatchValidationError("give the component (module:function) and the dataset")
    if not args.scorer:
        raise BatchValidationError("give at least one --scorer, e.g. --scorer exact_match")
    scorers = [parse_scorer(s) for s in args.scorer]
    try:
        needs_judges = bool(plan_scorers(scorers).judges)
    except ValueError as exc:
        raise BatchValidationError(str(exc)) from None
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # `module:function` resolves like `python -m`
    common: dict[str, Any] = {
        "scorers": scorers,
        "max_concurrency": args.concurrency,
        "timeout": args.timeout,
        "judge_model": args.model,
        "unpack_input": args.unpack_input,
    }
    _check_numbers(args)
    if args.batch:
        provider = _provider(args)

        def submit() -> Awaitable[str]:
            return submit_eval(
                args.component, args.dataset, provider=provider, state_dir=args.state_dir, **common
            )

        job_id = run_closing(provider, submit)
        out = console()
        if args.quiet and not args.wait:
            out.print(job_id)
        elif not args.quiet:
            out.print(f"submitted eval job {job_id}; kept in {Path(args.state_dir) / job_id}")
            if not args.wait:
                out.print(f"collect it later with: python3 -m kyro eval --check {job_id}")
        if args.wait:
            args.check = job_id
            return _collect(args)
        return ExitCode.OK
    try:
        judges = _provider(args) if needs_judges else None
    except BatchValidationError as exc:  # e.g. no endpoint: a Batch API needs none
        raise BatchValidationError(f"{exc}; or judge through a Batch API with --batch") from None

    def run() -> Awaitable[BatchEvalResult]:
        return evaluate(
            args.component,
            args.dataset,
            judge_provider=judges,
            poll_interval=args.interval,
            **common,
        )

    return _finish(run_closing(judges, run), args)


def _check_numbers(args: argparse.Namespace) -> None:
    if args.concurrency < 1 or args.live_concurrency < 1:
        raise BatchValidationError("--concurrency and --judge-concurrency must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        raise BatchValidationError(f"--timeout must be a positive number, not {args.timeout}")


def _collect(args: argparse.Namespace) -> int:
    provider = _provider(args)

    async def poll() -> BatchEvalResult | None:
        while True:
            result = await check_eval(args.check, provider=provider, state_dir=args.state_dir)
            if result is not None or not args.wait:
                return result
            await anyio.sleep(args.interval)

    result = run_closing(provider, poll)
    if result is None:
        if not args.quiet:
            console().print(f"eval job {args.check} is still pending: check again later")
        return ExitCode.PENDING
    return _finish(result, args)


def _finish(result: BatchEvalResult, args: argparse.Namespace) -> int:
    out = console()
    stats = result.stats

    def say(text: str) -> None:
        out.print(text, markup=False)

    if not args.quiet:
        say(f"eval {result.batch_id}: {result.status}")
        for name, s in stats.scorers.items():
            mean = "-" if s.mean_score is None else f"{s.mean_score:.3f}"
            say(
                f"  {name:<24} pass {s.pass_rate:6.1%}  mean {mean:>5}  "
                f"({s.passed}/{s.scored}, {s.errored} errored)"
            )
        d = stats.duration_ms
        say(
            f"items: {stats.total} — {stats.passed} passed, {stats.failed} failed, "
            f"{stats.errored} errored; duration p50 {d.p50:g} ms, p95 {d.p95:g} ms"
        )
        shown = 0
        for item in result.results:
            if item.passed or shown >= _SHOWN_FAILURES:
                continue
            shown += 1
            why = item.error or "; ".join(
                f"{s.scorer}: {s.error or s.explanation or 'failed'}"
                for s in item.scores
                if not s.passed
            )
            say(f"  FAIL #{item.index}{f' {item.item_id}' if item.item_id else ''}: {why}")
    out.print(f"pass rate: {result.pass_rate:.1%}")
    if args.output:
        result.to_jsonl(args.output)
        out.print(f"wrote {args.output}")
    if args.csv:
        result.to_csv(args.csv)
        out.print(f"wrote {args.csv}")
    if args.fail_under is not None and result.pass_rate < args.fail_under:
        out.print(f"--fail-under {args.fail_under:g}: the pass rate is below the gate")
        return ExitCode.GATE
    return ExitCode.OK
