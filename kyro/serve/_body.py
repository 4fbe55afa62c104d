"""The batch-execute request body, checked field by field into a list of problems.

Every problem names the field by its path (``inputs[2].response``) and says what is wrong, so
a client fixes all of them in one go; the whole list comes back in one 422. Unknown fields are
problems too: a misspelt ``tag`` must not silently drop the tags.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

__all__ = ["INPUT_FIELDS", "MAX_INPUTS", "BatchExecuteBody", "Problem", "parse_body"]

MAX_INPUTS = 100
MAX_TAGS = 32
MAX_TAG_CHARS = 200
INPUT_FIELDS = ("request", "response", "contexts", "functions", "expected_output")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_decode = msgspec.json.Decoder().decode


class Problem(msgspec.Struct, frozen=True):
    """One thing wrong with a request: the field's path and what to do about it."""

    field: str
    message: str


class BatchExecuteBody(msgspec.Struct, frozen=True, kw_only=True):
    """A valid body: every input has all five fields (absent ones null)."""

    inputs: tuple[dict[str, Any], ...]
    tags: tuple[str, ...] = ()
    judge_version_id: str | None = None


def parse_body(raw: bytes) -> BatchExecuteBody | list[Problem]:
    """The body, or every problem found in it.

    Example::

        parse_body(b'{"inputs": []}')
        # [Problem(field='inputs', message='give between 1 and 100 inputs, not 0')]
    """
    try:
        data = _decode(raw)
    except msgspec.DecodeError:
        return [Problem("", "the body is not valid JSON; send a JSON object with `inputs`")]
    if not isinstance(data, dict):
        return [Problem("", "the body must be a JSON object with `inputs`")]
    problems: list[Problem] = []
    for key in data:
        if key not in ("inputs", "tags", "judge_version_id"):
            problems.append(
                Problem(key, "unknown field; the body takes inputs, tags and judge_version_id")
            )
    inputs = _inputs(data.get("inputs"), problems)
    tags = _tags(data.get("tags"), problems)
    version = data.get("judge_version_id")
    if version is not None and not (isinstance(version, str) and _UUID.match(version)):
        problems.append(Problem("judge_version_id", "must be a version id (a UUID) or null"))
    if problems:
        return problems
    return BatchExecuteBody(inputs=inputs, tags=tags, judge_version_id=version)


def _inputs(value: Any, problems: list[Problem]) -> tuple[dict[str, Any], ...]:
    if value is None:
        problems.append(Problem("inputs", "required: a list of 1 to 100 inputs"))
        return ()
    if not isinstance(value, list):
        problems.append(Problem("inputs", "must be a list of inputs"))
        return ()
    if not 1 <= len(value) <= MAX_INPUTS:
        problems.append(
            Problem("inputs", f"give between 1 and {MAX_INPUTS} inputs, not {len(value)}")
        )
        return ()
    return tuple(_input(f"inputs[{i}]", item, problems) for i, item in enumerate(value))


def _input(at: str, item: Any, problems: list[Problem]) -> dict[str, Any]:
    if not isinstance(item, dict):
        problems.append(Problem(at, "must be an object with `request` and `response`"))
        return {}
    for key in item:
        if key not in INPUT_FIELDS:
            problems.append(
                Problem(f"{at}.{key}", "unknown field; an input takes " + ", ".join(INPUT_FIELDS))
            )
    for key in ("request", "response"):
        if not isinstance(item.get(key), str):
            what = "required" if item.get(key) is None else "must be a string"
            problems.append(Problem(f"{at}.{key}", f"{what}: the {_ROLE[key]}, as text"))
    contexts = item.get("contexts")
    if contexts is not None and not (
        isinstance(contexts, list) and all(isinstance(c, str) for c in contexts)
    ):
        problems.append(Problem(f"{at}.contexts", "must be a list of strings or null"))
    functions = item.get("functions")
    if functions is not None and not (
        isinstance(functions, list) and all(isinstance(f, dict) for f in functions)
    ):
        problems.append(Problem(f"{at}.functions", "must be a list of objects or null"))
    expected = item.get("expected_output")
    if expected is not None and not isinstance(expected, str):
        problems.append(Problem(f"{at}.expected_output", "must be a string or null"))
    return {key: item.get(key) for key in INPUT_FIELDS}


_ROLE = {"request": "input, prompt or question", "response": "output or answer to evaluate"}


def _tags(value: Any, problems: list[Problem]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append(Problem("tags", "must be a list of strings"))
        return ()
    if len(value) > MAX_TAGS:
        problems.append(Problem("tags", f"at most {MAX_TAGS} tags, not {len(value)}"))
    for i, tag in enumerate(value):
        if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG_CHARS:
            problems.append(
                Problem(
                    f"tags[{i}]",
                    f"must be a non-empty string of at most {MAX_TAG_CHARS} characters",
                )
            )
    return tuple(t for t in value if isinstance(t, str))
