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

from kyro._build.line_forms import EncodePartsFn, InputText, LineForm, compile_form
from kyro._build.shards import BuildSummary, EncodeFn, ShardBuilder
from kyro._config.judges import JudgesConfig
from kyro._config.templates import input_text
from kyro._cost.prices import estimate_tokens
from kyro._exceptions import BatchValidationError
from kyro._limits import printable
from kyro._plan.planner import Planner
from kyro._plan.preflight import Preflight
from kyro._transcript_index import INDEX_FILENAME, TranscriptIndexWriter
from kyro._transcripts import Transcript
from kyro._types import BatchLimits, JudgeRequest, Message

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

    def count_sent(self, request: JudgeRequest, count: int, input_tokens: int) -> None:
        """Count ``count`` requests of ``request``'s judge, model, params and samples as sent
        (their input tokens summing to ``input_tokens``), in place of taking them."""
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

    def seen(transcript: Transcript, text: str | None = None) -> None:
        nonlocal count
        count += 1
        if index is not None:
            index.write(transcript, text)
        if on_transcript is not None:
            on_transcript(transcript)

    builder = ShardBuilder(target, encode, limits, prefix=prefix, preflight=preflight)
    try:
        planner = Planner(config, runs, variables, stage, preflight, samples=samples)
        add = builder.add
        # One loop, no generator layers in between: this is the hot path.
        if encode_parts is not None and (gate is None or gate.sends_all):
            _build_in_parts(
                planner,
                transcripts,
                seen,
                builder,
                encode,
                encode_parts,
                gate,
                index_text=index is not None,
            )
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


# One judge of the steady loop: its index, model, line start, runs, runs' bytes, its form's
# rest_of, and how many runs.
_Steady = tuple[
    int,
    str,
    bytes,
    tuple[tuple[str, bytes], ...],
    int,
    Callable[[InputText | None], tuple[bytes, int, int]],
    int,
]


def _build_in_parts(
    planner: Planner,
    transcripts: Iterable[Transcript],
    seen: Callable[[Transcript, str | None], None],
    builder: ShardBuilder,
    encode: EncodeFn,
    encode_parts: EncodePartsFn,
    gate: RequestFilter | None,
    *,
    index_text: bool,
) -> None:
    """The plan loop writing each judge's lines from its :class:`LineForm` (see
    :mod:`kyro._build.line_forms`); a judge without one is encoded request by request.

    ``index_text``: the transcript index wants each structured transcript's input text
    (for its preview), so it is made once here for the index and every judge.
    """
    judges = planner.judges
    forms: list[LineForm | None] = [None] * len(judges)
    compiled = [False] * len(judges)
    # Per judge: its first request (standing for all of them) and the requests and input
    # tokens written from its form, counted into the gate's cost at the end, all at once.
    firsts: list[JudgeRequest | None] = [None] * len(judges)
    sent = [0] * len(judges)
    tokens_sent = [0] * len(judges)
    render = planner.render
    add, add_lines = builder.add, builder.add_lines
    take = gate.take if gate is not None else None
    prefix = planner.prefix
    # Once every judge has a form with pieces, what each transcript needs of them, per judge.
    steady: list[_Steady] | None = None
    steady_input = False  # whether a steady form puts the input text in
    for transcript in transcripts:
        try:
            value = transcript.value
            text = input_text(value) if index_text and not isinstance(value, str) else None
            seen(transcript, text)
            head = f"{prefix}{transcript.index}"
            encoded_head = head.encode()
            if steady is not None:
                # The loop below, for forms that never render: the same calls, fewer steps.
                given = (
                    InputText(text if text is not None else input_text(value))
                    if steady_input
                    else None
                )
                for j, model, start, runs, run_bytes, rest_of, count in steady:
                    tail, tail_chars, tail_tokens = rest_of(given)
                    add_lines(
                        model,
                        start + encoded_head,
                        head,
                        runs,
                        tail,
                        (tail_chars + 3) // 4,
                        run_bytes,
                    )
                    sent[j] += count
                    tokens_sent[j] += tail_tokens * count
                continue
            cache: dict[str, str] = {} if text is None else {"": text}
            shared: InputText | None = None
            for j, plan in enumerate(judges):
                messages: tuple[Message, ...] | None = None
                if not compiled[j]:
                    messages = render(plan, transcript, cache)
                    if messages is None:
                        continue
                    first = plan.requests(head, messages)[0]
                    forms[j] = compile_form(plan, first, value, encode, encode_parts)
                    compiled[j] = True
                    if forms[j] is not None and gate is not None:
                        firsts[j] = first
                        gate.count_sent(first, 0, 0)  # its cost line, in the order first seen
                form = forms[j]
                rest: bytes | None = None
                if form is not None and form.pieces is not None:
                    if form.pieces.inputs and shared is None:
                        shared = InputText(text if text is not None else input_text(value))
                    rest, chars, tokens = form.rest_of(shared)
                else:
                    if messages is None:
                        messages = render(plan, transcript, cache)
                        if messages is None:
                            continue
                    if form is not None:
                        rest = form.rest(messages)
                        chars = form.chars(messages)
                        tokens = estimate_tokens(messages)
                if form is None or rest is None:
                    assert messages is not None
                    requests = plan.requests(head, messages)
                    for request in take(requests) if take is not None else requests:
                        add(request)
                    continue
                add_lines(
                    plan.model,
                    form.start + encoded_head,
                    head,
                    form.runs,
                    rest,
                    (chars + 3) // 4,
                    form.run_bytes,
                )
                sent[j] += len(form.runs)
                tokens_sent[j] += tokens * len(form.runs)
            if all(compiled) and all(f is not None and f.pieces is not None for f in forms):
                steady = [
                    (j, plan.model, f.start, f.runs, f.run_bytes, f.rest_of, len(f.runs))
                    for j, (plan, f) in enumerate(zip(judges, forms, strict=True))
                    if f is not None
                ]
                steady_input = any(f is not None and f.pieces and f.pieces.inputs for f in forms)
        except (UnicodeEncodeError, RecursionError) as exc:
            raise _unencodable(transcript, exc) from exc
    if gate is not None:
        for standing, count, tokens in zip(firsts, sent, tokens_sent, strict=True):
            if standing is not None:
                gate.count_sent(standing, count, tokens)


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
