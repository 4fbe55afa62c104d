"""Cancel and expiry: partial output, ``batch_expired`` error lines, Azure's 0-byte error file."""

from __future__ import annotations

import httpx
import pytest

from kyro_openai.testing import Emulator, EmulatorConfig
from tests.emulator.emulator_helpers import (
    NOW,
    create_batch,
    created_and_read,
    get_batch,
    read_lines,
    requests,
)

TIMED = EmulatorConfig(in_progress_seconds=100, finalizing_seconds=5, cancelling_seconds=3)
EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."


@pytest.mark.parametrize("config", [TIMED])
async def test_cancel_keeps_finished_requests_only(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    """cancelling → cancelled: requests finished by the cancel are output, the rest absent."""
    bid = (await created_and_read(client, requests(10)))["id"]
    emulator.advance(40)
    response = await client.post(f"/batches/{bid}/cancel")
    assert response.status_code == 200
    cancelling = response.json()
    assert (cancelling["status"], cancelling["cancelling_at"]) == ("cancelling", int(NOW) + 40)
    again = await client.post(f"/batches/{bid}/cancel")
    assert again.json()["status"] == "cancelling"
    emulator.advance(2)
    assert (await get_batch(client, bid))["status"] == "cancelling"
    emulator.advance(1)
    cancelled = await get_batch(client, bid)
    assert (cancelled["status"], cancelled["cancelled_at"]) == ("cancelled", int(NOW) + 43)
    assert cancelled["request_counts"] == {"total": 10, "completed": 4, "failed": 0}
    lines = await read_lines(client, cancelled["output_file_id"])
    assert sorted(line["custom_id"] for line in lines) == ["r0", "r1", "r2", "r3"]
    assert cancelled["error_file_id"] is None
    assert emulator.stats().batches_cancelled == 1


@pytest.mark.parametrize("config", [EmulatorConfig(validating_seconds=5)])
async def test_cancel_while_validating_runs_nothing(client: httpx.AsyncClient) -> None:
    """A batch cancelled before validation ends is cancelled with no result files."""
    bid = (await create_batch(client, requests(3)))["id"]
    await client.post(f"/batches/{bid}/cancel")
    batch = await get_batch(client, bid)
    assert batch["status"] == "cancelled"
    assert (batch["output_file_id"], batch["error_file_id"]) == (None, None)
    assert batch["request_counts"]["total"] == 0


async def test_cancel_terminal_batch_is_400(client: httpx.AsyncClient) -> None:
    """Cancelling a completed batch is a 400 envelope naming its status."""
    bid = (await created_and_read(client, requests(1)))["id"]
    response = await client.post(f"/batches/{bid}/cancel")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Cannot cancel a batch with status 'completed'."


@pytest.mark.parametrize("config", [TIMED])
async def test_forced_expiry_writes_batch_expired_lines(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    """``expire()`` ends a batch ``expired``: finished lines output, the rest ``batch_expired``."""
    bid = (await created_and_read(client, requests(10)))["id"]
    emulator.advance(10)
    emulator.expire(bid, completed_lines=3)
    batch = await get_batch(client, bid)
    assert (batch["status"], batch["expired_at"]) == ("expired", int(NOW) + 10)
    assert batch["request_counts"] == {"total": 10, "completed": 3, "failed": 7}
    done = await read_lines(client, batch["output_file_id"])
    assert sorted(line["custom_id"] for line in done) == ["r0", "r1", "r2"]
    expired = await read_lines(client, batch["error_file_id"])
    assert sorted(line["custom_id"] for line in expired) == [f"r{i}" for i in range(3, 10)]
    for line in expired:
        assert line["response"] is None
        assert line["error"] == {"code": "batch_expired", "message": EXPIRED_MESSAGE}


@pytest.mark.parametrize("config", [TIMED])
async def test_expire_control_route(client: httpx.AsyncClient, emulator: Emulator) -> None:
    """``POST /_emulator/batches/{id}/expire`` expires a batch for tests in another process."""
    bid = (await create_batch(client, requests(4)))["id"]
    response = await client.post(
        f"http://emulator/_emulator/batches/{bid}/expire", json={"completed_lines": 1}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "expired"
    assert response.json()["request_counts"] == {"total": 4, "completed": 1, "failed": 3}
    missing = await client.post("http://emulator/_emulator/batches/batch_nope/expire")
    assert missing.status_code == 404


async def test_expire_fault_after_lines(client: httpx.AsyncClient, emulator: Emulator) -> None:
    """``expire_next(after_lines=2)`` makes the next batch expire with two finished requests."""
    emulator.faults.expire_next(after_lines=2)
    batch = await created_and_read(client, requests(5))
    assert batch["status"] == "expired"
    assert len(await read_lines(client, batch["output_file_id"])) == 2
    assert len(await read_lines(client, batch["error_file_id"])) == 3
    follow_up = await created_and_read(client, requests(5))
    assert follow_up["status"] == "completed"


@pytest.mark.parametrize("config", [EmulatorConfig(in_progress_seconds=48 * 3600)])
async def test_window_expiry_after_24_hours(client: httpx.AsyncClient, emulator: Emulator) -> None:
    """A batch still running when its 24 h window ends expires with the share it finished."""
    bid = (await created_and_read(client, requests(10)))["id"]
    emulator.advance(30 * 3600)
    batch = await get_batch(client, bid)
    assert (batch["status"], batch["expired_at"]) == ("expired", batch["expires_at"])
    assert batch["request_counts"] == {"total": 10, "completed": 5, "failed": 5}


@pytest.mark.parametrize("config", [EmulatorConfig(in_progress_seconds=100, partial_fraction=0.2)])
async def test_partial_fraction_fixes_the_share(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    """``partial_fraction`` fixes how many requests finished, whatever the timing."""
    bid = (await created_and_read(client, requests(10)))["id"]
    emulator.advance(90)
    await client.post(f"/batches/{bid}/cancel")
    batch = await get_batch(client, bid)
    assert batch["request_counts"]["completed"] == 2


@pytest.mark.parametrize("config", [EmulatorConfig(azure_mode=True)])
async def test_azure_mode_success_has_empty_error_file(client: httpx.AsyncClient) -> None:
    """In Azure mode a fully successful batch still points at a 0-byte error file."""
    batch = await created_and_read(client, requests(2))
    assert batch["status"] == "completed"
    info = (await client.get(f"/files/{batch['error_file_id']}")).json()
    assert info["bytes"] == 0
    assert (await client.get(f"/files/{batch['error_file_id']}/content")).content == b""
