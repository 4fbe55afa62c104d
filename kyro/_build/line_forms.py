"""A judge's request line encoded once, in parts: per transcript only what changes is escaped.

Every request of one judge shares its whole line but for the custom_id and the contents of
its messages, and of those the leading constant ones (kyro's verdict message, a system
prompt without fields) are the very same objects for every transcript. A provider that offers
``encode_parts`` (see :func:`kyro._provider.line_parts`) cuts the line of a judge's first
request at those strings, and :func:`compile_form` folds the constant ones in: a transcript's
line for one run is ``start + head`` (the line up to the custom_id's transcript part), that
run's middle (the rest of the custom_id up to the first message that changes) and ``rest``
(each changing content as a JSON string, with the bytes after it); the builder writes the
three parts (:meth:`kyro._build.shards.ShardBuilder.add_lines`).

When the templates of the changing messages hold nothing but ``{{input}}`` and variables,
``rest`` needs no rendering at all: the literal text around each ``{{input}}`` is escaped once
per judge, and the transcript's text once per transcript for every judge
(:class:`InputText`). JSON escaping maps each character on its own, so the escaped pieces
joined are the escaped whole.

Byte identity with ``encode`` is the contract: a form is used only after the line it gives
for the judge's first request equals, byte for byte, the line ``encode`` writes for it (both
ways of making ``rest``), and a request whose constant messages are not the very objects the
form folded in is encoded by ``encode``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import chain

import msgspec

from kyro._build.shards import EncodeFn
from kyro._config.templates import input_text
from kyro._cost.prices import REPLY_PRIMING_TOKENS, estimate_tokens, message_tokens
from kyro._plan.planner import JudgePlan
from kyro._types import JudgeRequest, Message

__all__ = ["EncodePartsFn", "InputText", "LineForm", "compile_form"]

EncodePartsFn = Callable[[JudgeRequest], "tuple[bytes, ...] | None"]
# custom_id characters a JSON string holds as they are (a planner's ids use no others).
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]*")
_json = msgspec.json.Encoder()


def _escaped(text: str) -> bytes:
    """``text`` as a JSON string, without its quotes."""
    return _json.encode(text)[1:-1]


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


class InputText:
    """What ``{{input}}`` renders one transcript's value to (``text``, from
    :func:`kyro._config.templates.input_text`): escaped as in a JSON string (without the
    quotes), its length in characters and in UTF-8 bytes."""

    __slots__ = ("chars", "escaped", "size", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.escaped = memoryview(_json.encode(text))[1:-1]
        self.chars = len(text)
        self.size = _utf8_size(text)



class _Pieces:
    """``rest`` as constant bytes around the escaped input text, with what it counts."""

    __slots__ = ("chars", "inputs", "parts", "sizes")

    def __init__(
        self, parts: tuple[bytes, ...], chars: int, inputs: int, sizes: tuple[tuple[int, int], ...]
    ) -> None:
        self.parts = parts  # constant bytes; the input text goes between each two
        self.chars = chars  # characters of the literal text
        self.inputs = inputs  # how many {{input}}s
        self.sizes = sizes  # per changing message: (UTF-8 bytes of literal text, {{input}}s)


class LineForm:
    """One judge's line in parts (see the module docstring)."""

    __slots__ = (
        "fixed",
        "fixed_chars",
        "fixed_tokens",
        "pieces",
        "run_bytes",
        "runs",
        "start",
        "tails",
    )

    def __init__(
        self,
        start: bytes,
        runs: tuple[tuple[str, bytes], ...],
        fixed: tuple[Message, ...],
        tails: tuple[bytes, ...],
    ) -> None:
        self.start = start
        self.runs = runs
        self.run_bytes = sum(len(mid) for _, mid in runs)
        self.fixed = fixed
        self.tails = tails
        self.fixed_chars = sum(len(message.content) for message in fixed)
        self.fixed_tokens = REPLY_PRIMING_TOKENS + sum(
            message_tokens(_utf8_size(message.content)) for message in fixed
        )
        self.pieces: _Pieces | None = None

    def rest(self, messages: tuple[Message, ...]) -> bytes | None:
        """``rest`` for rendered ``messages``; None when they do not fit this form (other
        constant messages, another number of messages)."""
        fixed = self.fixed
        tails = self.tails
        if len(messages) != len(fixed) + len(tails):
            return None
        for known, message in zip(fixed, messages, strict=False):
            if message is not known:
                return None
        if len(tails) == 1:
            return _json.encode(messages[-1].content) + tails[0]
        contents = [_json.encode(message.content) for message in messages[len(fixed) :]]
        return b"".join(chain.from_iterable(zip(contents, tails, strict=True)))

    def chars(self, messages: tuple[Message, ...]) -> int:
        """Characters of message content in ``messages`` (the builder's token estimate)."""
        chars = self.fixed_chars
        for message in messages[len(self.fixed) :]:
            chars += len(message.content)
        return chars

    def rest_of(self, text: InputText | None) -> tuple[bytes, int, int]:
        """``rest`` without rendering (the form must have pieces; ``text`` is the
        transcript's input text, None only when no template uses it), with the characters
        of message content and the estimated input tokens (the cost estimate's) of the
        request."""
        pieces = self.pieces
        assert pieces is not None
        parts = pieces.parts
        tokens = self.fixed_tokens
        chars = self.fixed_chars + pieces.chars
        if text is None:
            for literal, _ in pieces.sizes:
                tokens += message_tokens(literal)
            return parts[0], chars, tokens
        escaped = text.escaped
        if len(parts) == 2:
            rest = b"".join((parts[0], escaped, parts[1]))
        else:
            joined: list[bytes | memoryview] = [parts[0]]
            for part in parts[1:]:
                joined += (escaped, part)
            rest = b"".join(joined)
        for literal, inputs in pieces.sizes:
            tokens += message_tokens(literal + inputs * text.size)
        return rest, chars + pieces.inputs * text.chars, tokens

    def tokens(self, messages: tuple[Message, ...]) -> int:
        """The cost estimate's input tokens for rendered ``messages`` (as :meth:`rest_of`)."""
        return estimate_tokens(messages)


def compile_form(
    plan: JudgePlan,
    request: JudgeRequest,
    value: str | dict[str, object] | list[object],
    encode: EncodeFn,
    encode_parts: EncodePartsFn,
) -> LineForm | None:
    """``plan``'s line form from its first request, or None (then every request is encoded).

    ``value`` is the value of the transcript ``request`` was rendered for.
    None when the provider gives no parts for it, a custom_id would need escaping, or the
    form's line for ``request`` differs from ``encode``'s by a single byte.
    """
    suffixes = plan.suffixes
    messages = request.messages
    fixed = plan.fixed
    if (
        not suffixes
        or not request.custom_id.endswith(suffixes[0])
        or len(messages) != len(fixed) + len(plan.templates)
        or any(message is not known for message, known in zip(messages, fixed, strict=False))
    ):
        return None
    head = request.custom_id[: -len(suffixes[0])]
    if not all(_PLAIN_ID.fullmatch(text) for text in (head, *suffixes)):
        return None
    parts = encode_parts(request)
    if parts is None or len(parts) != len(messages) + 2:
        return None
    # The custom_id is a JSON string of plain characters: its quotes go to either side.
    middle = b"".join(
        chain(
            (b'"', parts[1]),
            *((_json.encode(m.content), part) for m, part in zip(fixed, parts[2:], strict=False)),
        )
    )
    form = LineForm(
        start=parts[0] + b'"',
        runs=tuple((suffix, suffix.encode() + middle) for suffix in suffixes),
        fixed=fixed,
        tails=parts[len(fixed) + 2 :],
    )
    expected = bytearray()
    encode(request, expected)
    line_start = form.start + head.encode() + form.runs[0][1]
    rest = form.rest(messages)
    if rest is None or line_start + rest != expected:
        return None
    pieces = _pieces(plan, form.tails)
    if pieces is not None:
        form.pieces = pieces
        # The same line again, the input text escaped apart from the literal text.
        text = InputText(input_text(value)) if pieces.inputs else None
        if line_start + form.rest_of(text)[0] != expected:
            form.pieces = None
    return form


def _pieces(plan: JudgePlan, tails: Sequence[bytes]) -> _Pieces | None:
    """The form's ``rest`` as constant bytes around each ``{{input}}``, or None (a template
    of the judge's changing messages holds other fields)."""
    parts: list[bytes] = []
    current = b""
    chars = inputs = 0
    sizes: list[tuple[int, int]] = []
    for template, tail in zip(plan.templates, tails, strict=True):
        found = template.pieces(plan.variables)
        if found is None:
            return None
        current += b'"'
        literal = count = 0
        for piece in found:
            if piece is None:
                parts.append(current)
                current = b""
                count += 1
                continue
            current += _escaped(piece)
            chars += len(piece)
            literal += _utf8_size(piece)
        current += b'"' + tail
        inputs += count
        sizes.append((literal, count))
    parts.append(current)
    return _Pieces(tuple(parts), chars, inputs, tuple(sizes))
