"""Every error status of the API, and that no key, transcript or trace leaks from any of them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kyro.serve import configure_logging
from tests.serve.serve_helpers import (
    AUTH,
    KEY,
    CountingJudge,
    live,
    make_service,
    serving,
)

SECRET_TEXT = "transcript-secret-7f3a"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every line the service logs, formatted as it would be written (JSON)."""
    capture = _Lines()
    configure_logging(logging.DEBUG)
    logger = logging.getLogger("kyro")
    capture.setFormatter(logger.handlers[0].formatter)
    logger.handlers.append(capture)
    yield capture.lines
    for name in ("kyro", "uvicorn.error"):  # as configure_logging found them
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
        logging.getLogger(name).setLevel(logging.NOTSET)


@pytest.fixture
def small(tmp_path: Path, judges_dir: Path, judge: CountingJudge) -> Iterator[str]:
    """A server whose bodies are capped at 4 KiB."""
    service = make_service([judges_dir], tmp_path / "small", live(judge), max_body_bytes=4096)
    with serving(service) as base:
        yield base


def test_no_key_is_401_and_a_wrong_key_403(url: str) -> None:
    """Without a usable Authorization header: 401; with an unknown key: 403; Bearer works."""
    path = f"{url}/v1/judges/"
    missing = httpx.get(path)
    assert missing.status_code == 401
    assert missing.json()["detail"].startswith("authentication required")
    assert missing.headers["www-authenticate"].startswith("Api-Key")
    assert httpx.get(path, headers={"Authorization": f"Token {KEY}"}).status_code == 401
    assert httpx.get(path, headers={"Authorization": "Api-Key"}).status_code == 401
    wrong = httpx.get(path, headers={"Authorization": f"Api-Key {KEY}x"})
    assert wrong.status_code == 403
    assert KEY not in wrong.text
    assert httpx.get(path, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert httpx.get(path, headers={"Authorization": f"api-key {KEY}"}).status_code == 200
    unauthenticated_post = httpx.post(
        f"{url}/v1/judges/relevance/batch-execute/", json={"inputs": []}
    )
    assert unauthenticated_post.status_code == 401


def test_unknown_judge_version_and_execution_are_404(client: httpx.Client) -> None:
    """Unknown judge, version and execution ids, and unknown routes, answer 404 in JSON."""
    body = {"inputs": [{"request": "q", "response": "a"}]}
    assert client.post("/v1/judges/nope/batch-execute/", json=body).status_code == 404
    assert client.get("/v1/judges/nope/").status_code == 404
    assert client.get("/v1/judges/nope/versions/").status_code == 404
    pinned = {**body, "judge_version_id": "00000000-0000-0000-0000-000000000000"}
    missing_version = client.post("/v1/judges/relevance/batch-execute/", json=pinned)
    assert missing_version.status_code == 404
    assert "versions/" in missing_version.json()["detail"]
    gone = client.get("/v1/judges/batch-executions/5f0c7a54-0000-4000-8000-000000000000/")
    assert gone.status_code == 404
    assert gone.json() == {"detail": "no batch execution 5f0c7a54-0000-4000-8000-000000000000"}
    route = client.get("/v2/whatever")
    assert (route.status_code, route.json()) == (404, {"detail": "no such route"})
    assert client.get("/v1/judges/relevance/batch-execute/").status_code == 405


def test_a_bad_body_is_422_with_every_problem_listed(client: httpx.Client) -> None:
    """A body with several mistakes gets one 422 naming each field path and what is wrong."""
    body = {
        "inputs": [
            {"request": "q", "response": "a"},
            {"request": 3, "contexts": "not a list", "extra": 1},
            "just text",
        ],
        "tags": ["ok", ""],
        "tag": "typo",
        "judge_version_id": "v1",
    }
    response = client.post("/v1/judges/relevance/batch-execute/", json=body)
    assert response.status_code == 422
    problems = {p["field"]: p["message"] for p in response.json()["errors"]}
    assert set(problems) == {
        "tag",
        "inputs[1].extra",
        "inputs[1].request",
        "inputs[1].response",
        "inputs[1].contexts",
        "inputs[2]",
        "tags[1]",
        "judge_version_id",
    }
    assert problems["inputs[1].response"].startswith("required")
    assert problems["inputs[1].request"].startswith("must be a string")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", ""),
        (b"[1, 2]", ""),
        (b"{}", "inputs"),
        (b'{"inputs": []}', "inputs"),
        (b'{"inputs": {"request": "q"}}', "inputs"),
    ],
)
def test_malformed_bodies_are_422(client: httpx.Client, body: bytes, field: str) -> None:
    """Bodies that are not JSON objects with an inputs list get a 422 naming the field."""
    response = client.post(
        "/v1/judges/relevance/batch-execute/",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert [p["field"] for p in response.json()["errors"]] == [field]


def test_more_than_a_hundred_inputs_is_422(client: httpx.Client) -> None:
    """101 inputs are refused whole, nothing is created."""
    inputs = [{"request": "q", "response": "a"}] * 101
    response = client.post("/v1/judges/relevance/batch-execute/", json={"inputs": inputs})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "inputs", "message": "give between 1 and 100 inputs, not 101"}
    ]
    assert client.get("/v1/judges/batch-executions/").json()["results"] == []


def test_fields_the_judge_needs_are_required(tmp_path: Path, judge: CountingJudge) -> None:
    """A judge whose prompt reads {{input.contexts}} refuses inputs without contexts (422)."""
    folder = tmp_path / "judges"
    folder.mkdir()
    (folder / "grounded.yml").write_text(
        "version: 1\nmodel: m\njudges:\n  - name: Grounded\n    prompt: 'Reply in JSON. "
        "Request: {{input.request}} Contexts: {{input.contexts}}'\n    output_format: json\n",
        encoding="utf-8",
    )
    service = make_service([folder], tmp_path / "data", live(judge))
    with serving(service) as base, httpx.Client(base_url=base, headers=AUTH) as client:
        inputs = [
            {"request": "Request: q", "response": "a", "contexts": ["c"]},
            {"request": "Request: q", "response": "a"},
        ]
        response = client.post("/v1/judges/grounded/batch-execute/", json={"inputs": inputs})
        assert response.status_code == 422
        assert response.json()["errors"] == [
            {
                "field": "inputs[1].contexts",
                "message": "required: this judge's prompt uses {{input.contexts}}",
            }
        ]


def test_a_body_over_the_cap_is_413(small: str) -> None:
    """A body larger than --max-body-bytes is refused before it is read whole."""
    inputs = [{"request": "q" * 5000, "response": "a"}]
    response = httpx.post(
        f"{small}/v1/judges/relevance/batch-execute/", json={"inputs": inputs}, headers=AUTH
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "the body is larger than 4096 bytes; send fewer inputs"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
        yield b'{"inputs": [{"request": "'
        for _ in range(10):
            yield b"q" * 1000
        yield b'", "response": "a"}]}'

    streamed = httpx.post(
        f"{small}/v1/judges/relevance/batch-execute/", content=chunks(), headers=AUTH
    )
    assert streamed.status_code == 413


def test_bad_list_queries_are_422(client: httpx.Client) -> None:
    """A listing with an unknown status, page size, cursor or parameter names each in a 422."""
    response = client.get(
        "/v1/judges/batch-executions/",
        params={"status": "done", "page_size": "0", "cursor": "zz", "colour": "red"},
    )
    assert response.status_code == 422
    assert {p["field"] for p in response.json()["errors"]} == {
        "status",
        "page_size",
        "cursor",
        "colour",
    }


def test_no_key_transcript_or_trace_in_errors_or_logs(
    log_lines: list[str], tmp_path: Path, judges_dir: Path, judge: CountingJudge
) -> None:
    """Error bodies and every log line stay free of keys, transcripts and tracebacks."""
    service = make_service([judges_dir], tmp_path / "data", live(judge))
    with serving(service) as base:
        bodies = [
            httpx.get(f"{base}/v1/judges/", headers={"Authorization": f"Api-Key {KEY}-wrong"}),
            httpx.post(
                f"{base}/v1/judges/relevance/batch-execute/",
                json={"inputs": [{"request": SECRET_TEXT, "response": 5}]},
                headers=AUTH,
            ),
            httpx.post(
                f"{base}/v1/judges/relevance/batch-execute/",
                json={"inputs": [{"request": SECRET_TEXT, "response": f"prose {SECRET_TEXT}"}]},
                headers=AUTH,
            ),
        ]
        assert [b.status_code for b in bodies] == [403, 422, 202]
        with httpx.Client(base_url=base, headers=AUTH) as client:
            from tests.serve.serve_helpers import wait_for

            wait_for(client, bodies[2].json()["batch_execution_id"])
    for response in bodies[:2]:
        assert KEY not in response.text
        assert SECRET_TEXT not in response.text
        assert "Traceback" not in response.text
    joined = "\n".join(log_lines)
    assert '"path": "/v1/judges/relevance/batch-execute/", "status": 202' in joined
    assert KEY not in joined
    assert SECRET_TEXT not in joined
    assert "Traceback" not in joined
