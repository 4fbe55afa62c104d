"""Checks on structured outputs — JSON, numbers, length — and the shared "cannot score" signal.

The scorer table and the text checks live in ``kyro.eval._scorers``; each function here
binds its options and returns ``check(output, expected) -> (score, passed, explanation)``.
A check that cannot apply to an item (no expected value, an expected value that is not JSON)
raises :class:`CannotScore`, which the scorer turns into an errored score.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from kyro.eval._text import as_json, as_text, parse_number

__all__ = [
    "CannotScore",
    "Check",
    "json_field_match",
    "json_match",
    "json_valid",
    "length",
    "needs",
    "numeric_close",
]

Check = Callable[[Any, Any], "tuple[float, bool, str]"]


class CannotScore(Exception):
    """The check needs something this item does not have."""


def needs(expected: Any, kind: str, option: str | None = None) -> Any:
    if expected is None:
        how = f" or the {option}= option" if option else ""
        raise CannotScore(f"{kind} needs an expected value: give the item one{how}")
    return expected


def json_valid(*, require: str | None = None) -> Check:
    if require not in (None, "object", "array"):
        raise ValueError(f"require must be 'object' or 'array', not {require!r}")
    shapes = {"object": dict, "array": list}

    def check(output: Any, expected: Any) -> tuple[float, bool, str]:
        try:
            value = as_json(output)
        except ValueError as exc:
            return 0.0, False, str(exc)
        if require is not None and not isinstance(value, shapes[require]):
            return 0.0, False, f"valid JSON, but not an {require}"
        return 1.0, True, "valid JSON"

    return check


def _parsed(value: Any, what: str) -> Any:
    try:
        return as_json(value)
    except ValueError as exc:
        raise CannotScore(f"the {what} is {exc}") from None


def json_match(*, subset: bool = False) -> Check:
    def check(output: Any, expected: Any) -> tuple[float, bool, str]:
        want = _parsed(needs(expected, "json_match"), "expected value")
        got = _parsed(output, "output")
        same = _within(want, got) if subset else got == want
        return (1.0, True, "same JSON") if same else (0.0, False, "JSON differs")

    return check


def _within(want: Any, got: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and all(
            k in got and _within(v, got[k]) for k, v in want.items()
        )
    return bool(want == got)


def _field(value: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _ABSENT
    return value


_ABSENT = object()


def json_field_match(
    *, fields: list[str] | None = None, ignore_case: bool = False, abs_tol: float = 0.0
) -> Check:
    def equal(a: Any, b: Any) -> bool:
        if ignore_case and isinstance(a, str) and isinstance(b, str):
            return a.casefold() == b.casefold()
        if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
            return math.isclose(a, b, rel_tol=0.0, abs_tol=abs_tol)
        return bool(a == b)

    def check(output: Any, expected: Any) -> tuple[float, bool, str]:
        want = _parsed(needs(expected, "json_field_match"), "expected value")
        got = _parsed(output, "output")
        names = fields if fields is not None else list(want) if isinstance(want, dict) else None
        if not names:
            raise CannotScore("json_field_match needs fields= or an expected JSON object with keys")
        wrong = [
            f
            for f in names
            if _field(got, f) is _ABSENT or not equal(_field(got, f), _field(want, f))
        ]
        share = 1 - len(wrong) / len(names)
        return (
            share,
            not wrong,
            "every field matches" if not wrong else f"differs: {', '.join(wrong[:5])}",
        )

    return check


def numeric_close(*, abs_tol: float = 1e-6, rel_tol: float = 0.0, extract: bool = True) -> Check:
    def check(output: Any, expected: Any) -> tuple[float, bool, str]:
        want = parse_number(needs(expected, "numeric_close"), extract=False)
        if want is None:
            raise CannotScore(f"expected {expected!r:.60} is not a number")
        got = parse_number(output, extract=extract)
        if got is None:
            return 0.0, False, "no number in the output"
        close = math.isclose(got, want, rel_tol=rel_tol, abs_tol=abs_tol)
        return (1.0 if close else 0.0), close, f"{got:g} vs expected {want:g}"

    return check


def length(*, min: int | None = None, max: int | None = None, unit: str = "chars") -> Check:
    if unit not in ("chars", "words"):
        raise ValueError(f"unit must be 'chars' or 'words', not {unit!r}")
    if min is None and max is None:
        raise ValueError("length needs min=, max= or both")

    def check(output: Any, expected: Any) -> tuple[float, bool, str]:
        text = as_text(output)
        size = len(text.split()) if unit == "words" else len(text)
        ok = (min is None or size >= min) and (max is None or size <= max)
        return (1.0 if ok else 0.0), ok, f"{size} {unit}"

    return check
