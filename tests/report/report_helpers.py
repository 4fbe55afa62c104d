"""A small results file with hand-countable figures, shared by the report tests.

Five transcripts, judges ``tone`` and ``facts`` (three runs each) and a pipeline step
``escalate`` that was skipped once. Every run used 100 input tokens (40 of them cached) and
20 output tokens; one run of ``facts`` was answered by the cache. ``tone`` records its model
(gpt-4o-mini); ``facts`` records none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

USAGE = {"input_tokens": 100, "cached_input_tokens": 40, "output_tokens": 20, "total_tokens": 120}


def _runs(statuses: str, scores: tuple[float, ...] = (), cached: int | None = None) -> list[Any]:
    runs: list[dict[str, Any]] = []
    for run, code in enumerate(statuses):
        status = {"S": "SUCCESS", "E": "ERROR", "N": "NA", "X": "ERRORED"}[code]
        entry: dict[str, Any] = {"run": run, "status": status, "usage": USAGE}
        if status == "ERRORED":
            entry["error"] = {"code": "unparseable_reply", "message": "the reply is not JSON"}
            entry["raw"] = "I think it is fine"
        else:
            entry["root_cause"] = f"<b>{status.lower()}</b> in run {run}"
        if run < len(scores):
            entry["score"] = scores[run]
        if cached == run:
            entry["origin"] = "cache"
        runs.append(entry)
    return runs


def _verdict(name: str, status: str, runs: list[Any], **extra: Any) -> dict[str, Any]:
    votes = {"SUCCESS": 0, "ERROR": 0, "NA": 0, "ERRORED": 0}
    for run in runs:
        votes[run["status"]] += 1
    return {"judge": name, "status": status, "votes": votes, "runs": runs, **extra}


def evaluations() -> list[dict[str, Any]]:
    """The five evaluations (see the module docstring)."""
    tone = {"model": "gpt-4o-mini"}
    return [
        {
            "index": 0,
            "source": "chats/a.json",
            "status": "SUCCESS",
            "verdicts": {
                "tone": _verdict("tone", "SUCCESS", _runs("SSS", (0.9, 0.8, 0.95)), **tone),
                "facts": _verdict("facts", "SUCCESS", _runs("SSE", (0.7, 0.6, 0.2))),
            },
        },
        {
            "index": 1,
            "source": "chats/b.json",
            "status": "ERROR",
            "verdicts": {
                "tone": _verdict("tone", "ERROR", _runs("EEE", (0.1, 0.2, 0.1)), **tone),
                "facts": _verdict("facts", "ERROR", _runs("EEE")),
                "escalate": {
                    "judge": "escalate",
                    "status": "SKIPPED",
                    "votes": {},
                    "root_cause": "skipped: tone failed",
                },
            },
        },
        {
            "index": 2,
            "source": "chats/c.json",
            "status": "PARTIAL",
            "verdicts": {
                "tone": _verdict("tone", "SUCCESS", _runs("SSS"), **tone),
                "facts": _verdict("facts", "ERROR", _runs("ESE")),
            },
        },
        {
            "index": 3,
            "source": "<script>alert(1)</script>",
            "status": "ERRORED",
            "verdicts": {
                "tone": _verdict(
                    "tone",
                    "ERRORED",
                    _runs("XXS"),
                    error={"code": "too_few_valid_runs", "message": "1 valid run of 3"},
                    **tone,
                ),
                "facts": _verdict("facts", "SUCCESS", _runs("SSS")),
            },
        },
        {
            "index": 4,
            "source": "chats/e.json",
            "status": "SUCCESS",
            "verdicts": {
                "tone": _verdict("tone", "NA", _runs("NNN"), **tone),
                "facts": _verdict("facts", "SUCCESS", _runs("SSS", cached=2)),
            },
        },
    ]


def write_results(path: Path, rows: list[dict[str, Any]] | None = None) -> Path:
    """Write evaluations as a results file (one JSON object a line)."""
    encoder = msgspec.json.Encoder()
    with path.open("wb") as file:
        for row in rows if rows is not None else evaluations():
            file.write(encoder.encode(row) + b"\n")
    return path
