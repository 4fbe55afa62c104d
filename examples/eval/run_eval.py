"""Evaluate the support agent with deterministic scorers and an LLM judge — no key, no network.

The judge's endpoint is kyro's OpenAI-compatible emulator, started here on 127.0.0.1; point
``LocalProvider(base_url=...)`` at Ollama, vLLM or OpenAI to use a real model instead.

    python3 examples/eval/run_eval.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from support_agent import answer  # noqa: E402  (the example's own folder, added above)

from kyro.eval import Helpfulness, LLMJudge, evaluate, scorer  # noqa: E402
from kyro_local import LocalProvider  # noqa: E402
from kyro_openai.testing import Emulator, serve  # noqa: E402


async def main() -> None:
    with serve(Emulator()) as url, tempfile.TemporaryDirectory() as state:
        judges = LocalProvider(base_url=url, api_key="emulated", state_dir=state)
        result = await evaluate(
            answer,
            HERE / "dataset.jsonl",
            scorers=[
                scorer("contains", ignore_case=True),
                scorer("length", max=30, unit="words"),
                Helpfulness(),
                LLMJudge("Does the reply avoid promising anything the agent cannot do?"),
            ],
            judge_provider=judges,
            judge_model="gpt-4o-mini",
            max_concurrency=4,
            timeout=5,
        )
        await judges.aclose()
    print(f"{result.batch_id}: {result.status}, pass rate {result.pass_rate:.0%}")
    for name, stats in result.stats.scorers.items():
        print(f"  {name:<12} pass {stats.pass_rate:.0%}  mean {stats.mean_score}")
    for item in result.results:
        mark = "PASS" if item.passed else "ERROR" if item.error else "FAIL"
        print(f"  {mark:<5} {item.item_id}: {item.error or item.output}")


if __name__ == "__main__":
    asyncio.run(main())
