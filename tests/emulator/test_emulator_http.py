"""The emulator over real HTTP on 127.0.0.1: the serve helper, the CLI command, packaging."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

import kyro_openai.testing
from kyro_openai.testing import Emulator, EmulatorConfig, serve
from tests.emulator.emulator_helpers import AUTH, create_batch, get_batch, read_lines, requests
from tests.support.fresh import modules_loaded


@pytest.fixture
def served() -> Iterator[tuple[Emulator, str]]:
    """An emulator with timed phases, served by uvicorn on 127.0.0.1 in a background thread."""
    config = EmulatorConfig(validating_seconds=5, in_progress_seconds=60, finalizing_seconds=5)
    with Emulator(config, clock=lambda: 1_700_000_000.0) as emulator, serve(emulator) as url:
        yield emulator, url


@pytest.fixture
async def http(served: tuple[Emulator, str]) -> AsyncIterator[httpx.AsyncClient]:
    """A client talking to the served emulator over TCP."""
    async with httpx.AsyncClient(base_url=served[1], headers=AUTH) as client:
        yield client


async def test_lifecycle_over_real_http(
    served: tuple[Emulator, str], http: httpx.AsyncClient
) -> None:
    """Upload, create, poll through every status (clock moved over HTTP), download results."""
    _, url = served
    assert url.startswith("http://127.0.0.1:")
    assert url.endswith("/v1")
    control = url.removesuffix("/v1") + "/_emulator"
    bid = (await create_batch(http, requests(6)))["id"]
    seen = [(await get_batch(http, bid))["status"]]
    for seconds in (5, 30, 30, 5):
        await http.post(f"{control}/clock/advance", json={"seconds": seconds})
        seen.append((await get_batch(http, bid))["status"])
    assert seen == ["validating", "in_progress", "in_progress", "finalizing", "completed"]
    batch = await get_batch(http, bid)
    lines = await read_lines(http, batch["output_file_id"])
    assert sorted(line["custom_id"] for line in lines) == [f"r{i}" for i in range(6)]
    listed = (await http.get("/batches")).json()
    assert listed["first_id"] == bid
    stats = (await http.get(f"{control}/stats")).json()
    assert stats["batches_created"] == 1


async def test_dropped_connection_over_real_http(
    served: tuple[Emulator, str], http: httpx.AsyncClient
) -> None:
    """Over TCP a dropped connection is a transport error with no response; the server lives on."""
    emulator, _ = served
    emulator.faults.drop_connection()
    with pytest.raises(httpx.RemoteProtocolError):
        await http.get("/batches")
    assert (await http.get("/batches")).status_code == 200


async def _drain(response: httpx.Response, into: bytearray) -> None:
    async for chunk in response.aiter_raw():
        into.extend(chunk)


async def test_download_dropped_midway_over_real_http(
    served: tuple[Emulator, str], http: httpx.AsyncClient
) -> None:
    """A download cut after N bytes delivers headers and N bytes, then fails while reading."""
    emulator, _ = served
    bid = (await create_batch(http, requests(50)))["id"]
    emulator.advance(100)
    batch = await get_batch(http, bid)
    size = (await http.get(f"/files/{batch['output_file_id']}")).json()["bytes"]
    emulator.faults.drop_download(after_bytes=1000)
    received = bytearray()
    async with http.stream("GET", f"/files/{batch['output_file_id']}/content") as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(size)
        with pytest.raises(httpx.RemoteProtocolError):
            await _drain(response, received)
    assert len(received) == 1000
    assert len(await read_lines(http, batch["output_file_id"])) == 50


@pytest.mark.slow  # python -m kyro in a child process
def test_cli_command_serves_until_terminated() -> None:
    """``python -m kyro emulator --port 0`` prints its URL, serves the API, stops on SIGTERM."""
    command = [sys.executable, "-m", "kyro", "emulator", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            assert url.endswith("/v1")
            response = httpx.get(f"{url}/batches", headers=AUTH)
            assert response.status_code == 200
            assert response.json()["object"] == "list"
            assert httpx.get(f"{url}/batches").status_code == 401
        finally:
            process.terminate()
            process.wait(timeout=20)
    assert process.returncode == 0


@pytest.mark.slow  # python -m kyro in a child process
def test_cli_rejects_a_bad_fault() -> None:
    """A ``--fault`` that is not a fault object exits 2 with a message, serving nothing."""
    done = subprocess.run(
        [sys.executable, "-m", "kyro", "emulator", "--port", "0", "--fault", '{"kind": "x"}'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "bad --fault" in done.stderr


@pytest.mark.slow  # a fresh interpreter in a child process
def test_import_kyro_openai_does_not_load_the_emulator() -> None:
    """``import kyro_openai`` imports neither the emulator nor its server dependencies."""
    servers = ["starlette", "uvicorn", "multipart", "kyro_openai.testing", "kyro.testing"]
    assert modules_loaded("import kyro_openai", servers) == []


def test_emulator_is_documented() -> None:
    """The emulator's face documents its main class (the names are pinned with the others')."""
    assert kyro_openai.testing.Emulator.__doc__
