"""Plan, pre-flight and build in one pass: config + transcripts → shard files + transcript index.

This is what ``kyro plan --write`` and ``submit`` run. Every problem is collected (up to
``max_problems``) rather than stopping at the first; if any was found, the files written so far
are deleted and one :class:`BatchValidationError` lists them all.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec

from kyro._build.line_forms import EncodePartsFn, LineForm, compile_form
from kyro._build.shards import BuildSummary, EncodeFn, ShardBuilder
from kyro._config.judges import JudgesConfig
from kyro._exceptions import BatchValidationError
from kyro._transcript_index import INDEX_FILENAME, TranscriptIndexWriter
from kyro._limits import printable
from kyro._plan.planner import Planner
from kyro._plan.preflight import Preflight
from kyro._transcripts import Transcript
from kyro._types import BatchLimits, JudgeRequest

__all__ = ["RequestFilter", "build_shards"]


class RequestFilter(Protocol):
    """What :func:`build_shards` needs of a gate between the planner and the builder.

    The reply cache's :class:`kyro._verdicts.cache_gate.RequestGate` is one: it answers runs
    from the cache and estimates cost. The build layer names only this shape, so it does not
    depend on the verdict layer that gate lives in.
    """

    def take(self, requests: Sequence[JudgeRequest]) -> list[JudgeRequest]:
        """Queue one transcript's requests; return those already known to be sent."""
        ...

    def flush(self) -> list[JudgeRequest]:
        """Resolve everything queued; return the rest of the requests to send."""
        ...

    @property
    def sends_all(self) -> bool:
        """True when every request taken is sent as it is (no cache to answer any)."""
        ...

    def count_sent(self, request: JudgeRequest, count: int) -> None:
        """Count ``count`` requests like ``request`` as sent, in place of taking them."""
        ...


def build_shards(
    config: JudgesConfig,
    transcripts: Iterable[Transcript],
    *,
    encode: EncodeFn,
    limits: BatchLimits,
    directory: str | os.PathLike[str] | None = None,
    runs: int = 1,
    variables: Mapping[str, Any] | None = None,
    stage: int = 0,
    prefix: str = "shard",
    max_problems: int = 20,
    on_transcript: Callable[[Transcript], object] | None = None,
    samples: bool = False,
    gate: RequestFilter | None = None,
    encode_parts: EncodePartsFn | None = None,
) -> BuildSummary:
    """Plan every request, check it, and encode it into shards (and an index) under ``directory``.

    With ``directory=None`` the lines are encoded and counted but nothing is written, so the
    summary's shards and bytes are exact either way. ``samples`` sends each transcript ×
    judge's runs as one request (``n``); a ``gate`` (a :class:`RequestFilter`, such as the
    reply cache's gate) answers runs from the reply cache and estimates cost, so only the rest
    is written. ``encode_parts`` (the provider's, when it has one) lets a judge's lines be
    written from one encoded line of it, escaping only what changes (byte for byte what
    ``encode`` writes; see :mod:`kyro._build.line_forms`). With a directory (created if
    missing), it receives the shard files and
    ``transcripts.index.jsonl``; it must not already hold files of those names.

    Example::

        from kyro_openai import OPENAI_LIMITS, encode_request

        summary = build_shards(config, iter_transcripts(["data/"]), runs=3,
                               encode=encode_request, limits=OPENAI_LIMITS, directory="out")
        for shard in summary.shards:
            print(shard.name, shard.lines, shard.bytes, shard.sha256)
    """
    preflight = Preflight(max_problems=max_problems)
    target = Path(directory) if directory is not None else None
    index: TranscriptIndexWriter | None = None
    if target is not None:
        target.mkdir(parents=True, exist_ok=True)
        index = TranscriptIndexWriter(target / INDEX_FILENAME)
    count = 0

    def seen(transcript: Transcript) -> None:
        nonlocal count
        count += 1
        if index is not None:
            index.write(transcript)
        if on_transcript is not None:
            on_transcript(transcript)

    builder = ShardBuilder(target, encode, limits, prefix=prefix, preflight=preflight)
    try:
        planner = Planner(config, runs, variables, stage, preflight, samples=samples)
        add = builder.add
        # One loop, no generator layers in between: this is the hot path.
        if encode_parts is not None and (gate is None or gate.sends_all):
            _build_in_parts(planner, transcripts, seen, builder, encode, encode_parts, gate)
        elif gate is None:
            for transcript in transcripts:
                try:
                    seen(transcript)
                    for request in planner.requests_for(transcript):
                        add(request)
                except (UnicodeEncodeError, RecursionError) as exc:
                    raise _unencodable(transcript, exc) from exc
        else:
            take = gate.take
            for transcript in transcripts:
                try:
                    seen(transcript)
                    for request in take(planner.requests_for(transcript)):
                        add(request)
                except (UnicodeEncodeError, RecursionError) as exc:
                    raise _unencodable(transcript, exc) from exc
            for request in gate.flush():
                add(request)
        summary = builder.close()
        if index is not None:
            index.close()
        preflight.raise_if_any()
    except BaseException:
        builder.discard()
        if index is not None:
            # A full disk fails the index's flush too: the first error is the one to report.
            with contextlib.suppress(OSError):
                index.close()
            index.path.unlink(missing_ok=True)
        raise
    by_judge = {judge.name: count * runs for judge in config.judges}
    return msgspec.structs.replace(summary, transcripts=count, requests_by_judge=by_judge)


def _build_in_parts(
    planner: Planner,
    transcripts: Iterable[Transcript],
    seen: Callable[[Transcript], None],
    builder: ShardBuilder,
    encode: EncodeFn,
    encode_parts: EncodePartsFn,
    gate: RequestFilter | None,
) -> None:
    """The plan loop writing each judge's lines from its :class:`LineForm` (see
    :mod:`kyro._build.line_forms`); a judge without one is encoded request by request."""
    forms: list[LineForm | None | bool] = [True] * len(planner.judges)  # True: not compiled yet
    plans = tuple(enumerate(planner.judges))
    render = planner.render
    add, add_lines = builder.add, builder.add_lines
    count_sent = gate.count_sent if gate is not None else None
    take = gate.take if gate is not None else None
    prefix = planner.prefix
    for transcript in transcripts:
        try:
            seen(transcript)
            head = f"{prefix}{transcript.index}"
            encoded_head = head.encode()
            cache: dict[str, str] = {}
            for j, plan in plans:
                messages = render(plan, transcript, cache)
                if messages is None:
                    continue
                form = forms[j]
                if form is True:
                    first = plan.requests(head, messages)[0]
                    form = forms[j] = compile_form(plan, first, encode, encode_parts)
                rest = form.rest(messages) if isinstance(form, LineForm) else None
                if rest is None:
                    requests = plan.requests(head, messages)
                    for request in take(requests) if take is not None else requests:
                        add(request)
                    continue
                assert isinstance(form, LineForm)
                tokens = (form.chars(messages) + 3) // 4
                add_lines(plan.model, form.start + encoded_head, head, form.runs, rest, tokens)
                if count_sent is not None:
                    request = JudgeRequest(
                        custom_id=head + plan.suffixes[0],
                        model=plan.model,
                        messages=messages,
                        params=plan.params,
                        json_output=plan.json_output,
                        response_schema=plan.schema,
                        samples=plan.samples,
                    )
                    count_sent(request, len(plan.suffixes))
        except (UnicodeEncodeError, RecursionError) as exc:
            raise _unencodable(transcript, exc) from exc


def _unencodable(transcript: Transcript, exc: Exception) -> BatchValidationError:
    """The error for a transcript that cannot become JSON: bad text, or nested too deeply."""
    source = printable(transcript.source)
    if isinstance(exc, RecursionError):
        reason = "its value is nested too deeply to encode; flatten it"
    elif source != transcript.source:
        reason = "its file name is not UTF-8; rename the file"
    else:
        reason = "it holds characters that are not valid UTF-8 text; fix the item"
    return BatchValidationError(
        f"transcript #{transcript.index} cannot be encoded as JSON: {reason}", path=source
    )
