"""Written plan lines are, byte for byte, a plain msgspec encode of the documented line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from kyro import BatchValidationError
from kyro._build.plan_build import build_shards
from kyro._plan.planner import plan_requests
from kyro._transcripts import Transcript
from kyro_openai import OPENAI_LIMITS, encode_request
from tests.plan_helpers import make_config, make_judge

HOSTILE = [
    "plain ascii",
    "",
    'quotes " and backslashes \\ and a slash /',
    "tabs\tnew\nlines\r\nand form\ffeeds\b",
    "control \x00\x01\x1f\x7f end",
    "unicode: é ü ß — “curly” 日本語 😀 \u2028 \u2029 \ufeff",
    "braces {{input}} stay {{ literal }}",
    "x" * 5000,
]
STRUCTURED: list[Any] = [
    {"conversation": "a\nb", "empty": "", "nested": {"list": [1, 2.5, None, True, "ü"]}},
    {"": "empty key", "k": "\x00\u2028"},
    ["a", {"b": "c"}],
]


def _config() -> Any:
    return make_config(
        make_judge("tone", params={"temperature": 0, "max_tokens": 40}),
        make_judge("facts", model="gpt-4o", system="Be strict: {{input}}"),
        make_judge("plain", prompt="Plain {{input}}", model="gpt-3.5-turbo"),
    )


def _expected(request: Any) -> bytes:
    """The line from the format's description alone: a dict in the documented key order."""
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
    }
    if "response_format" not in request.params and request.json_output:
        schema = request.response_schema
        if request.model.startswith("gpt-4o") and schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": schema.name,
                    "strict": schema.strict,
                    "schema": schema.schema,
                },
            }
        else:
            body["response_format"] = {"type": "json_object"}
    if request.samples > 1:
        body["n"] = request.samples
    body.update(request.params)
    line = {"custom_id": request.custom_id, "method": "POST", "url": "/v1/chat/completions"}
    return msgspec.json.encode({**line, "body": body}) + b"\n"


@pytest.mark.parametrize("samples", [False, True])
def test_written_lines_equal_a_plain_encode_over_hostile_transcripts(
    tmp_path: Path, samples: bool
) -> None:
    """Every line of a written plan (runs reused, params spliced) equals the plain encode."""
    values = [*HOSTILE, *STRUCTURED]
    transcripts = [Transcript(index=i, source=f"inline:{i}", value=v) for i, v in enumerate(values)]
    config = _config()
    out = tmp_path / "plan"
    build_shards(
        config,
        transcripts,
        encode=encode_request,
        limits=OPENAI_LIMITS,
        directory=out,
        runs=3,
        samples=samples,
    )
    requests = list(plan_requests(config, transcripts, runs=3, samples=samples))
    written: dict[str, list[bytes]] = {}
    for path in sorted(out.glob("shard-*.jsonl")):
        for line in path.read_bytes().splitlines(keepends=True):
            model = msgspec.json.decode(line)["body"]["model"]
            written.setdefault(model, []).append(line)
    expected: dict[str, list[bytes]] = {}
    for request in requests:
        expected.setdefault(request.model, []).append(_expected(request))
    assert written == expected
    lines = b"".join(b"".join(group) for group in written.values())
    assert len(lines.splitlines()) == len(values) * 3 * (1 if samples else 3)
    assert "😀".encode() in lines
    assert b"\\u0000" in lines
    assert b"\\\\" in lines


def test_a_lone_surrogate_is_a_clear_error_and_nothing_is_left(tmp_path: Path) -> None:
    """Text that is not valid Unicode (a lone surrogate) is refused naming the transcript."""
    transcripts = [
        Transcript(index=0, source="inline:0", value="fine"),
        Transcript(index=1, source="inline:1", value="bad \ud800 half"),
    ]
    with pytest.raises(BatchValidationError, match="transcript #1 cannot be encoded as JSON"):
        build_shards(
            _config(),
            transcripts,
            encode=encode_request,
            limits=OPENAI_LIMITS,
            directory=tmp_path / "plan",
        )
    assert not list((tmp_path / "plan").glob("shard-*"))
