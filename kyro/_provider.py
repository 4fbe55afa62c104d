"""The provider protocol: what a batch backend implements so kyro can drive it.

The core plans, persists and aggregates; a provider owns its wire format and its remote calls.
A third party satisfies :class:`BatchProvider` structurally: no base class to import.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import msgspec

from kyro._types import BatchLimits, BatchStatus, JudgeRequest, Message, ResultLine

if TYPE_CHECKING:
    import argparse

__all__ = ["BatchProvider", "CommandLineHooks", "LiveProvider", "line_parts"]


@runtime_checkable
class BatchProvider(Protocol):
    """A batch backend: encode requests, submit shards, poll, stream results.

    Rules every provider keeps (``kyro.testing`` checks them):

    * ``encode`` appends exactly one line, ending in ``b"\\n"``, to ``buffer``;
    * ``submit`` uploads one shard file and creates one remote batch tagged with ``metadata``
      (so ``find(metadata)`` can adopt it after a crash), returning the batch id;
    * ``poll`` never blocks for long and never raises for a batch that merely is not done;
    * ``results`` yields every request of a terminal batch exactly once: successes, per-line
      errors, and requests that came back nowhere (error code ``missing``);
    * no method ever puts a secret into an exception message, a repr or a log line.

    ``find`` returns every batch that *could* be the one submitted with ``metadata``: a
    provider that keeps metadata returns exact matches carrying it; one whose batches keep
    none matches on what its API shows (the metadata's ``kyro_intent_at`` and
    ``kyro_requests``) and returns candidates with empty metadata, which the job adopts only
    when exactly one is left.

    Optional attributes kyro reads when present (``getattr``), so older providers still
    conform: ``default_model`` (str), the model of judges that name none anywhere else —
    the provider's documented default; and ``check_credentials()``, called before a submit
    writes anything, raising :class:`kyro.ProviderError` (authentication) when the provider
    could not authenticate, so no job is ever left behind that cannot be sent. An
    ``encode`` honours the request's verdict contract: ``response_schema`` as the
    provider's strict schema output where it has one (JSON output otherwise), and a
    ``response_format`` in ``params`` as the judge's own choice, which wins.
    ``encode_parts(request)`` returns the line ``encode`` writes for ``request`` cut where
    its custom_id and message contents go (see :func:`line_parts`), or None: the builder then
    writes the other requests of that judge from those parts, escaping only what changes.
    A provider offers it only when its lines are plain JSON in which those strings appear
    once each, escaped as :func:`msgspec.json.encode` escapes them.

    Example::

        class MyProvider:
            name = "mine"
            limits = BatchLimits(max_requests=10_000, max_bytes=100_000_000)
            def encode(self, request, buffer): ...
            async def submit(self, path, *, metadata): ...
            ...
    """

    @property
    def name(self) -> str:
        """Short registry name (``openai``, ``local``)."""
        ...

    @property
    def limits(self) -> BatchLimits:
        """Maximum requests and bytes per remote batch."""
        ...

    def encode(self, request: JudgeRequest, buffer: bytearray) -> None:
        """Append one input line (newline included) for ``request`` to ``buffer``."""
        ...

    async def submit(self, path: Path, *, metadata: Mapping[str, str]) -> str:
        """Upload the shard at ``path`` and create one batch; return the remote batch id."""
        ...

    async def poll(self, batch_id: str) -> BatchStatus:
        """Return the batch's current state, counts and job-level errors."""
        ...

    def results(self, batch_id: str) -> AsyncIterator[ResultLine]:
        """Stream every request's outcome of a terminal batch."""
        ...

    async def cancel(self, batch_id: str) -> BatchStatus:
        """Ask the provider to cancel the batch; return its state after the request."""
        ...

    async def find(self, metadata: Mapping[str, str]) -> list[BatchStatus]:
        """Batches whose metadata contains every given key/value pair (for crash recovery).

        It must always end, however long the account's history or however a server pages.
        A provider whose ``find`` also takes ``created_after`` (unix seconds, keyword) gets
        the earliest moment the batch can have been created, and may stop listing there.
        """
        ...

    async def aclose(self) -> None:
        """Release connections and other resources."""
        ...


@runtime_checkable
class LiveProvider(Protocol):
    """A live backend: one request in, its outcome out, now (what :class:`kyro.KyroJudge` uses).

    ``complete`` never raises for a request that merely failed (a timeout, a 429 after its
    retries, a non-2xx reply): that is a ``ResultLine`` with ``ok=False`` and an ``error``.
    It raises only for what stops every request alike (bad credentials, a closed client).
    ``kyro_local.LocalProvider`` is one, over any OpenAI-compatible endpoint or a callable.

    Example::

        line = await provider.complete(JudgeRequest(custom_id="t0-j0-r0", model="m",
                                                    messages=(Message(role="user", content="hi"),)))
        line.ok, line.content
    """

    @property
    def name(self) -> str:
        """Short registry name (``local``)."""
        ...

    async def complete(self, request: JudgeRequest) -> ResultLine:
        """Send ``request`` now and return its outcome (custom_id kept)."""
        ...

    async def aclose(self) -> None:
        """Release connections and other resources."""
        ...


class CommandLineHooks(Protocol):
    """What a provider *class* may define to join ``python3 -m kyro`` — each part optional.

    The command line knows no provider by name: for ``--provider NAME`` it asks the registry for
    the class and uses, where the class defines them:

    * ``add_cli_options(group)`` (classmethod): add the provider's own options to the
      command's parser (an argparse argument group of ``plan``, ``submit``, ``check``,
      ``status``, ``cancel``, ``run``, ``serve`` and ``eval``). Prefix them with the provider's
      name (``--local-concurrency``) so they never clash with kyro's own.
    * ``from_cli_args(args, *, state_dir)`` (classmethod): build the provider from the parsed
      options. ``args.base_url`` is kyro's ``--base-url`` (None when not given);
      ``args.live_concurrency``, where present and not None, is how many requests a command
      that sends them live means to have in flight (``serve --concurrency``, ``eval
      --judge-concurrency``), a default for a provider's own limit. ``state_dir`` is the
      folder where the provider may keep files of its own (the job's state folder; the
      service's jobs folder). Without it the command line calls the class with no arguments,
      or with ``base_url=`` when ``--base-url`` was given. Bad options raise
      :class:`kyro.provider.BatchValidationError`.
    * ``complete(request)`` (a method; see :class:`LiveProvider`): ``serve`` shares one
      instance live across its executions and ``run`` walks a pipeline live; without it
      ``serve`` runs each execution as a batch job.
    * ``runs_on_submit`` (class attribute, default False): ``submit`` runs the requests itself
      before it returns, so progress asks ``find(metadata)`` how far it got meanwhile.
    * ``prices_from`` (class attribute, default the provider's name) and ``live_prices``
      (default False): whose price table prices the provider's usage, by model name, and
      whether at live rather than batch prices (a provider sending requests live to an
      OpenAI-compatible endpoint says ``"openai"`` and True).

    ``kyro plan`` builds the provider the same way, then only calls ``encode`` and reads
    ``limits``, ``default_model`` and ``supports_samples``: building one must not touch the
    network or need a key.

    Example::

        class AcmeProvider:
            @classmethod
            def add_cli_options(cls, group: argparse._ArgumentGroup) -> None:
                group.add_argument("--acme-region", default="eu")

            @classmethod
            def from_cli_args(cls, args: argparse.Namespace, *, state_dir: Path) -> AcmeProvider:
                return cls(region=args.acme_region, base_url=args.base_url)
    """

    @classmethod
    def add_cli_options(cls, group: argparse._ArgumentGroup) -> None:
        """Add the provider's own options (prefixed with its name)."""
        ...

    @classmethod
    def from_cli_args(cls, args: argparse.Namespace, *, state_dir: Path) -> BatchProvider:
        """Build the provider from the parsed options."""
        ...


_SLOT = "\x00kyro-slot-{}\x00"
_json = msgspec.json.Encoder()


def line_parts(
    encode: Callable[[JudgeRequest, bytearray], None], request: JudgeRequest
) -> tuple[bytes, ...] | None:
    """``encode``'s line for ``request`` cut at its custom_id and message contents, or None.

    The parts ``p`` are such that a request differing from ``request`` only in its
    custom_id and the contents of its messages encodes to ``p[0] + S(custom_id) + p[1] +
    S(messages[0].content) + … + p[-1]``, where ``S`` is a JSON string as
    :func:`msgspec.json.encode` writes it (quotes included). That holds for an encoder that
    writes its lines with msgspec and each of those strings once, the rest of the line not
    depending on them; it is found by encoding ``request`` with a marker in each of those
    strings. None when a marker is missing, repeated or out of order, or ``encode`` raises
    (the request's own encode then reports the problem).

    Example::

        parts = line_parts(provider.encode, request)
        line = b"".join((parts[0], msgspec.json.encode("t7-j0-r0"), parts[1], ...))
    """
    markers = [_SLOT.format(k) for k in range(len(request.messages) + 1)]
    probe = msgspec.structs.replace(
        request,
        custom_id=markers[0],
        messages=tuple(
            Message(role=message.role, content=marker)
            for message, marker in zip(request.messages, markers[1:], strict=True)
        ),
    )
    buffer = bytearray()
    try:
        encode(probe, buffer)
    except Exception:  # the real request's encode reports it, naming the request
        return None
    line = bytes(buffer)
    parts: list[bytes] = []
    start = 0
    for marker in markers:
        slot = _json.encode(marker)
        at = line.find(slot, start)
        if at < 0 or line.count(slot) != 1:
            return None
        parts.append(line[start:at])
        start = at + len(slot)
    parts.append(line[start:])
    return tuple(parts)
