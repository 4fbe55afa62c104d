"""evaluate / evaluate_sync / evaluate_one: concurrency, timeouts, errors, results and exports."""

from __future__ import annotations

import csv
import gc
import json
import sys
import threading
import time
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from kyro import BatchValidationError
from kyro.eval import EvalItem, evaluate, evaluate_one, evaluate_sync, scorer


async def echo_upper(text: str) -> str:
    """An async component: the input upper-cased."""
    await anyio.lowlevel.checkpoint()
    return text.upper()


async def test_async_component_scored_with_results_in_item_order() -> None:
    """Every item runs, results read back in item order with outputs, scores and ids."""
    items = [EvalItem("a", expected="A", item_id="first"), {"input": "b", "expected": "x"}, "c"]
    result = await evaluate(echo_upper, items, expected=[None, None, "C"], scorers=["exact_match"])
    assert [r.index for r in result.results] == [0, 1, 2]
    assert [r.output for r in result.results] == ["A", "B", "C"]
    assert [r.passed for r in result.results] == [True, False, True]
    assert result.results[0].item_id == "first"
    assert result.results[1].get_score("exact_match").score == 0.0  # type: ignore[union-attr]
    assert result.results[1].get_score("nope") is None
    assert result.pass_rate == pytest.approx(2 / 3)
    assert result.status == "completed"
    assert [r.index for r in result.passing_items()] == [0, 2]
    assert [r.index for r in result.failing_items()] == [1]
    assert result.failed_items() == []
    assert result.results[2].run_id == f"{result.batch_id}-2"


async def test_a_timeout_cancels_that_item_only() -> None:
    """The slow item ends 'timed out' and was cancelled; the others finish normally."""
    cancelled = []

    async def sometimes_slow(text: str) -> str:
        if text == "slow":
            try:
                await anyio.sleep(30)
            except BaseException:
                cancelled.append(text)
                raise
        return text

    started = time.perf_counter()
    result = await evaluate(
        sometimes_slow, ["a", "slow", "b"], expected=["a", "slow", "b"],
        scorers=["exact_match"], timeout=0.2,
    )  # fmt: skip
    assert time.perf_counter() - started < 10
    slow = result.results[1]
    assert slow.error == "timed out after 0.2s"
    assert slow.output is None
    assert slow.scores == ()
    assert cancelled == ["slow"]
    assert [r.passed for r in result.results] == [True, False, True]
    assert result.status == "partial_failure"
    assert result.stats.errored == 1
    assert result.stats.passed == 2


async def test_a_component_exception_is_that_items_error() -> None:
    """An exception becomes the item's error text; the run and other items go on."""

    async def picky(n: int) -> int:
        if n == 2:
            raise ValueError("two is not allowed")
        return n * 10

    result = await evaluate(picky, [1, 2, 3], expected=[10, 20, 30], scorers=["exact_match"])
    assert result.results[1].error == "ValueError: two is not allowed"
    assert [r.index for r in result.failed_items()] == [1]
    assert result.stats.scorers["exact_match"].scored == 2


async def test_all_items_erroring_is_a_failed_run() -> None:
    """When no item ran, the status is failed and the pass rate 0."""

    def broken(x: str) -> str:
        raise RuntimeError("down")

    result = await evaluate(broken, ["a", "b"], scorers=["json_valid"])
    assert result.status == "failed"
    assert result.pass_rate == 0.0
    assert {r.error for r in result.results} == {"RuntimeError: down"}


async def test_a_raising_scorer_errors_its_score_not_the_item() -> None:
    """The item keeps its output and other scores; only the raising scorer's score is errored."""

    def crashes(output: str) -> bool:
        raise KeyError("missing")

    result = await evaluate(echo_upper, ["a"], expected=["A"], scorers=["exact_match", crashes])
    item = result.results[0]
    assert item.error is None
    assert item.output == "A"
    assert item.get_score("exact_match").passed is True  # type: ignore[union-attr]
    assert item.get_score("crashes").error == "the scorer raised KeyError: 'missing'"  # type: ignore[union-attr]
    assert item.passed is False
    assert result.stats.scorers["crashes"].errored == 1
    assert result.failing_items()[0].index == 0
    assert result.failed_items() == []


async def test_sync_components_run_in_threads_under_the_concurrency_limit() -> None:
    """A sync component runs off the event loop, never more than max_concurrency at once."""
    lock = threading.Lock()
    active = peak = 0
    loop_thread = threading.get_ident()
    threads = set()
    # Three at a time meet here: a fourth at once would raise the peak, fewer would time out.
    together = threading.Barrier(3, timeout=30)

    def slow_double(n: int) -> int:
        nonlocal active, peak
        threads.add(threading.get_ident())
        with lock:
            active += 1
            peak = max(peak, active)
        together.wait()
        time.sleep(0.005)
        with lock:
            active -= 1
        return n * 2

    result = await evaluate(
        slow_double, list(range(12)), expected=[n * 2 for n in range(12)],
        scorers=["exact_match"], max_concurrency=3,
    )  # fmt: skip
    assert result.pass_rate == 1.0
    assert peak == 3
    assert loop_thread not in threads


async def test_async_concurrency_is_bounded_too() -> None:
    """No more than max_concurrency async components are in flight at once."""
    active = peak = 0

    async def tracked(n: int) -> int:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await anyio.sleep(0.01)
        active -= 1
        return n

    await evaluate(tracked, range(40), scorers=["json_valid"], max_concurrency=5)
    assert peak == 5


async def test_a_module_function_string_and_unpacked_dict_inputs(tmp_path: Path) -> None:
    """'module:function' names the component; unpack_input passes dict inputs as kwargs."""
    (tmp_path / "calc_component.py").write_text("def add(a, b):\n    return a + b\n")
    sys.path.insert(0, str(tmp_path))
    try:
        result = await evaluate(
            "calc_component:add",
            [
                {"input": {"a": 1, "b": 2}, "expected": 3},
                {"input": {"a": 3, "b": 4}, "expected": 8},
            ],
            scorers=["numeric_close"],
            unpack_input=True,
        )
    finally:
        sys.path.remove(str(tmp_path))
    assert [r.output for r in result.results] == [3, 7]
    assert [r.passed for r in result.results] == [True, False]


async def test_bad_components_and_arguments_are_refused_before_running() -> None:
    """An unimportable or missing component and bad limits are clear errors."""
    with pytest.raises(BatchValidationError, match="cannot import 'no_such_module_x'"):
        await evaluate("no_such_module_x:fn", ["a"], scorers=["json_valid"])
    with pytest.raises(BatchValidationError, match="has no 'nope'"):
        await evaluate("json:nope", ["a"], scorers=["json_valid"])
    with pytest.raises(BatchValidationError, match="must read 'module:function'"):
        await evaluate("json", ["a"], scorers=["json_valid"])
    with pytest.raises(ValueError, match="max_concurrency must be at least 1"):
        await evaluate(echo_upper, ["a"], scorers=["json_valid"], max_concurrency=0)
    with pytest.raises(ValueError, match="needs judge_provider="):
        await evaluate(echo_upper, ["a"], scorers=["correctness"], judge_model="m")


async def test_a_malformed_item_stops_the_run_with_its_error() -> None:
    """A malformed item mid-way raises its BatchValidationError (not an exception group)."""
    items = ["a", {"input": "b", "bad": 1}, "c"]
    with pytest.raises(BatchValidationError, match="item #1 has unknown key"):
        await evaluate(echo_upper, items, scorers=["json_valid"])


async def test_stats_count_scorers_and_duration_percentiles() -> None:
    """Stats hold counts, per-scorer pass rates and mean scores, and duration percentiles."""

    async def wait(ms: int) -> str:
        await anyio.sleep(ms / 1000)
        return "ok" if ms < 50 else "slow"

    result = await evaluate(
        wait, [1, 1, 1, 60], expected=["ok"] * 4,
        scorers=["exact_match", scorer("similarity", threshold=0.0)],
    )  # fmt: skip
    stats = result.stats
    assert (stats.total, stats.passed, stats.failed, stats.errored) == (4, 3, 1, 0)
    assert stats.scorers["exact_match"].pass_rate == 0.75
    assert stats.scorers["exact_match"].mean_score == 0.75
    assert stats.scorers["similarity"].pass_rate == 1.0
    assert stats.duration_ms.max >= 55
    assert stats.duration_ms.p50 < 50
    assert stats.duration_ms.p99 == stats.duration_ms.max
    assert stats.wall_seconds > 0


async def test_exports_write_jsonl_and_csv_in_item_order(tmp_path: Path) -> None:
    """to_jsonl copies item results; to_csv has a score/passed/explanation column per scorer."""
    result = await evaluate(
        echo_upper, ["b", "a"], expected=["B", "x"], scorers=["exact_match", "json_valid"]
    )
    lines = result.to_jsonl(tmp_path / "out.jsonl").read_text().splitlines()
    assert [json.loads(line)["output"] for line in lines] == ["B", "A"]
    with result.to_csv(tmp_path / "out.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["output"] for row in rows] == ["B", "A"]
    assert rows[0]["exact_match.passed"] == "True"
    assert rows[1]["exact_match.score"] == "0.0"
    assert rows[1]["json_valid.explanation"].startswith("not valid JSON")


async def test_results_path_is_kept_and_a_temporary_one_is_removed(tmp_path: Path) -> None:
    """results_path keeps the JSONL; without it the spill file goes away with the result."""
    kept = tmp_path / "new" / "results.jsonl"
    result = await evaluate(echo_upper, ["a"], scorers=["json_valid"], results_path=kept)
    assert result.results_path == kept
    assert len(kept.read_text().splitlines()) == 1
    temporary = await evaluate(echo_upper, ["a"], scorers=["json_valid"])
    spill = temporary.results_path
    assert spill.exists()
    del temporary
    gc.collect()
    assert not spill.exists()
    results = (await evaluate(echo_upper, ["a", "b"], scorers=["json_valid"])).results
    gc.collect()
    assert [r.output for r in results] == ["A", "B"]  # the view keeps its file alive


async def test_outputs_json_cannot_hold_are_stored_as_their_repr() -> None:
    """A component returning an arbitrary object still gets a result (its repr is stored)."""

    class Answer:
        def __repr__(self) -> str:
            return "Answer(42)"

    async def odd(x: str) -> Answer:
        return Answer()

    result = await evaluate(odd, ["a"], scorers=[scorer("contains", value="42")])
    assert result.results[0].output == "Answer(42)"
    assert result.results[0].passed is True


async def test_a_sync_component_that_hangs_times_out_alone() -> None:
    """A sync component past the timeout is abandoned in its thread; the item errors alone."""

    def maybe_hang(text: str) -> str:
        if text == "hang":
            time.sleep(1.5)
        return text

    started = time.perf_counter()
    result = await evaluate(
        maybe_hang, ["a", "hang", "b"], expected=["a", "hang", "b"],
        scorers=["exact_match"], timeout=0.2,
    )  # fmt: skip
    assert time.perf_counter() - started < 1.4
    assert [r.error for r in result.results] == [None, "timed out after 0.2s", None]
    assert [r.passed for r in result.results] == [True, False, True]


def test_evaluate_sync_runs_from_plain_code(tmp_path: Path) -> None:
    """The sync twin runs a .jsonl dataset from a script without an event loop."""
    data = tmp_path / "set.jsonl"
    data.write_text('{"input": "a", "expected": "A"}\n{"input": "b", "expected": "B"}\n')
    result = evaluate_sync(echo_upper, data, scorers=["exact_match"])
    assert result.pass_rate == 1.0
    assert len(result.results) == 2


async def test_evaluate_one_returns_the_item_result_now() -> None:
    """evaluate_one runs one input and returns its item result, with no file left behind."""
    item = await evaluate_one(echo_upper, "hi", expected="HI", scorers=["exact_match"], item_id="x")
    assert (item.output, item.passed, item.item_id, item.index) == ("HI", True, "x", 0)
