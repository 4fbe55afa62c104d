"""Where status polls read the store: on the event loop only when the store says its reads
never wait (SQLite), else in a worker thread; the answer is the same either way."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from kyro.serve import KeyRing, ServeApp, SQLiteStore
from tests.serve.serve_helpers import (
    AUTH,
    KEY,
    SEED_INPUTS,
    CountingJudge,
    live,
    make_service,
    post,
    serving,
    wait_for,
    write_judge,
)


class _NotingReads:
    """The service's SQLite store, noting the thread of each status read; ``inline_reads``
    is declared only when ``inline`` is given."""

    def __init__(self, inner: SQLiteStore, inline: bool | None) -> None:
        self.inner = inner
        self.threads: list[str] = []
        if inline is not None:
            self.inline_reads = inline

    def execution_raw(self, execution_id: str) -> Any:
        self.threads.append(threading.current_thread().name)
        return self.inner.execution_raw(execution_id)

    def __getattr__(self, name: str) -> Any:
        if name == "inline_reads":  # not declared: not the SQLite store's own answer
            raise AttributeError(name)
        return getattr(self.inner, name)


@pytest.mark.slow  # end to end over HTTP
@pytest.mark.parametrize("inline", [None, False, True])
def test_status_polls_read_in_a_worker_thread_unless_the_store_says_reads_never_wait(
    tmp_path: Path, inline: bool | None
) -> None:
    """A store without ``inline_reads = True`` is read for every poll in a worker thread,
    one with it on the event loop; the seed's three items are reported the same way."""
    judge = CountingJudge()
    built = make_service([write_judge(tmp_path / "judges")], tmp_path / "data", live(judge))
    assert isinstance(built.store, SQLiteStore)
    reads = _NotingReads(built.store, inline)
    service = ServeApp(reads, built.registry, built.pool, keys=KeyRing([KEY]), grace=1.0)
    with serving(service) as url, httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
        execution_id = post(client, "relevance", {"inputs": SEED_INPUTS})
        view = wait_for(client, execution_id)
    assert view["status"] == "completed"
    assert [item["status"] for item in view["items"]] == ["completed"] * 3
    assert [item["input"]["request"] for item in view["items"]] == [
        pair["request"] for pair in SEED_INPUTS
    ]
    assert reads.threads
    in_workers = {name.startswith("AnyIO worker thread") for name in reads.threads}
    assert in_workers == ({False} if inline else {True})
