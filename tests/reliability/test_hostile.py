"""Hostile replies and careless input: whatever arrives, kyro answers with its own clear error or
an errored run, and a job's other verdicts are always collected.

Faults come in through seams: the emulator's and the fake provider's pluggable responders
(what a judge model writes), the files a user hands over, and the process limits of a child
``python -m kyro`` (a real ``RLIMIT_FSIZE`` stands in for a full disk).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from _hostile import HOSTILE_REPLIES, hostile_reply_scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kyro import BatchJudge, BatchRunResult, BatchValidationError, iter_transcripts
from kyro._verdicts import MAX_REPLY_CHARS, RAW_KEEP_CHARS, parse_reply
from kyro.testing import FakeProvider

DEEP = '{"verdict": ' * 1_000 + '"SUCCESS"' + "}" * 1_000
"""About 12 KB of JSON nested 1,000 levels deep: more than msgspec's recursion allows."""

# -- 1. one reply never blocks a job ---------------------------------------------------------


def test_deep_reply_is_an_errored_run_with_its_text() -> None:
    """A reply nested 1,000 levels deep is an unparseable run keeping its text, not an error."""
    for text in (DEEP, "[" * 5_000 + "]" * 5_000, f"```json\n{DEEP}\n```"):
        run = parse_reply(text, run=2)
        assert run.status == "ERRORED"
        assert run.run == 2
        assert run.error is not None
        assert run.error.code in ("unparseable_reply", "invalid_verdict")
        assert run.raw == text
    assert parse_reply(DEEP).error is not None
    assert "nested too deeply" in parse_reply(DEEP).error.message  # type: ignore[union-attr]


def test_huge_reply_is_refused_unparsed_and_its_raw_text_cut() -> None:
    """A reply over the size limit is ``reply_too_large``; raw keeps a documented prefix."""
    text = '{"status": "SUCCESS", "root_cause": "' + "x" * MAX_REPLY_CHARS + '"}'
    run = parse_reply(text)
    assert run.status == "ERRORED"
    assert run.error is not None and run.error.code == "reply_too_large"
    assert run.raw is not None
    assert run.raw.startswith(text[:RAW_KEEP_CHARS])
    assert run.raw.endswith(f"[cut by kyro: {len(text):,} characters in all]")
    assert len(run.raw) < RAW_KEEP_CHARS + 100


@pytest.mark.parametrize("kind", sorted(HOSTILE_REPLIES))
def test_hostile_reply_over_http_never_blocks_the_job(tmp_path: Path, kind: str) -> None:
    """Deep, huge or binary replies are errored runs with their text; the rest is collected."""
    outcome = hostile_reply_scenario(tmp_path / "job", kind)
    assert outcome.recovered, outcome
    assert outcome.lost_verdicts == 0, outcome
    assert outcome.duplicate_batches == 0, outcome


replies = st.one_of(
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", "replace")),
    st.text(max_size=200),
    st.integers(1, 3_000).map(lambda n: "[" * n + "]" * n),
    st.integers(1, 3_000).map(lambda n: '{"status":' * n + '"NA"' + "}" * n),
    st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=8,
    ).map(json.dumps),
    st.sampled_from(
        ['{"status": "SUCCESS"}', '{"status": 1}', "```json\n{}\n```", "", "null", "\x00"]
    ),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(answers=st.lists(replies, min_size=1, max_size=8))
def test_any_reply_lets_the_job_complete(
    tmp_path_factory: pytest.TempPathFactory, answers: list[str]
) -> None:
    """Arbitrary replies through check(): the job completes, every run is a verdict or errored."""
    folder = tmp_path_factory.mktemp("fuzz-replies")
    config = folder / "judges.yml"
    config.write_text(
        "version: 1\nmodel: m\njudges:\n"
        "  - name: a\n    prompt: 'Judge {{input}} in JSON'\n    output_format: json\n"
        "  - name: b\n    prompt: 'Also judge {{input}} in JSON'\n    output_format: json\n",
        encoding="utf-8",
    )
    by_id: dict[str, str] = {}

    def responder(custom_id: str, body: dict[str, Any]) -> str:
        return by_id.setdefault(custom_id, answers[len(by_id) % len(answers)])

    async def go() -> BatchRunResult | None:
        judge = BatchJudge(FakeProvider(responder=responder), config, state_dir=folder / "s")
        await judge.submit(["user: one\n", "user: two\n"], runs=2)
        result = await judge.check()
        return result if result is not None else await judge.check()

    result = anyio.run(go)
    assert result is not None
    assert result.counts.transcripts == 2
    assert result.counts.requests == 8
    runs = [run for e in result.evaluations for v in e.verdicts.values() for run in v.runs]
    assert len(runs) == 8
    for run in runs:
        if run.status == "ERRORED":
            assert run.error is not None
            assert run.raw is None or len(run.raw) <= RAW_KEEP_CHARS + 100
    assert result.counts.errored_runs == sum(run.status == "ERRORED" for run in runs)


def test_deep_transcript_file_is_a_clear_error(tmp_path: Path) -> None:
    """A transcript file or dataset line nested too deeply names the file (and line)."""
    deep = '{"a": ' * 3_000 + "1" + "}" * 3_000
    (tmp_path / "deep.json").write_text(deep, encoding="utf-8")
    (tmp_path / "deep.jsonl").write_text('{"request": "q"}\n' + deep + "\n", encoding="utf-8")
    with pytest.raises(BatchValidationError) as caught:
        list(iter_transcripts(tmp_path / "deep.json"))
    assert caught.value.path == str(tmp_path / "deep.json")
    assert "nested too deeply" in caught.value.message
    with pytest.raises(BatchValidationError) as caught:
        list(iter_transcripts(tmp_path / "deep.jsonl"))
    assert caught.value.line == 2
