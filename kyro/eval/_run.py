"""``evaluate``: run a component on every item, score every output, return a ``BatchEvalResult``.

LLM judges run live here: their requests go through ``judge_provider`` — a ``LocalProvider``
(an OpenAI-compatible endpoint or a Python callable, at bounded concurrency) answers at once;
a batch provider is polled every ``poll_interval`` seconds until done. For large sets whose
process should not wait, use :func:`~kyro.eval.submit_eval` / :func:`~kyro.eval.check_eval`.
"""

from __future__ import annotations

import datetime
import functools
import itertools
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio

from kyro.eval._component import Runner, load_component
from kyro.eval._items import EvalItem, ItemsSource, iter_items
from kyro.eval._judging import judge_now, judge_specs
from kyro.eval._records import BatchEvalItemResult
from kyro.eval._results import BatchEvalResult, ResultWriter
from kyro.eval._scoring import ScorerPlan, ScorerSpec, plan_scorers
from kyro.eval._spool import Spool, item_worker, merge, run_items
from kyro.provider import BatchProvider

__all__ = ["evaluate", "evaluate_one", "evaluate_sync", "new_batch_id", "prepare"]


def new_batch_id() -> str:
    """``eval-YYYYmmdd-HHMMSS-xxxxxx`` (UTC): sortable and unique."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return f"eval-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def prepare(
    component: Callable[..., Any] | str,
    scorers: Sequence[ScorerSpec] | ScorerSpec,
    *,
    max_concurrency: int,
    timeout: float | None,
    unpack_input: bool,
    judge_model: str | None,
) -> tuple[Runner, ScorerPlan, list[dict[str, Any]]]:
    """Check the arguments shared by every entry point; the runner, the scorer plan and the
    LLM judges' settings with their models resolved."""
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, not {max_concurrency}")
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, not {timeout}")
    plan = plan_scorers(scorers)
    runner = Runner(
        load_component(component),
        concurrency=max_concurrency,
        timeout=timeout,
        unpack_input=unpack_input,
    )
    return runner, plan, judge_specs(plan.judges, judge_model)


async def evaluate(
    component: Callable[..., Any] | str,
    items: ItemsSource,
    *,
    scorers: Sequence[ScorerSpec] | ScorerSpec,
    expected: Sequence[Any] | None = None,
    max_concurrency: int = 10,
    timeout: float | None = None,  # noqa: ASYNC109 (per item, not for the call)
    judge_provider: BatchProvider | None = None,
    judge_model: str | None = None,
    results_path: str | Path | None = None,
    unpack_input: bool = False,
    poll_interval: float = 30.0,
) -> BatchEvalResult:
    """Run ``component`` on every item, score every output, and return the run's result.

    ``component`` is a sync or async callable taking the item's input (``unpack_input=True``
    passes a mapping input as keyword arguments), or ``"module:function"``. ``items`` and
    ``expected`` take every form described in ``kyro.eval._items``; ``scorers`` those in
    ``kyro.eval._scoring``. At most ``max_concurrency`` items run at once; ``timeout``
    (seconds) bounds each item. LLM judges need ``judge_provider``; their model is the
    judge's own, else ``judge_model``, else ``KYRO_MODEL``.

    Results are written to ``results_path`` (JSONL, one item a line) as they finish; without
    it, to a temporary file removed with the returned result.

    Example::

        result = await evaluate(
            answer,
            [{"input": "2+2?", "expected": "4"}, {"input": "3*3?", "expected": "9"}],
            scorers=["numeric_close", Correctness(model="gpt-4o-mini")],
            judge_provider=LocalProvider(base_url="http://127.0.0.1:11434/v1"),
        )
        print(f"{result.pass_rate:.0%}")
    """
    started = time.perf_counter()
    runner, plan, specs = prepare(
        component,
        scorers,
        max_concurrency=max_concurrency,
        timeout=timeout,
        unpack_input=unpack_input,
        judge_model=judge_model,
    )
    if specs and judge_provider is None:
        raise ValueError(
            f"LLM judge {plan.judges[0].name!r} needs judge_provider=: a LocalProvider (an "
            "OpenAI-compatible endpoint or a callable) or any batch provider"
        )
    entries = iter_items(items, expected)
    batch_id = new_batch_id()
    if results_path is None:
        handle, name = tempfile.mkstemp(prefix=f"kyro-{batch_id}-", suffix=".jsonl")
        os.close(handle)
        path, temporary = Path(name), True
    else:
        path, temporary = Path(results_path), False
    writer = ResultWriter(path, plan.names, mode=0o600 if temporary else 0o644)
    try:
        if not specs:
            work = item_worker(runner, plan, batch_id, lambda item, _v, _e: writer.add(item))
            await run_items(entries, work, max_concurrency)
        else:
            assert judge_provider is not None
            with tempfile.TemporaryDirectory(prefix=f"kyro-{batch_id}-") as folder:
                await _judged(
                    entries,
                    runner,
                    plan,
                    specs,
                    judge_provider,
                    Path(folder),
                    writer,
                    batch_id=batch_id,
                    concurrency=max_concurrency,
                    poll_interval=poll_interval,
                )
    except BaseException:
        writer.close()
        if temporary:
            path.unlink(missing_ok=True)
        raise
    return writer.result(batch_id, time.perf_counter() - started, temporary=temporary)


async def _judged(
    entries: Any,
    runner: Runner,
    plan: ScorerPlan,
    specs: list[dict[str, Any]],
    provider: BatchProvider,
    folder: Path,
    writer: ResultWriter,
    *,
    batch_id: str,
    concurrency: int,
    poll_interval: float,
) -> None:
    with Spool(folder) as spool:
        await run_items(entries, item_worker(runner, plan, batch_id, spool.add), concurrency)
    judged: Any = itertools.repeat([])  # no item answered: no judge to ask
    if spool.answered:
        judged = await judge_now(
            provider, folder, specs, spool.transcripts_path, poll_interval=poll_interval
        )
    merge(spool.items_path, judged, writer, plan.order)


def evaluate_sync(
    component: Callable[..., Any] | str,
    items: ItemsSource,
    **options: Any,
) -> BatchEvalResult:
    """:func:`evaluate` for scripts: runs its own event loop (never call it from async code).

    Example::

        result = evaluate_sync("my_app:answer", "dataset.jsonl", scorers=["exact_match"])
    """
    return anyio.run(functools.partial(evaluate, component, items, **options))


async def evaluate_one(
    component: Callable[..., Any] | str,
    input: Any,
    *,
    scorers: Sequence[ScorerSpec] | ScorerSpec,
    expected: Any = None,
    item_id: str | None = None,
    **options: Any,
) -> BatchEvalItemResult:
    """Evaluate one input: the component's output and every score, now.

    Takes :func:`evaluate`'s keyword arguments (``timeout``, ``judge_provider``, …).

    Example::

        item = await evaluate_one(answer, "Where is my order?", scorers=[Helpfulness()],
                                  judge_provider=provider)
        print(item.passed, item.output)
    """
    item = EvalItem(input, expected=expected, item_id=item_id)
    result = await evaluate(component, [item], scorers=scorers, **options)
    try:
        return result.results[0]
    finally:
        if result.results_path.exists() and options.get("results_path") is None:
            result.results_path.unlink()
