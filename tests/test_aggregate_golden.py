"""The aggregator's output pinned byte for byte: every results file it wrote before its fast
paths existed, over downloads in request order and out of it, is what it writes now."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from kyro import VoteSettings
from kyro._transcript_index import IndexEntry
from kyro._verdicts.aggregate import Aggregator
from kyro.provider import ResultError, ResultLine, Usage

EXPIRED = ResultError(code="batch_expired", message="expired", retryable=True)
RATE = ResultError(code="rate_limit_exceeded", message="slow down", retryable=True)
INVALID = ResultError(code="invalid_request", message="bad params")
REPLIES = (
    '{"status": "SUCCESS", "root_cause": "cites the policy", "thinking": "read it", "score": 0.9}',
    '{"status": "ERROR", "root_cause": "wrong refund window", "score": 0.1}',
    '{"status": "NA", "root_cause": null}',
    '{"status": " success ", "justification": "lower case, spaces around"}',
    '```json\n{"status": "ERROR", "root_cause": "fenced"}\n```',
    '{"score": 0.75, "root_cause": "a score alone"}',
    '{"score": 0.25}',
    '{"score": 1.5}',
    '{"status": "SUCCESS", "score": 1e999}',
    '{"status": "MAYBE"}',
    '{"root_cause": "no status, no score"}',
    '{"status": "SUCCESS", "root_cause": 7}',
    "I think it is fine",
    "",
    '{"status": "SUCCESS", "root_cause": "é \\"quoted\\" \\n newline ☃ \\u2028 </script>",'
    ' "thinking": "tab\\there", "extra": [1, {"k": 2}]}',
    "[" * 3000 + "]" * 3000,
    '{"status": "SUCCESS", "root_cause": "' + "long " * 15_000 + '"}',
    '{"status": "ERROR", "root_cause": "agrees", "thinking": null, "score": 0}',
    '{"status": "SUCCESS", "root_cause": "plain"}',
    '{"status": "SUCCESS", "root_cause": "plain", "score": 0.5}',
)


def _usage(n: int) -> Usage:
    return Usage(
        input_tokens=100 + n,
        output_tokens=n % 17,
        total_tokens=100 + n + n % 17,
        cached_input_tokens=n % 5,
    )


def _line(cid: str, n: int) -> list[ResultLine]:
    """The line(s) of one request: mostly replies, some failures, retried ones, none."""
    kind = n % 23
    if kind == 0:
        return [ResultLine(custom_id=cid, ok=False, error=EXPIRED)]
    if kind == 1:
        return [ResultLine(custom_id=cid, ok=False, error=INVALID, usage=_usage(n))]
    if kind == 2:
        return []  # missing
    if kind == 3:  # failed first, answered on resubmission (two downloads)
        return [
            ResultLine(custom_id=cid, ok=False, error=RATE),
            ResultLine(custom_id=cid, ok=True, content=REPLIES[n % 5], usage=_usage(n)),
        ]
    if kind == 4:
        return [ResultLine(custom_id=cid, ok=False)]
    if kind == 5:
        return [ResultLine(custom_id=cid, ok=True, content=None)]
    if kind == 6:
        return [ResultLine(custom_id=cid, ok=True, content="{}", error=RATE)]
    if kind == 7:  # answered twice: the first counts, usage once
        return [
            ResultLine(custom_id=cid, ok=True, content=REPLIES[1], usage=_usage(n)),
            ResultLine(custom_id=cid, ok=True, content=REPLIES[0], usage=_usage(n + 1)),
        ]
    usage = _usage(n) if n % 3 else None
    return [ResultLine(custom_id=cid, ok=True, content=REPLIES[n % len(REPLIES)], usage=usage)]


def _requests(transcripts: int, judges: int, runs: int) -> list[list[ResultLine]]:
    out = []
    n = 0
    for t in range(transcripts):
        for j in range(judges):
            for r in range(runs):
                out.append(_line(f"t{t}-j{j}-r{r}", n * 7 + t))
                n += 1
    return out


FOREIGN = [
    ResultLine(custom_id="stranger", ok=True, content=REPLIES[0]),
    ResultLine(custom_id="t1-j01-r0", ok=True, content=REPLIES[1]),
    ResultLine(custom_id="t\u0661-j0-r0", ok=True, content=REPLIES[2]),
    ResultLine(custom_id="t999-j0-r0", ok=True, content=REPLIES[0]),
    ResultLine(custom_id="t2-j9-r0", ok=True, content=REPLIES[0]),
    ResultLine(custom_id="t2-j0-r9", ok=True, content=REPLIES[0]),
    ResultLine(custom_id="s1-t2-j0-r0", ok=True, content=REPLIES[0]),
    ResultLine(custom_id=" t2-j0-r0", ok=True, content=REPLIES[0]),
]


def _downloads(order: str, transcripts: int, judges: int, runs: int) -> list[list[ResultLine]]:
    """Two downloads (a batch and its resubmission): in request order, or scrambled."""
    first: list[ResultLine] = []
    second: list[ResultLine] = []
    for lines in _requests(transcripts, judges, runs):
        first += lines[:1]
        second += lines[1:]
    first[5:5] = FOREIGN
    if order == "scrambled":
        random.Random(11).shuffle(first)
        random.Random(12).shuffle(second)
    elif order == "mostly":  # in order but for one transcript's lines swapped far apart
        first[3], first[-4] = first[-4], first[3]
    return [first, second]


def _index(transcripts: int) -> list[IndexEntry]:
    return [
        IndexEntry(index=t, source=f"data/t{t}.json", preview="" if t % 4 else f"user: é {t}")
        for t in range(transcripts)
        if t % 9 != 5  # some transcripts have no entry: unknown:<t>
    ]


CASES = {
    # name: (judges, runs, transcripts, order, settings, thresholds, cached)
    "3x3-in-order": (3, 3, 30, "in-order", VoteSettings(), (), False),
    "3x3-scrambled": (3, 3, 30, "scrambled", VoteSettings(), (0.5, 0.8), False),
    "3x3-mostly": (3, 3, 30, "mostly", VoteSettings(tie="errored"), (), False),
    "2x1-in-order": (2, 1, 60, "in-order", VoteSettings(), (0.3,), False),
    "2x1-scrambled": (2, 1, 60, "scrambled", VoteSettings(), (), True),
    "1x2-strict": (1, 2, 40, "scrambled", VoteSettings(min_valid_votes=2, tie="success"), (), True),
}
EXPECTED = {
    "1x2-strict": "643bea6812391952a6092c40bce45a546c69586ca539d2de7564628ce535e140",
    "2x1-in-order": "527fc162109c9fcc239cbdb23be23be4dc7b60ea777dfa1a5664e08ec3715358",
    "2x1-scrambled": "68791feddd8b0c8e3ccfe9e3a321095273fc51529823d5ff599d88c9f14d035c",
    "3x3-in-order": "2ba46dd59e8a5d5c143c9e264ad42091595a7c0224145dc3a579af9a275e7e96",
    "3x3-mostly": "c3d4b1d6d00b9bc4653f0ad01183608c8179cc871c1aaf60bb812d53fc1393c8",
    "3x3-scrambled": "395d1cb5b4d6558b0739862136dc99e2f64bdfac0325fb4b535016d044343f54",
}


def _run(tmp_path: Path, name: str, *, add_many: bool = True) -> str:
    judges, runs, transcripts, order, settings, thresholds, cached = CASES[name]
    names = ("relevance", "tone", "safety")[:judges]
    with Aggregator(
        tmp_path / "work",
        judges=names,
        runs=runs,
        transcripts=transcripts,
        settings=settings,
        thresholds=thresholds,
        partition_size=8,
        buffer_bytes=4096,
    ) as agg:
        if cached:  # the reply cache's hits are read first, as at check
            for t in range(0, transcripts, 3):
                cid = f"t{t}-j0-r0"
                agg.add(
                    ResultLine(custom_id=cid, ok=True, content=REPLIES[t % 4], usage=_usage(t)),
                    cached=True,
                )
        for download in _downloads(order, transcripts, judges, runs):
            if add_many:
                agg.add_many(iter(download))
            else:
                for line in download:
                    agg.add(line)
        path = tmp_path / "results.jsonl"
        result = agg.finish(_index(transcripts), path, job_id="job")
        facts = {
            "counts": json.loads(
                json.dumps(
                    result.counts, default=lambda o: {f: getattr(o, f) for f in o.__struct_fields__}
                )
            ),
            "usage": [
                result.usage.input_tokens,
                result.usage.output_tokens,
                result.usage.total_tokens,
                result.usage.cached_input_tokens,
            ],
            "status": result.status,
            "failure": None if result.failure is None else result.failure.code,
            "retryable": agg.finished_retryable,
            "lines": agg.lines,
            "unexpected": [agg.unexpected, agg.unexpected_ids],
        }
    digest = hashlib.sha256(path.read_bytes())
    digest.update(json.dumps(facts, sort_keys=True).encode())
    return digest.hexdigest()


@pytest.mark.parametrize("name", sorted(CASES))
def test_results_are_byte_identical_to_the_pinned_output(tmp_path: Path, name: str) -> None:
    """add_many over the downloads writes the results file (and counts, usage, retryable ids,
    unexpected lines) whose digest was taken from the aggregator before its fast paths."""
    assert _run(tmp_path, name) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(CASES))
def test_line_by_line_add_gives_the_pinned_output_too(tmp_path: Path, name: str) -> None:
    """add, one line at a time (the general path), gives the same pinned digest."""
    assert _run(tmp_path, name, add_many=False) == EXPECTED[name]
