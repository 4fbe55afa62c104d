"""``submit_eval`` / ``check_eval``: LLM judges at batch prices, with submit / exit / check.

``submit_eval`` runs the component on every item now and scores the outputs with the
deterministic scorers, keeps everything in the job's folder (``<state_dir>/<job_id>/``, 0700,
files 0600), then sends every LLM-judge score as one BatchJudge job through the provider and
returns. The process may exit. ``check_eval(job_id)`` — from any process, any time later —
polls once: None while the provider works, else the :class:`BatchEvalResult`, whose results
file is written durably before the job is marked done (checking again returns it from disk).

Crash safety is BatchJudge's: its state is written ahead of every remote step, so a crash may
cost an orphan upload, never a second batch. The eval's own steps, each recorded in
``eval-job.json`` (replaced atomically) before the next begins:

1. ``outputs_ready`` — items and transcripts on disk. A crash before this leaves no job;
2. the judge job is submitted (a crash here: ``check_eval`` finishes or starts that submit);
3. ``submitted`` — ``check_eval`` polls; when done it merges the scores into ``results.jsonl``;
4. ``done`` — with the run's statistics.
"""

from __future__ import annotations

import datetime
import itertools
import os
import time
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec

from kyro import BatchValidationError
from kyro.eval._export import replace_durably
from kyro.eval._items import ItemsSource, iter_items
from kyro.eval._judging import JudgeRun, errored_scores
from kyro.eval._records import BatchEvalStats
from kyro.eval._results import BatchEvalResult, EvalResults, ResultWriter
from kyro.eval._run import new_batch_id, prepare
from kyro.eval._scoring import ScorerSpec
from kyro.eval._spool import ITEMS, TRANSCRIPTS, Spool, item_worker, merge, run_items
from kyro.provider import BatchProvider

__all__ = ["cancel_eval", "check_eval", "submit_eval"]

DEFAULT_STATE_DIR = Path(".kyro") / "eval"
MANIFEST = "eval-job.json"
RESULTS = "results.jsonl"
Phase = Literal["outputs_ready", "submitted", "done"]


class _Manifest(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    job_id: str
    created_at: str
    provider: str
    phase: Phase
    scorers: list[str]
    judges: list[dict[str, Any]]
    items: int
    answered: int
    seconds: float
    stats: BatchEvalStats | None = None


class _Index(msgspec.Struct):
    index: int


def _folder(state_dir: str | Path | None, job_id: str) -> Path:
    root = Path(state_dir) if state_dir is not None else DEFAULT_STATE_DIR
    if not job_id or "/" in job_id or job_id.startswith("."):
        raise BatchValidationError(f"{job_id!r} is not an eval job id (eval-YYYYmmdd-…)")
    return root / job_id


def _save(folder: Path, manifest: _Manifest) -> None:
    with replace_durably(folder / MANIFEST) as file:
        file.write(msgspec.json.encode(manifest))


def _load(folder: Path, job_id: str) -> _Manifest:
    path = folder / MANIFEST
    try:
        return msgspec.json.decode(path.read_bytes(), type=_Manifest)
    except FileNotFoundError:
        if folder.is_dir():
            raise BatchValidationError(
                f"eval job {job_id} was interrupted while the component ran, before its "
                "outputs were saved; nothing was sent to the provider: submit the eval again",
                path=folder,
            ) from None
        raise BatchValidationError(
            f"no eval job {job_id} here: was it submitted with another state_dir?", path=path
        ) from None
    except (OSError, msgspec.DecodeError) as exc:
        raise BatchValidationError(f"the eval job's state is unreadable: {exc}", path=path) from exc


async def submit_eval(
    component: Callable[..., Any] | str,
    items: ItemsSource,
    *,
    scorers: Sequence[ScorerSpec] | ScorerSpec,
    provider: BatchProvider,
    expected: Sequence[Any] | None = None,
    state_dir: str | Path | None = None,
    judge_model: str | None = None,
    max_concurrency: int = 10,
    timeout: float | None = None,
    unpack_input: bool = False,
) -> str:
    """Run and score every item now, submit the LLM judges as one batch job; return its id.

    Takes :func:`~kyro.eval.evaluate`'s arguments; ``provider`` is the batch provider for the
    judges and ``state_dir`` (default ``.kyro/eval``) where the job is kept. Without LLM judges
    the job is done at once and :func:`check_eval` returns its result.

    Example::

        job_id = await submit_eval("app:answer", "dataset.jsonl",
                                   scorers=["exact_match", Correctness()],
                                   provider=OpenAIBatchProvider(), judge_model="gpt-4o-mini")
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
    entries = iter_items(items, expected)
    job_id = new_batch_id()
    folder = _folder(state_dir, job_id)
    folder.mkdir(mode=0o700, parents=True)
    with Spool(folder) as spool:
        await run_items(entries, item_worker(runner, plan, job_id, spool.add), max_concurrency)
    manifest = _Manifest(
        job_id=job_id,
        created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(),
        provider=provider.name,
        phase="outputs_ready",
        scorers=plan.names,
        judges=specs,
        items=spool.items,
        answered=spool.answered,
        seconds=time.perf_counter() - started,
    )
    _save(folder, manifest)
    if not specs or not spool.answered:
        _finish(folder, manifest, itertools.repeat([]))  # no judges: nothing to add
        return job_id
    await JudgeRun(provider, folder, specs).submit(spool.transcripts_path)
    _save(folder, msgspec.structs.replace(manifest, phase="submitted"))
    return job_id


async def check_eval(
    job_id: str, *, provider: BatchProvider, state_dir: str | Path | None = None
) -> BatchEvalResult | None:
    """Poll the eval job once: None while its judges are pending, else its result.

    ``provider`` must be the kind the job was submitted with. A job that is done returns the
    same result from disk every time.

    Example::

        result = await check_eval(job_id, provider=OpenAIBatchProvider())
        if result is not None:
            print(result.pass_rate)
    """
    folder = _folder(state_dir, job_id)
    manifest = _load(folder, job_id)
    if manifest.phase == "done":
        return _result(folder, manifest)
    run = _judge_run(folder, manifest, provider)
    if manifest.phase == "outputs_ready" and not await run.submitted():
        await run.submit(folder / TRANSCRIPTS)
    if manifest.phase == "outputs_ready":
        manifest = msgspec.structs.replace(manifest, phase="submitted")
        _save(folder, manifest)
    judged = await run.check()
    if judged is None:
        return None
    return _finish(folder, manifest, judged)


async def cancel_eval(
    job_id: str, *, provider: BatchProvider, state_dir: str | Path | None = None
) -> None:
    """Cancel the eval job's judge batches; the next :func:`check_eval` returns the result.

    Judge scores that finished are kept; the others are errored scores saying the judge job
    ended cancelled. A job whose judges were never sent is finished at once that way.

    Example::

        await cancel_eval(job_id, provider=OpenAIBatchProvider())
        result = await check_eval(job_id, provider=OpenAIBatchProvider())
    """
    folder = _folder(state_dir, job_id)
    manifest = _load(folder, job_id)
    if manifest.phase == "done":
        raise BatchValidationError(
            f"eval job {job_id} is already done; there is nothing to cancel",
            path=folder / MANIFEST,
        )
    run = _judge_run(folder, manifest, provider)
    if manifest.phase == "outputs_ready" and not await run.submitted():
        _finish(folder, manifest, errored_scores(manifest.judges, "cancelled before judging"))
        return
    await run.cancel()


def _judge_run(folder: Path, manifest: _Manifest, provider: BatchProvider) -> JudgeRun:
    if provider.name != manifest.provider:
        raise BatchValidationError(
            f"eval job {manifest.job_id} was submitted through the {manifest.provider!r} "
            f"provider; use that provider for it, not {provider.name!r}",
            path=folder / MANIFEST,
        )
    return JudgeRun(provider, folder, manifest.judges)


def _finish(folder: Path, manifest: _Manifest, judged: Any) -> BatchEvalResult:
    order = {name: i for i, name in enumerate(manifest.scorers)}
    # Written aside, then renamed: two processes checking at once each finish a whole file.
    partial = folder / f".{RESULTS}.{os.getpid()}.part"
    writer = ResultWriter(partial, manifest.scorers, mode=0o600)
    with writer:
        merge(folder / ITEMS, judged, writer, order)
    os.replace(partial, folder / RESULTS)
    done = msgspec.structs.replace(manifest, phase="done", stats=writer.stats(manifest.seconds))
    _save(folder, done)
    return _result(folder, done)


def _result(folder: Path, manifest: _Manifest) -> BatchEvalResult:
    path = folder / RESULTS
    offsets: array[int] = array("q", bytes(8 * manifest.items))
    decode = msgspec.json.Decoder(_Index).decode
    position = 0
    with path.open("rb") as file:
        for line in file:
            offsets[decode(line).index] = position
            position += len(line)
    assert manifest.stats is not None
    return BatchEvalResult(manifest.job_id, EvalResults(path, offsets), manifest.stats)
