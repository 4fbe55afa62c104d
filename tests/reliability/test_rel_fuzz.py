"""Hostile input: configs, templates, transcripts and provider answers, generated at random.

Each property proves the same guarantee from a different side: whatever comes in, kyro either
works or raises one of its own errors (a :class:`kyro.KyroError`), never anything else.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from kyro import KyroError, load_config
from kyro._build.plan_build import build_shards
from kyro._config.templates import Template
from kyro._transcripts import Transcript, iter_transcripts
from kyro.provider import BatchLimits, RetryPolicy
from kyro_openai import OpenAIBatchProvider, encode_request
from tests.spec_schemas import component_schema

pytestmark = pytest.mark.slow  # hypothesis: hundreds of generated inputs and provider answers

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# -- configs and templates -----------------------------------------------------------------

names = st.text(alphabet="abcdefgh_-0123456789 .", min_size=0, max_size=10)
template_texts = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "{{input}}",
                "{{ input.a.b }}",
                "{{variables.product}}",
                "{{variables.}}",
                "{{",
                "}}",
                "{{{input}}}",
                "{{input.0}}",
                "{{ nope }}",
                "JSON",
                "Reply with JSON only.",
            ]
        ),
        st.text(max_size=15),
    ),
    max_size=6,
).map("".join)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)
)
params = st.dictionaries(
    st.sampled_from(["temperature", "max_tokens", "top_p", "seed", "stream", "x"]),
    scalars,
    max_size=3,
)
judge = st.fixed_dictionaries(
    {"name": names},
    optional={
        "prompt": template_texts,
        "prompt_xml": st.dictionaries(names, template_texts, max_size=3),
        "prompt_file": st.sampled_from(["prompt.txt", "missing.txt", "../x", ""]),
        "output_format": st.sampled_from(["json", "text", 1, None]),
        "model": st.one_of(st.sampled_from(["gpt-4o-mini", "gpt-4o", ""]), scalars),
        "params": st.one_of(params, scalars),
        "variables": st.dictionaries(names, st.one_of(st.text(max_size=8), scalars), max_size=2),
        "depends_on": st.lists(names, max_size=2),
        "unknown_key": scalars,
    },
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "version": st.one_of(st.just(1), scalars),
        "model": st.one_of(st.just("gpt-4o-mini"), scalars),
        "judges": st.one_of(st.lists(judge, max_size=3), scalars),
        "steps": st.lists(judge, max_size=2),
        "extra": scalars,
    },
)
raw_yaml = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        ["judges: [", "version: 1\njudges:\n  - name: a\n\tprompt: x", ": :", "---\n---"]
    ),
)


def _yaml(data: Any) -> str:
    stream = io.StringIO()
    YAML(typ="safe").dump(data, stream)
    return stream.getvalue()


def _outcome(call: Callable[[], Any]) -> tuple[Any, KyroError | None]:
    """``call()``'s value, or the KyroError it raised; any other exception propagates."""
    try:
        return call(), None
    except KyroError as exc:
        return None, exc


@FUZZ
@given(doc=st.one_of(documents.map(_yaml), raw_yaml), prompt=st.binary(max_size=30))
def test_any_config_loads_or_raises_kyro_error(tmp_path: Path, doc: str, prompt: bytes) -> None:
    """A random YAML document (judge-shaped or not) loads, or fails with a KyroError."""
    config = tmp_path / "judges.yml"
    config.write_text(doc, encoding="utf-8")
    (tmp_path / "prompt.txt").write_bytes(prompt)
    loaded, error = _outcome(lambda: load_config(config))
    if error is not None:
        assert str(error)
    else:
        assert loaded.judges, "a config that loads has at least one judge"


@FUZZ
@given(
    text=template_texts,
    value=st.one_of(
        st.text(max_size=20),
        st.dictionaries(
            st.sampled_from(["a", "b", "input"]),
            st.recursive(scalars, lambda inner: st.dictionaries(st.just("b"), inner), max_leaves=3),
            max_size=2,
        ),
    ),
    variables=st.dictionaries(st.sampled_from(["product", "x", ""]), st.text(max_size=8)),
)
def test_any_template_renders_or_raises_kyro_error(
    text: str, value: Any, variables: dict[str, str]
) -> None:
    """A random template renders for a random transcript, or fails with a KyroError."""
    transcript = Transcript(index=0, source="inline:0", value=value)
    rendered, error = _outcome(lambda: Template(text, judge="fuzz").render(transcript, variables))
    if error is not None:
        assert "fuzz" in str(error)
    else:
        assert isinstance(rendered, str)


# -- transcripts ---------------------------------------------------------------------------

_CONFIG = """\
version: 1
model: gpt-4o-mini
judges:
  - name: fuzz
    prompt: "Reply with JSON only: {{input}} / {{input.a}}"
    output_format: json
"""

json_lines = st.lists(
    st.one_of(
        st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(st.text(max_size=4), scalars)),
        st.binary(max_size=20),
        st.sampled_from([b'{"a": 1', b"[1, 2]", b'"text"', b"\xff\xfe", b"", b"null"]),
    ),
    max_size=5,
).map(b"\n".join)
files = st.dictionaries(
    st.sampled_from(["a.txt", "b.json", "c.jsonl", "d", "e.md", "f.JSON"]),
    st.one_of(st.binary(max_size=40), json_lines, st.just(b"\xc3\x28 invalid utf-8")),
    min_size=1,
    max_size=4,
)


@FUZZ
@given(contents=files, inline=st.lists(st.one_of(st.text(max_size=10), scalars), max_size=2))
def test_any_transcripts_plan_or_raise_kyro_error(
    tmp_path_factory: pytest.TempPathFactory, contents: dict[str, bytes], inline: list[Any]
) -> None:
    """Random files (invalid UTF-8, broken JSONL) and values plan, or fail with a KyroError."""
    folder = tmp_path_factory.mktemp("fuzz")
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    config_path = folder / "judges.yml"
    config_path.write_text(_CONFIG, encoding="utf-8")
    config = load_config(config_path)
    items: list[Any] = [folder / name for name in contents] + [folder, *inline]
    limits = BatchLimits(max_requests=3, max_bytes=10_000)
    summary, error = _outcome(
        lambda: build_shards(config, iter_transcripts(items), encode=encode_request, limits=limits)
    )
    if error is not None:
        assert str(error)
    else:
        assert summary.requests == summary.transcripts


# -- provider answers ----------------------------------------------------------------------

STATUSES = [*component_schema("Batch")["properties"]["status"]["enum"], "paused"]
"""Every batch status the API spec lists, and one it does not (a newer API's)."""
ids = st.one_of(st.none(), st.sampled_from(["file-out", "file-err", "file-in", "file-x"]))
batch_objects = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["batch_1", "batch_2"]),
        "object": st.just("batch"),
        "endpoint": st.just("/v1/chat/completions"),
        "input_file_id": st.sampled_from(["file-in", "file-x"]),
        "completion_window": st.just("24h"),
        "status": st.sampled_from(STATUSES),
        "created_at": st.integers(0, 2**40),
    },
    optional={
        "output_file_id": ids,
        "error_file_id": ids,
        "request_counts": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {
                    "total": st.integers(0, 5),
                    "completed": st.integers(0, 5),
                    "failed": st.integers(0, 5),
                }
            ),
        ),
        "errors": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {
                    "object": st.just("list"),
                    "data": st.lists(
                        st.fixed_dictionaries(
                            {"code": st.one_of(st.none(), st.text(max_size=20))},
                            optional={
                                "message": st.one_of(st.none(), st.text(max_size=20)),
                                "line": st.one_of(st.none(), st.integers(0, 100)),
                                "param": st.none(),
                            },
                        ),
                        max_size=3,
                    ),
                }
            ),
        ),
        "metadata": st.one_of(
            st.none(), st.dictionaries(st.sampled_from(["kyro_job", "x"]), st.text(max_size=5))
        ),
    },
)
result_lines = st.one_of(
    st.fixed_dictionaries(
        {
            "id": st.just("batch_req_1"),
            "custom_id": st.one_of(st.sampled_from(["t0-j0-r0", "t1-j0-r0", "x"]), scalars),
            "response": st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {
                        "status_code": st.one_of(st.sampled_from([200, 400, 429, 500]), scalars),
                        "request_id": st.just("req_1"),
                        "body": st.one_of(
                            scalars,
                            st.fixed_dictionaries(
                                {
                                    "choices": st.lists(
                                        st.fixed_dictionaries(
                                            {
                                                "message": st.fixed_dictionaries(
                                                    {
                                                        "content": st.one_of(
                                                            st.text(max_size=30), scalars
                                                        )
                                                    }
                                                )
                                            }
                                        ),
                                        max_size=2,
                                    )
                                },
                                optional={"usage": st.dictionaries(st.text(max_size=5), scalars)},
                            ),
                            st.fixed_dictionaries(
                                {"error": st.dictionaries(st.text(max_size=5), scalars)}
                            ),
                        ),
                    }
                ),
            ),
            "error": st.one_of(
                st.none(),
                st.fixed_dictionaries({"code": scalars, "message": scalars}),
            ),
        }
    ).map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=30),
)


def _truncate(body: bytes, cut: int) -> bytes:
    return body[: cut % (len(body) + 1)]


bodies = st.one_of(
    batch_objects.map(lambda d: json.dumps(d).encode()),
    st.tuples(batch_objects, st.integers(0, 400)).map(
        lambda t: _truncate(json.dumps(t[0]).encode(), t[1])
    ),
    st.lists(batch_objects, max_size=3).map(
        lambda data: json.dumps({"object": "list", "data": data, "has_more": False}).encode()
    ),
    st.binary(max_size=40),
    st.sampled_from([b"", b"{}", b"[]", b"null", b'{"id": 3}', b'{"data": 1}']),
)
answers = st.tuples(st.sampled_from([200, 200, 200, 201, 400, 404, 429, 500, 0]), bodies)
"""(status, body) of one API answer; status 0 drops the connection instead."""
file_contents = st.tuples(
    st.lists(result_lines, max_size=4).map(b"\n".join), st.integers(0, 1000), st.booleans()
).map(lambda t: _truncate(t[0], t[1]) if t[2] else t[0])


class _CutStream(httpx.AsyncByteStream):
    """A body that sends ``data`` and then drops the connection."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> Any:
        yield self.data
        raise httpx.ReadError("connection dropped mid-body")


def _handler(batch_answers: list[tuple[int, bytes]], contents: bytes, cut: bool) -> Any:
    queue = list(batch_answers)

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/content"):
            if cut:
                return httpx.Response(200, stream=_CutStream(contents))
            return httpx.Response(200, content=contents)
        if path.endswith("/files") and request.method == "POST":
            status, body = queue.pop(0) if queue else (200, b'{"id": "file-in"}')
            return httpx.Response(status, content=body)
        status, body = queue.pop(0) if queue else (200, b"{}")
        if status == 0:
            raise httpx.RemoteProtocolError("server disconnected", request=request)
        return httpx.Response(status, content=body, headers={"retry-after-ms": "1"})

    return handle


async def _drive(provider: OpenAIBatchProvider, shard: Path) -> None:
    """Every provider call kyro makes, each allowed to fail only with a KyroError."""
    calls = (
        lambda: provider.poll("batch_1"),
        lambda: provider.find({"kyro_job": "j"}),
        lambda: provider.cancel("batch_1"),
        lambda: provider.submit(shard, metadata={"kyro_job": "j"}),
    )
    for call in calls:
        with contextlib.suppress(KyroError):
            await call()
    try:
        async for line in provider.results("batch_1"):
            assert isinstance(line.custom_id, str)
    except KyroError:
        pass


@FUZZ
@given(
    batch_answers=st.lists(answers, min_size=1, max_size=12),
    contents=file_contents,
    cut=st.booleans(),
)
def test_any_provider_answer_gives_kyro_error_only(
    tmp_path: Path, batch_answers: list[tuple[int, bytes]], contents: bytes, cut: bool
) -> None:
    """Random, truncated or schema-valid answers and result lines never leak a foreign error."""
    shard = tmp_path / "shard.jsonl"
    shard.write_bytes(
        b'{"custom_id": "t0-j0-r0", "method": "POST", "url": "/v1/chat/completions"}\n'
    )

    async def go() -> None:
        transport = httpx.MockTransport(_handler(batch_answers, contents, cut))
        async with httpx.AsyncClient(transport=transport) as client:
            provider = OpenAIBatchProvider(
                api_key="sk-fuzz",
                base_url="http://127.0.0.1:9/v1",
                client=client,
                retry=RetryPolicy(max_retries=1, initial_backoff=0.0, max_backoff=0.0),
                sleep=_no_sleep,
            )
            await _drive(provider, shard)

    anyio.run(go)


async def _no_sleep(seconds: float) -> None:
    """Retries in these properties never wait."""
