"""The one seam between the eval layer and kyro's judges: scored items in, LLM scores out.

Every :class:`~kyro.eval.LLMJudge` of a run becomes a judge of a generated judges config in the
run's folder; each item the component answered becomes one structured transcript
``{"input", "output", "expected"}`` of a ``.jsonl`` file; a :class:`~kyro.BatchJudge` over that
config submits them through the given provider — a ``LocalProvider`` answers at once, a batch
provider later — so request planning, batch files, crash-safe state, resubmission and verdict
parsing are BatchJudge's own. ``check`` then yields, per transcript in file order, one
:class:`ScorerResultSummary` per judge.

Judge model, first found: the judge's ``model`` → the run's ``judge_model`` → ``KYRO_MODEL``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import msgspec

from kyro import BatchJobError, BatchJudge, BatchValidationError, JudgeVerdict
from kyro.eval._records import ScorerResultSummary, errored_score
from kyro.provider import BatchProvider

__all__ = [
    "NO_EXPECTED",
    "JudgeRun",
    "errored_scores",
    "judge_now",
    "judge_specs",
    "transcript",
]

NO_EXPECTED = "(no expected output was given)"
CONFIG_NAME = "eval-judges.yml"
_PROMPT = """\
You are evaluating the output of a system under test against one criterion.

<criterion>
{{variables.criteria}}
</criterion>
{input_block}
<output>
{{input.output}}
</output>

<expected_output>
{{input.expected}}
</expected_output>

Reply with only a JSON object: {"status": "SUCCESS" if the output meets the criterion, \
otherwise "ERROR", "score": a number from 0 (does not meet it at all) to 1 (fully meets it), \
"root_cause": one sentence saying why}."""
_INPUT_BLOCK = "\n<input>\n{{input.input}}\n</input>\n"


def transcript(value: Any, output: Any, expected: Any) -> dict[str, Any]:
    """The structured transcript one item's judges read."""
    return {
        "input": value,
        "output": output,
        "expected": NO_EXPECTED if expected is None else expected,
    }


def judge_specs(judges: Sequence[Any], judge_model: str | None) -> list[dict[str, Any]]:
    """Every LLM judge's settings with its model resolved (see the module docstring)."""
    fallback = judge_model or os.environ.get("KYRO_MODEL") or None
    specs = []
    for judge in judges:
        spec = judge.describe()
        spec["model"] = spec["model"] or fallback
        if not spec["model"]:
            raise BatchValidationError(
                f"LLM judge {judge.name!r} has no model: pass model= to it, judge_model= to the "
                "eval (--model on the command line), or set KYRO_MODEL"
            )
        specs.append(spec)
    return specs


def _config(specs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    judges = []
    for spec in specs:
        block = _INPUT_BLOCK if spec["include_input"] else ""
        judges.append(
            {
                "name": spec["name"],
                "model": spec["model"],
                "prompt": _PROMPT.replace("{input_block}", block),
                "output_format": "json",
                "params": {"temperature": spec["temperature"]},
                # The criteria travel as a variable: substituted once, never read as a template.
                "variables": {"criteria": spec["criteria"]},
            }
        )
    return {"version": 1, "name": "kyro-eval", "judges": judges}


class JudgeRun:
    """The LLM judges of one eval run, kept in ``folder`` (config, BatchJudge state).

    Example::

        run = JudgeRun(provider, folder, specs)
        await run.submit(folder / "transcripts.jsonl")
        scores = await run.check()     # None while the provider works
    """

    def __init__(
        self, provider: BatchProvider, folder: Path, specs: Sequence[Mapping[str, Any]]
    ) -> None:
        self.specs = list(specs)
        self.folder = folder
        config = folder / CONFIG_NAME
        if not config.exists():
            # JSON is YAML: the generated config is written once and read by BatchJudge.
            config.write_bytes(msgspec.json.encode(_config(self.specs)))
        self.judge = BatchJudge(provider, config, state_dir=folder / "judge-state")

    async def submit(self, transcripts: Path) -> str:
        """Send every transcript of the ``.jsonl`` file to every judge; return the job id."""
        return await self.judge.submit([transcripts])

    async def submitted(self) -> bool:
        """True when BatchJudge holds a job for this run (pending, ended or collected)."""
        try:
            await self.judge.status()
        except BatchValidationError:
            return False
        return True

    async def check(self) -> Iterator[list[ScorerResultSummary]] | None:
        """None while pending; else, per transcript in order, one score per judge.

        A job that ended failed, expired or cancelled still yields: what finished is scored
        and the rest are errored scores naming the job's status.
        """
        try:
            result = await self.judge.check()
        except BatchJobError as exc:
            if exc.result is None:
                return errored_scores(self.specs, f"the judge job ended {exc.status}")
            return self._scores(exc.result.evaluations, f"the judge job ended {exc.status}")
        if result is None:
            return None
        return self._scores(result.evaluations, None)

    def _scores(self, evaluations: Any, ended: str | None) -> Iterator[list[ScorerResultSummary]]:
        for evaluation in evaluations:
            yield [
                _summary(spec, evaluation.verdicts.get(spec["name"]), ended) for spec in self.specs
            ]
        while True:  # transcripts the job never reported: keep the caller's zip whole
            yield [errored_score(spec["name"], ended or "no verdict") for spec in self.specs]

    async def cancel(self) -> None:
        """Ask the provider to cancel the judge job's unfinished batches."""
        await self.judge.cancel()

    async def aclose(self) -> None:
        """Close the provider."""
        await self.judge.aclose()


async def judge_now(
    provider: BatchProvider,
    folder: Path,
    specs: Sequence[Mapping[str, Any]],
    transcripts: Path,
    *,
    poll_interval: float,
) -> Iterator[list[ScorerResultSummary]]:
    """The live path: every judge on every transcript, waited for; the scores in file order.

    A ``LocalProvider`` answers within the submit; a batch provider is polled every
    ``poll_interval`` seconds. This is the one place a live judge runner plugs in.
    """
    run = JudgeRun(provider, folder, specs)
    await run.submit(transcripts)
    while (judged := await run.check()) is None:  # noqa: ASYNC110 (polls a provider)
        await anyio.sleep(poll_interval)
    return judged


def errored_scores(
    specs: Sequence[Mapping[str, Any]], why: str
) -> Iterator[list[ScorerResultSummary]]:
    """Endless lists of errored scores, one per judge, all saying ``why``."""
    while True:
        yield [errored_score(spec["name"], why) for spec in specs]


def _summary(
    spec: Mapping[str, Any], verdict: JudgeVerdict | None, ended: str | None
) -> ScorerResultSummary:
    """One judge's verdict as a score; ``ended`` says how the job ended when it failed."""
    name = spec["name"]
    if verdict is None:
        return errored_score(name, ended or "no verdict")
    if verdict.status == "ERRORED":
        run_error = next((r.error for r in verdict.runs if r.error is not None), None)
        error = run_error or verdict.error  # the run's own reason is the more specific
        detail = f"{error.code}: {error.message}" if error else "no valid verdict"
        why = f"the judge gave no verdict ({detail})"
        return errored_score(name, f"{ended}: {why}" if ended else why)
    scores = [r.score for r in verdict.runs if r.status != "ERRORED" and r.score is not None]
    if scores:
        score = sum(scores) / len(scores)
        passed = score >= spec["pass_threshold"]
    else:
        score = 0.0 if verdict.status == "ERROR" else 1.0
        passed = verdict.status != "ERROR"
    return ScorerResultSummary(
        scorer=name, score=score, passed=passed, explanation=verdict.root_cause
    )
