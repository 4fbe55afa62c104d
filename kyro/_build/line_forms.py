"""A judge's request line encoded once, in parts: per request only what changes is escaped.

Every request of one judge shares its whole line but for the custom_id and the contents of
its messages — and of those, kyro's verdict message and a system prompt without fields are
the same for every transcript. A provider that offers ``encode_parts`` (see
:func:`kyro._provider.line_parts`) cuts the line of a judge's first request at those
strings; :func:`compile_form` folds the constant ones in, so a transcript's lines are
``start + head`` (the line up to the custom_id's transcript part), a per-run middle (the
custom_id's run part up to the first message that changes) and ``rest`` (each changing
content as a JSON string, with the bytes after it), the last two written by
:meth:`kyro._build.shards.ShardBuilder.add_lines`.

Byte identity with ``encode`` is the contract, so a form is trusted only after the line it
gives for that first request equals the line ``encode`` writes for it, and a request whose
constant messages are not the very objects the form folded in falls back to ``encode``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import chain

import msgspec

from kyro._build.shards import EncodeFn
from kyro._plan.planner import JudgePlan
from kyro._types import JudgeRequest, Message

__all__ = ["EncodePartsFn", "LineForm", "compile_form"]

EncodePartsFn = Callable[[JudgeRequest], "tuple[bytes, ...] | None"]
# custom_id characters a JSON string holds as they are (a planner's ids use no others).
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]*")
_json = msgspec.json.Encoder()


class LineForm:
    """One judge's line in parts (see the module docstring); :meth:`rest` per transcript."""

    __slots__ = ("fixed", "fixed_chars", "runs", "start", "tails")

    def __init__(
        self,
        start: bytes,
        runs: tuple[tuple[str, bytes], ...],
        fixed: tuple[Message, ...],
        tails: tuple[bytes, ...],
    ) -> None:
        self.start = start
        self.runs = runs
        self.fixed = fixed
        self.tails = tails
        self.fixed_chars = sum(len(message.content) for message in fixed)

    def rest(self, messages: tuple[Message, ...]) -> bytes | None:
        """The line after the per-run middle for ``messages``; None when it does not fit
        this form (other constant messages, another count of messages)."""
        fixed = self.fixed
        tails = self.tails
        if len(messages) != len(fixed) + len(tails):
            return None
        for message, known in zip(fixed, messages, strict=False):
            if message is not known:
                return None
        if len(tails) == 1:
            return _json.encode(messages[-1].content) + tails[0]
        contents = [_json.encode(message.content) for message in messages[len(fixed) :]]
        return b"".join(chain.from_iterable(zip(contents, tails, strict=True)))

    def chars(self, messages: tuple[Message, ...]) -> int:
        """Characters of message content in ``messages`` (a request's token estimate)."""
        chars = self.fixed_chars
        for message in messages[len(self.fixed) :]:
            chars += len(message.content)
        return chars


def compile_form(
    plan: JudgePlan, request: JudgeRequest, encode: EncodeFn, encode_parts: EncodePartsFn
) -> LineForm | None:
    """``plan``'s line form from its first request, or None (then every request is encoded).

    None when the provider gives no parts for it, a custom_id would need escaping, or the
    form's line for ``request`` differs from ``encode``'s by a single byte.
    """
    suffixes = plan.suffixes
    if not suffixes or not request.custom_id.endswith(suffixes[0]):
        return None
    head = request.custom_id[: -len(suffixes[0])]
    if not all(_PLAIN_ID.fullmatch(text) for text in (head, *suffixes)):
        return None
    parts = encode_parts(request)
    messages = request.messages
    if parts is None or len(parts) != len(messages) + 2:
        return None
    constant = (*plan.head, plan.static_system) if plan.static_system else plan.head
    count = 0
    for message, known in zip(messages, constant, strict=False):
        if message is not known:
            break
        count += 1
    fixed = messages[:count]
    # The custom_id is a JSON string of plain characters: its quotes go to either side.
    middle = b"".join(
        chain((b'"', parts[1]), *((_json.encode(m.content), p) for m, p in zip(fixed, parts[2:])))
    )
    form = LineForm(
        start=parts[0] + b'"',
        runs=tuple((suffix, suffix.encode() + middle) for suffix in suffixes),
        fixed=fixed,
        tails=parts[count + 2 :],
    )
    rest = form.rest(messages)
    if rest is None:
        return None
    expected = bytearray()
    encode(request, expected)
    line = form.start + head.encode() + form.runs[0][1] + rest
    return form if line == expected else None
