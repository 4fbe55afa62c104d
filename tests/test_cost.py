"""The price table, the token estimator and the cost arithmetic, against hand-computed figures."""

from __future__ import annotations

from pathlib import Path

import pytest

import kyro
from kyro._cost.estimate import CostEstimator, max_tokens_of
from kyro._cost.prices import Rates, cost_usd, estimate_tokens, load_prices, usage_cost
from kyro._plan.planner import plan_requests
from kyro._transcripts import iter_transcripts
from kyro._types import JudgeRequest, Message, Usage
from kyro_openai.testing._responder import chat_completion

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _request(content: str, *, model: str = "gpt-4o-mini", **params: object) -> JudgeRequest:
    messages = (
        Message(role="system", content="Reply in JSON."),
        Message(role="user", content=content),
    )
    return JudgeRequest(custom_id="t0-j0-r0", model=model, messages=messages, params=params)


def test_shipped_table_has_date_source_and_batch_half_price() -> None:
    """The shipped table carries its date and source, and batch prices are half the live ones."""
    table = load_prices()
    assert table.as_of == "2026-11-30"
    assert "pricing" in table.sources[0]
    assert "2026-11-30" in table.sources[0]
    live = table.rates("openai", "gpt-4o-mini", batch=False)
    batch = table.rates("openai", "gpt-4o-mini", batch=True)
    assert live == Rates(input=0.15, cached_input=0.075, output=0.60, max_output_tokens=16384)
    assert batch is not None
    assert (batch.input, batch.cached_input, batch.output) == pytest.approx((0.075, 0.0375, 0.30))
    claude = table.rates("anthropic", "claude-sonnet-4-5", batch=True)
    assert claude is not None
    assert (claude.input, claude.output) == pytest.approx((1.5, 7.5))


def test_dated_snapshot_is_priced_as_its_base_model() -> None:
    """A dated model id falls back to its base name; an unknown model has no price."""
    table = load_prices()
    assert table.rates("openai", "gpt-4o-2024-08-06", batch=False) == table.rates(
        "openai", "gpt-4o", batch=False
    )
    assert table.rates("openai", "my-finetune", batch=True) is None
    assert table.rates("nobody", "gpt-4o", batch=True) is None
    assert "no price known for openai model 'my-finetune'" in table.unknown("openai", "my-finetune")


def test_cost_arithmetic_input_cached_output() -> None:
    """USD = uncached input × input + cached × cached_input + output × output, per million."""
    rates = Rates(input=2.5, cached_input=1.25, output=10.0)
    # 1,000 × 2.5 + 1,000 × 1.25 + 100 × 10 = 4,750 micro-dollars.
    assert cost_usd(
        rates, input_tokens=2_000, cached_input_tokens=1_000, output_tokens=100
    ) == pytest.approx(0.00475)
    batch = load_prices().rates("openai", "gpt-4o-mini", batch=True)
    assert batch is not None
    # 1M × 0.075 + 200k × 0.30 = 0.075 + 0.06.
    assert cost_usd(batch, input_tokens=1_000_000, output_tokens=200_000) == pytest.approx(0.135)
    usage = Usage(input_tokens=10_000, cached_input_tokens=4_000, output_tokens=500)
    # 6,000 × 0.075 + 4,000 × 0.0375 + 500 × 0.30 = 450 + 150 + 150 micro-dollars.
    assert usage_cost(batch, usage) == pytest.approx(0.00075)


def test_estimator_counts_framing_and_bytes() -> None:
    """Tokens = 3 per reply + per message 3 + ceil(UTF-8 bytes / 4)."""
    assert estimate_tokens((Message(role="user", content="x" * 400),)) == 3 + 3 + 100
    # "Reply in JSON." is 14 bytes → 4 tokens.
    assert estimate_tokens(_request("x" * 400).messages) == 3 + (3 + 4) + (3 + 100)
    # Ten "é" are 20 bytes → 5 tokens.
    assert estimate_tokens((Message(role="user", content="é" * 10),)) == 3 + 3 + 5
    assert estimate_tokens(()) == 3


def test_estimator_error_on_the_emulators_counts() -> None:
    """On the example transcripts rendered by the example judges, the estimate is within 5 % of
    the emulator's prompt_tokens."""
    config = kyro.load_config(EXAMPLES / "judges.yml")
    transcripts = list(iter_transcripts([EXAMPLES / "transcripts"]))
    errors = []
    for request in plan_requests(config, transcripts, variables={"product": "Tessellate"}):
        body = {"messages": [{"role": m.role, "content": m.content} for m in request.messages]}
        served = chat_completion(body, "{}", created=0)["usage"]["prompt_tokens"]
        errors.append((estimate_tokens(request.messages) - served) / served)
    assert len(errors) >= 10
    assert max(abs(e) for e in errors) < 0.05
    assert all(e >= 0 for e in errors)  # framing tokens make the estimate err on the high side


def test_estimator_per_judge_with_and_without_samples() -> None:
    """Three runs as three requests bill the input three times; as one request with n=3, once."""
    table = load_prices()
    request = _request("x" * 400, max_tokens=300)  # 113 input tokens
    apart = CostEstimator(table, "openai", batch=True)
    for _ in range(30):
        apart.add("tone", request)
    (line,) = apart.lines()
    assert (line.runs, line.requests, line.input_tokens) == (30, 30, 3390)
    assert line.typical_output_tokens == 150 * 30
    assert line.ceiling_output_tokens == 300 * 30
    # 3,390 × 0.075 + 4,500 × 0.30 = 254.25 + 1,350 micro-dollars; ceiling 254.25 + 2,700.
    assert line.estimate_usd == pytest.approx(0.00160425)
    assert line.ceiling_usd == pytest.approx(0.00295425)
    together = CostEstimator(table, "openai", batch=True)
    for _ in range(10):
        together.add("tone", request, samples=3)
    (line,) = together.lines()
    assert (line.runs, line.requests, line.input_tokens) == (30, 10, 1130)
    assert line.saved_input_tokens == 2260
    assert line.saved_usd == pytest.approx(2260 * 0.075 / 1e6)
    assert line.ceiling_usd == pytest.approx((1130 * 0.075 + 9000 * 0.30) / 1e6)


def test_estimator_live_prices_cached_runs_and_no_cap() -> None:
    """Live mode uses live prices, cache hits are counted unbilled, a missing cap uses the
    model's output limit and says so."""
    estimator = CostEstimator(load_prices(), "openai", batch=False)
    estimator.add("safety", _request("x" * 400, model="gpt-4o"))
    estimator.add_cached("safety", "gpt-4o", runs=2)
    (line,) = estimator.lines()
    assert (line.runs, line.cached_runs, line.requests) == (3, 2, 1)
    assert line.estimate_usd == pytest.approx((113 * 2.5 + 150 * 10) / 1e6)
    assert line.ceiling_usd == pytest.approx((113 * 2.5 + 16384 * 10) / 1e6)
    assert line.note is not None
    assert "no max_tokens" in line.note
    assert "16,384" in line.note


def test_unknown_model_says_so_and_totals_are_unpriced() -> None:
    """An unknown model gets no figure and a note naming it; the totals say it is unpriced."""
    estimator = CostEstimator(load_prices(), "openai")
    estimator.add("a", _request("hello", max_tokens=10))
    estimator.add("b", _request("hello", model="mystery-1", max_tokens=10))
    lines = {line.judge: line for line in estimator.lines()}
    assert lines["a"].estimate_usd is not None
    assert lines["b"].estimate_usd is None
    assert lines["b"].ceiling_usd is None
    assert "mystery-1" in (lines["b"].note or "")
    totals = estimator.totals()
    assert totals.estimate_usd is None
    assert totals.unpriced == ("mystery-1",)
    assert totals.requests == 2


def test_max_tokens_of_reads_either_key() -> None:
    """The cap comes from max_completion_tokens or max_tokens; junk values are no cap."""
    assert max_tokens_of({"max_tokens": 400}) == 400
    assert max_tokens_of({"max_completion_tokens": 50, "max_tokens": 400}) == 50
    assert max_tokens_of({"max_tokens": True}) is None
    assert max_tokens_of({"max_tokens": "400"}) is None
    assert max_tokens_of({}) is None


def test_user_prices_file_overrides_and_adds(tmp_path: Path) -> None:
    """A YAML prices file adds a model and replaces another's prices; sources name it."""
    path = tmp_path / "prices.yml"
    path.write_text(
        "as_of: '2027-01-01'\n"
        "providers:\n"
        "  openai:\n"
        "    models:\n"
        "      my-finetune: {input: 3, output: 12, batch_input: 1, batch_output: 5}\n"
        "      gpt-4o: {input: 2, output: 8}\n"
        "  local:\n"
        "    models:\n"
        "      llama: {input: 0, output: 0}\n",
        encoding="utf-8",
    )
    table = load_prices(path, overrides={"providers": {"openai": {"batch_discount": 0.25}}})
    assert table.rates("openai", "my-finetune", batch=True) == Rates(
        input=1, cached_input=1, output=5
    )
    gpt4o = table.rates("openai", "gpt-4o", batch=True)
    assert gpt4o is not None
    assert (gpt4o.input, gpt4o.output) == pytest.approx((0.5, 2.0))
    assert table.rates("openai", "gpt-4o-mini", batch=False) is not None  # kept
    assert table.rates("local", "llama", batch=True) == Rates(input=0, cached_input=0, output=0)
    assert table.sources[1] == f"{path} (2027-01-01)"
    assert table.sources[2] == "the config's `prices:`"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("providers: {openai: {models: {m: {input: 1}}}}\n", "needs `input` and `output`"),
        ("providers: {openai: {models: {m: {input: -1, output: 1}}}}\n", "must not be negative"),
        ("providers: {openai: {batch_discount: 2}}\n", "batch_discount must be in (0, 1]"),
        ("- just a list\n", "must hold a mapping"),
        ("providers: {openai: {modles: {}}}\n", "modles"),
        ("providers: [\n", "not valid YAML"),
    ],
)
def test_bad_prices_file_names_the_file(tmp_path: Path, text: str, needle: str) -> None:
    """A wrong prices file is a BatchValidationError naming the file and the fix."""
    path = tmp_path / "prices.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(kyro.BatchValidationError) as info:
        load_prices(path)
    assert str(path) in str(info.value)
    assert needle in str(info.value)


def test_missing_or_broken_json_prices_file_is_a_clear_error(tmp_path: Path) -> None:
    """A prices file that does not exist, or is broken JSON, is refused with its path."""
    with pytest.raises(kyro.BatchValidationError, match="cannot read the prices file"):
        load_prices(tmp_path / "nope.json")
    broken = tmp_path / "prices.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(kyro.BatchValidationError, match="not valid JSON") as info:
        load_prices(broken)
    assert info.value.path == str(broken)
