"""Judges, content-addressed versions and pinning, and the filtered, paginated listing."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.serve.serve_helpers import (
    AUTH,
    CountingJudge,
    live,
    make_service,
    post,
    serving,
    wait_for,
)
from tests.serve.serve_helpers import write_judge as write


@pytest.mark.slow  # end to end over HTTP
def test_versions_are_content_addressed_and_pinnable(tmp_path: Path, judge: CountingJudge) -> None:
    """Editing a config adds a version, the newest by default; a pinned old one still runs."""
    folder = tmp_path / "judges"
    path = write(folder, "version one")
    service = make_service([folder], tmp_path / "data", live(judge))
    with serving(service) as base, httpx.Client(base_url=base, headers=AUTH) as client:
        first = client.get("/v1/judges/relevance/").json()
        assert first["evaluators"] == ["Relevance"]
        assert first["description"] == "Is the response relevant to the request?"
        v1 = first["latest_version_id"]

        write(folder, "version two")
        os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
        v2 = client.get("/v1/judges/relevance/").json()["latest_version_id"]
        assert v2 != v1
        versions = client.get("/v1/judges/relevance/versions/").json()["results"]
        assert {v["id"] for v in versions} == {v1, v2}
        assert [v["id"] for v in versions if v["is_latest"]] == [v2]

        one = {"inputs": [{"request": "pinned", "response": "r"}], "judge_version_id": v1}
        pinned = wait_for(client, post(client, "relevance", one))
        latest = wait_for(
            client, post(client, "relevance", {"inputs": [{"request": "latest", "response": "r"}]})
        )
        assert pinned["judge_version_id"] == v1
        assert latest["judge_version_id"] == v2
        assert [p.splitlines()[0] for p in judge.prompts] == ["version one", "version two"]

    # The same content under another server and data folder gets the same id.
    write(tmp_path / "elsewhere", "version two")
    again = make_service([tmp_path / "elsewhere"], tmp_path / "data2", live(judge))
    assert again.registry.judges["relevance"].version.version_id == v2


def test_a_version_of_another_judge_is_404(tmp_path: Path, judge: CountingJudge) -> None:
    """judge_version_id must belong to the judge in the URL."""
    folder = tmp_path / "judges"
    write(folder, "relevance prompt")
    (folder / "tone.yml").write_text(
        (folder / "relevance.yml").read_text().replace("name: relevance", "name: tone"),
        encoding="utf-8",
    )
    service = make_service([folder], tmp_path / "data", live(judge))
    with serving(service) as base, httpx.Client(base_url=base, headers=AUTH) as client:
        listed = client.get("/v1/judges/").json()["results"]
        assert [j["id"] for j in listed] == ["relevance", "tone"]
        tone_version = listed[1]["latest_version_id"]
        body = {"inputs": [{"request": "q", "response": "a"}], "judge_version_id": tone_version}
        response = client.post("/v1/judges/relevance/batch-execute/", json=body)
        assert response.status_code == 404
        assert response.json()["detail"].startswith(
            f"judge relevance has no version {tone_version}"
        )


@pytest.mark.slow  # end to end over HTTP
def test_listing_filters_by_tag_judge_and_status_and_pages(
    client: httpx.Client, judge: CountingJudge
) -> None:
    """The list endpoint filters by tag, judge and status and pages newest first by cursor."""
    one = [{"request": "q", "response": "a"}]
    ids = [
        post(client, "relevance", {"inputs": one, "tags": ["nightly", "v1"]}),
        post(client, "relevance", {"inputs": one, "tags": ["v1"]}),
        post(client, "relevance", {"inputs": [{"request": "prose", "response": "a"}]}),
    ]
    for execution_id in ids:
        wait_for(client, execution_id)

    def listed(**params: str) -> list[str]:
        response = client.get("/v1/judges/batch-executions/", params=params)
        assert response.status_code == 200
        return [e["batch_execution_id"] for e in response.json()["results"]]

    assert listed() == ids[::-1]
    assert listed(tag="v1") == [ids[1], ids[0]]
    assert listed(tag="nightly") == [ids[0]]
    assert listed(status="failed") == [ids[2]]
    assert listed(status="completed", tag="v1") == [ids[1], ids[0]]
    assert listed(judge_id="relevance") == ids[::-1]
    assert listed(judge_id="other") == []
    summary = client.get("/v1/judges/batch-executions/", params={"tag": "nightly"}).json()
    assert "items" not in summary["results"][0]
    assert summary["results"][0]["tags"] == ["nightly", "v1"]

    seen: list[str] = []
    page = client.get("/v1/judges/batch-executions/", params={"page_size": "1"}).json()
    while True:
        seen.extend(e["batch_execution_id"] for e in page["results"])
        if page["next"] is None:
            break
        assert page["next"].startswith("/v1/judges/batch-executions/?")
        page = client.get(page["next"]).json()
    assert seen == ids[::-1]


def test_a_broken_edit_keeps_the_last_good_version(tmp_path: Path, judge: CountingJudge) -> None:
    """A config saved with a mistake while serving is not served; the last good one stays."""
    folder = tmp_path / "judges"
    path = write(folder, "good")
    service = make_service([folder], tmp_path / "data", live(judge))
    with serving(service) as base, httpx.Client(base_url=base, headers=AUTH) as client:
        good = client.get("/v1/judges/relevance/").json()["latest_version_id"]
        path.write_text("version: 1\njudges: [oops", encoding="utf-8")
        os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
        assert client.get("/v1/judges/relevance/").json()["latest_version_id"] == good
        view = wait_for(
            client, post(client, "relevance", {"inputs": [{"request": "q", "response": "a"}]})
        )
        assert view["status"] == "completed"
        assert view["judge_version_id"] == good
