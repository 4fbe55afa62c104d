"""Text and JSON views of component outputs, shared by the deterministic scorers.

Text normalisation options (every text scorer takes them, all keyword-only):

* ``strip`` (default True) — drop whitespace around the text;
* ``ignore_case`` (False) — compare case-insensitively (Unicode case folding);
* ``collapse_whitespace`` (False) — every run of whitespace becomes one space;
* ``ignore_punctuation`` (False) — drop every Unicode punctuation character;
* ``normalize_unicode`` (False) — NFKC first, so "ﬁ" equals "fi" and full-width digits
  equal ASCII ones.

A value that is not text is compared as its compact JSON (``{"a":1}``, ``3``, ``null``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

import msgspec

__all__ = ["as_json", "as_text", "fallback", "normaliser", "parse_number"]

_SPACES = re.compile(r"\s+")
_NUMBER = re.compile(r"[-+]?(?:\d[\d,_]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_decode = msgspec.json.Decoder().decode


def fallback(value: Any) -> Any:
    """msgspec's ``enc_hook``: a value JSON cannot hold is stored as its ``repr``."""
    return repr(value)


_encode = msgspec.json.Encoder(enc_hook=fallback).encode


def as_text(value: Any) -> str:
    """``value`` itself when it is text, else its compact JSON."""
    if isinstance(value, str):
        return value
    return _encode(value).decode()


def as_json(value: Any) -> Any:
    """``value`` parsed when it is JSON text, else ``value`` as given.

    Raises ``ValueError`` (with msgspec's reason) for text that is not JSON.
    """
    if isinstance(value, str | bytes):
        try:
            return _decode(value)
        except msgspec.DecodeError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
    return value


def parse_number(value: Any, *, extract: bool) -> float | None:
    """A number from ``value``: itself, its text, or (``extract``) the first number in it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return float(text.replace(",", "").replace("_", ""))
    except ValueError:
        if not extract:
            return None
    match = _NUMBER.search(text)
    if match is None:
        return None
    try:
        return float(match.group().replace(",", "").replace("_", ""))
    except ValueError:
        return None


def normaliser(
    *,
    strip: bool = True,
    ignore_case: bool = False,
    collapse_whitespace: bool = False,
    ignore_punctuation: bool = False,
    normalize_unicode: bool = False,
) -> Callable[[str], str]:
    """One function applying the chosen options, in the order the module docstring lists."""
    steps: list[Callable[[str], str]] = []
    if normalize_unicode:
        steps.append(lambda s: unicodedata.normalize("NFKC", s))
    if ignore_punctuation:
        steps.append(_drop_punctuation)
    if collapse_whitespace:
        steps.append(lambda s: _SPACES.sub(" ", s))
    if ignore_case:
        steps.append(str.casefold)
    if strip:
        steps.append(str.strip)
    if not steps:
        return _same
    if len(steps) == 1:
        return steps[0]

    def apply(text: str) -> str:
        for step in steps:
            text = step(text)
        return text

    return apply


def _same(text: str) -> str:
    return text


def _drop_punctuation(text: str) -> str:
    return "".join(c for c in text if not unicodedata.category(c).startswith("P"))
