"""Planning transcripts × judges × runs into JudgeRequests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator

import pytest

from kyro import BatchValidationError, verdict_schema
from kyro._contract import VERDICT_INSTRUCTIONS
from kyro._custom_id import format_custom_id, parse_custom_id
from kyro._plan.planner import aplan_requests, plan_requests
from kyro._plan.preflight import Preflight
from kyro._transcripts import Transcript
from kyro.provider import Message
from tests.plan_helpers import make_config, make_judge, texts

CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def test_order_is_transcript_then_judge_then_run() -> None:
    """Requests come transcript-outermost, then judges in config order, then runs."""
    config = make_config(make_judge("a"), make_judge("b", model="gpt-4o"))
    ids = [r.custom_id for r in plan_requests(config, texts(2), runs=2)]
    assert ids == [
        "t0-j0-r0", "t0-j0-r1", "t0-j1-r0", "t0-j1-r1",
        "t1-j0-r0", "t1-j0-r1", "t1-j1-r0", "t1-j1-r1",
    ]  # fmt: skip


def test_custom_ids_match_the_shared_format_and_parse_back() -> None:
    """Every custom_id equals format_custom_id for its indices, with and without a stage."""
    config = make_config(make_judge("a"), make_judge("b"))
    for stage in (0, 3):
        for request in plan_requests(config, texts(3, start=5), runs=3, stage=stage):
            key = parse_custom_id(request.custom_id)
            assert key is not None
            assert key.stage == stage
            assert request.custom_id == format_custom_id(key.transcript, key.judge, key.run, stage)


def test_custom_ids_stay_in_charset_and_length_for_huge_indices() -> None:
    """Indices near 10**15 still give ids of only [A-Za-z0-9_-] and at most 64 characters."""
    big = 10**15 - 1
    config = make_config(*(make_judge(f"j{i}") for i in range(12)))
    transcripts = [Transcript(index=big, source="inline:x", value="hi")]
    ids = [r.custom_id for r in plan_requests(config, transcripts, runs=11, stage=big)]
    assert len(ids) == len(set(ids)) == 12 * 11
    assert all(CUSTOM_ID.match(cid) for cid in ids)
    assert max(len(cid) for cid in ids) <= 64
    assert ids[-1] == f"s{big}-t{big}-j11-r10"


def test_messages_equal_judge_messages_and_are_shared_across_runs() -> None:
    """Messages match Judge.messages with merged variables; all runs share one tuple."""
    judge = make_judge(
        "tone",
        "Rate {{input}} for {{variables.product}} in JSON",
        system="You judge {{variables.audience}}.",
        variables={"audience": "adults"},
    )
    static = make_judge("static", "JSON please: {{input}}", system="You are strict.")
    config = make_config(judge, static)
    transcript = texts(1)[0]
    requests = list(plan_requests(config, [transcript], runs=3, variables={"product": "X"}))
    expected = judge.messages(transcript, {"product": "X", "audience": "adults"})
    assert requests[0].messages == expected
    assert requests[0].messages[1] == Message(role="system", content="You judge adults.")
    assert requests[0].messages is requests[1].messages is requests[2].messages
    assert requests[3].messages == static.messages(transcript, {"product": "X"})


def test_model_params_and_json_output_come_from_the_judge() -> None:
    """Each request carries its judge's model and params and asks for JSON output."""
    config = make_config(make_judge("a", model="m-1", params={"temperature": 0}))
    (request,) = plan_requests(config, texts(1))
    assert request.model == "m-1"
    assert request.params == {"temperature": 0}
    assert request.json_output is True


def test_planning_is_lazy() -> None:
    """Requests are produced while the transcript source is still being consumed."""
    pulled: list[int] = []

    def source() -> Iterator[Transcript]:
        for transcript in texts(1000):
            pulled.append(transcript.index)
            yield transcript

    requests = plan_requests(make_config(), source(), runs=2)
    first = next(requests)
    assert first.custom_id == "t0-j0-r0"
    assert pulled == [0]


def test_on_transcript_sees_each_transcript_once() -> None:
    """on_transcript is called once per transcript, in order."""
    seen: list[int] = []
    list(
        plan_requests(make_config(), texts(4), runs=3, on_transcript=lambda t: seen.append(t.index))
    )
    assert seen == [0, 1, 2, 3]


@pytest.mark.parametrize("runs", [0, -1, True, 1.5])
def test_runs_must_be_a_positive_whole_number(runs: object) -> None:
    """runs < 1 (or not an int) is refused at call time, before iterating."""
    with pytest.raises(BatchValidationError, match="runs"):
        plan_requests(make_config(), texts(1), runs=runs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variables", "match"),
    [
        ({"n": [3]}, "variable 'n' must be text, a number or true/false, got list"),
        ({"n": None}, "got NoneType"),
        ({1: "x"}, "non-empty strings"),
        ([], "mapping"),
    ],
)
def test_variables_must_map_names_to_scalars(variables: object, match: str) -> None:
    """Variables that are not names → text/number/boolean are refused at call time."""
    with pytest.raises(BatchValidationError, match=match):
        plan_requests(make_config(), texts(1), variables=variables)  # type: ignore[arg-type]


def test_numbers_and_booleans_are_variables_as_text() -> None:
    """Run-level numbers and booleans render as YAML variables do: as written, true/false."""
    config = make_config(make_judge("v", "n={{variables.n}} x={{variables.x}} ok={{variables.ok}}"))
    variables = {"n": 3, "x": 0.5, "ok": False}
    (request,) = plan_requests(config, texts(1), variables=variables)
    assert request.messages[-1].content == "n=3 x=0.5 ok=false"


def test_unresolved_field_raises_naming_judge_and_transcript() -> None:
    """A missing variable stops planning with the judge, transcript and field named."""
    config = make_config(make_judge("rel", "JSON {{variables.product}}"))
    with pytest.raises(BatchValidationError) as info:
        list(plan_requests(config, texts(1)))
    assert "'rel'" in str(info.value)
    assert "#0" in str(info.value)
    assert "variables.product" in str(info.value)


def test_preflight_collects_unresolved_fields_and_skips_them() -> None:
    """With a collector, every bad transcript × judge is recorded and skipped, the rest planned."""
    config = make_config(make_judge("good"), make_judge("bad", "JSON {{input.question}}"))
    preflight = Preflight()
    transcripts = [
        Transcript(index=0, source="a.json", value={"question": "q"}),
        Transcript(index=1, source="b.json", value={"other": 1}),
        Transcript(index=2, source="inline:2", value="plain text"),
    ]
    ids = [r.custom_id for r in plan_requests(config, transcripts, preflight=preflight)]
    assert ids == ["t0-j0-r0", "t0-j1-r0", "t1-j0-r0", "t2-j0-r0"]
    assert [(p.kind, p.transcript, p.judge) for p in preflight.problems] == [
        ("unresolved_field", 1, "bad"),
        ("unresolved_field", 2, "bad"),
    ]
    with pytest.raises(BatchValidationError, match="2 problems found before upload") as info:
        preflight.raise_if_any()
    assert "b.json" in str(info.value)


def test_prompt_that_never_says_json_plans_with_the_verdict_contract() -> None:
    """A prompt that never mentions JSON plans: kyro's system message states the verdict."""
    config = make_config(
        make_judge("quiet", "Return SUCCESS or ERROR with a root_cause: {{input}}")
    )
    (request,) = plan_requests(config, texts(1))
    first, user = request.messages
    assert (first.role, first.content) == ("system", VERDICT_INSTRUCTIONS)
    assert "json" in first.content.lower()
    assert user.content.startswith("Return SUCCESS or ERROR")
    assert request.response_schema is verdict_schema()
    assert request.json_output is True


def test_contract_comes_before_the_xml_role() -> None:
    """With an XML role, the messages are kyro's contract, the role, then the prompt."""
    config = make_config(make_judge("x", "Grade {{input}}", system="You are strict."))
    (request,) = plan_requests(config, texts(1))
    assert [m.role for m in request.messages] == ["system", "system", "user"]
    assert request.messages[0].content == VERDICT_INSTRUCTIONS
    assert request.messages[1].content == "You are strict."


def test_verdict_schema_is_strict_and_names_every_field() -> None:
    """The verdict schema lists status, root_cause, score and thinking, all required, no others."""
    schema = verdict_schema()
    assert (schema.name, schema.strict) == ("kyro_verdict", True)
    body = schema.schema
    assert set(body["properties"]) == {"status", "root_cause", "score", "thinking"}
    assert sorted(body["required"]) == sorted(body["properties"])
    assert body["additionalProperties"] is False
    assert body["properties"]["status"]["enum"] == ["SUCCESS", "ERROR", "NA"]


def test_preflight_stops_after_max_problems() -> None:
    """A systematic mistake stops at max_problems instead of repeating for every transcript."""
    config = make_config(make_judge("bad", "JSON {{variables.missing}}"))
    preflight = Preflight(max_problems=3)
    with pytest.raises(BatchValidationError, match="stopped after the first 3"):
        list(plan_requests(config, texts(100), preflight=preflight))
    assert len(preflight) == 3


async def test_async_planning_over_an_async_iterable() -> None:
    """aplan_requests yields the same requests from an async source as the sync planner."""

    async def source() -> AsyncIterator[Transcript]:
        for transcript in texts(3):
            yield transcript

    config = make_config(make_judge("a"), make_judge("b"))
    got = [r async for r in aplan_requests(config, source(), runs=2)]
    assert got == list(plan_requests(config, texts(3), runs=2))
    also = [r async for r in aplan_requests(config, texts(3), runs=2)]
    assert also == got
