"""Between the planner and the builder: the cache answers what it can, the rest is sent.

:class:`RequestGate` takes each transcript's planned requests and returns those still to be
sent. Every run is looked up in the reply cache under its own key (lookups are batched, a
few hundred keys a query); a run the cache answers is handed to ``on_hit`` as a result line
and never sent. A request carrying several runs as samples is dropped when all its runs hit,
sent as is when none did, and otherwise split into one request per run still missing (each
run keeps its own custom_id, so results and resubmission stay per run). The gate also feeds
the cost estimator (sent requests billed, cached runs counted) and remembers, per run sent,
its key (``on_sent``) so the replies can be stored when they come back; ``on_flush`` runs
after each batch of lookups (to write out what the callbacks buffered).

Without a cache the gate only counts cost, and passes everything through at once.

Example::

    gate = RequestGate(config_judge_names, cache=cache, keys=RequestKeys("openai"),
                       estimator=estimator, on_hit=hits.append)
    for transcript in transcripts:
        for request in gate.take(planner.requests_for(transcript)):
            builder.add(request)
    for request in gate.flush():
        builder.add(request)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import msgspec

from kyro._cost.estimate import CostEstimator
from kyro._types import JudgeRequest, ResultLine
from kyro._verdicts.reply_cache import ReplyCache, RequestKeys

__all__ = ["RequestGate"]

_IDS = re.compile(r"^(.*-j)(\d+)-r(\d+)$")
_BATCH_KEYS = 512


def _split_id(custom_id: str) -> tuple[str, int, int]:
    match = _IDS.match(custom_id)
    if match is None:
        raise ValueError(f"not a kyro custom_id: {custom_id!r}")
    return match[1], int(match[2]), int(match[3])


def _same_but_run(request: JudgeRequest, other: JudgeRequest) -> bool:
    """Whether two requests differ only in their run: same messages object, judge and model."""
    return (
        request.messages is other.messages
        and request.params is other.params
        and request.samples == other.samples
        and request.model == other.model
        and request.custom_id[: request.custom_id.rfind("-r")]
        == other.custom_id[: other.custom_id.rfind("-r")]
    )


class RequestGate:
    """The cache and cost pass over planned requests (see the module docstring)."""

    def __init__(
        self,
        judges: Sequence[str],
        *,
        cache: ReplyCache | None = None,
        keys: RequestKeys | None = None,
        estimator: CostEstimator | None = None,
        on_hit: Callable[[ResultLine], object] | None = None,
        on_sent: Callable[[str, bytes, JudgeRequest], object] | None = None,
        on_flush: Callable[[], object] | None = None,
    ) -> None:
        if cache is not None and keys is None:
            raise ValueError("a cache needs request keys")
        self.judges = tuple(judges)
        self.cache = cache
        self.keys = keys
        self.estimator = estimator
        self.on_hit = on_hit
        self.on_sent = on_sent
        self.on_flush = on_flush
        self.hits = 0
        self.sent_runs = 0
        self._pending: list[tuple[JudgeRequest, list[bytes]]] = []
        self._pending_keys = 0
        # Judge name by custom_id suffix ("-j1-r0"): a plan has judges × runs of them, and
        # looking one up costs less per request than parsing the id with the regex.
        self._names: dict[str, str] = {}

    def take(self, requests: Sequence[JudgeRequest]) -> list[JudgeRequest]:
        """Queue one transcript's requests; return the requests now known to be sent."""
        if self.cache is None or self.keys is None:
            self._count(requests)
            return list(requests)
        key = self.keys.key
        for request in requests:
            _, _, first = _split_id(request.custom_id)
            run_keys = [key(request, run=first + k) for k in range(request.samples)]
            self._pending.append((request, run_keys))
            self._pending_keys += len(run_keys)
        if self._pending_keys >= _BATCH_KEYS:
            return self.flush()
        return []

    @property
    def sends_all(self) -> bool:
        """True without a cache: every request taken is sent as it is (only cost is counted)."""
        return self.cache is None

    def count_sent(self, request: JudgeRequest, count: int, input_tokens: int) -> None:
        """Count ``count`` requests of ``request``'s judge, model, params and samples as
        sent, their estimated input tokens summing to ``input_tokens`` — what :meth:`take`
        counts for them without a cache, added up at once (the runs of many transcripts)."""
        self.sent_runs += request.samples * count
        if self.estimator is not None:
            self.estimator.add_totals(
                self._judge_of(request.custom_id),
                request.model,
                request.params,
                samples=request.samples,
                requests=count,
                input_tokens=input_tokens,
            )

    def flush(self) -> list[JudgeRequest]:
        """Resolve every queued request against the cache; the requests to send."""
        if not self._pending or self.cache is None:
            return []
        found = self.cache.get_many(k for _, run_keys in self._pending for k in run_keys)
        out: list[JudgeRequest] = []
        for request, run_keys in self._pending:
            head, judge, first = _split_id(request.custom_id)
            missed = [k for k, run_key in enumerate(run_keys) if run_key not in found]
            for offset, run_key in enumerate(run_keys):
                hit = found.get(run_key)
                if hit is None:
                    continue
                self.hits += 1
                if self.estimator is not None:
                    self.estimator.add_cached(self._name(judge), request.model)
                if self.on_hit is not None:
                    self.on_hit(
                        ResultLine(
                            custom_id=f"{head}{judge}-r{first + offset}",
                            ok=True,
                            content=hit.content,
                            usage=hit.usage,
                        )
                    )
            if len(missed) == len(run_keys):
                out.append(request)
                self._sent(request, run_keys)
                continue
            for offset in missed:
                single = msgspec.structs.replace(
                    request, custom_id=f"{head}{judge}-r{first + offset}", samples=1
                )
                out.append(single)
                self._sent(single, [run_keys[offset]])
        self._pending.clear()
        self._pending_keys = 0
        if self.on_flush is not None:
            self.on_flush()
        return out

    def _name(self, judge: int) -> str:
        return self.judges[judge] if judge < len(self.judges) else f"judge {judge}"

    def _count(self, requests: Sequence[JudgeRequest]) -> None:
        """Count requests sent as they are; the runs of one judge are added to the cost at once."""
        estimator = self.estimator
        group: JudgeRequest | None = None
        size = 0
        for request in requests:
            self.sent_runs += request.samples
            if estimator is None:
                continue
            if group is not None and _same_but_run(request, group):
                size += 1
                continue
            if group is not None:
                estimator.add(
                    self._judge_of(group.custom_id), group, samples=group.samples, count=size
                )
            group, size = request, 1
        if group is not None and estimator is not None:
            estimator.add(self._judge_of(group.custom_id), group, samples=group.samples, count=size)

    def _judge_of(self, custom_id: str) -> str:
        suffix = custom_id[custom_id.rfind("-j") :]
        name = self._names.get(suffix)
        if name is None:
            _, judge, _ = _split_id(custom_id)  # the suffix alone decides whether it parses
            name = self._names[suffix] = self._name(judge)
        return name

    def _sent(self, request: JudgeRequest, run_keys: list[bytes] | None) -> None:
        self.sent_runs += request.samples
        if self.estimator is not None:
            self.estimator.add(self._judge_of(request.custom_id), request, samples=request.samples)
        if self.on_sent is not None and run_keys is not None:
            head, judge, first = _split_id(request.custom_id)
            for offset, run_key in enumerate(run_keys):
                self.on_sent(f"{head}{judge}-r{first + offset}", run_key, request)
