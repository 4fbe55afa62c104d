"""A job's side of the cache: hits recorded at submit, replies stored at check, replayed next."""

from __future__ import annotations

import gc
import json
import logging
import shutil
from pathlib import Path

import msgspec
import pytest

from kyro import VoteSettings
from kyro._build.plan_build import build_shards
from kyro._job.collect import aggregate
from kyro._plan.planner import plan_requests
from kyro._transcript_index import IndexEntry
from kyro._verdicts.aggregate import Aggregator
from kyro._verdicts.job_cache import JobCache
from kyro._verdicts.reply_cache import CacheError, RequestKeys
from kyro.provider import ResultError, ResultLine, Usage
from kyro_openai import OPENAI_LIMITS, encode_request
from tests.plan_helpers import make_config, make_judge, texts

CONFIG = make_config(make_judge("tone", params={"max_tokens": 50}))
OK = json.dumps({"status": "SUCCESS", "root_cause": "polite"})
BAD = json.dumps({"status": "ERROR", "root_cause": "rude"})


def _submit(folder: Path, cache_dir: Path, transcripts: int) -> tuple[list[str], JobCache]:
    job = JobCache.create(folder, cache_dir, provider="openai")
    gate = job.gate(["tone"], None)
    build_shards(
        CONFIG,
        texts(transcripts),
        encode=encode_request,
        limits=OPENAI_LIMITS,
        directory=folder / "shards",
        runs=3,
        samples=True,
        gate=gate,
    )
    job.finish_submit()
    sent = [
        json.loads(line)["custom_id"]
        for shard in sorted((folder / "shards").glob("shard-*.jsonl"))
        for line in shard.read_text().splitlines()
    ]
    return sent, job


def test_replies_stored_at_check_answer_the_next_job(tmp_path: Path) -> None:
    """Job 1 sends everything and stores its verdicts (per choice); job 2 with one more
    transcript sends only that one, and its cached runs replay marked origin=cache."""
    cache_dir = tmp_path / "cache"
    sent, job = _submit(tmp_path / "job1", cache_dir, 2)
    assert sent == ["t0-j0-r0", "t1-j0-r0"]
    usage = Usage(input_tokens=90, output_tokens=30, total_tokens=120)
    replies = [
        ResultLine(custom_id="t0-j0-r0", ok=True, content=OK, usage=usage, choices=(OK, BAD, OK)),
        ResultLine(
            custom_id="t1-j0-r0", ok=True, content=OK, usage=usage, choices=(OK, "prose", OK)
        ),
        ResultLine(custom_id="t9-j0-r0", ok=True, content=OK),  # not this job's: ignored
        ResultLine(
            custom_id="t1-j0-r0", ok=False, error=ResultError(code="server_error", message="x")
        ),
    ]
    # Five verdicts: the prose choice is not one, the stranger has no key.
    assert job.store_replies(replies) == 5
    job.close()

    sent2, job2 = _submit(tmp_path / "job2", cache_dir, 3)
    # t1's run 1 was not stored (prose), so it goes alone; t2 is new.
    assert sent2 == ["t1-j0-r1", "t2-j0-r0"]
    job2.close()
    again = JobCache.load(tmp_path / "job2")
    assert again is not None
    hits = list(again.hits())
    assert sorted(line.custom_id for line in hits) == [
        "t0-j0-r0",
        "t0-j0-r1",
        "t0-j0-r2",
        "t1-j0-r0",
        "t1-j0-r2",
    ]
    with Aggregator(tmp_path / "work", judges=("tone",), runs=3, transcripts=3, samples=3) as agg:
        for line in hits:
            agg.add(line, cached=True)
        agg.add(ResultLine(custom_id="t1-j0-r1", ok=True, content=OK, usage=usage))
        agg.add(
            ResultLine(custom_id="t2-j0-r0", ok=True, content=OK, usage=usage, choices=(OK, OK, OK))
        )
        index = [IndexEntry(index=i, source=f"inline:{i}") for i in range(3)]
        result = agg.finish(index, tmp_path / "results.jsonl", job_id="job2")
    runs = [e.verdicts["tone"].runs for e in result.evaluations]
    assert [run.origin for run in runs[0]] == ["cache", "cache", "cache"]
    assert [run.status for run in runs[0]] == ["SUCCESS", "ERROR", "SUCCESS"]
    assert [run.origin for run in runs[1]] == ["cache", None, "cache"]
    assert [run.origin for run in runs[2]] == [None, None, None]
    # Only what this job sent is billed: t1 run 1 and t2's request.
    assert result.usage.input_tokens == 180
    assert JobCache.load(tmp_path / "nothing") is None


def test_an_unusable_cache_never_fails_the_check(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """When the cache folder cannot be written at check, the results are still written and
    the failure is logged."""
    cache_dir = tmp_path / "cache"
    _, job = _submit(tmp_path / "job", cache_dir, 1)
    job.close()
    shutil.rmtree(cache_dir)
    cache_dir.write_text("not a folder", encoding="utf-8")
    download = tmp_path / "download.jsonl"
    line = ResultLine(custom_id="t0-j0-r0", ok=True, content=OK, choices=(OK, OK, BAD))
    download.write_bytes(msgspec.json.encode(line) + b"\n")
    index = tmp_path / "index.jsonl"
    index.write_bytes(msgspec.json.encode(IndexEntry(index=0, source="inline:0")) + b"\n")
    with caplog.at_level(logging.WARNING, logger="kyro"):
        collected = aggregate(
            [download],
            work_dir=tmp_path / "work",
            index_path=index,
            results_path=tmp_path / "results.jsonl",
            job_id="j",
            judges=["tone"],
            runs=3,
            transcripts=1,
            settings=VoteSettings(),
            finish=True,
            samples=3,
            reuse_dir=tmp_path / "job",
        )
    assert collected.result is not None
    assert collected.result.counts.success == 1
    assert "the reply cache could not store this job's replies" in caplog.text


def test_a_cache_that_cannot_open_leaves_no_file_open(tmp_path: Path) -> None:
    """A submit whose cache folder is unusable fails with the cache's own error and leaves no
    file of the job open (the suite turns an unclosed file into an error)."""
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder", encoding="utf-8")
    job = JobCache.create(tmp_path / "job", blocker, provider="openai")
    with pytest.raises(CacheError, match="--no-cache"):
        job.gate(["tone"], None)
    job.close()
    gc.collect()  # an unclosed file would warn here
    assert not (tmp_path / "job" / "cache-hits.jsonl").exists()


def test_a_pipeline_stage_replanned_keeps_one_copy_of_its_hits(tmp_path: Path) -> None:
    """A later stage's hits go to its own file, written afresh when the stage is planned
    again (a plan a crash cut short), while stage 0's file is left as it was."""
    cache_dir = tmp_path / "cache"
    folder = tmp_path / "job"
    job = JobCache.create(folder, cache_dir, provider="openai")
    key = RequestKeys("openai")
    (request,) = plan_requests(CONFIG, texts(1), runs=1, stage=1)
    job.cache().put(key.key(request, run=0), ResultLine(custom_id="x", ok=True, content=OK))
    (first,) = plan_requests(CONFIG, texts(1), runs=1)
    job.cache().put(key.key(first, run=0), ResultLine(custom_id="y", ok=True, content=OK))
    gate = job.gate(["tone"], None)
    assert gate.take([first]) == []
    assert gate.flush() == []
    job.finish_submit()
    for _ in range(2):  # planned, then planned again
        gate = job.gate(["tone"], None, stage=1)
        assert gate.take([request]) == []
        assert gate.flush() == []
        job.finish_submit()
    assert [line.custom_id for line in job.hits(1)] == ["s1-t0-j0-r0"]
    assert [line.custom_id for line in job.hits()] == ["t0-j0-r0"]
    assert {p.name for p in folder.glob("cache-hits*.jsonl")} == {
        "cache-hits.jsonl",
        "cache-hits-s1.jsonl",
    }
    job.close()
