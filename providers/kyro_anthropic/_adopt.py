"""Finding the batch a crashed (or timed-out) submit may have created, without metadata.

Message Batches carry no metadata and expose nothing of their requests until they end, so a
batch cannot be matched on a tag the way OpenAI's can. What the API does expose is when each
batch was created and how many requests it holds. kyro writes both facts down *before* every
create (write-ahead): the intent's time and the shard's request count travel in the metadata
kyro hands to ``submit`` and ``find`` as ``kyro_intent_at`` (ISO 8601) and ``kyro_requests``.

The rule. A batch is a **candidate** for an intent when

1. it was created no earlier than the intent's time less ``clock_skew`` (60 s by default: the
   server's clock and this machine's may disagree a little; the create itself can only come
   after the intent was written), and no later than the intent's time plus ``clock_skew`` and
   the longest a submit can take (every attempt timing out, with its waits: about 35 minutes
   with the default timeout and retries) — a batch made after that cannot be this intent's,
   since a re-submit after a crash writes a fresh intent first;
2. it holds exactly the intent's number of requests (the sum of its ``request_counts``);
3. no one has asked to cancel it (``cancel_initiated_at`` is null): a batch cancelled by hand
   is never adopted, which is also how a person settles an ambiguity (below); a deleted batch
   is no longer listed at all.

``find`` returns every candidate, with empty metadata: none is *confirmed*. The job then drops
candidates it already knows (batches recorded for its other shards and attempts) and adopts
the one that is left. When two or more are left, nothing tells them apart: kyro **refuses to
guess** — it neither adopts one nor submits again — and the error names the batches, so a
person can cancel the ones that are not this job's (or delete them, once ended) and run the
command again. A crash may thus cost a question, never a second batch and never someone
else's batch.

Within one ``submit`` call the same rule settles an ambiguous create (a 5xx, a timeout or a
connection dropped after the body was sent): the batches created since the first attempt are
searched before the create is sent again; one candidate is adopted, none means the create can
be resent, several raise the same refusal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kyro.provider import KyroError, parse_timestamp
from kyro_anthropic._wire import MessageBatch

__all__ = [
    "DEFAULT_CLOCK_SKEW",
    "INTENT_AT",
    "REQUESTS",
    "AmbiguousBatchError",
    "Intent",
    "ambiguity",
]

INTENT_AT = "kyro_intent_at"
REQUESTS = "kyro_requests"
DEFAULT_CLOCK_SKEW = 60.0


class AmbiguousBatchError(KyroError):
    """Several batches could be the one a submit created; kyro will not pick one."""


class Intent:
    """What an intent says about its batch: created between ``since`` and ``until``, holding
    ``requests``. Any may be None (unknown), which widens the match.

    Example::

        intent = Intent.from_metadata({"kyro_intent_at": "2026-01-01T00:00:00+00:00",
                                       "kyro_requests": "40"}, clock_skew=60)
    """

    def __init__(
        self, since: float | None, requests: int | None, until: float | None = None
    ) -> None:
        self.since = since
        self.until = until
        self.requests = requests

    @classmethod
    def from_metadata(
        cls, metadata: Mapping[str, str], *, clock_skew: float, submit_window: float
    ) -> Intent:
        """The intent ``metadata`` describes; KyroError for a malformed fact."""
        since: float | None = None
        until: float | None = None
        requests: int | None = None
        raw_at = metadata.get(INTENT_AT)
        if raw_at is not None:
            at = parse_timestamp(raw_at)
            if at is None:
                raise KyroError(f"metadata {INTENT_AT}={raw_at!r} is not an ISO 8601 time")
            since = at - clock_skew
            until = at + clock_skew + submit_window
        raw_count = metadata.get(REQUESTS)
        if raw_count is not None:
            if not raw_count.isdigit():
                raise KyroError(f"metadata {REQUESTS}={raw_count!r} is not a request count")
            requests = int(raw_count)
        return cls(since, requests, until)

    def too_old(self, batch: MessageBatch) -> bool:
        """True when ``batch`` was created before the window opened (listing can stop)."""
        created = parse_timestamp(batch.created_at)
        return self.since is not None and created is not None and created < self.since

    def matches(self, batch: MessageBatch) -> bool:
        """Whether ``batch`` is a candidate (rules 1–3 of the module docstring)."""
        if batch.cancel_initiated_at:
            return False
        if self.since is not None or self.until is not None:
            created = parse_timestamp(batch.created_at)
            if created is None:
                return False
            if self.since is not None and created < self.since:
                return False
            if self.until is not None and created > self.until:
                return False
        if self.requests is not None:
            counts = batch.request_counts
            if counts is None or counts.total != self.requests:
                return False
        return True


def ambiguity(batches: Iterable[MessageBatch], what: str) -> AmbiguousBatchError:
    """The refusal for several candidates: names them and says how to settle it."""
    listed = ", ".join(f"{b.id} (created {b.created_at})" for b in batches)
    return AmbiguousBatchError(
        f"{what}: batches {listed} each hold the same number of requests and were created "
        "since then, and Message Batches carry no metadata to tell them apart, so kyro will "
        "not guess. Look at them in the Anthropic Console, cancel the ones that are not this "
        "job's (delete them once they have ended), then run the command again"
    )
