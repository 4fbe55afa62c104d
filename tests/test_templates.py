"""Prompt templates over text and structured transcripts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kyro import BatchValidationError
from kyro._config.templates import Template
from kyro._transcripts import Transcript

STRUCTURED = Transcript(
    index=7,
    source="data/set.jsonl:8",
    value={
        "request": "Where is my invoice?",
        "turns": [{"role": "user", "text": "hi"}, {"role": "assistant", "text": "hello"}],
        "meta": {"plan": {"name": "Pro", "seats": 4}},
    },
)
TEXT = Transcript(index=2, source="inline:2", value="user: hi\nassistant: hello")


def test_input_is_text_as_is_or_compact_json() -> None:
    """`{{input}}` inserts text unchanged and structured values as compact JSON."""
    template = Template("<<{{input}}>>", judge="j")
    assert template.render(TEXT, {}) == "<<user: hi\nassistant: hello>>"
    rendered = Template("{{input}}", judge="j").render(
        Transcript(index=0, source="inline:0", value={"a": [1, "x"]}), {}
    )
    assert rendered == '{"a":[1,"x"]}'


def test_nested_fields_and_list_indices() -> None:
    """`{{input.a.b}}` walks mappings and whole-number segments index lists."""
    template = Template(
        "{{input.request}} | {{ input.turns.1.text }} | {{input.meta.plan.seats}} | "
        "{{input.meta.plan}}",
        judge="j",
    )
    assert template.render(STRUCTURED, {}) == (
        'Where is my invoice? | hello | 4 | {"name":"Pro","seats":4}'
    )
    assert template.fields == (
        "input.request",
        "input.turns.1.text",
        "input.meta.plan.seats",
        "input.meta.plan",
    )


def test_variables_from_run_and_judge() -> None:
    """`{{variables.name}}` reads the merged run-level and judge-level variables."""
    template = Template("{{variables.product}} for {{ variables.team }}", judge="j")
    assert template.render(TEXT, {"product": "Acme", "team": "ops"}) == "Acme for ops"


def test_missing_field_names_judge_transcript_source_and_field() -> None:
    """An unresolvable field names the judge, the transcript's index and source, and the field."""
    with pytest.raises(BatchValidationError) as info:
        Template("{{input.meta.plan.price}}", judge="billing").render(STRUCTURED, {})
    assert str(info.value) == (
        "judge 'billing' cannot render {{input.meta.plan.price}} for transcript #7 "
        "(data/set.jsonl:8): input.meta.plan has no field 'price'"
    )


def test_list_index_out_of_range_is_a_missing_field() -> None:
    """A list index past the end is reported like a missing field."""
    with pytest.raises(BatchValidationError, match=r"input.turns has no field '5'"):
        Template("{{input.turns.5}}", judge="j").render(STRUCTURED, {})


def test_field_of_a_text_transcript_is_an_error() -> None:
    """Asking a plain-text transcript for a field says it has no fields."""
    with pytest.raises(BatchValidationError) as info:
        Template("{{input.request}}", judge="j").render(TEXT, {})
    assert "transcript #2 (inline:2)" in info.value.message
    assert "the transcript is plain text" in info.value.message


def test_missing_variable_says_where_to_set_it() -> None:
    """An unset variable names itself and the ways to set it."""
    with pytest.raises(BatchValidationError) as info:
        Template("{{variables.product}}", judge="j").render(TEXT, {})
    assert "variable 'product' is not set" in info.value.message


def test_substitution_is_single_pass() -> None:
    """Placeholders inside transcript text or variable values stay literal."""
    sneaky = Transcript(
        index=0, source="inline:0", value={"request": "{{variables.secret}}", "x": "{{input}}"}
    )
    template = Template("{{input.request}} {{input.x}} {{variables.v}}", judge="j")
    assert template.render(sneaky, {"secret": "S", "v": "{{input.request}}"}) == (
        "{{variables.secret}} {{input}} {{input.request}}"
    )


def test_unknown_field_and_literal_braces() -> None:
    """An unknown placeholder is a config error; an unclosed `{{` and single braces are text."""
    with pytest.raises(BatchValidationError, match=r"unknown template field \{\{output\}\}"):
        Template("{{output}}", judge="j")
    template = Template('{"status": "SUCCESS"} {{ not closed', judge="j")
    assert template.render(TEXT, {}) == '{"status": "SUCCESS"} {{ not closed'
    assert template.fields == ()


def test_shared_cache_encodes_structured_input_once() -> None:
    """A cache shared by templates keeps the transcript's JSON and gives the same text."""
    cache: dict[str, str] = {}
    first = Template("A {{input}}", judge="a").render(STRUCTURED, {}, cache)
    second = Template("B {{input}}", judge="b").render(STRUCTURED, {}, cache)
    assert first[2:] == second[2:] == cache[""]


@settings(deadline=None)
@given(st.text(alphabet=st.sampled_from(list("{} .input_varbles0123x\n")), max_size=60))
def test_arbitrary_templates_compile_or_refuse(text: str) -> None:
    """Any template text either compiles and renders, or raises BatchValidationError."""
    try:
        template = Template(text, judge="j")
    except BatchValidationError as exc:
        refused: BatchValidationError | None = exc
    else:
        refused = None
    if refused is not None:
        assert "unknown template field" in refused.message
        return
    transcript = Transcript(index=0, source="inline:0", value={"x": "1", "input": {"x": 2}})
    try:
        rendered = template.render(transcript, {"x": "X"})
    except BatchValidationError as exc:
        rendered = exc.message
        assert rendered.startswith("judge 'j' cannot render")
    else:
        assert template.fields or rendered == text
