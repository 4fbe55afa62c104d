"""What evaluator results say: the judge's own scores, and pipeline steps (ran, skipped,
decided by a fallback) through the live path and through staged batch jobs."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from kyro import JudgeVerdict
from kyro.serve._outcomes import score_of
from kyro_openai import OpenAIBatchProvider
from kyro_openai.testing import Emulator, EmulatorConfig, serve
from tests.serve.serve_helpers import (
    AUTH,
    batch,
    live,
    make_service,
    post,
    serving,
    user_text,
    wait_for,
)

SCORES = """\
version: 1
name: scored
model: judge-model
judges:
  - name: Quality
    pass_threshold: 0.6
    prompt: "Reply: {{input.response}}"
    output_format: json
"""

PIPELINE = """\
version: 1
name: support
model: judge-model
steps:
  - name: gate
    prompt: "gate | {{input.request}}"
    output_format: json
  - name: detail
    depends_on: [gate]
    on_failure: review
    prompt: "detail | {{input.request}} | gate said {{steps.gate.root_cause}}"
    output_format: json
  - name: review
    prompt: "review | {{input.request}} | {{steps.detail.root_cause}}"
    output_format: json
"""


class StepJudge:
    """Replies by step and request: ``reject`` fails the gate, ``weak`` fails detail (so the
    review runs), ``broken`` gets a detail reply that is not JSON (the review runs too),
    ``prose`` a gate reply that is not JSON. Thread-safe call counts."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> str:
        step, request = (part.strip() for part in user_text(body).split("|")[:2])
        with self._lock:
            self.calls[f"{step}:{request}"] += 1
        if step == "gate" and "prose" in request:
            return "looks fine to me"
        if step == "gate" and "reject" in request:
            return json.dumps({"status": "ERROR", "root_cause": "off topic"})
        if step == "detail" and "broken" in request:
            return "no idea"
        if step == "detail" and "weak" in request:
            return json.dumps({"status": "ERROR", "root_cause": "too vague", "score": 0.2})
        return json.dumps({"status": "SUCCESS", "root_cause": f"{step} ok", "score": 0.9})

    async def reply(self, body: dict[str, Any]) -> str:
        """The same, as the emulator's async responder."""
        return self(body)


INPUTS = [{"request": r, "response": "r"} for r in ("good", "reject", "weak", "prose", "broken")]


def _results(item: dict[str, Any]) -> list[tuple[str, float | None, str, str | None]]:
    return [
        (r["evaluator_name"], r["score"], r["status"], r["justification"])
        for r in item["evaluator_results"]
    ]


def _check_pipeline_view(view: dict[str, Any]) -> None:
    """The five items of INPUTS as both paths must report them."""
    assert view["status"] == "completed"
    good, reject, weak, prose, broken = view["items"]
    assert good["status"] == "completed"
    assert _results(good) == [
        ("gate", 0.9, "SUCCESS", "gate ok"),
        ("detail", 0.9, "SUCCESS", "detail ok"),
    ]
    assert reject["status"] == "completed"
    assert _results(reject) == [
        ("gate", 0.0, "ERROR", "off topic"),
        ("detail", None, "SKIPPED", "skipped: dependency 'gate' ended ERROR"),
    ]
    assert weak["status"] == "completed"
    assert _results(weak) == [
        ("gate", 0.9, "SUCCESS", "gate ok"),
        ("detail", 0.2, "ERROR", "too vague"),
        ("review", 0.9, "SUCCESS", "review ok"),
    ]
    assert prose["status"] == "failed"
    assert prose["error"]["code"] == "evaluator_failed"
    assert prose["error"]["message"].startswith("gate: unparseable_reply")
    assert _results(prose) == [
        ("detail", None, "SKIPPED", "skipped: dependency 'gate' ended ERRORED"),
    ]
    assert broken["status"] == "completed"  # the fallback decided for the broken step
    gate, detail, review = _results(broken)
    assert gate == ("gate", 0.9, "SUCCESS", "gate ok")
    assert detail[:3] == ("detail", None, "ERRORED")
    assert detail[3] is not None
    assert detail[3].startswith("no verdict (unparseable_reply")
    assert detail[3].endswith("its fallback 'review' decided")
    assert review == ("review", 0.9, "SUCCESS", "review ok")
    assert (view["completed_count"], view["failed_count"]) == (4, 1)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "judges"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_a_pipeline_runs_live_step_by_step(tmp_path: Path) -> None:
    """A pipeline config is served: each step is an evaluator; a skipped step shows SKIPPED
    with the failing dependency; a fallback runs only where its step failed."""
    judge = StepJudge()
    folder = _write(tmp_path, "support.yml", PIPELINE)
    service = make_service([folder], tmp_path / "data", live(judge))
    with serving(service) as base, httpx.Client(base_url=base, headers=AUTH) as client:
        described = client.get("/v1/judges/support/").json()
        assert described["evaluators"] == ["gate", "detail", "review"]
        view = wait_for(client, post(client, "support", {"inputs": INPUTS}))
    _check_pipeline_view(view)
    assert judge.calls == {
        "gate:good": 1,
        "detail:good": 1,
        "gate:reject": 1,
        "gate:weak": 1,
        "detail:weak": 1,
        "review:weak": 1,
        "gate:prose": 1,
        "gate:broken": 1,
        "detail:broken": 1,
        "review:broken": 1,
    }


def test_a_pipeline_runs_as_staged_batches(tmp_path: Path) -> None:
    """Through a batch provider a pipeline is one staged job: a batch per stage, and the same
    evaluator results as the live path."""
    judge = StepJudge()
    folder = _write(tmp_path, "support.yml", PIPELINE)
    with Emulator(EmulatorConfig(), responder=judge.reply) as emulator, serve(emulator) as api:
        factory = batch(lambda _: OpenAIBatchProvider(base_url=api, api_key="emulated"))
        service = make_service([folder], tmp_path / "data", factory)
        with serving(service) as base, httpx.Client(base_url=base, headers=AUTH) as client:
            view = wait_for(client, post(client, "support", {"inputs": INPUTS}), timeout=60)
        stats = emulator.stats()
    _check_pipeline_view(view)
    assert stats.batches_created == 3  # gate; detail; review
    assert stats.chat_completions == 0
    assert sum(judge.calls.values()) == 10


def test_scores_are_the_judges_own_else_from_the_status(tmp_path: Path) -> None:
    """A reply's own 0–1 score is the evaluator's score (a score alone passes at the judge's
    pass_threshold); a status alone scores 1.0 or 0.0, NA null."""
    replies = {
        "score-high": {"score": 0.75},
        "score-low": {"score": 0.55},
        "status-success": {"status": "SUCCESS", "root_cause": "fine"},
        "status-error": {"status": "ERROR", "root_cause": "wrong"},
        "status-na": {"status": "NA", "root_cause": "not applicable"},
        "both": {"status": "ERROR", "score": 0.3, "justification": "weak"},
        "out-of-range": {"status": "SUCCESS", "score": 7},
    }

    def handler(body: dict[str, Any]) -> str:
        return json.dumps(replies[user_text(body).removeprefix("Reply: ")])

    folder = _write(tmp_path, "scored.yml", SCORES)
    service = make_service([folder], tmp_path / "data", live(handler))
    inputs = [{"request": "q", "response": name} for name in replies]
    with serving(service) as base, httpx.Client(base_url=base, headers=AUTH) as client:
        view = wait_for(client, post(client, "scored", {"inputs": inputs}))
    got = {
        item["input"]["response"]: (r["score"], r["status"], r["justification"])
        for item in view["items"]
        for r in item["evaluator_results"]
    }
    assert got == {
        "score-high": (0.75, "SUCCESS", None),
        "score-low": (0.55, "ERROR", None),  # below the judge's pass_threshold of 0.6
        "status-success": (1.0, "SUCCESS", "fine"),
        "status-error": (0.0, "ERROR", "wrong"),
        "status-na": (None, "NA", "not applicable"),
        "both": (0.3, "ERROR", "weak"),
        "out-of-range": (1.0, "SUCCESS", None),
    }


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        (JudgeVerdict(judge="j", status="SUCCESS", votes={"SUCCESS": 3}, score=0.8), 0.8),
        (JudgeVerdict(judge="j", status="ERROR", votes={"ERROR": 1}, score=0.1), 0.1),
        (JudgeVerdict(judge="j", status="SUCCESS", votes={"SUCCESS": 1}), 1.0),
        (JudgeVerdict(judge="j", status="ERROR", votes={"ERROR": 1}), 0.0),
        (JudgeVerdict(judge="j", status="NA", votes={"NA": 1}, score=0.5), None),
        (JudgeVerdict(judge="j", status="ERRORED", votes={"ERRORED": 1}), None),
        (JudgeVerdict(judge="j", status="ERROR", votes={"ERROR": 1}, score=-2.0), 0.0),
    ],
)
def test_score_of(verdict: JudgeVerdict, expected: float | None) -> None:
    """score_of takes the verdict's own score in 0–1, else 1.0/0.0 by status, NA null."""
    assert score_of(verdict) == expected


def test_items_are_recorded_as_each_finishes(tmp_path: Path) -> None:
    """With one item's judge call held, every other item of the execution is completed and
    readable while it is still processing (no waiting for a group)."""
    release = threading.Event()

    def handler(body: dict[str, Any]) -> str:
        if "held" in user_text(body):
            release.wait(60)
        return json.dumps({"score": 0.9})

    folder = _write(tmp_path, "scored.yml", SCORES)
    service = make_service([folder], tmp_path / "data", live(handler, concurrency=4))
    inputs = [{"request": "q", "response": f"item {i}"} for i in range(30)]
    inputs[0]["response"] = "held"
    with serving(service) as base, httpx.Client(base_url=base, headers=AUTH) as client:
        execution_id = post(client, "scored", {"inputs": inputs})
        try:
            deadline = time.monotonic() + 60
            while True:
                view = client.get(f"/v1/judges/batch-executions/{execution_id}/").json()
                if view["completed_count"] == 29:
                    break
                assert time.monotonic() < deadline, view["completed_count"]
                time.sleep(0.05)
            assert view["status"] == "processing"
            assert view["items"][0]["status"] == "processing"
            assert [i["status"] for i in view["items"][1:]] == ["completed"] * 29
        finally:
            release.set()
        view = wait_for(client, execution_id)
    assert view["completed_count"] == 30
