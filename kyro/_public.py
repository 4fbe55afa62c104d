"""Public names say which face they come from: ``kyro.BatchJudge``, ``kyro.provider.BatchLimits``.

Each face (``kyro``, ``kyro.provider``, ``kyro.testing``) re-exports names defined in private
modules and sets their ``__module__`` to itself, so reprs, tracebacks, pickles and docs name the
import path users have, not the private module that happens to define them.

Changing ``__module__`` moves where a class's postponed (string) annotations are looked up:
msgspec and :func:`typing.get_type_hints` evaluate them in ``sys.modules[cls.__module__]``,
which no longer holds the defining module's names. So before the rewrite, each class's own
string annotations (and those of its private base classes) are evaluated once in the module
that wrote them. A class whose annotations name something only a type checker sees
(``TYPE_CHECKING`` imports) keeps its strings: nothing at runtime could resolve those anyway.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["lazy_face", "present"]


def _private(module: str) -> bool:
    parts = module.split(".")
    return parts[0] == "kyro" and any(part.startswith("_") for part in parts[1:])


def _resolve_annotations(cls: type) -> None:
    """Replace ``cls``'s own string annotations by the objects they name, where all resolve."""
    import inspect  # here, not at the top: a face is imported by every command, even `--help`

    own = inspect.get_annotations(cls)
    if not any(isinstance(value, str) for value in own.values()):
        return
    try:
        resolved = inspect.get_annotations(cls, eval_str=True)
    except (NameError, AttributeError, TypeError, SyntaxError):
        return
    cls.__annotations__ = resolved


def present(namespace: Mapping[str, object], names: Iterable[str], face: str) -> None:
    """Set ``__module__`` of each name a face exports (defined privately) to ``face``.

    Example::

        present(globals(), __all__, __name__)   # at the end of a face's __init__
    """
    exported = [namespace[name] for name in names]
    for value in exported:
        if isinstance(value, type):
            for cls in value.__mro__:
                if _private(cls.__module__):
                    _resolve_annotations(cls)
    for value in exported:
        if _private(getattr(value, "__module__", "")):
            value.__module__ = face


def lazy_face(
    namespace: dict[str, Any], homes: Mapping[str, str], face: str
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A face's module ``__getattr__`` and ``__dir__`` (PEP 562): each name is imported on
    first use, and ``dir()`` lists the exported names before any is.

    ``homes`` maps each name to the module defining it. Touching one name loads every name
    of the face from that module and presents them together (:func:`present`), so a
    module's classes take the face's ``__module__`` at once. Why lazily: ``import kyro`` —
    and so ``python3 -m kyro --help`` — then loads none of httpx, the builder or the job
    runner; a command pays for the names it uses.

    Example::

        homes = {"BatchJudge": "kyro._job.batch_judge"}
        __getattr__, __dir__ = lazy_face(globals(), homes, __name__)
    """

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {face!r} has no attribute {name!r}")
        module = importlib.import_module(home)
        names = [other for other, where in homes.items() if where == home]
        for other in names:
            namespace[other] = getattr(module, other)
        present(namespace, names, face)
        return namespace[name]

    def __dir__() -> list[str]:
        return sorted({*namespace, *namespace["__all__"]})

    return __getattr__, __dir__
