"""Prompt templates: ``{{input}}``, ``{{input.a.b}}`` and ``{{variables.name}}``, compiled once.

Rules (also in the README's config reference):

* ``{{input}}`` is the transcript: text as is, structured data as compact JSON.
* ``{{input.a.b}}`` walks fields of a structured transcript; a path segment that is a whole
  number indexes a list (``{{input.turns.0}}``). A string value is inserted as is, anything
  else as JSON.
* ``{{variables.name}}`` is a run-level variable (given to ``submit``/``run``), overridden
  for one judge by that judge's own ``variables``.
* ``{{steps.<name>.status|score|root_cause}}`` (pipelines) is what an upstream step said for
  this transcript: its own verdict status (or ``SKIPPED``/``NOT_TRIGGERED`` when it did not
  run), its score (empty when it gave none) and its root cause (empty when none). Only steps
  that are decided before this one (its ancestors) may be named; the config loader checks.
* Spaces inside the braces are allowed: ``{{ input.question }}``.
* Substitution is single-pass: text inserted from a transcript or a variable is never scanned
  for braces again, so ``{{...}}`` inside user data stays literal.
* A ``{{`` with no closing ``}}`` is literal text; ``{{ anything else }}`` is a config error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from kyro._exceptions import BatchValidationError
from kyro._transcripts import Transcript

__all__ = ["Template", "input_text", "variable_text"]

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_FIELD = re.compile(
    r"^(input(?:\.[A-Za-z0-9_\-]+)*|variables\.[A-Za-z0-9_\-]+"
    r"|steps\.[A-Za-z0-9_\-]+\.(?:status|score|root_cause))$"
)
_json_encoder = msgspec.json.Encoder()

_INPUT = 0
_INPUT_PATH = 1
_VARIABLE = 2
_STEP = 3

StepValues = Mapping[str, Mapping[str, str]]
"""Upstream results for ``{{steps.<name>.<attr>}}``: step name → attr → text."""


class Template:
    """A prompt compiled into literal text and placeholders, rendered many times.

    Example::

        t = Template("Q: {{ input.question }} ({{variables.product}})", judge="relevance")
        t.render(Transcript(index=0, source="inline:0", value={"question": "Why?"}),
                 {"product": "X"})
        # 'Q: Why? (X)'
    """

    __slots__ = ("_parts", "fields", "judge", "text")

    def __init__(self, text: str, *, judge: str) -> None:
        self.text = text
        self.judge = judge
        parts: list[str | tuple[int, str, tuple[str, ...]]] = []
        fields: list[str] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(text):
            field = match.group(1).strip()
            if not _FIELD.match(field):
                raise BatchValidationError(
                    f"judge {judge!r}: unknown template field {{{{{match.group(1)}}}}}; "
                    "use {{input}}, {{input.<field>}}, {{variables.<name>}} or "
                    "{{steps.<step>.status}} (also .score, .root_cause)"
                )
            if match.start() > pos:
                parts.append(text[pos : match.start()])
            segments = tuple(field.split("."))
            if field == "input":
                parts.append((_INPUT, field, ()))
            elif segments[0] == "input":
                parts.append((_INPUT_PATH, field, segments[1:]))
            elif segments[0] == "steps":
                parts.append((_STEP, field, segments[1:]))
            else:
                parts.append((_VARIABLE, field, segments[1:]))
            if field not in fields:
                fields.append(field)
            pos = match.end()
        if pos < len(text):
            parts.append(text[pos:])
        self._parts = tuple(parts)
        self.fields: tuple[str, ...] = tuple(fields)

    def __repr__(self) -> str:
        return f"Template(judge={self.judge!r}, fields={self.fields!r})"

    @property
    def steps(self) -> tuple[str, ...]:
        """The step names ``{{steps.<name>.…}}`` placeholders refer to, in order."""
        return tuple(dict.fromkeys(f.split(".")[1] for f in self.fields if f.startswith("steps.")))

    def render(
        self,
        transcript: Transcript,
        variables: Mapping[str, str],
        cache: dict[str, str] | None = None,
        steps: StepValues | None = None,
    ) -> str:
        """Fill the placeholders for one transcript.

        ``cache`` may be a dict shared by every template rendered for the same transcript; it
        keeps the transcript's JSON from being encoded once per judge and run. ``steps`` holds
        the upstream results a pipeline step's ``{{steps.…}}`` placeholders read.
        Raises :class:`BatchValidationError` naming the judge, the transcript and the field
        when a field cannot be resolved.
        """
        out: list[str] = []
        append = out.append
        for part in self._parts:
            if isinstance(part, str):
                append(part)
                continue
            kind, field, segments = part
            if kind == _INPUT:
                value = transcript.value
                if isinstance(value, str):
                    append(value)
                elif cache is not None:
                    encoded = cache.get("")
                    if encoded is None:
                        encoded = cache[""] = input_text(value)
                    append(encoded)
                else:
                    append(input_text(value))
            elif kind == _INPUT_PATH:
                append(input_text(self._walk(transcript, field, segments)))
            elif kind == _STEP:
                values = steps.get(segments[0]) if steps is not None else None
                if values is None:
                    raise self._missing(
                        transcript,
                        field,
                        f"step {segments[0]!r} has no result here; a step may only name the "
                        "steps it depends on (directly or through other steps)",
                    )
                append(values.get(segments[1], ""))
            else:
                try:
                    append(str(variables[segments[0]]))
                except KeyError:
                    raise self._missing(
                        transcript,
                        field,
                        f"variable {segments[0]!r} is not set; pass it to submit(variables=...) "
                        "or --var, or give the judge a default under `variables:`",
                    ) from None
        return "".join(out)

    def pieces(self, variables: Mapping[str, str]) -> tuple[str | None, ...] | None:
        """The template as literal text around each ``{{input}}`` (a None), ``variables``
        filled in; None when it has other fields or names a variable that is not set.

        :meth:`render` gives these pieces joined, :func:`input_text` in place of each None.

        Example::

            Template("Q ({{variables.p}}): {{input}}", judge="j").pieces({"p": "X"})
            # ('Q (X): ', None, '')
        """
        out: list[str | None] = []
        text: list[str] = []
        for part in self._parts:
            if isinstance(part, str):
                text.append(part)
                continue
            kind, _, segments = part
            if kind == _INPUT:
                out += ("".join(text), None)
                text.clear()
            elif kind == _VARIABLE and segments[0] in variables:
                text.append(str(variables[segments[0]]))
            else:
                return None
        out.append("".join(text))
        return tuple(out)

    def _walk(self, transcript: Transcript, field: str, segments: tuple[str, ...]) -> Any:
        value: Any = transcript.value
        if isinstance(value, str):
            raise self._missing(
                transcript,
                field,
                "the transcript is plain text, so it has no fields; use {{input}} or give "
                "structured transcripts (.json files, dicts or .jsonl lines)",
            )
        for depth, segment in enumerate(segments):
            if isinstance(value, Mapping) and segment in value:
                value = value[segment]
            elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
                value = value[int(segment)]
            else:
                walked = ".".join(("input", *segments[:depth]))
                raise self._missing(transcript, field, f"{walked} has no field {segment!r}")
        return value

    def _missing(self, transcript: Transcript, field: str, why: str) -> BatchValidationError:
        return BatchValidationError(
            f"judge {self.judge!r} cannot render {{{{{field}}}}} for transcript "
            f"#{transcript.index} ({transcript.source}): {why}"
        )


def input_text(value: Any) -> str:
    """What ``{{input}}`` renders a transcript's value to: text as is, anything else as
    compact JSON.

    Example::

        input_text({"q": "Why?"}), input_text("hi")   # ('{"q":"Why?"}', 'hi')
    """
    if isinstance(value, str):
        return value
    return _json_encoder.encode(value).decode()


def variable_text(value: Any) -> str | None:
    """A variable's value as template text — text as is, numbers as written, booleans as
    ``true``/``false`` (as in YAML) — or None for anything else (a list, a mapping, None).

    Example::

        variable_text(3), variable_text(True), variable_text([1])   # ('3', 'true', None)
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return None
