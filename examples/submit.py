"""Submit the example transcripts to the example judges, save the job, and exit (cron, step 1).

    python3 examples/submit.py          # prints the job id; then run examples/check.py later

Settings come from the environment, exactly as OpenAIBatchProvider reads them:

* ``OPENAI_API_KEY`` — your API key (the emulator accepts any non-empty value);
* ``OPENAI_BASE_URL`` — optional, default OpenAI's API. To try this with no key and no network,
  serve kyro's emulator in another terminal and point both variables at it::

      python3 -m kyro emulator --port 8000 --in-progress-seconds 20
      export OPENAI_API_KEY=sk-emulator OPENAI_BASE_URL=http://127.0.0.1:8000/v1

The job's state goes to ``.kyro/`` beside ``judges.yml`` (here: ``examples/.kyro/``). Running
this again while the job is pending is refused with a message saying how to check or cancel it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from kyro import BatchJudge, KyroError
from kyro_openai import OpenAIBatchProvider

HERE = Path(__file__).resolve().parent


async def main() -> int:
    """Submit examples/transcripts × 3 judges × 3 runs; return the process exit code."""
    judge = BatchJudge(OpenAIBatchProvider(), HERE / "judges.yml")
    try:
        job_id = await judge.submit([HERE / "transcripts"], runs=3)
    except KyroError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        await judge.provider.aclose()
    print(f"submitted {job_id}; state in {judge.state_path}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
