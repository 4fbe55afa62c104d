"""Checks on what a judge sends with each request, made at ``validate`` — before any cost.

* ``params`` values must be plain JSON: text, booleans, whole numbers within ±2**53, finite
  numbers (NaN and infinity cannot be sent as JSON), lists and mappings with text keys;
* ``n`` other than 1 is refused: it asks for several replies per request behind kyro's
  back, multiplying the bill (use ``--runs``: kyro sends runs as ``n`` samples itself where
  the provider supports it, and counts each as a vote);
* ``stream: true`` is refused: the batch endpoint does not stream;
* a model name holding control characters (a stray tab, newline or carriage return) is
  refused.

Each error points at the offending value's line:column in the config.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from typing import Any

from kyro._config.yaml_doc import Segment, YamlDocument

__all__ = ["check_model_name", "check_params"]

_MAX_SAFE_INT = 2**53


def check_params(
    doc: YamlDocument, params: Mapping[str, Any], label: str, at: tuple[Segment, ...]
) -> None:
    """Raise at the first ``params`` value kyro cannot or must not send."""
    for key, value in params.items():
        where = (*at, "params", key)
        if key == "n" and value != 1:
            raise doc.error(
                f"{label}: params.n is {value!r}; it would multiply the bill behind kyro's "
                "back. Remove it, and use --runs for several votes (kyro sends runs as n "
                "samples itself where the provider supports it)",
                where,
            )
        if key == "stream" and value is not False and value is not None:
            raise doc.error(
                f"{label}: params.stream is {value!r}; the batch endpoint does not stream "
                "replies. Remove it",
                where,
            )
        _check_json(doc, value, label, where)


def _check_json(doc: YamlDocument, value: Any, label: str, where: tuple[Segment, ...]) -> None:
    shown = ".".join(str(part) for part in where[where.index("params") :])
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise doc.error(
                f"{label}: {shown} is {value}, too large to send as a JSON number exactly",
                where,
            )
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise doc.error(
                f"{label}: {shown} is {value}, which cannot be sent as JSON; give a finite number",
                where,
            )
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(doc, item, label, (*where, index))
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise doc.error(
                    f"{label}: {shown} has the key {key!r}; JSON object keys are text", where
                )
            _check_json(doc, item, label, (*where, key))
        return
    raise doc.error(
        f"{label}: {shown} is a {type(value).__name__}, which cannot be sent as JSON; give "
        "text, a number, true/false, a list or a mapping",
        where,
    )


def check_model_name(doc: YamlDocument, model: str, label: str, at: tuple[Segment, ...]) -> None:
    """Raise if ``model`` holds a control character (invisible, and never a real model)."""
    bad = next((c for c in model if unicodedata.category(c) in ("Cc", "Cf")), None)
    if bad is not None:
        raise doc.error(
            f"{label}: the model name {model!r} holds the control character "
            f"U+{ord(bad):04X}; write the name without it",
            at,
        )
