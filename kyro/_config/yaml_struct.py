"""Plain YAML data → a msgspec Struct, with every mistake reported at its line:column.

kyro checks the data against the struct's own field list and types first (unknown keys, missing
required keys, a value of the wrong kind, down to the list item or mapping value at fault) and
words the message itself; ``msgspec.convert`` then builds the struct. Nothing here reads a third
party's error text, so messages and positions stay the same whatever msgspec release is
installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi

from kyro._config.yaml_doc import Segment, YamlDocument

__all__ = ["convert_struct", "describe_path"]

_T = TypeVar("_T", bound=msgspec.Struct)


def convert_struct(
    doc: YamlDocument, data: dict[str, Any], struct: type[_T], prefix: Sequence[Segment]
) -> _T:
    """Validate ``data`` (found at ``prefix`` in ``doc``) against ``struct`` and build it.

    Example::

        spec = convert_struct(doc, doc.data["judges"][0], JudgeSpec, ("judges", 0))
        # judges.yml:4:5: unknown key 'promt' in `judges[0]`; allowed keys are: name, ...
    """
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    names = [field.encode_name for field in info.fields]
    where = describe_path(prefix)
    for key in data:
        if key not in names:
            raise doc.error(
                f"unknown key {key!r} in {where}; allowed keys are: {', '.join(names)}",
                [*prefix, key],
                key=True,
            )
    for field in info.fields:
        if field.encode_name not in data:
            if field.required:
                raise doc.error(
                    f"{where} is missing the required key {field.encode_name!r}", prefix
                )
            continue
        segments = [*prefix, field.encode_name]
        wrong = _mismatch(data[field.encode_name], field.type, segments)
        if wrong is not None:
            at, want, value = wrong
            fix = "; quote it to make it text" if want == "text" else ""
            raise doc.error(f"{describe_path(at)} must be {want}, got {_kind(value)}{fix}", at)
    try:
        return msgspec.convert(data, struct)
    except msgspec.ValidationError as exc:  # not expected after the checks above
        raise doc.error(f"{where} is not valid ({exc}); compare it with the docs", prefix) from None


def describe_path(segments: Sequence[Segment]) -> str:
    """``judges[0].name`` in backticks, or "the config" for the top level."""
    if not segments:
        return "the config"
    text = ""
    for segment in segments:
        text += f"[{segment}]" if isinstance(segment, int) else f".{segment}"
    return "`" + text.lstrip(".") + "`"


def _mismatch(
    value: Any, kind: mi.Type, segments: list[Segment]
) -> tuple[list[Segment], str, Any] | None:
    """Where ``value`` does not fit ``kind``: (segments, what was wanted, the value), or None."""
    options = kind.types if isinstance(kind, mi.UnionType) else (kind,)
    deeper: tuple[list[Segment], str, Any] | None = None
    for option in options:
        if isinstance(option, mi.AnyType):
            return None
        if isinstance(option, mi.ListType) and isinstance(value, list):
            for i, item in enumerate(value):
                inner = _mismatch(item, option.item_type, [*segments, i])
                if inner is not None:
                    deeper = deeper or inner
                    break
            else:
                return None
        elif isinstance(option, mi.DictType) and isinstance(value, dict):
            for key, item in value.items():
                inner = _mismatch(item, option.value_type, [*segments, key])
                if inner is not None:
                    deeper = deeper or inner
                    break
            else:
                return None
        elif _fits(value, option):
            return None
    if deeper is not None:
        return deeper
    return segments, " or ".join(_want(option) for option in options), value


def _fits(value: Any, option: mi.Type) -> bool:
    if isinstance(option, mi.StrType):
        return isinstance(value, str)
    if isinstance(option, mi.BoolType):
        return isinstance(value, bool)
    if isinstance(option, mi.IntType):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(option, mi.FloatType):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(option, mi.NoneType):
        return value is None
    return False


_TYPE_NAMES: tuple[tuple[type[mi.Type], str], ...] = (
    (mi.StrType, "text"),
    (mi.BoolType, "true or false"),
    (mi.IntType, "a whole number"),
    (mi.FloatType, "a number"),
    (mi.NoneType, "nothing (null)"),
    (mi.ListType, "a list"),
    (mi.DictType, "a mapping"),
)
# bool before int: a YAML true is a bool, and bool is a kind of int in Python.
_VALUE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "true or false"),
    (int, "a whole number"),
    (float, "a number"),
    (str, "text"),
    (list, "a list"),
    (dict, "a mapping"),
)


def _want(option: mi.Type) -> str:
    return next((name for cls, name in _TYPE_NAMES if isinstance(option, cls)), "a value")


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return next((name for cls, name in _VALUE_NAMES if isinstance(value, cls)), "a value")
