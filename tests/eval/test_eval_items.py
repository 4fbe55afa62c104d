"""Every item form the eval layer accepts, mixed, and the errors for malformed ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kyro import BatchValidationError
from kyro.eval import BatchEvalItem, EvalItem
from kyro.eval._items import iter_items


def test_plain_inputs_take_expected_from_the_separate_list() -> None:
    """Plain inputs (text, numbers, dicts without `input`) pair with `expected` by position."""
    got = list(iter_items(["a", 2, {"name": "Bob"}], expected=["A", 4, "Hello, Bob!"]))
    assert got == [(0, "a", "A", None), (1, 2, 4, None), (2, {"name": "Bob"}, "Hello, Bob!", None)]


def test_dicts_with_input_carry_their_own_expected_and_item_id() -> None:
    """A dict with an `input` key is the item form; a numeric item_id becomes text."""
    items = [{"input": {"a": 1, "b": 2}, "expected": 3}, {"input": "x", "item_id": 7}]
    assert list(iter_items(items)) == [(0, {"a": 1, "b": 2}, 3, None), (1, "x", None, "7")]


def test_eval_items_and_the_seed_alias_mix_with_other_forms() -> None:
    """EvalItem (alias BatchEvalItem) mixes with dicts and plain inputs in one list."""
    assert BatchEvalItem is EvalItem
    items = [EvalItem("q1", expected="a1", item_id="one"), {"input": "q2"}, "q3"]
    got = list(iter_items(items, expected=["x", "a2", "a3"]))
    assert got == [(0, "q1", "a1", "one"), (1, "q2", "a2", None), (2, "q3", "a3", None)]


def test_an_items_own_expected_wins_over_the_list() -> None:
    """When both give an expected value, the item's own is used."""
    got = list(iter_items([{"input": "q", "expected": "own"}], expected=["list"]))
    assert got == [(0, "q", "own", None)]


def test_items_are_read_lazily_from_a_generator() -> None:
    """A generator is consumed one item at a time, never materialised up front."""
    seen: list[int] = []

    def gen() -> Iterator[int]:
        for i in range(3):
            seen.append(i)
            yield i

    iterator = iter_items(gen())
    assert next(iterator) == (0, 0, None, None)
    assert seen == [0]


def test_a_jsonl_dataset_path_gives_one_item_a_line(tmp_path: Path) -> None:
    """A .jsonl path (str or Path) yields each line's item; blank lines are skipped."""
    data = tmp_path / "set.jsonl"
    data.write_text('{"input": "a", "expected": "A", "item_id": "first"}\n\n"plain"\n')
    assert list(iter_items(data)) == [(0, "a", "A", "first"), (1, "plain", None, None)]
    assert list(iter_items(str(data))) == list(iter_items(data))


def test_length_mismatch_of_a_list_is_refused_before_anything_runs() -> None:
    """Sized items and expected of different lengths are an error naming both counts."""
    with pytest.raises(BatchValidationError, match="items has 3 entries but expected has 2"):
        iter_items(["a", "b", "c"], expected=["A", "B"])


def test_length_mismatch_of_a_generator_is_found_when_it_ends() -> None:
    """A generator shorter or longer than expected raises once the difference shows."""
    with pytest.raises(BatchValidationError, match="items has 1 entries but expected has 2"):
        list(iter_items((x for x in ["a"]), expected=["A", "B"]))
    with pytest.raises(BatchValidationError, match="more than 1 entries but expected has 1"):
        list(iter_items((x for x in ["a", "b"]), expected=["A"]))


def test_an_item_with_a_misspelt_key_is_refused_by_index() -> None:
    """A dict with `input` and an unknown key is an error naming the item and the key."""
    with pytest.raises(BatchValidationError, match=r"item #1 has unknown key\(s\) 'expcted'"):
        list(iter_items([{"input": "a"}, {"input": "b", "expcted": "B"}]))


def test_a_bad_item_id_and_a_bad_dataset_line_name_their_place(tmp_path: Path) -> None:
    """A non-text item_id names the item; invalid JSON names file:line."""
    with pytest.raises(BatchValidationError, match="item #0 item_id must be text or a number"):
        list(iter_items([{"input": "a", "item_id": ["x"]}]))
    data = tmp_path / "bad.jsonl"
    data.write_text('{"input": "a"}\n{"input": \n')
    with pytest.raises(BatchValidationError) as info:
        list(iter_items(data))
    assert info.value.path == str(data)
    assert info.value.line == 2


def test_unusable_sources_are_refused_with_the_fix(tmp_path: Path) -> None:
    """A missing file, a non-.jsonl path, one mapping, or a string `expected` are refused."""
    with pytest.raises(BatchValidationError, match="file not found"):
        list(iter_items(tmp_path / "missing.jsonl"))
    with pytest.raises(BatchValidationError, match=r"must be a \.jsonl file"):
        list(iter_items(tmp_path / "data.csv"))
    with pytest.raises(BatchValidationError, match="wrap one item in a list"):
        iter_items({"input": "a"})
    with pytest.raises(BatchValidationError, match="one value per item"):
        iter_items(["a"], expected="A")  # a str is a Sequence: refused at run time
