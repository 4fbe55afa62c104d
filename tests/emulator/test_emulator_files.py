"""The Files routes: upload, list, retrieve, download, delete, auth and error envelopes."""

from __future__ import annotations

import httpx
import pytest

from kyro_openai.testing import Emulator
from tests.emulator.emulator_helpers import NOW, requests, upload
from tests.spec_schemas import validate_response


def _assert_envelope(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["x-request-id"].startswith("req_")
    error: dict[str, object] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


async def test_upload_returns_a_spec_file_object_stored_on_disk(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    """An upload answers a File object with size, times and purpose, and its bytes are on disk."""
    data = requests(3)
    file = await upload(client, data)
    assert file["id"].startswith("file-")
    assert file["bytes"] == len(data)
    assert file["created_at"] == int(NOW)
    assert file["expires_at"] == int(NOW) + 30 * 24 * 3600
    assert (file["filename"], file["purpose"], file["status"]) == (
        "input.jsonl",
        "batch",
        "processed",
    )
    stored = emulator.store.get(file["id"])
    assert stored is not None
    assert stored.path.is_relative_to(emulator.root)
    assert stored.path.read_bytes() == data


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    """Successful and failed calls alike carry an ``x-request-id`` header, unique per call."""
    first = await client.get("/files")
    second = await client.get("/files/file-missing")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    assert second.headers["x-request-id"].startswith("req_")


async def test_batch_upload_must_be_jsonl(client: httpx.AsyncClient) -> None:
    """A purpose=batch upload whose name does not end .jsonl is refused like the real API."""
    response = await client.post(
        "/files", files={"file": ("input.json", b"{}\n")}, data={"purpose": "batch"}
    )
    error = _assert_envelope(response, 400)
    assert error["message"] == "Invalid file format for Batch API. Must be .jsonl"


@pytest.mark.parametrize("name", ["upload", "shard-0003", "input.JSONL", "dir/input.jsonl"])
async def test_batch_upload_without_another_extension_is_accepted(
    client: httpx.AsyncClient, name: str
) -> None:
    """A batch upload named ``upload`` (SDKs name bytes so), extensionless or .JSONL is taken."""
    data = requests(2)
    response = await client.post("/files", files={"file": (name, data)}, data={"purpose": "batch"})
    assert response.status_code == 200, response.text
    file = response.json()
    assert (file["filename"], file["bytes"], file["purpose"]) == (name, len(data), "batch")


async def test_bytes_upload_as_a_client_sends_it_makes_a_batch(client: httpx.AsyncClient) -> None:
    """Bytes uploaded with no file name given (the client names the part) run as a batch."""
    response = await client.post("/files", files={"file": requests(2)}, data={"purpose": "batch"})
    assert response.status_code == 200, response.text
    body = {
        "input_file_id": response.json()["id"],
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    batch = (await client.post("/batches", json=body)).json()
    done = (await client.get(f"/batches/{batch['id']}")).json()
    assert (done["status"], done["request_counts"]["completed"]) == ("completed", 2)


@pytest.mark.parametrize("name", ["input.json", "input.jsonl.gz", "input.csv"])
async def test_batch_upload_with_another_extension_is_refused(
    client: httpx.AsyncClient, name: str
) -> None:
    """Only a name whose extension is not .jsonl is refused, with the real service's words."""
    response = await client.post(
        "/files", files={"file": (name, requests(1))}, data={"purpose": "batch"}
    )
    error = _assert_envelope(response, 400)
    assert (error["message"], error["param"]) == (
        "Invalid file format for Batch API. Must be .jsonl",
        "file",
    )


async def test_unknown_purpose_is_refused(client: httpx.AsyncClient) -> None:
    """An unknown purpose is a 400 naming the ``purpose`` parameter."""
    response = await client.post("/files", files={"file": ("a.jsonl", b"")}, data={"purpose": "x"})
    assert _assert_envelope(response, 400)["param"] == "purpose"


async def _upload_expiring(client: httpx.AsyncClient, seconds: str) -> httpx.Response:
    """Upload a one-line batch file asking it to expire ``seconds`` after its creation."""
    return await client.post(
        "/files",
        files={"file": ("a.jsonl", requests(1))},
        data={
            "purpose": "batch",
            "expires_after[anchor]": "created_at",
            "expires_after[seconds]": seconds,
        },
    )


async def test_expires_after_sets_expires_at(client: httpx.AsyncClient) -> None:
    """``expires_after[anchor]``/``[seconds]`` sets ``expires_at`` from the creation time."""
    response = await _upload_expiring(client, "3600")
    assert response.status_code == 200
    assert response.json()["expires_at"] == int(NOW) + 3600


async def test_expires_after_out_of_range_is_refused(client: httpx.AsyncClient) -> None:
    """Expiry seconds outside 3600..2592000 are a 400 on ``expires_after``."""
    response = await _upload_expiring(client, "60")
    assert _assert_envelope(response, 400)["param"] == "expires_after"


async def test_list_files_filters_orders_and_pages(client: httpx.AsyncClient) -> None:
    """Listing filters by purpose, sorts newest first by default, and pages with ``after``."""
    ids = [(await upload(client, requests(1), f"f{i}.jsonl"))["id"] for i in range(3)]
    other = await upload(client, b"x", "notes.txt", purpose="user_data")
    response = await client.get("/files", params={"purpose": "batch"})
    body = response.json()
    validate_response("/files", "get", body)
    assert [f["id"] for f in body["data"]] == ids[::-1]
    assert (body["first_id"], body["last_id"], body["has_more"]) == (ids[2], ids[0], False)
    page = (await client.get("/files", params={"order": "asc", "limit": 2})).json()
    assert [f["id"] for f in page["data"]] == ids[:2]
    assert page["has_more"] is True
    rest = (await client.get("/files", params={"order": "asc", "after": page["last_id"]})).json()
    assert [f["id"] for f in rest["data"]] == [ids[2], other["id"]]
    assert rest["has_more"] is False


async def test_empty_file_list_has_null_cursors(client: httpx.AsyncClient) -> None:
    """With no files the list is empty and ``first_id``/``last_id`` are null."""
    body = (await client.get("/files")).json()
    validate_response("/files", "get", body)
    assert body == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


async def test_list_files_rejects_bad_query(client: httpx.AsyncClient) -> None:
    """A bad ``order`` or ``limit`` is a 400 naming the parameter."""
    assert (
        _assert_envelope(await client.get("/files", params={"order": "up"}), 400)["param"]
        == "order"
    )
    assert (
        _assert_envelope(await client.get("/files", params={"limit": 0}), 400)["param"] == "limit"
    )


async def test_retrieve_download_and_delete(client: httpx.AsyncClient) -> None:
    """A file can be retrieved, downloaded byte for byte, deleted, and is then 404."""
    data = requests(2)
    file = await upload(client, data)
    retrieved = (await client.get(f"/files/{file['id']}")).json()
    validate_response("/files/{file_id}", "get", retrieved)
    assert retrieved == file
    content = await client.get(f"/files/{file['id']}/content")
    assert content.content == data
    assert content.headers["content-length"] == str(len(data))
    deleted = (await client.delete(f"/files/{file['id']}")).json()
    validate_response("/files/{file_id}", "delete", deleted)
    assert deleted == {"id": file["id"], "object": "file", "deleted": True}
    error = _assert_envelope(await client.get(f"/files/{file['id']}"), 404)
    assert error["message"] == f"No such File object: {file['id']}"


async def test_missing_key_is_401(emulator: Emulator) -> None:
    """A call without ``Authorization: Bearer`` or ``api-key`` is a 401 envelope."""
    transport = httpx.ASGITransport(app=emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as bare:
        assert _assert_envelope(await bare.get("/v1/files"), 401)["code"] == "invalid_api_key"
        empty = await bare.get("/v1/files", headers={"Authorization": "Bearer "})
        assert empty.status_code == 401
        azure = await bare.get("/openai/v1/files", headers={"api-key": "k"})
        assert azure.status_code == 200
        assert azure.json()["object"] == "list"


@pytest.mark.parametrize(("method", "path"), [("GET", "/nowhere"), ("PUT", "/files")])
async def test_unknown_routes_use_the_envelope(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    """Unknown paths (404) and methods (405) answer with the error envelope too."""
    response = await client.request(method, path)
    assert response.status_code in (404, 405)
    assert "message" in response.json()["error"]
