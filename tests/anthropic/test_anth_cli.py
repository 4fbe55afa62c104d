"""End to end over HTTP, two processes: ``python -m kyro emulator --provider anthropic`` and
``python -m kyro submit/check --provider anthropic``; plus the conformance kit over HTTP."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kyro.testing import check_provider
from kyro_anthropic import AnthropicBatchProvider
from kyro_anthropic.testing import Emulator
from tests.anthropic.anthropic_helpers import CONFIG, KEY


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_"))}
    env.update(ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=url, NO_PROXY="127.0.0.1")
    return env


def _kyro(args: list[str], url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kyro", *args],
        env=_env(url),
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    """``python -m kyro emulator --provider anthropic --port 0`` in its own process."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "kyro", "emulator", "--provider", "anthropic"),
            *("--port", "0", "--in-progress-seconds", "0.5"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_env(""),
    )
    assert process.stdout is not None
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(30), "the emulator printed no URL"
        url = process.stdout.readline().decode().strip()
        assert url.startswith("http://127.0.0.1:")
        yield url
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()


@pytest.fixture
def job(tmp_path: Path) -> Path:
    """A config and three transcripts in ``tmp_path``."""
    (tmp_path / "judges.yml").write_text(CONFIG)
    data = tmp_path / "transcripts"
    data.mkdir()
    for i in range(3):
        (data / f"t{i}.txt").write_text(f"user: question {i}?\nassistant: answer {i}.")
    return tmp_path


@pytest.mark.slow
def test_submit_then_check_in_separate_processes(emulator_url: str, job: Path) -> None:
    """submit exits with a job id; a later check process collects every verdict."""
    submit = _kyro(
        ["submit", "judges.yml", "transcripts", "--provider", "anthropic", "--runs", "2"],
        emulator_url,
        job,
    )
    assert submit.returncode == 0, submit.stderr
    assert "collect it later with: python3 -m kyro check judges.yml --provider anthropic" in (
        submit.stdout
    )
    check = _kyro(
        ["check", "judges.yml", "--provider", "anthropic", "--wait", "--interval", "0.2"],
        emulator_url,
        job,
    )
    assert check.returncode == 0, check.stderr
    assert "requests: 12 (0 errored runs, 0 never came back)" in check.stdout
    (results,) = (job / ".kyro" / "judges.batch").glob("results-*.jsonl")
    evaluations = [json.loads(line) for line in results.read_text().splitlines()]
    assert [e["index"] for e in evaluations] == [0, 1, 2]
    every_file = b"".join(p.read_bytes() for p in job.rglob("*") if p.is_file())
    assert KEY.encode() not in every_file
    assert KEY not in submit.stdout + submit.stderr + check.stdout + check.stderr


@pytest.mark.slow
def test_a_config_mixing_openai_and_claude_models_is_refused(emulator_url: str, job: Path) -> None:
    """An OpenAI model in an anthropic job: exit 2 before any batch, saying one provider per job."""
    config = job / "judges.yml"
    config.write_text(CONFIG.replace("claude-sonnet-4-5", "gpt-4o"))
    control = emulator_url + "/_emulator/stats"
    before = httpx.get(control, timeout=10).json()["batches_created"]
    submit = _kyro(
        ["submit", "judges.yml", "transcripts", "--provider", "anthropic"], emulator_url, job
    )
    assert submit.returncode == 2
    assert "model 'gpt-4o'" in submit.stderr
    assert "one job runs on one provider" in submit.stderr
    assert "Traceback" not in submit.stderr
    assert httpx.get(control, timeout=10).json()["batches_created"] == before


@pytest.mark.slow  # python -m kyro in a child process
def test_plan_speaks_the_anthropic_format(job: Path) -> None:
    """``plan --provider anthropic`` uses its limits and needs no JSON wording in prompts."""
    plan = _kyro(["plan", "judges.yml", "transcripts", "--provider", "anthropic"], "", job)
    assert plan.returncode == 0, plan.stderr
    assert "limits per shard (anthropic): 100,000 requests" in plan.stdout
    assert "total: 6 requests in 2 shards" in plan.stdout


@pytest.mark.slow  # python -m kyro in a child process
def test_emulator_options_that_do_not_apply_are_refused(tmp_path: Path) -> None:
    """``--validating-seconds`` has no meaning for Message Batches: exit 2 with the reason."""
    refused = _kyro(
        ["emulator", "--provider", "anthropic", "--validating-seconds", "1"], "", tmp_path
    )
    assert refused.returncode == 2
    assert "--validating-seconds do not apply to --provider anthropic" in refused.stderr


@pytest.mark.slow  # end to end over HTTP
async def test_the_conformance_kit_passes_over_http(served: tuple[Emulator, str]) -> None:
    """encode, lifecycle, cancel and find keep every BatchProvider rule over real HTTP."""
    _, url = served
    async with AnthropicBatchProvider(api_key=KEY, base_url=url) as provider:
        await check_provider(provider, model="claude-haiku-4-5", requests=4, poll_interval=0.01)
