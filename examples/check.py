"""Poll the job examples/submit.py started, once (cron, step 2).

    python3 examples/check.py     # exit 0 complete, 3 still pending, 4 job failed, 2 no job

Run it on a schedule (``*/10 * * * *``) until it exits 0: it prints a compact summary and the
path of the results file (one JSON line per transcript). It uses the same environment as
submit.py: ``OPENAI_API_KEY`` and, for the emulator (``python3 -m kyro emulator``),
``OPENAI_BASE_URL=http://127.0.0.1:8000/v1``. Checking again after completion prints the same
result, read from disk.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from kyro import BatchJobError, BatchJudge, KyroError
from kyro_openai import OpenAIBatchProvider

HERE = Path(__file__).resolve().parent


async def main() -> int:
    """Check once; print the outcome; return 0, 3, 4 or 2 as the docstring says."""
    judge = BatchJudge(OpenAIBatchProvider(), HERE / "judges.yml")
    try:
        result = await judge.check()
    except BatchJobError as exc:
        print(f"job {exc.job_id} ended {exc.status}: {exc}", file=sys.stderr)
        return 4
    except KyroError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await judge.provider.aclose()
    if result is None:
        print("still pending: check again later")
        return 3
    counts = result.counts
    print(
        f"{result.job_id}: {result.status} — {counts.success} SUCCESS, {counts.error} ERROR, "
        f"{counts.partial} PARTIAL, {counts.errored} errored of {counts.transcripts}"
    )
    for name, votes in counts.judges.items():
        print(f"  {name}: {votes.success} SUCCESS, {votes.error} ERROR, {votes.na} NA")
    print(f"results: {result.results_path}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
