"""A separate process for the batch-eval tests: submit, check, or die at a chosen point.

    python eval_child.py URL STATE_DIR DATASET MODE

MODE: ``submit`` (print the job id, exit), ``submit-hang`` (print it, then wait to be
killed), ``kill-before-upload`` / ``kill-after-create`` (SIGKILL itself inside the judge
batch's submission), ``check JOB_ID`` (print the result as JSON, or ``pending``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kyro.eval import LLMJudge, check_eval, scorer, submit_eval
from kyro_openai import OpenAIBatchProvider


async def shout(text: str) -> str:
    """The component under test: upper-cases, and fails on 'boom'."""
    await asyncio.sleep(0)
    if text == "boom":
        raise ValueError("cannot shout boom")
    return text.upper()


class Dying:
    """A provider that SIGKILLs its own process before or after creating a batch."""

    def __init__(self, inner: OpenAIBatchProvider, when: str) -> None:
        self.inner = inner
        self.when = when

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def submit(self, path: Path, *, metadata: Mapping[str, str]) -> str:
        if self.when == "kill-before-upload":
            os.kill(os.getpid(), signal.SIGKILL)
        batch_id = await self.inner.submit(path, metadata=metadata)
        os.kill(os.getpid(), signal.SIGKILL)
        return batch_id


async def main(url: str, state_dir: str, dataset: str, mode: str, *rest: str) -> None:
    provider = OpenAIBatchProvider(base_url=url)
    if mode == "check":
        result = await check_eval(rest[0], provider=provider, state_dir=state_dir)
        await provider.aclose()
        if result is None:
            print("pending")
            return
        summary = {
            "status": result.status,
            "pass_rate": result.pass_rate,
            "items": [
                {
                    "index": r.index,
                    "output": r.output,
                    "error": r.error,
                    "scores": {s.scorer: [s.score, s.passed, s.error] for s in r.scores},
                }
                for r in result.results
            ],
        }
        print(json.dumps(summary))
        return
    chosen: Any = provider if mode in ("submit", "submit-hang") else Dying(provider, mode)
    job_id = await submit_eval(
        shout,
        dataset,
        scorers=[scorer("exact_match"), LLMJudge("Is it shouted?", name="shouted")],
        provider=chosen,
        judge_model="gpt-4o-mini",
        state_dir=state_dir,
    )
    print(job_id, flush=True)
    if mode == "submit-hang":
        await asyncio.sleep(600)
    await provider.aclose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
