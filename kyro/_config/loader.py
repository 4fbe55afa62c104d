"""``load_config``: a judges YAML file in, a validated :class:`JudgesConfig` out.

The file is parsed with ruamel.yaml (keeping every position), validated with
``msgspec.convert`` against user-facing structs that forbid unknown keys, and every mistake is
a :class:`BatchValidationError` reading ``file:line:column: what is wrong; how to fix it``.

Top level (all keys optional except one list of judges)::

    version: 1              # 1 (or "1"); the default when omitted
    name: support-evals     # documentation only
    description: ...        # documentation only
    model: gpt-4o-mini      # the default model of every judge without its own
    judges: [...]           # the batch shape — or `steps: [...]`, the pipeline shape

Exactly one of ``judges`` and ``steps`` must be present, and the list must not be empty; both
shapes take the same per-judge keys (see ``kyro._config.judge_yaml``). ``depends_on`` and
``on_failure`` must name steps of the same config, and may not form a cycle: a step runs after
the steps it depends on (and after their fallbacks), and an ``on_failure`` step runs after the
step that failed. A step is the ``on_failure`` of at most one step, no step depends on such a
fallback step, and ``{{steps.<name>.…}}`` may only name steps decided before the step runs
(see ``kyro._config.dag`` for the pipeline semantics).

``JudgesConfig.sha256`` hashes the config file's bytes followed by, for each prompt file read
(in the order first used), its length as 8 big-endian bytes and its bytes.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from kyro._config.dag import StepGraph
from kyro._config.judge_yaml import PromptFiles, build_judge
from kyro._config.judges import Judge, JudgesConfig
from kyro._config.yaml_doc import Segment, YamlDocument, parse_yaml, read_text
from kyro._config.yaml_struct import convert_struct
from kyro._cost.prices import load_prices
from kyro._exceptions import BatchValidationError

__all__ = ["config_from_mapping", "load_config"]

_SUPPORTED_VERSION = 1


class _ConfigSpec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The top level of a judges config exactly as written."""

    version: Any = _SUPPORTED_VERSION
    name: str | None = None
    description: str | None = None
    model: str | None = None
    judges: list[Any] | None = None
    steps: list[Any] | None = None
    samples: bool = True
    prices: dict[str, Any] | None = None


def load_config(path: str | os.PathLike[str]) -> JudgesConfig:
    """Load and validate a judges config (the ``judges:`` or the pipeline ``steps:`` shape).

    Prompts are resolved and templates compiled; any problem raises
    :class:`BatchValidationError` with the file and, for YAML, line:column. Judges that name
    no model (nor does the config) get one from :func:`kyro._config.judges.resolve_models` once a
    provider is known.

    Example::

        config = kyro.load_config("examples/judges.yml")
        for judge in config.judges:
            print(judge.name, judge.model, judge.fields)
    """
    config_path = Path(path)
    shown = os.fspath(path)
    data, text = read_text(config_path, "config file")
    doc = parse_yaml(text, shown)
    if doc.data is None:
        raise BatchValidationError(
            "config file is empty; start it with `version: 1` and a `judges:` list", path=shown
        )
    return _build(doc, config_path, hashlib.sha256(data))


def config_from_mapping(data: Mapping[str, Any], *, path: str | os.PathLike[str]) -> JudgesConfig:
    """Validate a config given as a mapping (the YAML's content), as :func:`load_config` does.

    ``path`` names the config in messages and state (``judges.yml`` in the current folder,
    say); ``prompt_file`` paths are relative to its folder. Errors name the key at fault
    (there are no lines to point at).

    Example::

        config = config_from_mapping({"version": 1, "judges": [{"name": "a", "prompt": "…"}]},
                                     path="judges.yml")
    """
    config_path = Path(path)
    if not isinstance(data, Mapping):
        raise BatchValidationError(
            f"a config must be a path, a mapping or a JudgesConfig, not {type(data).__name__}"
        )
    doc = YamlDocument(dict(data), os.fspath(path), positions=False)
    try:
        encoded = msgspec.json.encode(doc.data)
    except (TypeError, msgspec.EncodeError) as exc:  # not expected after the copy above
        raise BatchValidationError(f"the config mapping cannot be read: {exc}") from exc
    return _build(doc, config_path, hashlib.sha256(encoded))


def _build(doc: YamlDocument, config_path: Path, hasher: Any) -> JudgesConfig:
    if not isinstance(doc.data, dict):
        raise doc.error(
            "the config must be a mapping with `version: 1` and a `judges:` (or `steps:`) list",
            (),
        )
    spec = convert_struct(doc, doc.data, _ConfigSpec, ())
    _check_version(doc, spec.version)
    shape, entries = _shape(doc, spec)
    if spec.model is not None and not spec.model.strip():
        raise doc.error("the default model must not be empty", ("model",))
    prompts = PromptFiles(config_path.parent, hasher)
    judges: list[Judge] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        at: tuple[Segment, ...] = (shape, i)
        if not isinstance(entry, dict):
            raise doc.error(
                f"`{shape}[{i}]` must be a mapping with `name`, a prompt and `output_format: json`",
                at,
            )
        judge = build_judge(doc, entry, at, spec.model, prompts)
        if judge.name in seen:
            line, _ = doc.position((shape, seen[judge.name], "name"))
            raise doc.error(
                f"duplicate judge name {judge.name!r} (first used on line {line}); "
                "give every judge a unique name",
                (*at, "name"),
            )
        seen[judge.name] = i
        judges.append(judge)
    _check_links(doc, shape, judges)
    _check_step_refs(doc, shape, judges)
    if spec.prices is not None:
        try:
            load_prices(overrides=spec.prices)
        except BatchValidationError as exc:
            raise doc.error(exc.message, ("prices",)) from None
    return JudgesConfig(
        path=config_path,
        version=_SUPPORTED_VERSION,
        shape=shape,
        judges=tuple(judges),
        sha256=hasher.hexdigest(),
        model=spec.model,
        name=spec.name,
        description=spec.description,
        samples=spec.samples,
        prices=spec.prices,
    )


def _check_version(doc: YamlDocument, version: Any) -> None:
    ok = (
        version == _SUPPORTED_VERSION and isinstance(version, int) and not isinstance(version, bool)
    )
    if not ok and version != str(_SUPPORTED_VERSION):
        raise doc.error(
            f"unsupported version {version!r}; this kyro reads `version: {_SUPPORTED_VERSION}`",
            ("version",),
        )


def _shape(doc: YamlDocument, spec: _ConfigSpec) -> tuple[Literal["judges", "steps"], list[Any]]:
    if spec.judges is not None and spec.steps is not None:
        raise doc.error(
            "the config has both `judges:` and `steps:`; keep one list (`steps:` for a pipeline)",
            ("steps",),
            key=True,
        )
    if spec.judges is None and spec.steps is None:
        raise doc.error(
            "the config has no judges; add a `judges:` list (or `steps:` for a pipeline)", ()
        )
    shape: Literal["judges", "steps"] = "judges" if spec.judges is not None else "steps"
    entries = spec.judges if spec.judges is not None else spec.steps
    assert entries is not None  # one of the two is set, checked above
    if not entries:
        raise doc.error(
            f"`{shape}:` is empty; add at least one judge with `name`, a prompt and "
            "`output_format: json`",
            (shape,),
        )
    return shape, entries


def _check_links(doc: YamlDocument, shape: str, judges: list[Judge]) -> None:
    """Every ``depends_on``/``on_failure`` names a step, and the links form no cycle."""
    names = [j.name for j in judges]
    after: dict[str, list[str]] = {name: [] for name in names}
    primary_of: dict[str, str] = {}
    for i, judge in enumerate(judges):
        for target in judge.depends_on:
            spot: tuple[Segment, ...] = (shape, i, "depends_on")
            if isinstance(doc.data[shape][i].get("depends_on"), list):
                spot = (*spot, doc.data[shape][i]["depends_on"].index(target))
            _known(doc, names, judge.name, "depends on", target, spot)
            after[judge.name].append(target)
        if judge.on_failure is not None:
            _known(
                doc, names, judge.name, "falls back to", judge.on_failure, (shape, i, "on_failure")
            )
            if judge.on_failure in primary_of:
                raise doc.error(
                    f"step {judge.on_failure!r} is already the on_failure of "
                    f"{primary_of[judge.on_failure]!r}; a fallback serves one step: give "
                    f"{judge.name!r} a fallback step of its own",
                    (shape, i, "on_failure"),
                )
            primary_of[judge.on_failure] = judge.name
            after[judge.on_failure].append(judge.name)
    # A step also waits for the fallbacks of the steps it depends on.
    fallback_of = {j.name: j.on_failure for j in judges if j.on_failure}
    for judge in judges:
        for target in judge.depends_on:
            step = fallback_of.get(target)
            while step is not None and step not in after[judge.name]:
                after[judge.name].append(step)
                step = fallback_of.get(step)
    cycle = _find_cycle(after)
    if cycle:
        first = names.index(cycle[0])
        raise doc.error(
            "dependency cycle: "
            + " -> ".join(cycle)
            + " (each step runs after the next one: its depends_on, a fallback of a step it "
            "depends on, or the step whose on_failure it is); remove one of these links",
            (shape, first, "name"),
        )
    for i, judge in enumerate(judges):
        for target in judge.depends_on:
            if target in primary_of:
                raise doc.error(
                    f"step {judge.name!r} depends on {target!r}, which runs only as the "
                    f"on_failure of {primary_of[target]!r}; depend on {primary_of[target]!r} "
                    "instead (its verdict is the fallback's when it fails)",
                    (shape, i, "depends_on"),
                )


def _check_step_refs(doc: YamlDocument, shape: str, judges: list[Judge]) -> None:
    """``{{steps.<name>.…}}`` names only steps decided before the step that reads it."""
    if not any(j.step_refs for j in judges):
        return
    graph = StepGraph(judges)
    for i, judge in enumerate(judges):
        allowed = graph.ancestors(judge.name)
        for ref in judge.step_refs:
            if ref in allowed:
                continue
            where = (shape, i, judge.prompt_source)
            if ref not in graph.names:
                why = f"there is no step {ref!r}"
            elif ref == judge.name:
                why = "a step cannot read its own result"
            else:
                why = f"{ref!r} is not decided before {judge.name!r} runs"
            names = ", ".join(sorted(allowed)) or "none: add depends_on first"
            raise doc.error(
                f"step {judge.name!r} reads {{{{steps.{ref}.…}}}}, but {why}; a prompt may "
                f"only read the steps it depends on, their fallbacks and their ancestors "
                f"(here: {names})",
                where,
                key=True,
            )


def _known(
    doc: YamlDocument,
    names: list[str],
    judge: str,
    verb: str,
    target: str,
    spot: tuple[Segment, ...],
) -> None:
    if target in names:
        return
    close = difflib.get_close_matches(target, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise doc.error(
        f"judge {judge!r} {verb} {target!r}, which is not a step of this config; {hint}"
        f"known steps: {', '.join(names)}",
        spot,
    )


def _find_cycle(after: dict[str, list[str]]) -> list[str]:
    """One cycle in the "runs after" graph as ``[a, b, ..., a]``, or an empty list."""
    state: dict[str, int] = {}
    for start in after:
        if start in state:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        state[start] = 1
        while stack:
            node, nxt = stack[-1]
            if nxt < len(after[node]):
                stack[-1] = (node, nxt + 1)
                target = after[node][nxt]
                if state.get(target) == 1:
                    return [*path[path.index(target) :], target]
                if target not in state:
                    state[target] = 1
                    stack.append((target, 0))
                    path.append(target)
            else:
                state[node] = 2
                stack.pop()
                path.pop()
    return []
