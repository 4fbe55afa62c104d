"""Deterministic scorers, by name: cheap checks that never wait for a model.

Every scorer compares the component's ``output`` with the item's ``expected`` (or with an
option) and gives a score in 0–1, whether it passed, and a short explanation. Build one with
options through :func:`scorer`; a bare name uses the defaults. The text options (``strip``,
``ignore_case``, ``collapse_whitespace``, ``ignore_punctuation``, ``normalize_unicode``) are
described in ``kyro.eval._text``.

=====================  ==================================================================
``exact_match``        output equals expected. Text options. Two non-text values (numbers,
                       dicts) compare as values, so ``3`` equals ``3.0``.
``contains``           output contains ``value`` (or expected): text or a list of texts,
                       all of them unless ``any_of=True``; score = the share found.
``not_contains``       output contains none of ``value`` (or expected). Text options.
``regex``              ``pattern`` (or expected) is found in the output (``full_match=True``:
                       matches all of it); ``ignore_case``, ``multiline``.
``json_valid``         output is JSON (text that parses, or a JSON-shaped value);
                       ``require="object"`` or ``"array"`` narrows the shape.
``json_match``         output and expected are the same JSON (key order ignored);
                       ``subset=True`` lets the output have extra keys at any depth.
``json_field_match``   the dotted ``fields`` (default: every key of expected) hold the same
                       values in output and expected; score = the share that match;
                       ``ignore_case`` for text values, ``abs_tol`` for numbers.
``numeric_close``      the output's number is within ``abs_tol`` (default 1e-6) or
                       ``rel_tol`` (0) of expected; ``extract`` (True) takes the first number
                       in text such as "about 42 apples".
``similarity``         difflib ratio of the texts ≥ ``threshold`` (0.8); score = the ratio.
                       Text options.
``length``             the output has between ``min`` and ``max`` characters (or words with
                       ``unit="words"``).
=====================  ==================================================================
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from difflib import SequenceMatcher
from typing import Any

from kyro.eval._checks import (
    CannotScore,
    Check,
    json_field_match,
    json_match,
    json_valid,
    length,
    needs,
    numeric_close,
)
from kyro.eval._records import ScorerResultSummary, errored_score
from kyro.eval._text import as_text, normaliser

__all__ = ["SCORER_NAMES", "DeterministicScorer", "scorer"]


class DeterministicScorer:
    """A named deterministic check with its options bound; call it on (output, expected, input).

    Example::

        check = scorer("contains", value=["refund", "order"], ignore_case=True)
        check("Your refund for order 7 is on its way", None, None).passed   # True
    """

    __slots__ = ("_check", "kind", "name", "options")

    def __init__(self, kind: str, check: Check, options: Mapping[str, Any], name: str) -> None:
        self.kind = kind
        self.name = name
        self.options = dict(options)
        self._check = check

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"scorer({self.kind!r}{', ' if shown else ''}{shown})"

    def __call__(self, output: Any, expected: Any, input: Any) -> ScorerResultSummary:
        """Score one output; a check that cannot apply (no expected value) is an errored score."""
        try:
            score, passed, why = self._check(output, expected)
        except CannotScore as exc:
            return errored_score(self.name, str(exc))
        return ScorerResultSummary(scorer=self.name, score=score, passed=passed, explanation=why)


def _exact_match(**text: bool) -> Check:
    norm = normaliser(**text)

    def check(output: Any, expected: Any) -> tuple[float, bool, str]:
        expected = needs(expected, "exact_match")
        if not isinstance(output, str) and not isinstance(expected, str):
            same = bool(output == expected)
        else:
            same = norm(as_text(output)) == norm(as_text(expected))
        return (1.0, True, "output equals expected") if same else (0.0, False, "output differs")

    return check


def _texts(value: Any, kind: str) -> list[str]:
    values = value if isinstance(value, list | tuple) else [value]
    if not values or not all(isinstance(v, str) for v in values):
        raise CannotScore(f"{kind} needs text or a list of texts to look for, not {value!r:.60}")
    return list(values)


def _contains(
    *, value: Any = None, any_of: bool = False, negate: bool = False, **text: bool
) -> Check:
    norm = normaliser(**text)
    kind = "not_contains" if negate else "contains"
    fixed = [norm(v) for v in _texts(value, kind)] if value is not None else None

    def check(output: Any, expected: Any) -> tuple[float, bool, str]:
        wanted = (
            fixed
            if fixed is not None
            else [norm(v) for v in _texts(needs(expected, kind, "value"), kind)]
        )
        body = norm(as_text(output))
        found = [w for w in wanted if w in body]
        if negate:
            return (0.0, False, f"found {found[0]!r}") if found else (1.0, True, "none found")
        passed = bool(found) if any_of else len(found) == len(wanted)
        missing = [w for w in wanted if w not in found]
        why = "all found" if not missing else f"missing {', '.join(map(repr, missing[:3]))}"
        return (1.0 if any_of and found else len(found) / len(wanted)), passed, why

    return check


def _not_contains(*, value: Any = None, **text: bool) -> Check:
    return _contains(value=value, negate=True, **text)


def _regex(
    *,
    pattern: str | None = None,
    ignore_case: bool = False,
    multiline: bool = False,
    full_match: bool = False,
) -> Check:
    flags = (re.IGNORECASE if ignore_case else 0) | (re.MULTILINE if multiline else 0)
    compiled = re.compile(pattern, flags) if pattern is not None else None

    def check(output: Any, expected: Any) -> tuple[float, bool, str]:
        rx = compiled
        if rx is None:
            try:
                rx = re.compile(needs(expected, "regex", "pattern"), flags)
            except (re.error, TypeError) as exc:
                raise CannotScore(f"expected is not a regular expression: {exc}") from None
        text = as_text(output)
        hit = rx.fullmatch(text) if full_match else rx.search(text)
        return (
            (1.0, True, "pattern matches")
            if hit
            else (0.0, False, f"no match for {rx.pattern!r:.80}")
        )

    return check


def _similarity(*, threshold: float = 0.8, **text: bool) -> Check:
    norm = normaliser(**text)

    def check(output: Any, expected: Any) -> tuple[float, bool, str]:
        a, b = norm(as_text(output)), norm(as_text(needs(expected, "similarity")))
        ratio = SequenceMatcher(None, a, b, autojunk=False).ratio()
        return ratio, ratio >= threshold, f"similarity {ratio:.2f} (threshold {threshold:g})"

    return check


_BUILDERS: dict[str, Callable[..., Check]] = {
    "contains": _contains,
    "exact_match": _exact_match,
    "json_field_match": json_field_match,
    "json_match": json_match,
    "json_valid": json_valid,
    "length": length,
    "not_contains": _not_contains,
    "numeric_close": numeric_close,
    "regex": _regex,
    "similarity": _similarity,
}
_TEXT_OPTIONS = (
    "strip",
    "ignore_case",
    "collapse_whitespace",
    "ignore_punctuation",
    "normalize_unicode",
)
_TAKES_TEXT = frozenset({"contains", "exact_match", "not_contains", "similarity"})
SCORER_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def _allowed(kind: str) -> list[str]:
    params = [
        p for p in inspect.signature(_BUILDERS[kind]).parameters if p not in ("text", "negate")
    ]
    return sorted({*params, *(_TEXT_OPTIONS if kind in _TAKES_TEXT else ())})


def scorer(name: str, *, label: str | None = None, **options: Any) -> DeterministicScorer:
    """The deterministic scorer ``name`` with ``options`` (see the module docstring).

    ``label`` renames it in results (to run one check twice with different options).
    Raises ``ValueError`` for an unknown name or option, listing the valid ones.

    Example::

        scorer("exact_match", ignore_case=True, collapse_whitespace=True)
        scorer("contains", value="refund", label="mentions_refund")
    """
    if name not in _BUILDERS:
        raise ValueError(
            f"unknown scorer {name!r}; the deterministic scorers are {', '.join(sorted(_BUILDERS))}"
        )
    allowed = _allowed(name)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"scorer {name!r} has no option {', '.join(unknown)}; "
            f"its options are {', '.join(allowed)}"
        )
    try:
        check = _BUILDERS[name](**options)
    except re.error as exc:
        raise ValueError(f"scorer {name!r}: pattern is not a regular expression: {exc}") from None
    return DeterministicScorer(name, check, options, label or name)
