"""A separate process for the BatchJudge tests: submit or check one job, print JSON, exit.

Usage::

    judge_worker.py submit URL CONFIG STATE_DIR --transcripts N --runs R [--crash WHEN]
    judge_worker.py check URL CONFIG STATE_DIR

``--crash`` kills this process with SIGKILL at a chosen point of submit():
``before_create:N`` (the Nth batch's file is uploaded, its creation not sent),
``after_create:N`` (the Nth batch exists, its id not yet saved) or ``before_save`` (the job
is planned and its shards written, the first state save not done).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from typing import Any

import anyio
import httpx
import msgspec

from kyro import BatchJudge, BatchRunResult
from kyro.provider import BatchLimits, BatchProvider
from kyro_openai import OpenAIBatchProvider
from tests.support.disk import KillingDisk
from tests.support.providers import CrashingProvider


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class CreateKillingTransport(httpx.AsyncBaseTransport):
    """Passes requests through, killing the process as the Nth batch creation is sent (its
    file is uploaded by then: a point inside one provider call, so the transport's to cut)."""

    def __init__(self, nth: int) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.nth = nth
        self.creates = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/batches"):
            self.creates += 1
            if self.creates == self.nth:
                _die()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def summary(result: BatchRunResult) -> dict[str, Any]:
    """The result as plain JSON, evaluations included."""
    return {
        "job_id": result.job_id,
        "status": result.status,
        "counts": msgspec.to_builtins(result.counts),
        "usage": msgspec.to_builtins(result.usage),
        "results_path": str(result.results_path),
        "evaluations": [
            {
                "index": e.index,
                "status": e.status,
                "verdicts": {n: [v.status, v.votes] for n, v in e.verdicts.items()},
            }
            for e in result.evaluations
        ],
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    when, _, nth = (args.crash or "").partition(":")
    transport: httpx.AsyncBaseTransport = (
        CreateKillingTransport(int(nth)) if when == "before_create" else httpx.AsyncHTTPTransport()
    )
    # before_save: the process dies at the first write of the job's state file.
    disk = KillingDisk(
        before=lambda path: when == "before_save" and path.name.endswith(".batch-state.json")
    )
    async with httpx.AsyncClient(transport=transport) as client:
        provider: BatchProvider = OpenAIBatchProvider(
            base_url=args.url,
            api_key="sk-test",
            client=client,
            limits=BatchLimits(max_requests=args.max_requests, max_bytes=10 * 1024 * 1024),
        )
        if when == "after_create":  # the Nth batch exists, its id never reaches the state
            provider = CrashingProvider(provider, at=int(nth), reached=1, kill=True)
        # Runs as separate requests: these scenarios count shards and batches per run.
        judge = BatchJudge(
            provider,
            args.config,
            state_dir=args.state_dir,
            lock_timeout=60,
            samples=False,
            disk=disk,
        )
        if args.command == "submit":
            texts = [f"transcript number {i}" for i in range(args.transcripts)]
            return {"job_id": await judge.submit(texts, runs=args.runs)}
        result = await judge.check()
        return {"pending": True} if result is None else summary(result)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["submit", "check"])
    parser.add_argument("url")
    parser.add_argument("config")
    parser.add_argument("state_dir")
    parser.add_argument("--transcripts", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--max-requests", type=int, default=5)
    parser.add_argument("--crash", default=None)
    print(json.dumps(anyio.run(main, parser.parse_args())), flush=True)
