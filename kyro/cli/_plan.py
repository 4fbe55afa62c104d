"""``kyro plan``: show (and optionally write) the batch files a submit would upload.

Every request is planned, checked and encoded exactly as ``submit`` would, so the shard count
and byte sizes printed are exact; without ``--write`` the encoded lines are counted and
dropped. No API key is needed: the provider is built as ``submit`` builds it (through the
registry and its class's hooks, any provider alike), but only its encoder, limits and default
model are used, never the network.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Coroutine, Generator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kyro._build.plan_build import build_shards
from kyro._build.shards import BuildSummary
from kyro._config.judges import JudgesConfig, resolve_models
from kyro._exceptions import BatchValidationError
from kyro._limits import MAX_RUNS
from kyro._provider import BatchProvider
from kyro._registry import available_providers
from kyro._transcript_index import INDEX_FILENAME
from kyro._transcripts import Transcript
from kyro._types import BatchLimits
from kyro.cli._argtypes import check_base_url, run_count
from kyro.cli._commands import add_command
from kyro.cli._exit import ExitCode
from kyro.cli._providers import build as build_provider
from kyro.cli._providers import mark as mark_provider_command

__all__ = ["add_plan_options", "parse_variables", "register", "transcript_paths"]

TOKEN_ESTIMATE = "characters of message text ÷ 4, rounded up per request"
_PROGRESS_EVERY = 64


def register(subparsers: Any) -> None:
    """Add the ``plan`` sub-command."""
    parser = add_command(
        subparsers,
        "plan",
        description=(
            "Plan transcripts × judges × runs into provider batch files and print requests per "
            "judge and model, shards, bytes and an input-token estimate. Nothing is uploaded."
        ),
        epilog="examples:\n"
        "  python3 -m kyro plan examples/judges.yml examples/transcripts --runs 3\n"
        "  python3 -m kyro plan judges.yml data.jsonl --write plan-out/ --max-requests 10000",
    )
    parser.add_argument("config", help="the judges YAML file")
    parser.add_argument(
        "transcripts", nargs="+", metavar="TRANSCRIPT", help="files, folders, .jsonl datasets"
    )
    add_plan_options(parser)
    parser.add_argument("--write", metavar="DIR", help="write the shard files and index to DIR")
    parser.add_argument("--max-requests", type=int, help="override the requests-per-shard limit")
    parser.add_argument("--max-bytes", type=int, help="override the bytes-per-shard limit")
    parser.add_argument(
        "--provider",
        default="openai",
        help="whose input format and limits to use (default openai; installed: "
        f"{', '.join(sorted(available_providers()))})",
    )
    parser.add_argument(
        "--base-url",
        help="the API base URL the batch would go to (never called; default: the provider's own)",
    )
    parser.add_argument(
        "--max-problems", type=int, default=20, help="stop after this many pre-flight problems"
    )
    from kyro.cli._costing import add_cache_options, add_cost_options

    add_cost_options(parser)
    add_cache_options(parser)
    mark_provider_command(parser)
    parser.set_defaults(func=run)


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--runs`` and ``--var``: what to plan (``plan``, ``submit`` and ``run``)."""
    parser.add_argument(
        "--model",
        help="model of judges that name none (else KYRO_MODEL, else the provider's default)",
    )
    parser.add_argument(
        "--runs",
        type=run_count,
        default=1,
        help=f"runs per transcript × judge (1 to {MAX_RUNS}, default 1)",
    )
    parser.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a run-level template variable (repeatable)",
    )


def parse_variables(items: Sequence[str]) -> dict[str, str]:
    """``["k=v", ...]`` → ``{"k": "v"}``; a malformed item is a :class:`BatchValidationError`.

    Example::

        parse_variables(["product=Acme", "tone=formal"])   # {'product': 'Acme', 'tone': 'formal'}
    """
    variables: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BatchValidationError(
                f"--var {item!r} is not KEY=VALUE; write it like --var product=Acme"
            )
        variables[key] = value
    return variables


def transcript_paths(items: Sequence[str]) -> list[Path]:
    """The TRANSCRIPT arguments as paths; one that does not exist is a BatchValidationError.

    On the command line every TRANSCRIPT is a file or a folder (inline text is a library
    feature), so a typo is an error naming it, never a one-transcript job of the word itself.

    Example::

        transcript_paths(["transcripts/", "extra.jsonl"])   # [PosixPath('transcripts'), ...]
    """
    paths: list[Path] = []
    for item in items:
        path = Path(item)
        try:
            found = path.exists()
        except (OSError, ValueError):
            found = False
        if not found:
            raise BatchValidationError(
                "transcript not found: every TRANSCRIPT argument is a file (.json, .jsonl, "
                ".txt) or a folder of them; check the path",
                path=item,
            )
        paths.append(path)
    return paths


@contextmanager
def _planning_provider(args: argparse.Namespace) -> Iterator[BatchProvider]:
    """The provider ``--provider`` names, built like submit builds it, closed after planning."""
    if args.base_url:
        check_base_url(args.base_url, "--base-url")
    provider = build_provider(args, state_dir=Path(args.config).parent / ".kyro")
    try:
        yield provider
    finally:
        _close_unused(provider)


def _close_unused(provider: BatchProvider) -> None:
    """Close a provider that was only built, starting an event loop only if closing waits.

    A provider that opened nothing (the OpenAI provider makes its HTTP client at the first
    call) closes without awaiting anything: one step of its ``aclose`` finishes it, and the
    event loop, whose start costs a plan more than planning a few thousand requests, is never
    started. One that waits for something is finished on an event loop; one whose first step
    failed (it needs a running loop from its first line) is closed again on one.
    """
    closing = provider.aclose()
    try:
        waiting = closing.send(None)
    except StopIteration:
        return
    except Exception:
        import anyio  # only a provider whose closing waits needs an event loop

        anyio.run(provider.aclose)
        return
    import anyio

    anyio.run(_resume, closing, waiting)


async def _resume(closing: Coroutine[Any, Any, None], waiting: object) -> None:
    """Run ``closing`` on from where it waits for ``waiting``, on this event loop."""
    await _Resumed(closing, waiting)


class _Resumed:
    """An awaitable handing a started coroutine's waits to the running event loop."""

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting: object) -> None:
        self.coroutine = coroutine
        self.waiting = waiting

    def __await__(self) -> Generator[Any, Any, None]:
        waiting = self.waiting
        while True:
            try:
                answer = yield waiting
            except BaseException as exc:  # a cancellation: the coroutine's to handle
                step = functools.partial(self.coroutine.throw, exc)
            else:
                step = functools.partial(self.coroutine.send, answer)
            try:
                waiting = step()
            except StopIteration:
                return


def _limits(base: BatchLimits, args: argparse.Namespace) -> BatchLimits:
    for flag, value in (("--max-requests", args.max_requests), ("--max-bytes", args.max_bytes)):
        if value is not None and value < 1:
            raise BatchValidationError(f"{flag} must be at least 1, got {value}")
    return BatchLimits(
        max_requests=args.max_requests or base.max_requests,
        max_bytes=args.max_bytes or base.max_bytes,
    )


def run(args: argparse.Namespace) -> int:
    """Plan, print the summary, and (with ``--write``) leave the files in DIR."""
    variables = parse_variables(args.var)
    if args.max_problems < 1:
        raise BatchValidationError(f"--max-problems must be at least 1, got {args.max_problems}")
    with _planning_provider(args) as provider:
        return _plan(args, provider, variables)


def _plan(args: argparse.Namespace, provider: BatchProvider, variables: dict[str, str]) -> int:
    from kyro._config.loader import load_config
    from kyro._cost.estimate import check_budget
    from kyro._job.submit_reuse import cache_scope_of, wants_samples
    from kyro._transcripts import iter_transcripts
    from kyro.cli._costing import cache_dir_of, format_cost, make_gate, max_cost_of, prices_of

    limits = _limits(provider.limits, args)
    max_cost = max_cost_of(args)
    config = load_config(args.config)
    config = resolve_models(
        config,
        model=getattr(args, "model", None),
        provider_default=getattr(provider, "default_model", None),
        provider=args.provider,
    )
    cache_dir = cache_dir_of(args, config.path)
    gate, estimator, cache = make_gate(
        [judge.name for judge in config.judges],
        args.provider,
        prices_of(args),
        cache_dir,
        scope=cache_scope_of(provider),
    )
    transcripts = iter_transcripts(transcript_paths(args.transcripts))
    try:
        with _progress(sys.stdout.isatty()) as advance, _writing(args.write):
            summary = build_shards(
                config,
                transcripts,
                encode=provider.encode,
                limits=limits,
                directory=args.write,
                runs=args.runs,
                variables=variables,
                max_problems=args.max_problems,
                on_transcript=advance,
                # Runs travel as n samples where the provider takes them for every model.
                samples=wants_samples(provider, config, args.runs, args.samples),
                gate=gate,
                encode_parts=getattr(provider, "encode_parts", None),
            )
    finally:
        if cache is not None:
            cache.close()
    for line in format_plan(config, summary, args.runs, limits, args.provider, args.write):
        print(line)
    for line in format_cost(estimator, hits=gate.hits, cache=cache_dir):
        print(line)
    check_budget(estimator.totals(), max_cost)
    return ExitCode.OK


@contextmanager
def _writing(folder: str | None) -> Iterator[None]:
    """A write failure under ``--write DIR`` (a full disk, a read-only folder) names DIR."""
    try:
        yield
    except OSError as exc:
        if folder is None:
            raise
        raise BatchValidationError(
            f"cannot write the plan here ({exc.strerror or exc}); free some space, make the "
            "folder writable or choose another --write folder",
            path=folder,
        ) from exc


def format_plan(
    config: JudgesConfig,
    summary: BuildSummary,
    runs: int,
    limits: BatchLimits,
    provider: str,
    written_to: str | None,
) -> Iterator[str]:
    """The lines ``kyro plan`` prints for ``summary``."""
    judges = len(config.judges)
    planned = summary.transcripts * judges * runs
    sent = f"{summary.requests:,} requests"
    if planned != summary.requests:
        sent = f"{planned:,} runs in {sent} (runs as n samples, or answered by the cache)"
    yield (
        f"plan for {config.path}: {summary.transcripts:,} transcripts × {judges} judges × "
        f"{runs} runs = {sent}"
    )
    if config.uses_pipeline:
        stages = config.graph().stages
        yield (
            f"pipeline of {len(stages)} stages: these counts assume every step runs for every "
            f"transcript (an upper bound; {{{{steps.…}}}} shows stand-in values); a batch job "
            f"sends stage 0 ({', '.join(stages[0])}) first, and each later stage only for the "
            "transcripts that qualify"
        )
    yield ""
    rows = [
        (j.name, j.model or "", f"{summary.requests_by_judge.get(j.name, 0):,}")
        for j in config.judges
    ]
    yield from _table(("judge", "model", "runs"), rows)
    yield ""
    shard_rows = [(s.name, s.model, f"{s.lines:,}", f"{s.bytes:,}") for s in summary.shards] or [
        ("(no shards: nothing to send)", "", "", "")
    ]
    yield from _table(("shard", "model", "requests", "bytes"), shard_rows)
    yield ""
    yield (
        f"total: {summary.requests:,} requests in {len(summary.shards)} shards, "
        f"{summary.bytes:,} bytes ({_mb(summary.bytes)})"
    )
    for model, count in summary.requests_by_model.items():
        yield f"  {model}: {count:,} requests"
    yield f"estimated input tokens: {summary.estimated_input_tokens:,} ({TOKEN_ESTIMATE})"
    yield (
        f"limits per shard ({provider}): {limits.max_requests:,} requests, "
        f"{limits.max_bytes:,} bytes"
    )
    if written_to is not None:
        yield f"written to {written_to}: {len(summary.shards)} shard files and {INDEX_FILENAME}"
    else:
        yield "nothing written (use --write DIR to write the shard files and transcript index)"


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> Iterator[str]:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [
            cell.rjust(width) if i >= 2 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        yield "  ".join(cells).rstrip()


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[Transcript], None]]:
    """A transient progress line on a terminal; a no-op callback otherwise."""
    if not enabled:
        yield _ignore
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("planning: {task.completed:,} transcripts"),
        TimeElapsedColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task("plan", total=None)
        count = 0

        def advance(_transcript: Transcript) -> None:
            nonlocal count
            count += 1
            if count % _PROGRESS_EVERY == 0:
                progress.update(task, completed=count)

        yield advance


def _ignore(_transcript: Transcript) -> None:
    return None
