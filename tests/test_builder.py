"""The shard builder: one open shard per model, exact limits, digests, pre-flight problems."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import msgspec
import pytest

from kyro import BatchValidationError
from kyro._build.plan_build import build_shards
from kyro._build.shards import _FLUSH_AT, ShardBuilder, shard_filename
from kyro._plan.preflight import Preflight
from kyro._transcript_index import iter_index
from kyro._transcripts import Transcript
from kyro.provider import BatchLimits, JudgeRequest, Message
from kyro_openai import OPENAI_LIMITS, encode_request
from tests.plan_helpers import make_config, make_judge, texts

BIG = BatchLimits(max_requests=1_000_000, max_bytes=1 << 40)


def fixed_encode(request: JudgeRequest, buffer: bytearray) -> None:
    """A tiny provider format: the custom_id, the model and the first message."""
    line = {"id": request.custom_id, "model": request.model, "text": request.messages[-1].content}
    buffer.extend(msgspec.json.encode(line) + b"\n")


def request(custom_id: str, model: str = "m", text: str = "x") -> JudgeRequest:
    return JudgeRequest(
        custom_id=custom_id, model=model, messages=(Message(role="user", content=text),)
    )


def line_size(req: JudgeRequest) -> int:
    buffer = bytearray()
    fixed_encode(req, buffer)
    return len(buffer)


def lines_of(path: str | None) -> list[dict[str, object]]:
    assert path is not None
    return [json.loads(line) for line in Path(path).read_bytes().splitlines()]


def build(tmp_path: Path, requests: list[JudgeRequest], limits: BatchLimits) -> list[list[str]]:
    """Build ``requests`` and return each shard's custom_ids, checking the shard records."""
    with ShardBuilder(tmp_path, fixed_encode, limits) as builder:
        builder.add_all(requests)
        summary = builder.close()
    out = []
    for shard in summary.shards:
        assert shard.path is not None
        data = Path(shard.path).read_bytes()
        assert shard.bytes == len(data) <= limits.max_bytes
        assert shard.lines == data.count(b"\n") <= limits.max_requests
        assert shard.sha256 == hashlib.sha256(data).hexdigest()
        ids = [str(line["id"]) for line in lines_of(shard.path)]
        assert (shard.first_custom_id, shard.last_custom_id) == (ids[0], ids[-1])
        out.append(ids)
    return out


@pytest.mark.parametrize(
    ("count", "shards"), [(5, [5]), (6, [5, 1]), (10, [5, 5]), (11, [5, 5, 1])]
)
def test_request_limit_exactly_at_and_one_past(
    tmp_path: Path, count: int, shards: list[int]
) -> None:
    """A shard holds exactly max_requests lines; one more request opens the next shard."""
    requests = [request(f"t{i}-j0-r0") for i in range(count)]
    got = build(tmp_path, requests, BatchLimits(max_requests=5, max_bytes=1 << 30))
    assert [len(ids) for ids in got] == shards
    assert [cid for ids in got for cid in ids] == [r.custom_id for r in requests]


@pytest.mark.parametrize(("extra", "shards"), [(0, [3, 3]), (-1, [2, 2, 2]), (1, [3, 3])])
def test_byte_limit_exactly_at_and_one_past(tmp_path: Path, extra: int, shards: list[int]) -> None:
    """A shard may fill max_bytes exactly (newlines counted); one byte less moves a line on."""
    requests = [request(f"t{i}-j0-r0") for i in range(6)]
    size = line_size(requests[0])
    assert all(line_size(r) == size for r in requests)
    limits = BatchLimits(max_requests=100, max_bytes=3 * size + extra)
    assert [len(ids) for ids in build(tmp_path, requests, limits)] == shards


def test_line_exactly_at_the_byte_limit_fits_alone(tmp_path: Path) -> None:
    """A line of exactly max_bytes is accepted, in a shard of its own."""
    requests = [request("t0-j0-r0"), request("t1-j0-r0")]
    limits = BatchLimits(max_requests=100, max_bytes=line_size(requests[0]))
    assert build(tmp_path, requests, limits) == [["t0-j0-r0"], ["t1-j0-r0"]]


def test_line_over_the_byte_limit_fails_before_writing(tmp_path: Path) -> None:
    """One line larger than max_bytes raises naming the request, size and limit; not written."""
    small, huge = request("t0-j0-r0"), request("t1-j0-r0", text="y" * 500)
    limits = BatchLimits(max_requests=100, max_bytes=200)
    builder = ShardBuilder(tmp_path, fixed_encode, limits)
    builder.add(small)
    with pytest.raises(BatchValidationError) as info:
        builder.add(huge)
    message = str(info.value)
    assert "t1-j0-r0" in message
    assert f"{line_size(huge):,} bytes" in message
    assert "200" in message
    summary = builder.close()
    assert [s.lines for s in summary.shards] == [1]
    assert b"t1-j0-r0" not in Path(str(summary.shards[0].path)).read_bytes()


def test_first_line_over_the_limit_opens_no_shard(tmp_path: Path) -> None:
    """An oversized first request of a model is skipped without creating a file."""
    preflight = Preflight()
    builder = ShardBuilder(
        tmp_path, fixed_encode, BatchLimits(max_requests=9, max_bytes=50), preflight=preflight
    )
    assert builder.add(request("t0-j0-r0", text="z" * 100)) is False
    summary = builder.close()
    assert summary.shards == ()
    assert list(tmp_path.iterdir()) == []
    assert [p.kind for p in preflight.problems] == ["line_too_large"]


def test_one_open_shard_per_model(tmp_path: Path) -> None:
    """Interleaved models go to separate files, each holding one model, in the order seen."""
    requests = [request(f"t{i}-j{i % 3}-r0", model=f"model/{i % 3}") for i in range(30)]
    with ShardBuilder(tmp_path, fixed_encode, BatchLimits(max_requests=4, max_bytes=1 << 20)) as b:
        b.add_all(requests)
        summary = b.close()
    assert summary.requests_by_model == {"model/0": 10, "model/1": 10, "model/2": 10}
    assert [s.index for s in summary.shards] == list(range(len(summary.shards)))
    assert summary.shards[0].name == "shard-0000-model_0.jsonl"
    for shard in summary.shards:
        assert {line["model"] for line in lines_of(shard.path)} == {shard.model}
    assert summary.requests == 30
    assert summary.bytes == sum(len(Path(str(s.path)).read_bytes()) for s in summary.shards)


def test_duplicate_custom_id_in_a_file_is_refused(tmp_path: Path) -> None:
    """A repeated custom_id in one file raises; with a collector it is skipped and recorded."""
    builder = ShardBuilder(tmp_path / "a", fixed_encode, BIG)
    (tmp_path / "a").mkdir()
    builder.add(request("t0-j0-r0"))
    with pytest.raises(BatchValidationError, match="duplicate_custom_id"):
        builder.add(request("t0-j0-r0"))
    assert builder.close().requests == 1
    preflight = Preflight()
    (tmp_path / "b").mkdir()
    collecting = ShardBuilder(tmp_path / "b", fixed_encode, BIG, preflight=preflight)
    results = [collecting.add(request(cid)) for cid in ("t0-j0-r0", "t1-j0-r0", "t0-j0-r0")]
    assert results == [True, True, False]
    assert collecting.close().requests == 2
    assert [(p.kind, p.custom_id) for p in preflight.problems] == [
        ("duplicate_custom_id", "t0-j0-r0")
    ]


def test_same_custom_id_in_another_model_file_is_allowed(tmp_path: Path) -> None:
    """Uniqueness is per file: the same id under another model (another file) is accepted."""
    with ShardBuilder(tmp_path, fixed_encode, BIG) as builder:
        assert builder.add(request("t0-j0-r0", model="a"))
        assert builder.add(request("t0-j0-r0", model="b"))
        assert len(builder.close().shards) == 2


def test_mixed_models_in_a_file_are_refused(tmp_path: Path) -> None:
    """The per-file model check refuses a request whose model differs from its file's."""
    preflight = Preflight()
    builder = ShardBuilder(tmp_path, fixed_encode, BIG, preflight=preflight)
    builder.add(request("t0-j0-r0", model="a"))
    builder._open["b"] = builder._open["a"]  # simulate a routing bug
    assert builder.add(request("t1-j0-r0", model="b")) is False
    assert [p.kind for p in preflight.problems] == ["mixed_models"]
    assert [line["model"] for line in lines_of(builder.close().shards[0].path)] == ["a"]


def test_counting_without_a_directory_matches_writing(tmp_path: Path) -> None:
    """With no directory nothing is written but shards, lines and bytes are the same."""
    requests = [request(f"t{i}-j0-r0", model=f"m{i % 2}", text="é" * i) for i in range(200)]
    limits = BatchLimits(max_requests=30, max_bytes=4000)
    with ShardBuilder(tmp_path, fixed_encode, limits) as written:
        written.add_all(requests)
        on_disk = written.close()
    counted = ShardBuilder(None, fixed_encode, limits)
    counted.add_all(requests)
    dry = counted.close()
    assert [(s.name, s.lines, s.bytes) for s in dry.shards] == [
        (s.name, s.lines, s.bytes) for s in on_disk.shards
    ]
    assert all(s.path is None and s.sha256 == "" for s in dry.shards)
    assert dry.estimated_input_tokens == on_disk.estimated_input_tokens


def test_large_shards_are_written_in_chunks_intact(tmp_path: Path) -> None:
    """Shards larger than the 1 MiB write chunk come out byte-identical and correctly hashed."""
    requests = [request(f"t{i}-j0-r0", text=f"{i}:" + "ü" * 3000) for i in range(1200)]
    expected = bytearray()
    for req in requests:
        fixed_encode(req, expected)
    with ShardBuilder(tmp_path, fixed_encode, BIG) as builder:
        builder.add_all(requests)
        (shard,) = builder.close().shards
    data = Path(str(shard.path)).read_bytes()
    assert len(data) > 3 << 20
    assert data == bytes(expected)
    assert shard.sha256 == hashlib.sha256(expected).hexdigest()


def test_existing_shard_file_is_not_overwritten(tmp_path: Path) -> None:
    """A leftover shard of the same name is an error, never silently overwritten."""
    (tmp_path / shard_filename("shard", 0, "m")).write_text("old")
    builder = ShardBuilder(tmp_path, fixed_encode, BIG)
    with pytest.raises(BatchValidationError, match="already exists"):
        builder.add(request("t0-j0-r0"))
    assert (tmp_path / shard_filename("shard", 0, "m")).read_text() == "old"


def test_failure_inside_with_deletes_created_files(tmp_path: Path) -> None:
    """Leaving the builder's with-block by an exception removes every shard it created."""

    def fail_midway() -> None:
        with ShardBuilder(tmp_path, fixed_encode, BIG) as builder:
            builder.add(request("t0-j0-r0", model="a"))
            builder.add(request("t0-j0-r0", model="b"))
            assert len(list(tmp_path.iterdir())) == 2
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_midway()
    assert list(tmp_path.iterdir()) == []


def test_shards_spanning_several_chunks_hash_and_hold_every_line(tmp_path: Path) -> None:
    """A shard written in several buffered chunks hashes to its bytes and keeps every line."""
    text = "é" * (1 << 19)
    with ShardBuilder(tmp_path, fixed_encode, BIG) as builder:
        for i in range(3 * _FLUSH_AT // len(text.encode()) + 1):
            builder.add(request(f"t{i}-j0-r0", model="a" if i % 3 else "b", text=text))
        summary = builder.close()
    for shard in summary.shards:
        assert shard.path is not None
        data = Path(shard.path).read_bytes()
        assert len(data) == shard.bytes
        assert hashlib.sha256(data).hexdigest() == shard.sha256
        ids = [json.loads(line)["id"] for line in data.splitlines()]
        assert ids[0] == shard.first_custom_id
        assert ids[-1] == shard.last_custom_id
        assert len(ids) == shard.lines
    assert summary.bytes > 3 * _FLUSH_AT


def test_model_names_are_sanitised_in_file_names() -> None:
    """Model names become safe file-name parts; the index keeps names unique."""
    assert shard_filename("shard", 3, "ft:gpt-4o-mini:acme::x1") == (
        "shard-0003-ft_gpt-4o-mini_acme_x1.jsonl"
    )
    assert shard_filename("p", 12, "../../etc") == "p-0012-etc.jsonl"
    assert shard_filename("p", 0, "...") == "p-0000-model.jsonl"


def test_token_estimate_is_characters_over_four() -> None:
    """The estimate is message characters ÷ 4, rounded up per request."""
    builder = ShardBuilder(None, fixed_encode, BIG)
    builder.add(request("t0-j0-r0", text="a" * 9))
    builder.add(request("t1-j0-r0", text="ü" * 8))
    assert builder.close().estimated_input_tokens == 3 + 2


def test_build_shards_writes_index_and_openai_lines(tmp_path: Path) -> None:
    """build_shards writes valid OpenAI lines per model plus the transcript index."""
    config = make_config(
        make_judge("a", "JSON: {{input}}"),
        make_judge("b", "JSON: {{input}}", model="gpt-4o", params={"temperature": 0}),
    )
    long_text = "ünïcødé ✓ 🚀 " * 20_000
    transcripts = [*texts(3), Transcript(index=3, source="big.txt", value=long_text)]
    summary = build_shards(
        config, transcripts, encode=encode_request, limits=OPENAI_LIMITS, directory=tmp_path, runs=2
    )
    assert summary.transcripts == 4
    assert summary.requests_by_judge == {"a": 8, "b": 8}
    assert summary.requests_by_model == {"gpt-4o-mini": 8, "gpt-4o": 8}
    assert [e.index for e in iter_index(tmp_path / "transcripts.index.jsonl")] == [0, 1, 2, 3]
    for shard in summary.shards:
        data = Path(str(shard.path)).read_bytes()
        assert not data.startswith(b"\xef\xbb\xbf")
        for line in data.decode("utf-8").splitlines():
            body = json.loads(line)["body"]
            assert body["model"] == shard.model
        last = json.loads(data.splitlines()[-1])
        assert last["body"]["messages"][-1]["content"] == "JSON: " + long_text


def test_build_shards_problems_leave_no_files(tmp_path: Path) -> None:
    """When pre-flight finds problems, build_shards deletes what it wrote and lists them all."""
    config = make_config(make_judge("a", "JSON {{input.q}}"))
    transcripts = [
        Transcript(index=0, source="ok.json", value={"q": "fine"}),
        Transcript(index=1, source="bad1.json", value={"x": 1}),
        Transcript(index=2, source="bad2.json", value={"y": 2}),
    ]
    with pytest.raises(BatchValidationError, match="2 problems") as info:
        build_shards(
            config, transcripts, encode=encode_request, limits=OPENAI_LIMITS, directory=tmp_path
        )
    assert "bad1.json" in str(info.value)
    assert "bad2.json" in str(info.value)
    assert list(tmp_path.iterdir()) == []
