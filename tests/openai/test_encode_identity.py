"""Written plan lines are, byte for byte, a plain msgspec encode of the documented line, and
lines written from a judge's line form are, byte for byte, the lines encode writes."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kyro import BatchValidationError
from kyro._build.plan_build import build_shards
from kyro._cost.estimate import CostEstimator
from kyro._cost.prices import load_prices
from kyro._plan.planner import plan_requests
from kyro._transcripts import Transcript
from kyro._verdicts.cache_gate import RequestGate
from kyro.provider import BatchLimits, JudgeRequest, Message, line_parts
from kyro_openai import OPENAI_LIMITS, OpenAIBatchProvider, encode_request
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


def _parts_config() -> Any:
    """Judges of every shape a line form handles: prompts of {{input}} and variables (one
    changing message, or two with a templated system prompt, or none at all), a constant
    system prompt, several {{input}}s in one prompt, params, JSON mode and Structured Outputs."""
    return make_config(
        make_judge("tone", params={"temperature": 0, "max_tokens": 40}),
        make_judge("facts", model="gpt-4o", system="Be strict: {{input}} ({{variables.p}})"),
        make_judge("plain", prompt="Plain {{input}}", model="gpt-3.5-turbo"),
        make_judge(
            "twice",
            prompt='{{variables.p}} — "{{input}}"\n\\ again: {{ input }}{{input}}',
            system="You are constant.\t«",
            variables={"p": 'Ünïcode "p"\n\x01'},
        ),
        make_judge("none", prompt="No transcript here {{variables.p}}"),
    )


def _build_both(
    tmp_path: Path, config: Any, transcripts: list[Transcript], **options: Any
) -> tuple[Any, Any, Path, Path]:
    """The same plan built from line forms (the OpenAI provider's parts) and request by
    request (its encode alone), each with a cost gate; their summaries, estimates and folders."""
    provider = OpenAIBatchProvider(api_key="k")
    results = []
    for name, parts in (("parts", provider.encode_parts), ("encoded", None)):
        estimator = CostEstimator(load_prices(), "openai")
        gate = RequestGate([judge.name for judge in config.judges], estimator=estimator)
        calls: list[str] = []

        def encode(request: JudgeRequest, buffer: bytearray, calls: list[str] = calls) -> None:
            calls.append(request.custom_id)
            provider.encode(request, buffer)

        summary = build_shards(
            config,
            transcripts,
            encode=encode,
            limits=options["limits"],
            directory=tmp_path / name,
            runs=options.get("runs", 3),
            variables={"p": "run-level ü"},
            samples=options.get("samples", False),
            gate=gate,
            encode_parts=parts,
        )
        results.append((summary, estimator.lines(), gate.sent_runs, len(calls)))
    return results[0], results[1], tmp_path / "parts", tmp_path / "encoded"


def _same_folders(first: Path, second: Path) -> list[str]:
    names = sorted(path.name for path in first.iterdir())
    assert names == sorted(path.name for path in second.iterdir())
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    return names


@pytest.mark.parametrize("samples", [False, True])
@pytest.mark.parametrize("limits", [OPENAI_LIMITS, BatchLimits(max_requests=7, max_bytes=40_000)])
def test_lines_from_parts_are_the_lines_encode_writes(
    tmp_path: Path, samples: bool, limits: BatchLimits
) -> None:
    """A plan written from line forms equals, byte for byte, the same plan encoded request by
    request — shards, their cuts, the transcript index, counts, token and cost estimates —
    over hostile text and structured transcripts (unicode, escapes, control characters,
    empty values, long text)."""
    values = [*HOSTILE, *STRUCTURED, "", {"conversation": ""}, "y" * 3000 + "é"]
    transcripts = [Transcript(index=i, source=f"inline:{i}", value=v) for i, v in enumerate(values)]
    fast, slow, parts, encoded = _build_both(
        tmp_path, _parts_config(), transcripts, samples=samples, limits=limits
    )
    names = _same_folders(parts, encoded)
    assert "transcripts.index.jsonl" in names
    shards = [name for name in names if name.startswith("shard-")]
    assert len(shards) >= (3 if limits is OPENAI_LIMITS else 8)
    fast_summary, fast_cost, fast_runs, fast_calls = fast
    slow_summary, slow_cost, slow_runs, slow_calls = slow
    # Encoded once per judge to check its form (the parts' probe encodes a copy of it).
    assert fast_calls == 5
    assert slow_calls == fast_summary.requests
    strip = [msgspec.structs.replace(shard, path=None) for shard in fast_summary.shards]
    assert strip == [msgspec.structs.replace(shard, path=None) for shard in slow_summary.shards]
    assert msgspec.structs.replace(fast_summary, shards=()) == msgspec.structs.replace(
        slow_summary, shards=()
    )
    assert fast_summary.requests == len(values) * 5 * (1 if samples else 3)
    assert fast_cost == slow_cost
    assert [line.runs for line in fast_cost] == [len(values) * 3] * 5
    assert fast_runs == slow_runs == len(values) * 5 * 3
    written = b"".join((parts / name).read_bytes() for name in shards)
    assert "😀".encode() in written
    assert b"\\u0000" in written
    assert "«".encode() in written


def test_lines_too_large_are_the_same_problems_either_way(tmp_path: Path) -> None:
    """A line over the byte limit is the same pre-flight problem, with the same custom_id and
    size, whether it was written from a line form or encoded, and no shard is left."""
    values: list[Any] = ["short", "z" * 12_000, {"conversation": "w" * 9_000}]
    transcripts = [Transcript(index=i, source=f"inline:{i}", value=v) for i, v in enumerate(values)]
    messages = []
    for name in ("parts", "encoded"):
        with pytest.raises(BatchValidationError) as caught:
            _build_both(
                tmp_path / name,
                _parts_config(),
                transcripts,
                limits=BatchLimits(max_requests=100, max_bytes=10_000),
            )
        messages.append(caught.value.message)
        assert not list((tmp_path / name).rglob("shard-*"))
    assert messages[0] == messages[1]
    assert "[line_too_large] custom_id t1-j0-r0: its line is" in messages[0]
    assert "t2-j0-r2" in messages[0]
    assert "t0-" not in messages[0]


def test_lines_from_parts_of_rendered_prompts_are_the_lines_encode_writes(tmp_path: Path) -> None:
    """A judge whose prompt reads fields ({{input.a}}) is rendered, then only its prompts are
    escaped into the form: still the very lines encode writes."""
    config = make_config(
        make_judge("field", prompt="Q: {{input.conversation}} / {{input.nested.list}}"),
        make_judge("whole", model="gpt-4o", prompt="{{input}}"),
    )
    values = [
        {"conversation": 'a\n"b" ü 😀', "nested": {"list": [1, "\x00", None]}},
        {"conversation": "", "nested": {"list": []}},
        {"conversation": "x" * 4000, "nested": {"list": ["\u2028"]}},
    ]
    transcripts = [
        Transcript(index=i, source=f"data.jsonl:{i + 1}", value=v) for i, v in enumerate(values)
    ]
    fast, slow, parts, encoded = _build_both(tmp_path, config, transcripts, limits=OPENAI_LIMITS)
    _same_folders(parts, encoded)
    assert (fast[3], slow[3]) == (2, 18)
    assert fast[1] == slow[1]
    assert fast[0].estimated_input_tokens == slow[0].estimated_input_tokens > 0


def test_parts_that_do_not_rebuild_the_line_are_not_used(tmp_path: Path) -> None:
    """A provider whose lines depend on more than the strings its parts cut out (here the
    length of each message) fails the check on the first line, so every request is encoded."""

    def encode(request: JudgeRequest, buffer: bytearray) -> None:
        sizes = [len(message.content) for message in request.messages]
        buffer += msgspec.json.encode(
            {"custom_id": request.custom_id, "sizes": sizes, "messages": request.messages}
        )
        buffer += b"\n"

    config = _parts_config()
    transcripts = [
        Transcript(index=i, source=f"inline:{i}", value=v) for i, v in enumerate(HOSTILE)
    ]
    assert line_parts(encode, plan_requests_first(config, transcripts)) is not None
    for name, parts in (("parts", functools.partial(line_parts, encode)), ("encoded", None)):
        build_shards(
            config,
            transcripts,
            encode=encode,
            limits=OPENAI_LIMITS,
            directory=tmp_path / name,
            variables={"p": "v"},
            encode_parts=parts,
        )
    _same_folders(tmp_path / "parts", tmp_path / "encoded")


def plan_requests_first(config: Any, transcripts: list[Transcript]) -> JudgeRequest:
    """The first request a plan of ``config`` over ``transcripts`` makes."""
    return next(iter(plan_requests(config, transcripts, variables={"p": "v"})))


def test_line_parts_cut_the_line_at_the_custom_id_and_each_content() -> None:
    """line_parts gives the bytes around the custom_id and each message content, such that
    any other id and contents joined in between give encode's line; an encoder writing a
    string twice, or failing, gives None."""
    request = JudgeRequest(
        custom_id="t0-j0-r0",
        model="gpt-4o",
        messages=(Message(role="system", content="s"), Message(role="user", content="u")),
        params={"temperature": 0},
    )
    parts = line_parts(encode_request, request)
    assert parts is not None
    assert len(parts) == 4
    assert parts[0] == b'{"custom_id":'
    other = msgspec.structs.replace(
        request,
        custom_id="t9-j0-r1",
        messages=(Message(role="system", content='é"\n'), Message(role="user", content="")),
    )
    joined = b"".join(
        (
            parts[0],
            msgspec.json.encode(other.custom_id),
            parts[1],
            msgspec.json.encode('é"\n'),
            parts[2],
            msgspec.json.encode(""),
            parts[3],
        )
    )
    buffer = bytearray()
    encode_request(other, buffer)
    assert joined == bytes(buffer)

    def twice(request: JudgeRequest, buffer: bytearray) -> None:
        buffer += msgspec.json.encode([request.custom_id, request.custom_id, request.messages])

    def failing(request: JudgeRequest, buffer: bytearray) -> None:
        raise BatchValidationError("no")

    assert line_parts(twice, request) is None
    assert line_parts(failing, request) is None
