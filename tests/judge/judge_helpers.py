"""Shared pieces of the BatchJudge tests: a config, emulator-backed providers, subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from kyro.provider import BatchLimits
from kyro_openai import OpenAIBatchProvider
from kyro_openai.testing import Emulator

NOW = 1_800_000_000.0
WORKER = Path(__file__).with_name("judge_worker.py")
ROOT = Path(__file__).resolve().parents[2]
AUTH = {"Authorization": "Bearer sk-test"}
JUDGES = ("relevance", "tone")


def config_text(names: tuple[str, ...] = JUDGES) -> str:
    """A judges config whose judges reply in JSON, one per name."""
    judges = "".join(
        f"  - name: {name}\n"
        f"    prompt: 'Judge the {name} of this exchange. Reply in JSON. {{{{input}}}}'\n"
        "    output_format: json\n"
        for name in names
    )
    return f"version: 1\nmodel: gpt-4o-mini\njudges:\n{judges}"


def write_config(folder: Path, names: tuple[str, ...] = JUDGES) -> Path:
    """Write ``judges.yml`` into ``folder`` and return its path."""
    path = folder / "judges.yml"
    path.write_text(config_text(names))
    return path


async def _no_sleep(seconds: float) -> None:
    return None


def emulator_provider(emulator: Emulator, *, max_requests: int = 50_000) -> OpenAIBatchProvider:
    """An OpenAI provider talking to ``emulator`` in-process (ASGI), never really sleeping."""
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=emulator.app), base_url="http://emulator/v1"
    )
    return OpenAIBatchProvider(
        base_url="http://emulator/v1",
        api_key="sk-test",
        client=client,
        sleep=_no_sleep,
        limits=BatchLimits(max_requests=max_requests, max_bytes=10 * 1024 * 1024),
    )


def run_worker(*args: str, expect_kill: bool = False) -> dict[str, Any]:
    """Run ``judge_worker.py`` with ``args`` in a fresh process; return its JSON output."""
    done = subprocess.run(
        [sys.executable, str(WORKER), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'providers'}"},
        check=False,
    )
    if expect_kill:
        assert done.returncode == -9, done.stderr
        return {}
    assert done.returncode == 0, done.stderr
    output: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return output


def list_batches(url: str) -> list[dict[str, Any]]:
    """Every batch the emulator at ``url`` holds, through the public list endpoint."""
    batches: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"after": after} if after else {})}
        page = httpx.get(f"{url}/batches", params=params, headers=AUTH).json()
        batches.extend(page["data"])
        if not page["has_more"]:
            return batches
        after = page["last_id"]


def batches_per_shard(url: str, job_id: str) -> Counter[str]:
    """How many batches the emulator holds for each shard index of ``job_id``."""
    return Counter(
        b["metadata"]["kyro_shard"]
        for b in list_batches(url)
        if b["metadata"]["kyro_job"] == job_id
    )
