"""YAML with positions: parse with ruamel.yaml, hand plain data to msgspec, map errors back.

``parse_yaml`` returns a :class:`YamlDocument`: the round-trip tree ruamel built (which keeps
every key's and value's line:column) and a plain copy of it (dicts, lists, str, int, float,
bool, None) that ``msgspec.convert`` can validate. Everything a user can get wrong on the way
is a :class:`BatchValidationError` carrying ``file:line:column`` (1-based):

* YAML syntax errors, at ruamel's problem mark;
* mapping keys that are not text, and values YAML can express but a config cannot hold
  (``!!binary``, ``!!set``, custom ``!tags``); dates become ISO text;
* aliases that refer to themselves, nesting deeper than 100 levels, and alias expansion past
  200,000 nodes.

Checking the plain data against a struct, at the same positions, is ``kyro._config.yaml_struct``.
"""

from __future__ import annotations

import datetime
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError, YAMLWarning

from kyro._exceptions import BatchValidationError
from kyro._limits import read_regular

__all__ = ["YamlDocument", "parse_yaml", "read_text"]

Segment = str | int
_MAX_DEPTH = 100
_MAX_NODES = 200_000


class YamlDocument:
    """A parsed YAML file: ruamel's position-keeping tree and its plain-data copy.

    Example::

        doc = parse_yaml("judges:\\n  - name: a\\n", "judges.yml")
        doc.data                          # {'judges': [{'name': 'a'}]}
        doc.position(("judges", 0, "name"))   # (2, 11)
    """

    __slots__ = ("data", "path", "positions", "root")

    def __init__(self, root: Any, path: str, *, positions: bool = True) -> None:
        self.root = root
        self.path = path
        # False for data that never was YAML text (a mapping given in code): no line:column.
        self.positions = positions
        self.data = _Plain(self).convert(root, ())

    def position(self, segments: Sequence[Segment], *, key: bool = False) -> tuple[int, int]:
        """1-based line:column of the value at ``segments`` (of its key when ``key``).

        Walks as deep as the tree allows and returns the deepest position found, so a path
        into data that ruamel did not place (merged keys) still lands close by.
        """
        node = self.root
        line, column = _own_position(node)
        for depth, segment in enumerate(segments):
            last = depth == len(segments) - 1
            try:
                if isinstance(node, CommentedMap) and segment in node:
                    pos = node.lc.key(segment) if key and last else node.lc.value(segment)
                elif isinstance(node, CommentedSeq) and isinstance(segment, int):
                    pos = node.lc.item(segment)
                else:
                    break
                node = node[segment]
            except (KeyError, IndexError, TypeError):
                break
            line, column = pos[0] + 1, pos[1] + 1
        return line, column

    def error(
        self, message: str, segments: Sequence[Segment], *, key: bool = False
    ) -> BatchValidationError:
        """A :class:`BatchValidationError` at the node ``segments`` points to."""
        if not self.positions:
            return BatchValidationError(message, path=self.path)
        line, column = self.position(segments, key=key)
        return BatchValidationError(message, path=self.path, line=line, column=column)


def parse_yaml(text: str, path: str) -> YamlDocument:
    """Parse one YAML document, keeping positions; syntax errors carry ruamel's mark.

    Example::

        parse_yaml("a: [1", "x.yml")   # BatchValidationError: x.yml:2:1: ...
    """
    yaml = YAML(typ="rt")
    try:
        with warnings.catch_warnings():
            # Reused anchors and YAML 1.1 spellings are legal; they must not fail a load.
            warnings.simplefilter("ignore", YAMLWarning)
            root = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "syntax error"
        context = exc.context_mark
        if exc.problem and exc.context and context is not None:
            problem += f" ({exc.context} at line {context.line + 1}, column {context.column + 1})"
        raise BatchValidationError(
            f"invalid YAML: {problem}; fix the syntax at this position",
            path=path,
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from exc
    except YAMLError as exc:
        raise BatchValidationError(f"invalid YAML: {exc}", path=path) from exc
    except RecursionError as exc:
        raise BatchValidationError(
            "invalid YAML: the document is nested too deeply", path=path
        ) from exc
    except ValueError as exc:
        # The YAML library's own converters can fail on a scalar its resolver accepted
        # (``._`` is taken for a float); that is bad input, never a crash.
        raise BatchValidationError(
            f"invalid YAML: a value cannot be read ({exc}); quote it to make it a string",
            path=path,
        ) from exc
    return YamlDocument(root, path)


def _own_position(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    if lc is None or lc.line is None:
        return 1, 1
    return lc.line + 1, lc.col + 1


class _Plain:
    """Copies a ruamel tree into plain Python data, refusing what a config cannot hold."""

    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.nodes = 0
        self.active: set[int] = set()

    def convert(self, node: Any, segments: tuple[Segment, ...]) -> Any:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise self.doc.error(
                f"the config expands to more than {_MAX_NODES:,} values (through aliases?); "
                "write a smaller config",
                segments,
            )
        if isinstance(node, dict | list | tuple):  # tuples: a mapping given in code
            if id(node) in self.active:
                raise self.doc.error("an alias refers to itself; remove the recursion", segments)
            if len(segments) >= _MAX_DEPTH:
                raise self.doc.error(
                    f"nested deeper than {_MAX_DEPTH} levels; flatten the config", segments
                )
            self.active.add(id(node))
            try:
                if isinstance(node, dict):
                    return self._mapping(node, segments)
                return [self.convert(item, (*segments, i)) for i, item in enumerate(node)]
            finally:
                self.active.discard(id(node))
        return self._scalar(node, segments)

    def _mapping(self, node: dict[Any, Any], segments: tuple[Segment, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                raise self.doc.error(
                    f"mapping keys must be text, got {type(key).__name__} {key!r}; quote the key",
                    (*segments, key),
                    key=True,
                )
            out[str(key)] = self.convert(value, (*segments, key))
        return out

    def _scalar(self, node: Any, segments: tuple[Segment, ...]) -> Any:
        if node is None or isinstance(node, bool):
            return node
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        if isinstance(node, str):
            return str(node)
        if isinstance(node, datetime.date):
            return node.isoformat()
        tag = getattr(getattr(node, "tag", None), "value", None) or type(node).__name__
        raise self.doc.error(
            f"unsupported YAML value ({tag}); use text, numbers, true/false, lists or mappings",
            segments,
        )


def read_text(path: Path, label: str) -> tuple[bytes, str]:
    """Read a UTF-8 file (a leading BOM is dropped) as bytes and text; errors name the file.

    ``label`` names the kind of file in messages ("config file", "prompt file"). Only a
    regular file within the label's size limit is read (see :mod:`kyro._limits`).
    """
    data = read_regular(path, label)
    try:
        return data, data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise BatchValidationError(
            f"{label} is not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8",
            path=path,
            line=line,
            column=column,
        ) from exc
