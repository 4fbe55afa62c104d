"""The batch-execute API end to end over real HTTP, through a live (callable) provider."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from tests.serve.serve_helpers import (
    AUTH,
    SEED_INPUTS,
    CountingJudge,
    live,
    make_service,
    post,
    serving,
    wait_for,
)


@pytest.mark.slow  # end to end over HTTP
def test_seed_example_end_to_end(client: httpx.Client, judge: CountingJudge) -> None:
    """The seed's three pairs: 202 with an id and status URL, then three evaluated items."""
    response = client.post(
        "/v1/judges/relevance/batch-execute/", json={"inputs": SEED_INPUTS, "tags": ["my-app-v1.2"]}
    )
    assert response.status_code == 202
    accepted = response.json()
    assert set(accepted) == {"batch_execution_id", "status_url"}
    execution_id = accepted["batch_execution_id"]
    assert accepted["status_url"] == f"/v1/judges/batch-executions/{execution_id}/"
    assert response.headers["location"] == accepted["status_url"]

    view = wait_for(client, execution_id)
    assert view["status"] == "completed"
    assert view["batch_execution_id"] == execution_id
    assert view["judge_id"] == "relevance"
    assert view["tags"] == ["my-app-v1.2"]
    assert (view["total_count"], view["completed_count"], view["failed_count"]) == (3, 3, 0)
    assert view["started_at"] is not None
    assert view["finished_at"] is not None
    assert [item["index"] for item in view["items"]] == [0, 1, 2]
    first = view["items"][0]
    assert first["status"] == "completed"
    assert first["input"] == {
        **SEED_INPUTS[0],
        "contexts": None,
        "functions": None,
        "expected_output": None,
    }
    assert first["error"] is None
    assert first["evaluator_results"] == [
        {
            "score": 0.95,
            "justification": "judged: What is the capital of France?",
            "evaluator_name": "Relevance",
            "status": "SUCCESS",
        }
    ]
    assert [i["evaluator_results"][0]["score"] for i in view["items"]] == [0.95, 0.4, 0.4]
    assert sum(judge.calls.values()) == 3


def test_items_complete_one_by_one_while_another_is_held(
    client: httpx.Client, judge: CountingJudge
) -> None:
    """While one item's judge call is held, the others are completed and it is processing."""
    inputs = [{"request": f"question {i}", "response": "answer"} for i in range(4)]
    inputs[3]["request"] = "question 3 block"
    execution_id = post(client, "relevance", {"inputs": inputs})
    try:
        for _ in range(600):
            view = client.get(f"/v1/judges/batch-executions/{execution_id}/").json()
            if view["completed_count"] == 3:
                break
            threading.Event().wait(0.05)
        assert view["status"] == "processing"
        assert [i["status"] for i in view["items"]] == [
            "completed",
            "completed",
            "completed",
            "processing",
        ]
        assert view["items"][3]["evaluator_results"] == []
    finally:
        judge.release.set()
    view = wait_for(client, execution_id)
    assert view["status"] == "completed"
    assert [i["status"] for i in view["items"]] == ["completed"] * 4


@pytest.mark.slow  # end to end over HTTP
def test_a_reply_that_is_not_a_verdict_fails_only_its_item(client: httpx.Client) -> None:
    """An unparseable reply is a failed item with an error; the execution still completes."""
    inputs = [
        {"request": "fine one", "response": "a"},
        {"request": "prose please", "response": "b"},
    ]
    view = wait_for(client, post(client, "relevance", {"inputs": inputs}))
    assert view["status"] == "completed"
    assert (view["completed_count"], view["failed_count"]) == (1, 1)
    failed = view["items"][1]
    assert failed["status"] == "failed"
    assert failed["evaluator_results"] == []
    assert failed["error"]["code"] == "evaluator_failed"
    assert failed["error"]["message"].startswith("Relevance: unparseable_reply")


def test_every_item_failing_fails_the_execution(client: httpx.Client) -> None:
    """When no item gets a verdict, the execution itself ends failed with a reason."""
    inputs = [{"request": f"prose {i}", "response": "x"} for i in range(2)]
    view = wait_for(client, post(client, "relevance", {"inputs": inputs}))
    assert view["status"] == "failed"
    assert view["error"]["code"] == "all_items_failed"
    assert view["failed_count"] == 2


@pytest.mark.slow  # a hundred inputs end to end
def test_a_hundred_inputs(client: httpx.Client, judge: CountingJudge) -> None:
    """The largest execution the API takes runs every input once, results in input order."""
    inputs = [{"request": f"item {i}", "response": f"reply {i}"} for i in range(100)]
    view = wait_for(client, post(client, "relevance", {"inputs": inputs}), timeout=120)
    assert view["status"] == "completed"
    assert view["completed_count"] == 100
    assert [i["index"] for i in view["items"]] == list(range(100))
    assert [i["evaluator_results"][0]["justification"] for i in view["items"]] == [
        f"judged: item {i}" for i in range(100)
    ]
    assert judge.calls == {f"item {i}": 1 for i in range(100)}


@pytest.mark.slow  # eight clients with ten items each, end to end
def test_concurrent_executions_keep_their_own_items(
    client: httpx.Client, judge: CountingJudge
) -> None:
    """Eight clients posting at once each get back exactly their own inputs' results."""
    ids: dict[int, str] = {}

    def submit(n: int) -> None:
        inputs = [{"request": f"client {n} item {i}", "response": "r"} for i in range(10)]
        ids[n] = post(client, "relevance", {"inputs": inputs, "tags": [f"client-{n}"]})

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids.values())) == 8
    for n, execution_id in ids.items():
        view = wait_for(client, execution_id, timeout=120)
        assert view["status"] == "completed"
        assert view["tags"] == [f"client-{n}"]
        assert [i["evaluator_results"][0]["justification"] for i in view["items"]] == [
            f"judged: client {n} item {i}" for i in range(10)
        ]
    assert sum(judge.calls.values()) == 80
    assert max(judge.calls.values()) == 1


def test_healthz_needs_no_key(url: str, tmp_path: Path) -> None:
    """``/healthz`` answers without a key and says how many judges are served."""
    response = httpx.get(f"{url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "judges": 1, "unfinished": 0}


@pytest.mark.slow  # end to end over HTTP
def test_items_stay_pending_until_a_worker_takes_them(tmp_path: Path, judges_dir: Path) -> None:
    """With the only worker held by one item, the other items read pending, not processing."""
    judge = CountingJudge()
    service = make_service([judges_dir], tmp_path / "one", live(judge, concurrency=1))
    inputs = [{"request": f"block {i}", "response": "r"} for i in range(3)]
    with serving(service) as base, httpx.Client(base_url=base, headers=AUTH) as client:
        execution_id = post(client, "relevance", {"inputs": inputs})
        try:
            for _ in range(600):
                view = client.get(f"/v1/judges/batch-executions/{execution_id}/").json()
                if "processing" in [i["status"] for i in view["items"]]:
                    break
                threading.Event().wait(0.05)
            threading.Event().wait(0.3)  # time for a wrong second start to show
            view = client.get(f"/v1/judges/batch-executions/{execution_id}/").json()
            assert view["status"] == "processing"
            assert sorted(i["status"] for i in view["items"]) == [
                "pending",
                "pending",
                "processing",
            ]
            assert sum(judge.calls.values()) == 1
        finally:
            judge.release.set()
        view = wait_for(client, execution_id)
    assert [i["status"] for i in view["items"]] == ["completed"] * 3


def test_the_same_inputs_twice_are_judged_twice_live(
    tmp_path: Path, judges_dir: Path, client: httpx.Client, judge: CountingJudge
) -> None:
    """The live path keeps no reply cache either: a second execution of the same inputs calls
    the judge again for every item, and no cache folder is written."""
    views = [wait_for(client, post(client, "relevance", {"inputs": SEED_INPUTS})) for _ in range(2)]
    assert [v["completed_count"] for v in views] == [3, 3]
    assert sum(judge.calls.values()) == 6
    assert set(judge.calls.values()) == {2}
    assert not [p for p in tmp_path.rglob("*") if p.name == "cache"]
