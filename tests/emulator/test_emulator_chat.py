"""``/v1/chat/completions`` and the responders: default verdicts, scripted and async replies."""

from __future__ import annotations

import functools
import json
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest

from kyro_openai.testing import Emulator, ScriptedResponder, default_responder
from tests.emulator.emulator_helpers import (
    api_client,
    created_and_read,
    jsonl,
    read_lines,
    request_line,
)


def _chat(prompt: str) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}


async def test_chat_completion_shape_and_usage(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    """A chat call answers a chat.completion with one choice and len//4 token estimates."""
    prompt = "x" * 400
    response = await client.post("/chat/completions", json=_chat(prompt))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "gpt-4o-mini"
    [choice] = body["choices"]
    assert (choice["index"], choice["finish_reason"], choice["message"]["role"]) == (
        0,
        "stop",
        "assistant",
    )
    content = choice["message"]["content"]
    assert body["usage"]["prompt_tokens"] == 100
    assert body["usage"]["completion_tokens"] == len(content) // 4
    assert body["usage"]["total_tokens"] == 100 + len(content) // 4
    assert emulator.stats().chat_completions == 1


async def test_chat_requires_model_and_messages(client: httpx.AsyncClient) -> None:
    """A chat body without model or messages is a 400 naming the parameter."""
    assert (await client.post("/chat/completions", json={"messages": []})).json()["error"][
        "param"
    ] == "model"
    no_messages = await client.post("/chat/completions", json={"model": "m"})
    assert no_messages.json()["error"]["param"] == "messages"
    not_json = await client.post("/chat/completions", content=b"{")
    assert not_json.status_code == 400


async def test_chat_honours_rate_limit_faults(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    """Chat calls see 429 faults like the control plane."""
    emulator.faults.rate_limit(scope="chat")
    assert (await client.post("/chat/completions", json=_chat("a"))).status_code == 429
    assert (await client.post("/chat/completions", json=_chat("a"))).status_code == 200


def test_default_responder_is_deterministic_and_says_emulated() -> None:
    """The default verdict follows the prompt alone, spans all statuses, says it is emulated."""
    replies = [json.loads(default_responder(_chat(f"transcript {i}"))) for i in range(300)]
    assert replies[0] == json.loads(default_responder(_chat("transcript 0")))
    statuses = [reply["status"] for reply in replies]
    assert set(statuses) == {"SUCCESS", "ERROR", "NA"}
    assert statuses.count("SUCCESS") > statuses.count("ERROR") > statuses.count("NA")
    assert all(reply["root_cause"].startswith("Emulated verdict: ") for reply in replies)


@pytest.fixture
def scripted() -> ScriptedResponder:
    """Replies for ``r1`` by custom id and for prompts mentioning refunds."""
    return ScriptedResponder(
        by_custom_id={"r1": '{"status": "ERROR", "root_cause": "scripted by id"}'},
        by_substring={"refund": '{"status": "NA", "root_cause": "scripted by text"}'},
    )


async def test_scripted_responder_in_a_batch(scripted: ScriptedResponder) -> None:
    """A scripted responder answers by custom id first, then by prompt substring, else default."""
    with Emulator(responder=scripted) as emulator:
        async with api_client(emulator, headers={"api-key": "k"}) as client:
            data = jsonl(
                [
                    request_line("r1"),
                    request_line("r2", prompt="a refund request"),
                    request_line("r3"),
                ]
            )
            batch = await created_and_read(client, data)
            lines = await read_lines(client, batch["output_file_id"])
            chat = await client.post("/chat/completions", json=_chat("refund please"))
    content = {
        line["custom_id"]: json.loads(line["response"]["body"]["choices"][0]["message"]["content"])
        for line in lines
    }
    assert content["r1"]["root_cause"] == "scripted by id"
    assert content["r2"]["root_cause"] == "scripted by text"
    assert content["r3"]["root_cause"].startswith("Emulated verdict")
    assert json.loads(chat.json()["choices"][0]["message"]["content"])["status"] == "NA"


async def test_async_responder_in_batches_and_chat() -> None:
    """An async responder serves batch lines (from the worker thread) and chat calls."""

    async def responder(body: dict[str, Any]) -> str:
        await anyio.lowlevel.checkpoint()
        return json.dumps({"status": "SUCCESS", "root_cause": body["messages"][0]["content"]})

    with Emulator(responder=responder) as emulator:
        async with api_client(emulator) as client:
            batch = await created_and_read(client, jsonl([request_line("a", prompt="p1")]))
            [line] = await read_lines(client, batch["output_file_id"])
            chat = await client.post("/chat/completions", json=_chat("p2"))
    assert (
        json.loads(line["response"]["body"]["choices"][0]["message"]["content"])["root_cause"]
        == "p1"
    )
    assert json.loads(chat.json()["choices"][0]["message"]["content"])["root_cause"] == "p2"


async def test_max_in_flight_chat_requests_are_recorded() -> None:
    """Stats record the highest number of chat calls in flight at once."""
    arrived = 0
    all_in = anyio.Event()

    async def responder(body: dict[str, Any]) -> str:
        nonlocal arrived
        arrived += 1
        if arrived == 5:
            all_in.set()
        await all_in.wait()
        return "{}"

    with Emulator(responder=responder) as emulator:
        async with (
            api_client(emulator) as client,
            anyio.create_task_group() as group,
        ):
            for i in range(5):
                group.start_soon(
                    functools.partial(client.post, "/chat/completions", json=_chat(str(i)))
                )
        stats = emulator.stats()
    assert (stats.chat_max_in_flight, stats.chat_in_flight, stats.chat_completions) == (5, 0, 5)


async def test_responder_failure_becomes_an_error_line() -> None:
    """A responder that raises turns its request into a 500 error line, not a dead batch."""

    def responder(body: dict[str, Any]) -> str:
        raise ValueError("boom")

    with Emulator(responder=responder) as emulator:
        async with api_client(emulator) as client:
            batch = await created_and_read(client, jsonl([request_line("a")]))
            [line] = await read_lines(client, batch["error_file_id"])
    assert batch["request_counts"] == {"total": 1, "completed": 0, "failed": 1}
    assert line["response"]["status_code"] == 500
    assert "boom" in line["response"]["body"]["error"]["message"]
