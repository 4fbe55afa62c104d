"""Security: the API key never leaks, files are private, templates never expand twice, and
the emulator listens on loopback only."""

from __future__ import annotations

import logging
import secrets
import socket
import stat
import threading
import traceback
from pathlib import Path
from typing import Any

import pytest

from kyro import BatchJudge, BatchRunResult, KyroError, ProviderError
from kyro.provider import RetryPolicy
from kyro_local import LocalProvider
from kyro_openai import OpenAIBatchProvider
from kyro_openai.testing import Emulator, EmulatorConfig, HttpErrorFault, default_responder, serve
from tests.support.scenarios import EmulatorProcess, Job, check_until_done, run_kyro, served

FAST = RetryPolicy(max_retries=1, initial_backoff=0.001, max_backoff=0.001)


def _marked_key() -> str:
    return f"sk-MARKED-{secrets.token_hex(8)}"


def _files_holding(folder: Path, needle: str) -> list[Path]:
    return [
        path
        for path in folder.rglob("*")
        if path.is_file() and needle.encode() in path.read_bytes()
    ]


def _modes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode)
        for p in folder.rglob("*")
        if p.is_file()
    }


async def test_marked_key_is_never_written_or_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole job (resubmission and a local fallback included) writes and logs no API key."""
    key = _marked_key()
    caplog.set_level(logging.DEBUG)
    for name in ("kyro", "kyro_openai", "kyro_local", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    job = Job(tmp_path / "job", "security-files")
    emulator = Emulator(EmulatorConfig(seed=3))
    emulator.faults.missing_lines(custom_ids={"t0-j0-r0"})
    with emulator, serve(emulator) as url:
        provider = OpenAIBatchProvider(api_key=key, base_url=url, retry=FAST)
        fallback = LocalProvider(url, api_key=key, retry=FAST, state_dir=tmp_path / "local")
        judge = BatchJudge(provider, job.config, state_dir=job.state_dir, fallback=fallback)
        try:
            await judge.submit([job.data], runs=job.runs)
            emulator.faults.clear()
            pending = _modes(job.state_dir)
            result = await check_until_done(judge)
        finally:
            await provider.aclose()
            await fallback.aclose()
    assert isinstance(result, BatchRunResult)
    assert result.counts.errored == 0
    assert any("httpx" in r.name or "httpcore" in r.name for r in caplog.records)
    assert key not in caplog.text
    assert any((tmp_path / "local").rglob("*")), "the fallback wrote its own files"
    assert _files_holding(tmp_path, key) == []
    assert all(mode == 0o600 for mode in _modes(tmp_path / "local").values())
    assert key not in repr(provider)
    assert key not in repr(judge)
    assert key not in repr(fallback)
    assert pending["judges.batch-state.json"] == 0o600
    assert all(mode == 0o600 for mode in pending.values()), pending
    final = _modes(job.state_dir)
    assert final["judges.batch-done.json"] == 0o600
    assert final[f"judges.batch/{result.results_path.name}"] == 0o600
    assert all(mode == 0o600 for mode in final.values()), final


@pytest.mark.slow  # python -m kyro in a child process
def test_marked_key_stays_out_of_cli_output_and_files(tmp_path: Path) -> None:
    """``submit`` and ``check -vv`` (debug logs of kyro and httpx) never print or write the key."""
    job = Job(tmp_path / "job", "security-cli")
    with EmulatorProcess() as emulator:
        submitted = run_kyro([*job.submit_args(), "-vv"], url=emulator.url)
        checked = run_kyro([*job.check_args(), "-vv"], url=emulator.url)
    assert submitted.returncode == 0, submitted.stderr
    assert checked.returncode == 0, checked.stderr
    assert "HTTP Request" in checked.stderr or "->" in checked.stderr
    from tests.support.scenarios import API_KEY

    for output in (submitted.stdout, submitted.stderr, checked.stdout, checked.stderr):
        assert API_KEY not in output
    assert _files_holding(tmp_path, API_KEY) == []


def _error_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc.args)


@pytest.mark.slow  # end to end over HTTP
@pytest.mark.parametrize("status", [401, 500])
async def test_error_answers_never_carry_the_key(tmp_path: Path, status: int) -> None:
    """A 401 or 500 whose message echoes the key becomes a ProviderError without it."""
    key = _marked_key()
    fault = HttpErrorFault(status=status, message=f"Incorrect API key provided: {key}", times=None)
    job = Job(tmp_path / "job", f"security-{status}")
    with served(EmulatorConfig(), faults=[fault]) as (_, url):
        provider = OpenAIBatchProvider(api_key=key, base_url=url, retry=FAST, sleep=_no_sleep)
        judge = BatchJudge(provider, job.config, state_dir=job.state_dir)
        with pytest.raises(ProviderError) as caught:
            await judge.submit([job.data])
        await provider.aclose()
    assert caught.value.status_code == status
    assert "<secret>" in str(caught.value)
    assert key not in _error_text(caught.value)
    assert _files_holding(tmp_path, key) == []


async def test_connection_refused_error_never_carries_the_key(tmp_path: Path) -> None:
    """A refused connection becomes a ProviderError naming the URL, never the key."""
    key = _marked_key()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    job = Job(tmp_path / "job", "security-refused")
    provider = OpenAIBatchProvider(
        api_key=key, base_url=f"http://127.0.0.1:{port}/v1", retry=FAST, sleep=_no_sleep
    )
    judge = BatchJudge(provider, job.config, state_dir=job.state_dir)
    with pytest.raises(ProviderError) as caught:
        await judge.submit([job.data])
    await provider.aclose()
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert key not in _error_text(caught.value)
    assert isinstance(caught.value, KyroError)
    assert _files_holding(tmp_path, key) == []


async def _no_sleep(seconds: float) -> None:
    """Retries in these tests never wait."""


@pytest.mark.slow  # end to end over HTTP
async def test_braces_in_transcripts_and_variables_reach_the_provider_literally(
    tmp_path: Path,
) -> None:
    """``{{…}}`` inside a transcript or a variable's value is sent as is, never expanded."""
    seen: list[dict[str, Any]] = []
    lock = threading.Lock()

    def recording(body: dict[str, Any]) -> str:
        with lock:
            seen.append(body)
        return default_responder(body)

    folder = tmp_path / "job"
    folder.mkdir()
    config = folder / "judges.yml"
    config.write_text(
        "version: 1\nmodel: gpt-4o-mini\njudges:\n  - name: braces\n"
        '    prompt: "Product {{variables.product}}. Reply with JSON only. {{input}}"\n'
        "    output_format: json\n",
        encoding="utf-8",
    )
    transcript = "user: what is {{variables.product}} and {{input}} and {{ input.a }}?"
    with served(EmulatorConfig(), responder=recording) as (_, url):
        provider = OpenAIBatchProvider(api_key="sk-test", base_url=url, retry=FAST)
        judge = BatchJudge(provider, config, state_dir=folder / "state")
        try:
            await judge.submit([transcript], variables={"product": "{{input}} X {{variables.p}}"})
            result = await check_until_done(judge)
        finally:
            await provider.aclose()
    assert isinstance(result, BatchRunResult)
    (body,) = seen
    content = body["messages"][-1]["content"]
    assert content == (
        "Product {{input}} X {{variables.p}}. Reply with JSON only. "
        "user: what is {{variables.product}} and {{input}} and {{ input.a }}?"
    )


def _listening_on(port: int) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) listening on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if int(hex_port, 16) == port and state == "0A":  # 0A: LISTEN
                found.append(address)
    return found


@pytest.mark.slow  # python -m kyro in a child process
def test_emulator_command_binds_loopback_only() -> None:
    """``python -m kyro emulator --port 0`` prints a 127.0.0.1 URL and listens there only."""
    with EmulatorProcess() as emulator:
        assert emulator.url.startswith("http://127.0.0.1:")
        port = int(emulator.url.split(":")[2].split("/")[0])
        if not Path("/proc/net/tcp").exists():
            pytest.skip("no /proc/net/tcp to inspect the bound socket")
        assert _listening_on(port) == ["0100007F"]  # 127.0.0.1, little-endian hex


def test_serve_binds_loopback_by_default() -> None:
    """``serve(emulator)`` listens on 127.0.0.1 unless given another host."""
    with Emulator() as emulator, serve(emulator) as url:
        port = int(url.split(":")[2].split("/")[0])
        assert url.startswith("http://127.0.0.1:")
        if Path("/proc/net/tcp").exists():
            assert _listening_on(port) == ["0100007F"]
