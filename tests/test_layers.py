"""kyro's import rules, checked by walking every import in ``kyro/`` and ``providers/``.

Every import counts: module level, inside a function (lazy), and under ``TYPE_CHECKING``. The rules:

* no cycles between modules;
* base modules (the flat ``kyro/_*.py`` and the base-tier ``_cost`` room) import only base;
* ``_config``, ``_state`` and ``_report`` import only base; ``_verdicts`` and ``_plan`` import
  ``_config`` and base; ``_build`` imports ``_plan`` and what ``_plan`` may; ``_job`` and ``_live``
  import the layers below them;
* ``kyro.eval``, ``kyro.serve``, ``kyro.testing`` and every provider package import public names
  only: ``kyro``, ``kyro.provider``, ``kyro.testing`` and other providers' public modules (no
  ``_`` in their dotted path) — never ``kyro._anything``;
* ``kyro.cli`` imports anything in kyro, but no provider: providers are found through the
  registry, by name;
* ``import kyro`` imports no provider.

Implicit imports of parent packages are not edges (every module would otherwise depend on
``kyro/__init__.py``). An edge that breaks a rule today is listed in :data:`ALLOWED_EDGES` with
the reason; each entry must still exist, so a fixed edge cannot linger on the list.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.fresh import modules_loaded

REPO = Path(__file__).resolve().parent.parent
SOURCE_ROOTS = (REPO, REPO / "providers")
"""Where top-level packages live: ``kyro`` in the repository, the providers under ``providers/``."""

ROOMS = frozenset({"_config", "_plan", "_build", "_verdicts", "_state", "_job", "_live", "_report"})
BASE_ROOMS = frozenset({"_cost"})
"""Rooms in the base tier: they import only base, and any layer may import them."""
PUBLIC = frozenset({"kyro", "kyro.provider", "testing"})
PUBLIC_FACES = ("kyro", "kyro.provider", "kyro.testing")
BELOW_JOB = frozenset({"base", "_config", "_plan", "_build", "_verdicts", "_state"})
CORE = BELOW_JOB | {"_job", "_live", "_report"}
ALLOWED: Mapping[str, frozenset[str]] = {
    "base": frozenset({"base"}),
    "_config": frozenset({"base"}),
    "_state": frozenset({"base"}),
    "_report": frozenset({"base"}),
    "_verdicts": frozenset({"_config", "base"}),
    "_plan": frozenset({"_config", "base"}),
    "_build": frozenset({"_plan", "_config", "base"}),
    "_job": BELOW_JOB,
    "_live": BELOW_JOB,
    "kyro": CORE,
    "kyro.provider": frozenset({"base"}),
    "testing": PUBLIC,
    "eval": PUBLIC,
    "serve": PUBLIC,
    "cli": CORE | PUBLIC | {"eval", "serve"},
    "provider": PUBLIC,
}
"""For each layer, the layers it may import (its own layer is always allowed)."""

ALLOWED_EDGES: Mapping[tuple[str, str], str] = {
    # The job state store rebuilds a shard handle from its record (``StateStore.shard_of``)
    # and reads back the finished result; both types live in higher rooms. Moving
    # ``shard_of`` into the job runner and the finished-result record into ``_state`` is a
    # refactor of the store's API, not a move.
    ("kyro._state.store", "kyro._build.shards"): "StateStore.shard_of returns a build Shard",
    ("kyro._state.store", "kyro._verdicts.result_types"): "the store saves and loads the "
    "finished BatchRunResult and its lazy Evaluations view",
    # The state schema embeds the job's vote settings and result counts as they were at
    # submit, so a later check() finalizes with the same rules.
    ("kyro._state.schema", "kyro._verdicts.result_types"): "JobState records OverallStatus "
    "and ResultCounts of a finished job",
    ("kyro._state.schema", "kyro._verdicts.vote"): "JobState records the job's VoteSettings",
    # The test doubles' face presents its names as ``kyro.testing.X`` with the helper the
    # other two faces use; the doubles themselves import the public faces only.
    ("kyro.testing", "kyro._public"): "the face sets its exports' __module__ like kyro does",
}
"""Rule-breaking edges that exist today, each with the reason it is still there."""

ALLOWED_CYCLES: Mapping[frozenset[str], str] = {
    # The results view's ``to_jsonl``/``to_csv`` call the exporters lazily; the exporters name
    # the result type in annotations only.
    frozenset({"kyro.eval._export", "kyro.eval._results"}): "lazy call one way, TYPE_CHECKING "
    "annotation the other",
    # The emulators' route modules take the Emulator they serve, named in TYPE_CHECKING
    # annotations only, while the Emulator builds the app from them.
    frozenset(
        {
            "kyro_openai.testing._app",
            "kyro_openai.testing._batches",
            "kyro_openai.testing._control",
            "kyro_openai.testing._emulator",
            "kyro_openai.testing._guard",
            "kyro_openai.testing._routes",
        }
    ): "routes annotate the Emulator they serve (TYPE_CHECKING only)",
    frozenset({"kyro_anthropic.testing._app", "kyro_anthropic.testing._emulator"}): "the app "
    "annotates the Emulator (TYPE_CHECKING) and borrows its id maker lazily",
}
"""Import cycles that exist today, each with the reason it is still there."""


@dataclass(frozen=True)
class Edge:
    """One import: ``source`` imports ``target`` at ``path:line``."""

    source: str
    target: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.source} imports {self.target}"


def discover(roots: Iterable[Path], packages: Iterable[str]) -> dict[str, Path]:
    """Every module of the named top-level packages found under ``roots``: dotted name → file."""
    modules: dict[str, Path] = {}
    for root in roots:
        for package in packages:
            folder = root / package
            if not (folder / "__init__.py").is_file():
                continue
            for path in sorted(folder.rglob("*.py")):
                parts = list(path.relative_to(root).with_suffix("").parts)
                if parts[-1] == "__init__":
                    parts.pop()
                modules[".".join(parts)] = path
    return modules


def _is_package(module: str, modules: Mapping[str, Path]) -> bool:
    return modules[module].name == "__init__.py"


def imports_of(module: str, modules: Mapping[str, Path]) -> list[Edge]:
    """Every first-party import ``module`` makes, at any depth of its syntax tree."""
    path = modules[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if _is_package(module, modules) else module.rpartition(".")[0]
    edges: list[Edge] = []

    def add(target: str, line: int) -> None:
        # The longest known module the dotted name starts with (``kyro.x.Name`` → ``kyro.x``).
        parts = target.split(".")
        while parts and ".".join(parts) not in modules:
            parts.pop()
        if parts and ".".join(parts) != module:
            edges.append(Edge(module, ".".join(parts), path, line))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            for alias in node.names:
                add(f"{origin}.{alias.name}", node.lineno)
    return edges


def layer_of(module: str) -> str:
    """The layer a module belongs to, as :data:`ALLOWED` names them."""
    parts = module.split(".")
    if parts[0] != "kyro":
        return "provider"
    if len(parts) == 1:
        return "kyro"
    room = parts[1]
    if room == "provider":
        return "kyro.provider"
    if room in ("testing", "eval", "serve", "cli"):
        return room
    if room == "__main__":
        return "cli"
    if room in ROOMS:
        return room
    return "base"  # flat base modules and the base-tier rooms


def is_public(module: str) -> bool:
    """True when no part of the dotted path is private (starts with ``_``)."""
    return not any(part.startswith("_") for part in module.split("."))


def rule_breaks(edges: Iterable[Edge]) -> list[Edge]:
    """The edges that break a layering rule."""
    broken = []
    for edge in edges:
        source, target = layer_of(edge.source), layer_of(edge.target)
        source_top, target_top = edge.source.split(".")[0], edge.target.split(".")[0]
        if target == "provider":
            # Providers: only through the registry from kyro; another provider's public modules.
            ok = source == "provider" and (source_top == target_top or is_public(edge.target))
            ok = ok or (source in ("eval", "serve", "testing") and is_public(edge.target))
        elif source == "provider":
            ok = target in PUBLIC
        elif source == target:
            ok = True
        else:
            ok = target in ALLOWED[source]
        if not ok:
            broken.append(edge)
    return broken


def cycles(graph: Mapping[str, Iterable[str]]) -> list[frozenset[str]]:
    """Every set of modules that import each other, directly or through others (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(frozenset(component))

    # The walk recurses once per module on a path; the limit is restored after, since other
    # tests (deeply nested JSON) depend on the interpreter's default.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return found


def all_edges(modules: Mapping[str, Path]) -> list[Edge]:
    return [edge for module in sorted(modules) for edge in imports_of(module, modules)]


def graph_of(edges: Iterable[Edge]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
    return graph


def _project() -> tuple[dict[str, Path], list[Edge]]:
    providers = sorted(p.name for p in (REPO / "providers").iterdir() if p.is_dir())
    packages = ["kyro", *providers]
    modules = discover(SOURCE_ROOTS, packages)
    return modules, all_edges(modules)


MODULES, EDGES = _project()


def test_the_walk_sees_the_whole_tree() -> None:
    """The walk finds every room and provider, and lazy and TYPE_CHECKING imports among edges."""
    layers = {layer_of(module) for module in MODULES}
    assert ROOMS | {"base", "kyro", "kyro.provider", "testing", "eval", "serve", "cli"} <= layers
    assert {"kyro_openai", "kyro_local", "kyro_anthropic"} <= set(MODULES)
    pairs = {(edge.source, edge.target) for edge in EDGES}
    assert ("kyro.eval._export", "kyro.eval._results") in pairs  # a TYPE_CHECKING import
    assert ("kyro.cli._plan", "kyro._config.loader") in pairs  # a function-level import


def test_no_import_breaks_a_layer_rule() -> None:
    """No module imports a layer its own layer may not import, outside the explained list."""
    broken = [e for e in rule_breaks(EDGES) if (e.source, e.target) not in ALLOWED_EDGES]
    assert broken == [], "\n".join(map(str, broken))


def test_every_allowed_edge_still_exists_and_still_breaks_a_rule() -> None:
    """Each allow-list entry names a real rule-breaking edge, so fixed edges leave the list."""
    breaking = {(edge.source, edge.target) for edge in rule_breaks(EDGES)}
    assert sorted(set(ALLOWED_EDGES) - breaking) == []


def test_no_import_cycles() -> None:
    """No modules import each other, directly or in a ring, outside the explained list."""
    found = cycles(graph_of(EDGES))
    assert [sorted(c) for c in found if c not in ALLOWED_CYCLES] == []
    assert sorted(map(sorted, set(ALLOWED_CYCLES) - set(found))) == []


def test_public_layers_import_only_names_a_face_exports() -> None:
    """eval, serve, the doubles and providers take from a face only names in its ``__all__``."""
    import importlib

    faces = {face: set(importlib.import_module(face).__all__) for face in PUBLIC_FACES}
    unexported = []
    for module, path in MODULES.items():
        if layer_of(module) not in ("eval", "serve", "testing", "provider"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in faces:
                wanted = {alias.name for alias in node.names} - faces[node.module]
                # A submodule of the face (``from kyro.testing import _fake``) is not a name.
                wanted = {name for name in wanted if f"{node.module}.{name}" not in MODULES}
                unexported += [f"{path}:{node.lineno}: {node.module}.{n}" for n in sorted(wanted)]
    assert unexported == []


@pytest.mark.slow  # a fresh interpreter in a child process
def test_import_kyro_and_its_faces_import_no_provider() -> None:
    """``import kyro`` (and its provider and testing faces) loads no provider package."""
    providers = ["kyro_openai", "kyro_local", "kyro_anthropic"]
    assert modules_loaded("import kyro, kyro.provider, kyro.testing", providers) == []


# --- the checker itself, on synthetic trees that break each rule ---------------------------


def _tree(tmp_path: Path, files: Mapping[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    packages = {name.split("/")[0] for name in files}
    return discover([tmp_path], packages)


def _breaks(tmp_path: Path, files: Mapping[str, str]) -> list[tuple[str, str]]:
    modules = _tree(tmp_path, files)
    return [(e.source, e.target) for e in rule_breaks(all_edges(modules))]


PACKAGE_FILES = {
    "kyro/__init__.py": "",
    "kyro/_config/__init__.py": "",
    "kyro/_job/__init__.py": "",
    "kyro/_verdicts/__init__.py": "",
    "kyro/eval/__init__.py": "",
    "kyro/cli/__init__.py": "",
    "kyro_openai/__init__.py": "",
}


def test_checker_reports_a_lower_layer_importing_a_higher_one_lazily(tmp_path: Path) -> None:
    """A config module importing the job room inside a function is reported as a break."""
    files = dict(PACKAGE_FILES)
    files["kyro/_job/runner.py"] = "X = 1\n"
    files["kyro/_config/loader.py"] = "def f():\n    from kyro._job.runner import X\n    return X\n"
    assert _breaks(tmp_path, files) == [("kyro._config.loader", "kyro._job.runner")]


def test_checker_reports_type_checking_and_relative_imports(tmp_path: Path) -> None:
    """A base module importing a room under TYPE_CHECKING, by relative path, is reported."""
    files = dict(PACKAGE_FILES)
    files["kyro/_verdicts/vote.py"] = "V = 1\n"
    files["kyro/_types.py"] = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ._verdicts.vote import V\n"
    )
    assert _breaks(tmp_path, files) == [("kyro._types", "kyro._verdicts.vote")]


def test_checker_reports_private_imports_from_public_layers(tmp_path: Path) -> None:
    """eval and a provider importing ``kyro._x`` are reported; their public imports are not."""
    files = dict(PACKAGE_FILES)
    files["kyro/provider.py"] = "from kyro._types import T\n"
    files["kyro/_types.py"] = "T = 1\n"
    files["kyro/eval/_run.py"] = "from kyro import X\nfrom kyro._types import T\n"
    files["kyro_openai/_enc.py"] = "from kyro.provider import T\nimport kyro._types\n"
    assert sorted(_breaks(tmp_path, files)) == [
        ("kyro.eval._run", "kyro._types"),
        ("kyro_openai._enc", "kyro._types"),
    ]


def test_checker_reports_a_provider_imported_by_the_core_or_the_cli(tmp_path: Path) -> None:
    """The CLI or a core room importing a provider is reported; the registry is the only way."""
    files = dict(PACKAGE_FILES)
    files["kyro/cli/_plan.py"] = "def f():\n    import kyro_openai\n"
    files["kyro/_job/submit.py"] = "from kyro_openai import X\n"
    assert sorted(_breaks(tmp_path, files)) == [
        ("kyro._job.submit", "kyro_openai"),
        ("kyro.cli._plan", "kyro_openai"),
    ]


def test_checker_reports_another_providers_private_module(tmp_path: Path) -> None:
    """A provider may use another provider's public module, never its private ones."""
    files = dict(PACKAGE_FILES)
    files["kyro_openai/wire.py"] = "W = 1\n"
    files["kyro_openai/_http.py"] = "H = 1\n"
    files["kyro_local/__init__.py"] = (
        "from kyro_openai.wire import W\nfrom kyro_openai._http import H\n"
    )
    assert _breaks(tmp_path, files) == [("kyro_local", "kyro_openai._http")]


def test_checker_finds_a_cycle_through_a_lazy_import(tmp_path: Path) -> None:
    """Two modules importing each other (one lazily, one under TYPE_CHECKING) form a cycle."""
    files = dict(PACKAGE_FILES)
    files["kyro/_job/a.py"] = "def f():\n    from kyro._job.b import B\n"
    files["kyro/_job/b.py"] = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from kyro._job.a import f\n"
        "B = 1\n"
    )
    files["kyro/_job/c.py"] = "from kyro._job.b import B\n"
    modules = _tree(tmp_path, files)
    assert cycles(graph_of(all_edges(modules))) == [frozenset({"kyro._job.a", "kyro._job.b"})]


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("kyro", "kyro"),
        ("kyro.provider", "kyro.provider"),
        ("kyro._types", "base"),
        ("kyro._cost.prices", "base"),
        ("kyro._config.loader", "_config"),
        ("kyro.testing._fake", "testing"),
        ("kyro.__main__", "cli"),
        ("kyro_openai._http", "provider"),
    ],
)
def test_layer_of_names_each_module_s_layer(module: str, layer: str) -> None:
    """Modules are sorted into layers by their path: rooms, base, faces, providers."""
    assert layer_of(module) == layer
