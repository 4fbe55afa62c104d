"""The deterministic scorers, their options, callables as scorers, and the LLM-judge presets."""

from __future__ import annotations

from typing import Any

import pytest

from kyro.eval import (
    Coherence,
    Conciseness,
    Correctness,
    Faithfulness,
    Harmlessness,
    Helpfulness,
    LLMJudge,
    Relevance,
    Score,
    scorer,
)
from kyro.eval._llm import PRESETS
from kyro.eval._scorers import SCORER_NAMES
from kyro.eval._scoring import plan_scorers


def run(name: str, output: Any, expected: Any = None, **options: Any) -> tuple[Any, bool]:
    """Score one output and return (score, passed)."""
    result = scorer(name, **options)(output, expected, None)
    assert result.error is None, result.error
    return result.score, result.passed


def test_every_documented_scorer_exists() -> None:
    """The scorer table names exactly these checks."""
    assert set(SCORER_NAMES) == {
        "contains", "exact_match", "json_field_match", "json_match", "json_valid", "length",
        "not_contains", "numeric_close", "regex", "similarity",
    }  # fmt: skip


def test_exact_match_and_its_text_options() -> None:
    """Surrounding space is ignored by default; case, spacing, punctuation and NFKC on demand."""
    assert run("exact_match", " Paris\n", "Paris") == (1.0, True)
    assert run("exact_match", " Paris", "Paris", strip=False) == (0.0, False)
    assert run("exact_match", "PARIS", "paris") == (0.0, False)
    assert run("exact_match", "PARIS", "paris", ignore_case=True) == (1.0, True)
    assert run("exact_match", "a  b\tc", "a b c", collapse_whitespace=True)[1] is True
    assert run("exact_match", "Hello, world!", "Hello world", ignore_punctuation=True)[1]
    assert run("exact_match", "ﬁne １", "fine 1", normalize_unicode=True)[1] is True
    assert run("exact_match", "ﬁne", "fine")[1] is False


def test_exact_match_compares_non_text_values_as_values() -> None:
    """Numbers and dicts compare structurally; text against a number compares as text."""
    assert run("exact_match", 3, 3.0) == (1.0, True)
    assert run("exact_match", {"a": 1, "b": 2}, {"b": 2, "a": 1})[1] is True
    assert run("exact_match", "3", 3)[1] is True
    assert run("exact_match", 4, 3)[1] is False


def test_contains_all_any_and_a_fixed_value() -> None:
    """contains scores the share found; any_of passes on one; value= replaces expected."""
    assert run("contains", "Order 7 refunded", ["refund", "order"], ignore_case=True) == (1.0, True)
    assert run("contains", "Order 7 refunded", ["refund", "cancel"]) == (0.5, False)
    assert run("contains", "Order 7 refunded", ["cancel", "refund"], any_of=True) == (1.0, True)
    assert run("contains", "see the refund", None, value="refund") == (1.0, True)


def test_not_contains_passes_only_without_any_banned_text() -> None:
    """not_contains fails on the first banned text found, case-insensitively if asked."""
    assert (
        run("not_contains", "As an AI, I cannot", value=["as an ai"], ignore_case=True)[1] is False
    )
    assert run("not_contains", "Here you go", value=["as an ai"]) == (1.0, True)


def test_regex_from_an_option_or_from_expected() -> None:
    """regex searches by default; full_match, ignore_case and a pattern in expected work."""
    assert run("regex", "id: AB-123", pattern=r"[A-Z]{2}-\d+")[1] is True
    assert run("regex", "id: AB-123", pattern=r"[A-Z]{2}-\d+", full_match=True)[1] is False
    assert run("regex", "ab-1", pattern=r"AB-\d", ignore_case=True)[1] is True
    assert run("regex", "total 42", r"\d+$")[1] is True


def test_json_valid_and_its_required_shape() -> None:
    """Text that parses is valid; require= narrows to an object or an array."""
    assert run("json_valid", '{"a": 1}') == (1.0, True)
    assert run("json_valid", "{'a': 1}") == (0.0, False)
    assert run("json_valid", "[1, 2]", require="object")[1] is False
    assert run("json_valid", {"already": "parsed"}, require="object")[1] is True


def test_json_match_ignores_key_order_and_allows_a_subset() -> None:
    """json_match compares parsed JSON; subset=True lets the output carry extra keys."""
    assert run("json_match", '{"b": 2, "a": 1}', '{"a": 1, "b": 2}')[1] is True
    assert run("json_match", '{"a": 1, "x": {"y": 1, "z": 2}}', {"x": {"y": 1}})[1] is False
    assert run("json_match", '{"a": 1, "x": {"y": 1, "z": 2}}', {"x": {"y": 1}}, subset=True)[1]


def test_json_field_match_scores_the_share_of_matching_fields() -> None:
    """Dotted fields (default: expected's keys) compare; ignore_case and abs_tol loosen them."""
    out = '{"name": "ADA", "age": 36.001, "tags": ["x", "y"]}'
    assert run("json_field_match", out, {"name": "Ada", "age": 36}) == (0.0, False)
    assert run("json_field_match", out, {"name": "Ada", "age": 36}, ignore_case=True) == (
        0.5,
        False,
    )
    both = run("json_field_match", out, {"name": "Ada", "age": 36}, ignore_case=True, abs_tol=0.01)
    assert both == (1.0, True)
    assert run("json_field_match", out, {"tags": ["x", "q"]}, fields=["tags.0"]) == (1.0, True)


def test_numeric_close_extracts_numbers_within_tolerance() -> None:
    """The first number of text is compared with expected within abs_tol / rel_tol."""
    assert run("numeric_close", "About 1,234.5 apples", 1234.5)[1] is True
    assert run("numeric_close", "42", "42.0000001")[1] is True
    assert run("numeric_close", "100", 103)[1] is False
    assert run("numeric_close", "100", 103, rel_tol=0.05)[1] is True
    assert run("numeric_close", "about 42", 42, extract=False) == (0.0, False)


def test_similarity_gives_the_ratio_and_passes_at_the_threshold() -> None:
    """similarity scores difflib's ratio; threshold decides the pass."""
    score, passed = run("similarity", "The order is in transit", "the order is in transit.")
    assert 0.8 < score < 1.0
    assert passed is True
    assert run("similarity", "abc", "xyz") == (0.0, False)
    assert run("similarity", "Order in transit", "order in transit", ignore_case=True) == (
        1.0,
        True,
    )


def test_length_counts_characters_or_words() -> None:
    """length passes between min and max, in characters or words."""
    assert run("length", "one two three", max=2, unit="words") == (0.0, False)
    assert run("length", "one two three", min=2, max=3, unit="words") == (1.0, True)
    assert run("length", "abcdef", max=5) == (0.0, False)


def test_a_check_needing_expected_is_an_errored_score_without_it() -> None:
    """exact_match on an item with no expected value errors that score and says how to fix it."""
    result = scorer("exact_match")("x", None, None)
    assert result.error is not None
    assert "needs an expected value" in result.error
    assert result.passed is False
    assert result.score is None


def test_bad_names_and_options_are_refused_with_the_valid_ones() -> None:
    """An unknown scorer, option or bad regex is a ValueError listing what is allowed."""
    with pytest.raises(ValueError, match=r"unknown scorer 'exact'.*exact_match"):
        scorer("exact")
    with pytest.raises(ValueError, match=r"no option ignorecase; its options are .*ignore_case"):
        scorer("exact_match", ignorecase=True)
    with pytest.raises(ValueError, match="not a regular expression"):
        scorer("regex", pattern="(")
    with pytest.raises(ValueError, match="min=, max="):
        scorer("length")


def test_label_renames_a_scorer_so_one_check_can_run_twice() -> None:
    """Two contains checks with labels plan fine; two with one name are refused."""
    plan = plan_scorers(
        [scorer("contains", value="a", label="has_a"), scorer("contains", value="b")]
    )
    assert plan.names == ["has_a", "contains"]
    with pytest.raises(ValueError, match="both called 'contains'"):
        plan_scorers(["contains", "contains"])


async def test_callables_of_any_arity_and_their_return_types() -> None:
    """Callables get (output, expected, input) cut to their arity; bool/float/Score all map."""

    def short(output: str) -> bool:
        return len(output) < 5

    def close(output: str, expected: str) -> float:
        return 0.4

    async def graded(output: str, expected: str, value: str) -> Score:
        return Score(score=0.7, explanation=f"{value}->{output}")

    plan = plan_scorers([short, close, graded])
    scores = await plan.score("abc", "abd", "in")
    assert [(s.scorer, s.score, s.passed) for s in scores] == [
        ("short", 1.0, True), ("close", 0.4, False), ("graded", 0.7, True),
    ]  # fmt: skip
    assert scores[2].explanation == "in->abc"


async def test_a_raising_or_badly_returning_callable_errors_only_its_score() -> None:
    """A scorer that raises or returns a non-score gives an errored score; others still score."""

    def boom(output: str) -> bool:
        raise RuntimeError("scorer bug")

    def words(output: str) -> str:
        return "yes"

    scores = await plan_scorers([boom, words, "exact_match"]).score("a", "a", None)
    assert scores[0].error == "the scorer raised RuntimeError: scorer bug"
    assert scores[1].error is not None
    assert "return a bool, a number" in scores[1].error
    assert (scores[2].scorer, scores[2].passed) == ("exact_match", True)


def test_presets_are_llm_judges_with_written_criteria_and_overridable_settings() -> None:
    """Every preset has its name, its own criteria text, and takes model/threshold overrides."""
    presets = [
        Correctness,
        Helpfulness,
        Relevance,
        Faithfulness,
        Conciseness,
        Coherence,
        Harmlessness,
    ]
    assert set(PRESETS) == {cls().name for cls in presets}
    criteria = {cls().criteria for cls in presets}
    assert len(criteria) == len(presets)
    assert all(len(c) > 80 for c in criteria)
    judge = Helpfulness(model="gpt-4o", pass_threshold=0.8, include_input=False)
    assert isinstance(judge, LLMJudge)
    assert (judge.name, judge.model, judge.pass_threshold, judge.include_input) == (
        "helpfulness", "gpt-4o", 0.8, False,
    )  # fmt: skip
    assert Correctness(name="strict_correctness").name == "strict_correctness"
    assert "expected output" in Correctness().criteria


def test_llm_judge_arguments_are_checked() -> None:
    """Empty criteria, an out-of-range threshold or an unusable name are refused."""
    with pytest.raises(ValueError, match="needs criteria"):
        LLMJudge("  ")
    with pytest.raises(ValueError, match="between 0 and 1"):
        LLMJudge("ok?", pass_threshold=2)
    with pytest.raises(ValueError, match="lowercase letters"):
        LLMJudge("ok?", name="Has Space")


def test_strings_resolve_to_scorers_presets_and_llm_criteria() -> None:
    """'exact_match', 'correctness' and 'llm:<criteria>' resolve; unknown text lists the choices."""
    plan = plan_scorers(["exact_match", "correctness", "llm:Is it under 50 words?"])
    assert plan.names == ["exact_match", "correctness", "llm_judge"]
    assert plan.judges[1].criteria == "Is it under 50 words?"
    with pytest.raises(ValueError, match=r"unknown scorer 'nope'.*correctness"):
        plan_scorers(["nope"])
    with pytest.raises(ValueError, match="at least one scorer"):
        plan_scorers([])
