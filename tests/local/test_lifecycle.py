"""LocalProvider's batches on disk: cancel, crash, checks from other processes, find, files."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from kyro import ProviderError
from kyro.provider import JudgeRequest, Message
from kyro_local import LocalProvider

_CHECK = """
import json, sys, anyio
from kyro_local import LocalProvider

async def main():
    provider = LocalProvider(handler=lambda body: "", state_dir=sys.argv[1])
    status = await provider.poll(sys.argv[2])
    lines = [[l.custom_id, l.ok, l.content, l.error and l.error.code]
             async for l in provider.results(sys.argv[2])]
    print(json.dumps({"state": status.state, "provider_status": status.provider_status,
                      "total": status.request_counts.total, "lines": sorted(lines)}))

anyio.run(main)
"""

_CRASH = """
import os, sys, anyio
from pathlib import Path
from kyro_local import LocalProvider

state_dir = Path(sys.argv[1])

async def handler(body):
    if body["messages"][0]["content"] == "die":
        # wait until the five earlier outcomes are on disk, then die without cleaning up
        while sum(1 for f in state_dir.glob("*/output.jsonl") for _ in f.open()) < 5:
            await anyio.sleep(0.01)
        os._exit(3)
    return "done"

anyio.run(lambda: LocalProvider(handler=handler, concurrency=1, state_dir=state_dir).submit(
    Path(sys.argv[2]), metadata={"job": "crash"}))
"""


async def _python(*args: str) -> str:
    result = await anyio.run_process([sys.executable, "-c", *args], check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


async def test_cancel_mid_run_keeps_finished_lines(make_shard: Any, tmp_path: Path) -> None:
    """Cancel stops the run: finished lines are kept, the rest come back as batch_cancelled."""
    calls = {"n": 0}
    four_hanging = anyio.Event()

    async def handler(body: dict[str, Any]) -> str:
        calls["n"] += 1
        if calls["n"] > 5:
            if calls["n"] == 9:
                four_hanging.set()
            await anyio.sleep_forever()
        return "done"

    provider = LocalProvider(handler=handler, concurrency=4, state_dir=tmp_path / "s")
    shard = make_shard([f"m{i}" for i in range(20)])
    submitted: dict[str, str] = {}

    async def submit() -> None:
        submitted["id"] = await provider.submit(shard, metadata={"job": "c"})

    async with anyio.create_task_group() as tg:
        tg.start_soon(submit)
        await four_hanging.wait()
        (running,) = await provider.find({"job": "c"})
        assert running.state == "running"
        status = await provider.cancel(running.batch_id)
    assert status.state == "cancelled"
    assert submitted["id"] == running.batch_id
    lines = [line async for line in provider.results(running.batch_id)]
    assert len(lines) == 20
    assert len({line.custom_id for line in lines}) == 20
    assert sum(line.ok for line in lines) == 5
    rest = [line.error for line in lines if not line.ok]
    assert {(e.code, e.retryable) for e in rest if e} == {("batch_cancelled", True)}
    later = await LocalProvider(handler=handler, state_dir=tmp_path / "s").poll(running.batch_id)
    assert (later.state, later.request_counts.completed) == ("cancelled", 5)


@pytest.mark.slow  # a child process
async def test_check_from_a_second_process(make_shard: Any, tmp_path: Path) -> None:
    """Another process finds the batch by id and reads its state and every result."""
    provider = LocalProvider(handler=lambda body: "yes", state_dir=tmp_path / "s")
    batch_id = await provider.submit(make_shard(["a", "b", "c"]), metadata={})
    report = json.loads(await _python(_CHECK, str(tmp_path / "s"), batch_id))
    assert report["state"] == "completed"
    assert report["total"] == 3
    assert report["lines"] == [[f"t{i}-j0-r0", True, "yes", None] for i in range(3)]


@pytest.mark.slow  # a child process killed mid-run
async def test_crashed_run_reads_as_interrupted(make_shard: Any, tmp_path: Path) -> None:
    """A batch whose process died reads as expired/interrupted; unfinished lines are missing."""
    shard = make_shard(["a", "b", "c", "d", "e", "die", "g", "h"])
    result = await anyio.run_process(
        [sys.executable, "-c", _CRASH, str(tmp_path / "s"), str(shard)], check=False
    )
    assert result.returncode == 3
    provider = LocalProvider(handler=lambda body: "", state_dir=tmp_path / "s")
    (status,) = await provider.find({"job": "crash"})
    assert (status.state, status.provider_status) == ("expired", "interrupted")
    assert [e.code for e in status.errors] == ["interrupted"]
    lines = {line.custom_id: line async for line in provider.results(status.batch_id)}
    assert sorted(k for k, v in lines.items() if v.ok) == [f"t{i}-j0-r0" for i in range(5)]
    missing = [lines[f"t{i}-j0-r0"].error for i in (5, 6, 7)]
    assert all(e is not None and (e.code, e.retryable) == ("missing", True) for e in missing)
    cancelled = await provider.cancel(status.batch_id)
    assert cancelled.state == "expired"  # already terminal: nothing to cancel


async def test_find_matches_metadata_and_unknown_ids_fail(make_shard: Any, tmp_path: Path) -> None:
    """find returns batches whose metadata holds every pair; an unknown id is a ProviderError."""
    provider = LocalProvider(handler=lambda body: "x", state_dir=tmp_path / "s")
    first = await provider.submit(make_shard(["a"]), metadata={"job": "1", "shard": "0"})
    second = await provider.submit(make_shard(["b"]), metadata={"job": "2", "shard": "0"})
    assert [s.batch_id for s in await provider.find({"job": "2"})] == [second]
    assert [s.batch_id for s in await provider.find({"shard": "0"})] == [first, second]
    assert (await provider.find({"job": "1"}))[0].metadata == {"job": "1", "shard": "0"}
    with pytest.raises(ProviderError, match="no local batch") as info:
        await provider.poll("batch_local_nope")
    assert info.value.code == "batch_not_found"


async def test_bad_input_lines_become_errored_lines(tmp_path: Path) -> None:
    """Broken JSON and foreign urls are per-line ``invalid_request`` errors; blank lines skip."""
    good = JudgeRequest(
        custom_id="t0-j0-r0", model="m", messages=(Message(role="user", content="hi"),)
    )
    provider = LocalProvider(handler=lambda body: "ok", state_dir=tmp_path / "s")
    buf = bytearray()
    provider.encode(good, buf)
    buf += b"\n{not json\n"
    buf += b'{"custom_id": "e1", "method": "POST", "url": "/v1/embeddings", "body": {}}\n'
    shard = tmp_path / "mixed.jsonl"
    shard.write_bytes(bytes(buf))
    batch_id = await provider.submit(shard, metadata={})
    lines = {line.custom_id: line async for line in provider.results(batch_id)}
    assert set(lines) == {"t0-j0-r0", "line-3", "e1"}
    assert lines["t0-j0-r0"].ok
    assert {lines["line-3"].error.code, lines["e1"].error.code} == {"invalid_request"}  # type: ignore[union-attr]
    assert (await provider.poll(batch_id)).request_counts.total == 3


async def test_batch_files_are_private(make_shard: Any, tmp_path: Path) -> None:
    """The batch folder is 0700 and its files 0600."""
    provider = LocalProvider(handler=lambda body: "ok", state_dir=tmp_path / "s")
    batch_id = await provider.submit(make_shard(["a"]), metadata={})
    folder = tmp_path / "s" / batch_id
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("batch.json", "output.jsonl"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    assert json.loads((folder / "batch.json").read_bytes())["state"] == "completed"
