"""The aggregator: result lines in any order → one durable results file and the job's result."""

from __future__ import annotations

import json
import random
import stat
import tracemalloc
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

from kyro import Evaluations, VoteSettings
from kyro._transcript_index import IndexEntry
from kyro._verdicts.aggregate import Aggregator
from kyro.provider import ResultError, ResultLine, Usage

OK_REPLY = '{"status": "SUCCESS", "root_cause": "fine"}'
BAD_REPLY = '{"status": "ERROR", "root_cause": "wrong"}'
NA_REPLY = '{"status": "NA"}'
EXPIRED = ResultError(code="batch_expired", message="expired", retryable=True)
INVALID = ResultError(code="invalid_request", message="bad params")


def ok(custom_id: str, reply: str = OK_REPLY, tokens: int = 10) -> ResultLine:
    usage = Usage(input_tokens=tokens, output_tokens=1, total_tokens=tokens + 1)
    return ResultLine(custom_id=custom_id, ok=True, content=reply, usage=usage)


def failed(custom_id: str, error: ResultError = EXPIRED) -> ResultLine:
    return ResultLine(custom_id=custom_id, ok=False, error=error)


def index(n: int) -> list[IndexEntry]:
    return [IndexEntry(index=i, source=f"inline:{i}", preview=f"text {i}") for i in range(n)]


def make(
    tmp_path: Path,
    transcripts: int,
    judges: Iterable[str] = ("a",),
    *,
    runs: int = 1,
    partition_size: int = 1024,
    buffer_bytes: int = 1 << 20,
) -> Aggregator:
    return Aggregator(
        tmp_path / "work",
        judges=tuple(judges),
        runs=runs,
        transcripts=transcripts,
        partition_size=partition_size,
        buffer_bytes=buffer_bytes,
    )


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_transcript_statuses_follow_the_rules(tmp_path: Path) -> None:
    """SUCCESS when all judges pass (NA counts as a pass), ERROR when all fail, else PARTIAL."""
    agg = make(tmp_path, 4, judges=("a", "b"))
    replies = {0: (OK_REPLY, NA_REPLY), 1: (BAD_REPLY, BAD_REPLY), 2: (OK_REPLY, BAD_REPLY)}
    replies[3] = (NA_REPLY, NA_REPLY)
    for t, (a, b) in replies.items():
        agg.add(ok(f"t{t}-j0-r0", a))
        agg.add(ok(f"t{t}-j1-r0", b))
    result = agg.finish(index(4), tmp_path / "results.jsonl", job_id="job-1")
    assert [e.status for e in result.evaluations] == ["SUCCESS", "ERROR", "PARTIAL", "SUCCESS"]
    assert result.status == "PARTIAL"
    counts = result.counts
    assert (counts.success, counts.error, counts.partial, counts.errored) == (2, 1, 1, 0)
    assert (counts.judges["a"].success, counts.judges["a"].error, counts.judges["a"].na) == (
        2,
        1,
        1,
    )
    assert (counts.judges["b"].success, counts.judges["b"].error, counts.judges["b"].na) == (
        0,
        2,
        2,
    )
    assert result.complete


@pytest.mark.parametrize(
    ("replies", "expected"),
    [((OK_REPLY, NA_REPLY), "SUCCESS"), ((BAD_REPLY, BAD_REPLY), "ERROR")],
)
def test_job_status_when_all_transcripts_agree(
    tmp_path: Path, replies: tuple[str, str], expected: str
) -> None:
    """A job whose transcripts all succeeded is SUCCESS; all failed is ERROR."""
    agg = make(tmp_path, 2)
    agg.add(ok("t0-j0-r0", replies[0]))
    agg.add(ok("t1-j0-r0", replies[1]))
    assert agg.finish(index(2), tmp_path / "r.jsonl", job_id="j").status == expected


def test_an_errored_judge_makes_the_transcript_errored(tmp_path: Path) -> None:
    """One errored judge verdict makes its transcript ERRORED, counted apart from the status."""
    agg = make(tmp_path, 2, judges=("a", "b"))
    agg.add(ok("t0-j0-r0"))
    agg.add(ok("t0-j1-r0", "not json"))
    agg.add(ok("t1-j0-r0"))
    agg.add(ok("t1-j1-r0"))
    result = agg.finish(index(2), tmp_path / "r.jsonl", job_id="j")
    first, second = list(result.evaluations)
    assert first.status == "ERRORED"
    assert first.verdicts["a"].status == "SUCCESS"
    assert first.verdicts["b"].runs[0].raw == "not json"
    assert second.status == "SUCCESS"
    assert result.status == "SUCCESS"
    assert (result.counts.errored, result.counts.errored_runs) == (1, 1)
    assert result.counts.judges["b"].errored == 1
    assert not result.complete


def test_a_job_with_everything_errored_is_errored(tmp_path: Path) -> None:
    """When no transcript has a verdict the job status is ERRORED, never SUCCESS."""
    agg = make(tmp_path, 2)
    result = agg.finish(index(2), tmp_path / "r.jsonl", job_id="j")
    assert result.status == "ERRORED"
    assert result.counts.errored == 2
    assert result.counts.missing_runs == 2


def test_lines_in_any_order_across_batches(tmp_path: Path) -> None:
    """Shuffled lines from several batches give the same file as lines in order."""
    ids = [f"t{t}-j{j}-r{r}" for t in range(30) for j in range(2) for r in range(3)]
    replies = [OK_REPLY, BAD_REPLY, NA_REPLY]
    lines = [ok(cid, replies[i % 3]) for i, cid in enumerate(ids)]
    ordered = make(tmp_path / "a", 30, judges=("x", "y"), runs=3, partition_size=7)
    for line in lines:
        ordered.add(line)
    ordered.finish(index(30), tmp_path / "ordered.jsonl", job_id="j")
    shuffled = make(tmp_path / "b", 30, judges=("x", "y"), runs=3, partition_size=7)
    random.Random(5).shuffle(lines)
    for batch in (lines[:60], lines[60:120], lines[120:]):
        for line in batch:
            shuffled.add(line)
    shuffled.finish(index(30), tmp_path / "shuffled.jsonl", job_id="j")
    assert (tmp_path / "shuffled.jsonl").read_bytes() == (tmp_path / "ordered.jsonl").read_bytes()


def test_success_after_failure_wins_and_duplicates_count_once(tmp_path: Path) -> None:
    """A later reply replaces an expired line; a repeated reply is counted (and billed) once."""
    agg = make(tmp_path, 2)
    agg.add(failed("t0-j0-r0"))
    agg.add(ok("t0-j0-r0", OK_REPLY, tokens=7))
    agg.add(ok("t1-j0-r0", BAD_REPLY, tokens=5))
    agg.add(ok("t1-j0-r0", OK_REPLY, tokens=5))
    agg.add(failed("t1-j0-r0"))
    result = agg.finish(index(2), tmp_path / "r.jsonl", job_id="j")
    evaluations = list(result.evaluations)
    assert evaluations[0].status == "SUCCESS"
    assert evaluations[1].status == "ERROR"
    assert result.usage == Usage(input_tokens=12, output_tokens=2, total_tokens=14)
    assert result.counts.judges["a"].success + result.counts.judges["a"].error == 2


def test_a_permanent_failure_beats_a_retryable_one(tmp_path: Path) -> None:
    """A non-retryable error replaces an expired line, so the request is not resent forever."""
    agg = make(tmp_path, 1)
    agg.add(failed("t0-j0-r0", EXPIRED))
    agg.add(failed("t0-j0-r0", INVALID))
    assert list(agg.retryable()) == []
    result = agg.finish(index(1), tmp_path / "r.jsonl", job_id="j")
    run = next(iter(result.evaluations)).verdicts["a"].runs[0]
    assert run.error == INVALID


def test_missing_requests_are_errored_runs(tmp_path: Path) -> None:
    """A request with no line at all is an errored run with code missing."""
    agg = make(tmp_path, 1, runs=2)
    agg.add(ok("t0-j0-r1"))
    result = agg.finish(index(1), tmp_path / "r.jsonl", job_id="j")
    verdict = next(iter(result.evaluations)).verdicts["a"]
    assert verdict.status == "SUCCESS"
    assert verdict.runs[0].error is not None
    assert verdict.runs[0].error.code == "missing"
    assert verdict.votes == {"SUCCESS": 1, "ERROR": 0, "NA": 0, "ERRORED": 1}
    assert result.counts.missing_runs == 1


def test_retryable_lists_expired_and_missing_requests(tmp_path: Path) -> None:
    """retryable() yields, ascending, the ids whose outcome is retryable or missing."""
    agg = make(tmp_path, 3, judges=("a", "b"), partition_size=2)
    for cid in ("t0-j0-r0", "t0-j1-r0", "t1-j0-r0", "t2-j1-r0"):
        agg.add(ok(cid))
    agg.add(failed("t1-j1-r0", EXPIRED))
    agg.add(failed("t2-j0-r0", INVALID))
    assert list(agg.retryable()) == ["t1-j1-r0"]
    agg.add(failed("t1-j1-r0", ResultError(code="http_500", message="boom", retryable=True)))
    assert list(agg.retryable()) == ["t1-j1-r0"]
    agg.add(ok("t1-j1-r0"))
    assert list(agg.retryable()) == []
    assert list(make(tmp_path / "x", 2).retryable()) == ["t0-j0-r0", "t1-j0-r0"]


def test_foreign_ids_are_counted_not_used(tmp_path: Path) -> None:
    """Lines for ids outside the job are ignored, counted and listed."""
    agg = make(tmp_path, 1)
    for cid in ("t0-j0-r0", "t5-j0-r0", "t0-j3-r0", "t0-j0-r9", "s1-t0-j0-r0", "request-1"):
        agg.add(ok(cid))
    result = agg.finish(index(1), tmp_path / "r.jsonl", job_id="j")
    assert result.counts.unexpected_lines == 5
    assert agg.unexpected_ids == ["t5-j0-r0", "t0-j3-r0", "t0-j0-r9", "s1-t0-j0-r0", "request-1"]
    assert result.status == "SUCCESS"


def test_results_file_content_line_by_line(tmp_path: Path) -> None:
    """One JSON line per transcript in index order, with source, preview, votes and runs."""
    agg = make(tmp_path, 3, judges=("rel", "tone"), runs=2)
    for t in (2, 0, 1):
        for j in (0, 1):
            for r in (1, 0):
                agg.add(ok(f"t{t}-j{j}-r{r}", BAD_REPLY if (t, j, r) == (1, 1, 0) else OK_REPLY))
    path = tmp_path / "results.jsonl"
    result = agg.finish(index(3), path, job_id="j")
    rows = read_lines(path)
    assert [row["index"] for row in rows] == [0, 1, 2]
    assert rows[0]["source"] == "inline:0"
    assert rows[0]["preview"] == "text 0"
    assert rows[1]["status"] == "PARTIAL"
    tone = rows[1]["verdicts"]["tone"]
    assert tone["status"] == "ERROR"
    assert tone["votes"] == {"SUCCESS": 1, "ERROR": 1, "NA": 0, "ERRORED": 0}
    assert tone["root_cause"] == "wrong"
    assert [run["run"] for run in tone["runs"]] == [0, 1]
    assert list(rows[0]["verdicts"]) == ["rel", "tone"]
    assert len(result.evaluations) == 3
    assert [e.index for e in result.evaluations] == [0, 1, 2]
    assert result.results_path == path


def test_results_file_is_private_complete_and_leaves_no_temp_files(tmp_path: Path) -> None:
    """The file is mode 0600, complete on return, and no temp file is left beside it."""
    agg = make(tmp_path, 50, partition_size=8)
    for t in range(50):
        agg.add(ok(f"t{t}-j0-r0"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text("old results\n")
    result = agg.finish(index(50), out / "results.jsonl", job_id="j")
    assert stat.S_IMODE((out / "results.jsonl").stat().st_mode) == 0o600
    assert len(read_lines(out / "results.jsonl")) == 50
    assert [p.name for p in out.iterdir()] == ["results.jsonl"]
    assert result.counts.success == 50


def test_missing_index_entries_get_a_placeholder_source(tmp_path: Path) -> None:
    """A transcript absent from the index is still reported, as unknown:<index>."""
    agg = make(tmp_path, 2)
    agg.add(ok("t0-j0-r0"))
    agg.add(ok("t1-j0-r0"))
    result = agg.finish(index(1), tmp_path / "r.jsonl", job_id="j")
    assert [e.source for e in result.evaluations] == ["inline:0", "unknown:1"]


def test_vote_settings_are_applied(tmp_path: Path) -> None:
    """The aggregator votes with the settings it was given."""
    agg = Aggregator(
        tmp_path / "w",
        judges=("a",),
        runs=2,
        transcripts=1,
        settings=VoteSettings(tie="success", min_valid_votes=2),
    )
    agg.add(ok("t0-j0-r0", BAD_REPLY))
    agg.add(ok("t0-j0-r1", OK_REPLY))
    result = agg.finish(index(1), tmp_path / "r.jsonl", job_id="j")
    assert result.status == "SUCCESS"


def test_memory_holds_one_partition_at_a_time(tmp_path: Path) -> None:
    """However many lines come in, finishing loads at most one partition's records."""
    agg = make(tmp_path, 1000, judges=("a", "b"), runs=3, partition_size=10, buffer_bytes=4096)
    ids = [f"t{t}-j{j}-r{r}" for t in range(1000) for j in range(2) for r in range(3)]
    random.Random(1).shuffle(ids)
    for cid in ids:
        agg.add(ok(cid))
        assert agg._buffered < 4096 + 200
    result = agg.finish(index(1000), tmp_path / "r.jsonl", job_id="j")
    assert agg.peak_partition_records == 10 * 2 * 3
    assert result.counts.success == 1000
    assert result.counts.requests == 6000


async def test_consume_reads_an_async_stream(tmp_path: Path) -> None:
    """consume() takes every line of a provider's async stream and returns the count."""

    async def stream() -> AsyncIterator[ResultLine]:
        for t in range(3):
            yield ok(f"t{t}-j0-r0")

    agg = make(tmp_path, 3)
    assert await agg.consume(stream()) == 3
    assert agg.lines == 3


def test_close_removes_scratch_files(tmp_path: Path) -> None:
    """Leaving the with block removes the spill folder but not the results file."""
    with make(tmp_path, 1) as agg:
        agg.add(ok("t0-j0-r0"))
        agg.finish(index(1), tmp_path / "r.jsonl", job_id="j")
    assert list((tmp_path / "work").iterdir()) == []
    assert (tmp_path / "r.jsonl").exists()


def test_each_judge_scores_against_its_own_pass_threshold(tmp_path: Path) -> None:
    """Score-only replies pass per judge threshold; counts keep each judge's mean score."""
    agg = Aggregator(
        tmp_path / "work", judges=("lenient", "strict"), runs=1, transcripts=2, thresholds=(0.5,)
    )
    # "strict" gets 0.5 too unless given: the thresholds tuple may be shorter.
    assert agg.thresholds == (0.5, 0.5)
    agg = Aggregator(
        tmp_path / "work2", judges=("lenient", "strict"), runs=1, transcripts=2,
        thresholds=(0.5, 0.8),
    )  # fmt: skip
    for t, score in enumerate((0.6, 0.9)):
        agg.add(ok(f"t{t}-j0-r0", f'{{"score": {score}}}'))
        agg.add(ok(f"t{t}-j1-r0", f'{{"score": {score}}}'))
    result = agg.finish(index(2), tmp_path / "r.jsonl", job_id="j")
    lines = read_lines(tmp_path / "r.jsonl")
    assert [line["verdicts"]["lenient"]["status"] for line in lines] == ["SUCCESS", "SUCCESS"]
    assert [line["verdicts"]["strict"]["status"] for line in lines] == ["ERROR", "SUCCESS"]
    assert [line["verdicts"]["strict"]["score"] for line in lines] == [0.6, 0.9]
    assert result.counts.judges["strict"].mean_score == pytest.approx(0.75)
    assert result.failure is None


def test_one_error_everywhere_is_the_jobs_failure(tmp_path: Path) -> None:
    """Every request failing with one non-retryable code sets result.failure; a mix does not."""
    denied = ResultError(code="invalid_api_key", message="Incorrect API key provided.")
    agg = make(tmp_path, 2, runs=2)
    for t in range(2):
        for r in range(2):
            agg.add(failed(f"t{t}-j0-r{r}", denied))
    assert agg.finish(index(2), tmp_path / "r.jsonl", job_id="j").failure == denied
    mixed = make(tmp_path / "m", 2)
    mixed.add(failed("t0-j0-r0", denied))
    mixed.add(ok("t1-j0-r0"))
    assert mixed.finish(index(2), tmp_path / "m.jsonl", job_id="j").failure is None
    retryable = make(tmp_path / "x", 1)
    retryable.add(failed("t0-j0-r0", EXPIRED))
    assert retryable.finish(index(1), tmp_path / "x.jsonl", job_id="j").failure is None


@pytest.mark.slow  # a large result file
def test_evaluations_are_indexable_lazily_on_a_large_result(tmp_path: Path) -> None:
    """evaluations[i] reads one line of a 300,000-line file, keeping only sparse offsets."""
    path = tmp_path / "big.jsonl"
    count = 300_000
    with path.open("wb") as file:
        for i in range(count):
            file.write(
                b'{"index":%d,"source":"inline:%d","status":"SUCCESS","verdicts":{}}\n' % (i, i)
            )
    evaluations = Evaluations(path, count)
    tracemalloc.start()
    try:
        picked = [evaluations[i].index for i in (0, 255, 256, 123_457, count - 1, -2)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert picked == [0, 255, 256, 123_457, count - 1, count - 2]
    assert peak < 2_000_000  # offsets of every 256th line, never the file
    assert [e.source for e in evaluations[10:13]] == ["inline:10", "inline:11", "inline:12"]
    with pytest.raises(IndexError, match="out of range for 300000 transcripts"):
        evaluations[count]


def _mixed_lines() -> list[ResultLine]:
    """Every kind of line the aggregator meets, scrambled: replies, failures, duplicates,
    several choices, a foreign id and ids out of range."""
    lines: list[ResultLine] = []
    for t in range(40):
        for j in range(2):
            for r in range(2):
                cid = f"t{t}-j{j}-r{r}"
                kind = (t * 4 + j * 2 + r) % 7
                if kind == 0:
                    lines.append(failed(cid, EXPIRED))
                elif kind == 1:
                    lines.append(failed(cid, INVALID))
                elif kind == 2:
                    lines += [failed(cid, EXPIRED), ok(cid, BAD_REPLY)]
                elif kind == 3:
                    continue  # missing
                elif kind == 4:
                    lines.append(ResultLine(custom_id=cid, ok=True, content="not json"))
                else:
                    lines.append(ok(cid, (OK_REPLY, NA_REPLY)[kind % 2], tokens=t))
    lines.append(ResultLine(custom_id="t3-j0-r0", ok=True, choices=(OK_REPLY, BAD_REPLY)))
    lines += [ok("stranger"), ok("t99-j0-r0"), ok("t1-j5-r0"), ok("t1-j0-r9")]
    random.Random(7).shuffle(lines)
    return lines


def test_add_many_gives_what_add_gives(tmp_path: Path) -> None:
    """add_many (the download path) spills the same records as add line by line: the same
    results file, counts, usage, retryable ids and unexpected lines."""
    outcomes = []
    for name in ("one-by-one", "many"):
        agg = make(tmp_path / name, 40, judges=("a", "b"), runs=2, partition_size=8)
        agg.buffer_bytes = 512  # flush often, mid-stream
        lines = _mixed_lines()
        if name == "many":
            agg.add_many(iter(lines))
        else:
            for line in lines:
                agg.add(line)
        result = agg.finish(index(40), tmp_path / f"{name}.jsonl", job_id="job")
        outcomes.append(
            (
                (tmp_path / f"{name}.jsonl").read_bytes(),
                result.counts,
                result.usage,
                agg.finished_retryable,
                agg.lines,
                agg.unexpected,
                agg.unexpected_ids,
            )
        )
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][5] == 4  # the foreign id and the three out of range


def test_finish_finds_the_retryable_ids_in_its_own_pass(tmp_path: Path) -> None:
    """finish() leaves in finished_retryable exactly what retryable() yields, in order."""
    agg = make(tmp_path, 40, judges=("a", "b"), runs=2, partition_size=8)
    agg.add_many(_mixed_lines())
    expected = list(agg.retryable())
    agg.finish(index(40), tmp_path / "results.jsonl", job_id="job")
    assert agg.finished_retryable == expected
    assert "t0-j0-r0" in expected  # expired
    assert "t0-j1-r1" in expected  # missing (kind 3)
    assert "t0-j0-r1" not in expected  # a permanent failure is not sent again


def test_add_many_holds_at_most_buffer_bytes_and_spills_in_chunks(tmp_path: Path) -> None:
    """add_many writes a partition's records out whenever the held ones pass buffer_bytes,
    and a partition written in many chunks loads whole: every reply counted once."""
    agg = make(tmp_path, 200, judges=("a", "b"), partition_size=50, buffer_bytes=2048)
    lines = [ok(f"t{t}-j{j}-r0", tokens=t) for t in range(200) for j in range(2)]
    random.Random(3).shuffle(lines)
    held = []
    for start in range(0, len(lines), 10):
        agg.add_many(lines[start : start + 10])
        held.append(agg._buffered)
    assert max(held) < 2048 + 300
    (spill,) = (tmp_path / "work").glob("aggregate-*/000000.spill")
    data, chunks, start = spill.read_bytes(), 0, 0
    while start < len(data):  # each chunk: its size (4 bytes, big-endian), then its records
        start += 4 + int.from_bytes(data[start : start + 4], "big")
        chunks += 1
    assert start == len(data)
    assert chunks > 3
    result = agg.finish(index(200), tmp_path / "r.jsonl", job_id="j")
    assert agg.peak_partition_records == 50 * 2
    assert result.counts.success == 200
    assert result.usage.input_tokens == 2 * sum(range(200))
