"""Fixtures for the service tests: a counting judge and a server over it on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serve.serve_helpers import AUTH, CountingJudge, live, make_service, serving, write_judge


@pytest.fixture
def judge() -> Iterator[CountingJudge]:
    """The callable judge behind the server; blocked calls are released at teardown."""
    judge = CountingJudge()
    yield judge
    judge.release.set()


@pytest.fixture
def judges_dir(tmp_path: Path) -> Path:
    """A folder holding the relevance judge."""
    write_judge(tmp_path / "judges")
    return tmp_path / "judges"


@pytest.fixture
def url(tmp_path: Path, judges_dir: Path, judge: CountingJudge) -> Iterator[str]:
    """A live-provider server over the callable judge; its base URL."""
    service = make_service([judges_dir], tmp_path / "data", live(judge))
    with serving(service) as base:
        yield base


@pytest.fixture
def client(url: str) -> Iterator[httpx.Client]:
    """An HTTP client with the test key."""
    with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        yield client
