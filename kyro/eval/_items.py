"""Eval items: every form a user may give, read lazily into ``(index, input, expected, item_id)``.

``items`` is an iterable (a list, a generator — never materialised) or the path of a ``.jsonl``
dataset, one item a line. Each entry, mixed freely:

* an :class:`EvalItem` — full control;
* a mapping with an ``input`` key — the item form: ``input``, optional ``expected`` and
  ``item_id`` (text or a number), nothing else (a misspelt key is an error, not data);
* anything else — a plain input (a string, a number, a mapping without ``input``, …), whose
  expected value comes from the separate ``expected`` list, position by position.

An item's own ``expected`` wins over the list's. ``expected`` must have exactly one entry per
item: a mismatch is a :class:`~kyro.BatchValidationError` saying both counts. Dataset lines
are JSON; blank lines are skipped and errors name ``file:LINE``. To pass a plain input that
is itself a mapping with an ``input`` key, wrap it: ``EvalItem(input={...})``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from kyro import BatchValidationError

__all__ = ["EvalItem", "ItemsSource", "iter_items"]

ItemsSource = Iterable[Any] | str | os.PathLike[str]
_ITEM_KEYS = frozenset({"input", "expected", "item_id"})
_MISSING = object()
_decode = msgspec.json.Decoder().decode


class EvalItem(msgspec.Struct, frozen=True):
    """One input for the component under test, with what it should produce and a stable id.

    Example::

        EvalItem({"a": 1, "b": 2}, expected=3, item_id="add-1")
    """

    input: Any
    expected: Any = None
    item_id: str | None = None


Normalised = tuple[int, Any, Any, "str | None"]


def iter_items(items: ItemsSource, expected: Sequence[Any] | None = None) -> Iterator[Normalised]:
    """Yield ``(index, input, expected, item_id)`` for every item, lazily, in order.

    Raises :class:`BatchValidationError` for a malformed item (naming its index, or the
    dataset's ``file:LINE``) and for an ``expected`` list of the wrong length.

    Example::

        list(iter_items([{"name": "Ada"}], expected=["Hello, Ada!"]))
        # [(0, {'name': 'Ada'}, 'Hello, Ada!', None)]
    """
    if isinstance(items, str | os.PathLike):
        source: Iterable[tuple[Any, str | None]] = _dataset(Path(items))
    elif isinstance(items, Mapping | bytes):
        raise BatchValidationError(
            "items must be a list (or any iterable) of inputs, or the path of a .jsonl "
            f"dataset, not a single {type(items).__name__}; wrap one item in a list"
        )
    else:
        source = ((item, None) for item in items)
    if expected is not None and isinstance(expected, str | bytes | Mapping):
        raise BatchValidationError(
            "expected must be a list with one value per item, not a single "
            f"{type(expected).__name__}"
        )
    sized = hasattr(items, "__len__") and not isinstance(items, str | os.PathLike)
    if expected is not None and sized and len(expected) != len(items):  # type: ignore[arg-type]
        raise _mismatch(len(items), len(expected))  # type: ignore[arg-type]
    return _normalise(source, expected)


def _normalise(
    source: Iterable[tuple[Any, str | None]], expected: Sequence[Any] | None
) -> Iterator[Normalised]:
    index = -1
    for index, (item, where) in enumerate(source):
        extra = _MISSING
        if expected is not None:
            if index >= len(expected):
                raise _mismatch(f"more than {len(expected)}", len(expected))
            extra = expected[index]
        yield _one(index, item, extra, where)
    if expected is not None and index + 1 != len(expected):
        raise _mismatch(index + 1, len(expected))


def _one(index: int, item: Any, extra: Any, where: str | None) -> Normalised:
    item_id: Any
    if isinstance(item, EvalItem):
        value, own, item_id = item.input, item.expected, item.item_id
    elif isinstance(item, Mapping) and "input" in item:
        unknown = set(item) - _ITEM_KEYS
        if unknown:
            raise _malformed(
                index,
                where,
                f"has unknown key(s) {', '.join(sorted(map(repr, map(str, unknown))))}; an item "
                "with an `input` key may have only `expected` and `item_id` besides (wrap a "
                "plain input that has an `input` key in EvalItem(input=...))",
            )
        value, own, item_id = item["input"], item.get("expected"), item.get("item_id")
    else:
        value, own, item_id = item, None, None
    if item_id is not None:
        if isinstance(item_id, bool) or not isinstance(item_id, str | int):
            raise _malformed(index, where, f"item_id must be text or a number, not {item_id!r}")
        item_id = str(item_id)
    if own is None and extra is not _MISSING:
        own = extra
    return index, value, own, item_id


def _dataset(path: Path) -> Iterator[tuple[Any, str]]:
    if path.suffix.lower() != ".jsonl":
        raise BatchValidationError(
            "a dataset must be a .jsonl file (one JSON item a line); pass other data as a list",
            path=path,
        )
    try:
        file = path.open("rb")
    except OSError as exc:
        reason = "file not found" if isinstance(exc, FileNotFoundError) else exc.strerror
        raise BatchValidationError(f"cannot read the dataset: {reason}", path=path) from exc
    with file:
        for number, raw in enumerate(file, start=1):
            if not raw.strip():
                continue
            try:
                value = _decode(raw)
            except msgspec.DecodeError as exc:
                raise BatchValidationError(
                    f"not valid JSON ({exc}); write one JSON value per line", path=path, line=number
                ) from None
            yield value, f"{path}:{number}"


def _malformed(index: int, where: str | None, why: str) -> BatchValidationError:
    name = where or f"item #{index}"
    return BatchValidationError(f"{name} {why}")


def _mismatch(items: int | str, expected: int) -> BatchValidationError:
    return BatchValidationError(
        f"items has {items} entries but expected has {expected}: give one expected value per "
        "item (or put `expected` inside each item)"
    )
