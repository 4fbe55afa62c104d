"""The reply cache on a re-run: what is sent, and what planning costs, against the first run.

A job of N requests (default 100,000: transcripts × 2 judges, one run) is planned twice
through the reply cache, writing shards as ``submit`` does:

1. the first plan, with an empty cache: everything is sent; then every sent run's reply is
   stored in the cache, as ``check`` does when the results come back;
2. the re-run, with 1 % of the transcripts changed: only their requests are sent.

Printed: requests sent each time (target: the re-run sends 1 % of the requests) and the
re-run's planning time as a ratio of the first plan's, both measured in this process
(target: < 1.5×). Storing the replies is timed separately, for information.

Usage: ``python3 benchmarks/bench_cache.py [--requests N] [--changed 0.01] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from _targets import Targets

import kyro
from kyro._build.plan_build import build_shards
from kyro._cost.estimate import CostEstimator
from kyro._cost.prices import load_prices
from kyro._transcripts import Transcript
from kyro._types import JudgeRequest, ResultLine
from kyro._verdicts.cache_gate import RequestGate
from kyro._verdicts.reply_cache import ReplyCache, RequestKeys
from kyro_openai import OPENAI_LIMITS, encode_request

JUDGES = ("correctness", "tone")
VERDICT = json.dumps({"status": "SUCCESS", "root_cause": "The reply answers the question."})
CONFIG = """\
version: 1
model: gpt-4o-mini
judges:
  - name: correctness
    prompt: "Reply in JSON. Were the {{variables.product}} answers right?\\n{{input}}"
    params: {max_tokens: 300, temperature: 0}
  - name: tone
    prompt: "Reply in JSON. Was the assistant polite?\\n{{input}}"
    params: {max_tokens: 300, temperature: 0}
"""


def _transcripts(count: int, changed: set[int]) -> list[Transcript]:
    out = []
    for i in range(count):
        text = (
            f"user: my order {i} arrived broken, can I get a refund?\n"
            f"assistant: I am sorry about order {i}. Yes: reply with a photo and we refund "
            "within five days. " + ("(edited) " if i in changed else "") + "x" * 600
        )
        out.append(Transcript(index=i, source=f"inline:{i}", value=text))
    return out


def _plan(
    config: kyro.JudgesConfig,
    transcripts: list[Transcript],
    cache: ReplyCache,
    folder: Path,
    sent: list[tuple[bytes, str]] | None,
) -> tuple[float, int, int]:
    """Plan through the cache into ``folder``; (seconds, requests sent, runs answered)."""
    shutil.rmtree(folder, ignore_errors=True)
    estimator = CostEstimator(load_prices(), "openai")

    def remember(custom_id: str, key: bytes, request: JudgeRequest) -> None:
        if sent is not None:
            sent.append((key, request.model))

    gate = RequestGate(
        JUDGES, cache=cache, keys=RequestKeys("openai"), estimator=estimator, on_sent=remember
    )
    start = time.perf_counter()
    summary = build_shards(
        config,
        transcripts,
        encode=encode_request,
        limits=OPENAI_LIMITS,
        directory=folder,
        variables={"product": "Acme"},
        gate=gate,
    )
    return time.perf_counter() - start, summary.requests, gate.hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--quick", action="store_true", help="20,000 requests")
    args = parser.parse_args()
    if args.quick:
        args.requests = 20_000
    count = args.requests // len(JUDGES)
    changed = set(range(0, count, max(1, round(1 / args.changed))))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "judges.yml").write_text(CONFIG, encoding="utf-8")
        config = kyro.load_config(root / "judges.yml")
        with ReplyCache(root / "cache") as cache:
            sent: list[tuple[bytes, str]] = []
            fresh = _transcripts(count, set())
            first, first_sent, _ = _plan(config, fresh, cache, root / "a", sent)
            start = time.perf_counter()
            line = ResultLine(custom_id="x", ok=True, content=VERDICT)
            cache.put_many((key, line, "openai", model) for key, model in sent)
            store = time.perf_counter() - start
            again, again_sent, hits = _plan(
                config, _transcripts(count, changed), cache, root / "b", None
            )
    total = count * len(JUDGES)
    targets = Targets(
        f"reply cache: {total:,} requests ({count:,} transcripts × {len(JUDGES)} judges)"
    )
    targets.note(f"first plan: {first_sent:,} sent in {first:.2f} s")
    targets.note(f"stored replies: {len(sent):,} in {store:.2f} s (what check adds)")
    targets.note(f"re-run: {len(changed):,} transcripts changed, {hits:,} answered by the cache")
    targets.ratio("re-run plan time vs first plan", again, first, at_most=1.5, unit="s")
    # The changed transcripts' requests, and nothing else, are sent again.
    targets.limit("requests sent on the re-run", again_sent, at_most=len(changed) * len(JUDGES))
    targets.finish()


if __name__ == "__main__":
    main()
