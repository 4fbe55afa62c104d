"""``n`` on the emulator: n choices per request, the prompt's tokens counted once."""

from __future__ import annotations

import itertools
import json
from typing import Any

from kyro_openai.testing import Emulator
from tests.emulator.emulator_helpers import (
    api_client,
    created_and_read,
    jsonl,
    read_lines,
    request_line,
)


def _cycling_responder() -> Any:
    statuses = itertools.cycle(["SUCCESS", "ERROR", "SUCCESS"])

    def responder(body: dict[str, Any]) -> str:
        return json.dumps({"status": next(statuses), "root_cause": "sampled"})

    return responder


def _with_n(custom_id: str, n: object, prompt: str = "x" * 400) -> dict[str, Any]:
    line = request_line(custom_id, prompt=prompt)
    line["body"]["n"] = n
    return line


async def test_batch_line_with_n_has_n_choices_and_prompt_counted_once() -> None:
    """A batch line with n=3 comes back with 3 choices, one reply each, and usage whose
    prompt_tokens are the prompt's once while completion_tokens sum the choices."""
    with Emulator(responder=_cycling_responder()) as emulator:
        async with api_client(emulator) as client:
            data = jsonl([_with_n("t0-j0-r0", 3), request_line("single", prompt="x" * 400)])
            batch = await created_and_read(client, data)
            lines = {
                line["custom_id"]: line
                for line in await read_lines(client, batch["output_file_id"])
            }
    body = lines["t0-j0-r0"]["response"]["body"]
    assert [choice["index"] for choice in body["choices"]] == [0, 1, 2]
    statuses = [json.loads(c["message"]["content"])["status"] for c in body["choices"]]
    assert statuses == ["SUCCESS", "ERROR", "SUCCESS"]
    single = lines["single"]["response"]["body"]
    assert len(single["choices"]) == 1
    reply_tokens = sum(len(c["message"]["content"]) // 4 for c in body["choices"])
    assert body["usage"] == {
        "prompt_tokens": 100,
        "completion_tokens": reply_tokens,
        "total_tokens": 100 + reply_tokens,
    }
    assert single["usage"]["prompt_tokens"] == 100
    assert batch["request_counts"] == {"total": 2, "completed": 2, "failed": 0}


async def test_invalid_n_is_a_400_line_and_a_400_chat() -> None:
    """n outside 1..128 (or not an integer) fails that request with a 400 naming `n`."""
    with Emulator() as emulator:
        async with api_client(emulator) as client:
            data = jsonl([_with_n("zero", 0), _with_n("big", 129), _with_n("text", "3")])
            batch = await created_and_read(client, data)
            errors = await read_lines(client, batch["error_file_id"])
            chat = await client.post(
                "/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 0},
            )
            ok = await client.post(
                "/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 2},
            )
    assert sorted(line["custom_id"] for line in errors) == ["big", "text", "zero"]
    for line in errors:
        assert line["response"]["status_code"] == 400
        assert line["response"]["body"]["error"]["param"] == "n"
    assert chat.status_code == 400
    assert chat.json()["error"]["param"] == "n"
    assert len(ok.json()["choices"]) == 2
    assert ok.json()["usage"]["prompt_tokens"] == 1
