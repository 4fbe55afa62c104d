"""Planning through the reply cache and the cost estimator: hits are not sent, samples split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kyro._build.plan_build import build_shards
from kyro._cost.estimate import CostEstimator
from kyro._cost.prices import load_prices
from kyro._plan.planner import plan_requests
from kyro._verdicts.cache_gate import RequestGate
from kyro._verdicts.reply_cache import ReplyCache, RequestKeys
from kyro.provider import JudgeRequest, ResultLine
from kyro_openai import OPENAI_LIMITS, encode_request
from tests.plan_helpers import make_config, make_judge, texts

VERDICT = json.dumps({"status": "SUCCESS", "root_cause": "fine"})
CONFIG = make_config(make_judge("tone", params={"max_tokens": 100}))


def _fill(cache: ReplyCache, transcript: int, runs: list[int]) -> None:
    """Store verdicts for the given runs of one transcript (keys as the planner makes them)."""
    keys = RequestKeys("openai")
    (request,) = plan_requests(CONFIG, texts(1, start=transcript), runs=1)
    for run in runs:
        line = ResultLine(custom_id="x", ok=True, content=VERDICT)
        assert cache.put(keys.key(request, run=run), line)


def _build(tmp_path: Path, gate: RequestGate, *, samples: bool) -> list[dict[str, Any]]:
    out = tmp_path / f"shards-{samples}"
    build_shards(
        CONFIG,
        texts(4),
        encode=encode_request,
        limits=OPENAI_LIMITS,
        directory=out,
        runs=3,
        samples=samples,
        gate=gate,
    )
    return [
        json.loads(line)
        for shard in sorted(out.glob("shard-*.jsonl"))
        for line in shard.read_text().splitlines()
    ]


def test_samples_plan_one_request_per_transcript_and_judge() -> None:
    """With samples, runs=3 plans one request per transcript × judge, n=3, under run 0's id."""
    requests = list(plan_requests(CONFIG, texts(2), runs=3, samples=True))
    assert [(r.custom_id, r.samples) for r in requests] == [("t0-j0-r0", 3), ("t1-j0-r0", 3)]
    assert [r.samples for r in plan_requests(CONFIG, texts(1), runs=1, samples=True)] == [1]


def test_cache_hits_are_not_sent_and_partial_hits_split(tmp_path: Path) -> None:
    """All runs cached: nothing sent; some cached: the missing runs go alone; none: one n=3."""
    hits: list[ResultLine] = []
    sent: list[str] = []
    estimator = CostEstimator(load_prices(), "openai")
    with ReplyCache(tmp_path / "cache") as cache:
        _fill(cache, 0, [0, 1, 2])
        _fill(cache, 1, [1])
        gate = RequestGate(
            ["tone"],
            cache=cache,
            keys=RequestKeys("openai"),
            estimator=estimator,
            on_hit=hits.append,
            on_sent=lambda custom_id, key, request: sent.append(custom_id),
        )
        lines = _build(tmp_path, gate, samples=True)
    assert [(line["custom_id"], line["body"].get("n")) for line in lines] == [
        ("t1-j0-r0", None),
        ("t1-j0-r2", None),
        ("t2-j0-r0", 3),
        ("t3-j0-r0", 3),
    ]
    assert sorted(line.custom_id for line in hits) == [
        "t0-j0-r0",
        "t0-j0-r1",
        "t0-j0-r2",
        "t1-j0-r1",
    ]
    assert all(line.ok and line.content == VERDICT for line in hits)
    assert sent == [
        "t1-j0-r0",
        "t1-j0-r2",
        "t2-j0-r0",
        "t2-j0-r1",
        "t2-j0-r2",
        "t3-j0-r0",
        "t3-j0-r1",
        "t3-j0-r2",
    ]
    (cost,) = estimator.lines()
    assert (cost.runs, cost.cached_runs, cost.requests) == (12, 4, 4)
    # Two requests of n=3 save two prompts each.
    assert cost.saved_input_tokens == 2 * 2 * (cost.input_tokens // 4)


def test_gate_without_cache_only_counts(tmp_path: Path) -> None:
    """Without a cache every planned request is written, and cost counts each one."""
    estimator = CostEstimator(load_prices(), "openai", batch=True)
    lines = _build(tmp_path, RequestGate(["tone"], estimator=estimator), samples=False)
    assert len(lines) == 12
    (cost,) = estimator.lines()
    assert (cost.runs, cost.requests, cost.cached_runs) == (12, 12, 0)
    assert cost.ceiling_output_tokens == 12 * 100
    assert cost.estimate_usd == pytest.approx((cost.input_tokens * 0.075 + 12 * 100 * 0.30) / 1e6)


def test_gate_needs_keys_with_a_cache(tmp_path: Path) -> None:
    """A gate given a cache but no key maker is a programming error, said at once."""
    with ReplyCache(tmp_path) as cache, pytest.raises(ValueError, match="needs request keys"):
        RequestGate(["tone"], cache=cache)


def test_request_keys_ignore_samples() -> None:
    """A run's key is the same whether it travels alone or as one of n samples."""
    (single,) = plan_requests(CONFIG, texts(1), runs=1)
    (carried,) = plan_requests(CONFIG, texts(1), runs=3, samples=True)
    assert isinstance(carried, JudgeRequest)
    assert carried.samples == 3
    assert RequestKeys("openai").key(single, run=0) == RequestKeys("openai").key(carried, run=0)


def test_gate_without_cache_counts_runs_of_a_judge_as_one_add_each() -> None:
    """Counting a transcript's runs together gives the estimator the same lines as one by one."""
    config = make_config(
        make_judge("tone", params={"max_tokens": 100}), make_judge("facts", model="gpt-4o")
    )
    names = [judge.name for judge in config.judges]
    requests = list(plan_requests(config, texts(3), runs=3))
    grouped = CostEstimator(load_prices(), "openai")
    gate = RequestGate(names, estimator=grouped)
    by_transcript = [requests[i : i + 6] for i in range(0, len(requests), 6)]
    sent = [request for chunk in by_transcript for request in gate.take(chunk)]
    single = CostEstimator(load_prices(), "openai")
    for request in requests:
        single.add(names[int(request.custom_id.split("-j")[1][0])], request)
    assert sent == requests
    assert gate.sent_runs == 18
    assert grouped.lines() == single.lines()
    assert [(line.judge, line.runs, line.requests) for line in grouped.lines()] == [
        ("tone", 9, 9),
        ("facts", 9, 9),
    ]
