"""The validated judges config: what the rest of kyro reads after ``load_config``.

The YAML side (parsing with positions, the user-facing schema and its error messages) lives in
``kyro._config.loader``; this module holds only the resolved, compiled model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from kyro._config.dag import StepGraph
from kyro._config.templates import StepValues, Template
from kyro._contract import verdict_message
from kyro._exceptions import BatchValidationError
from kyro._transcripts import Transcript
from kyro._types import Message

__all__ = [
    "MODEL_SOURCES",
    "Judge",
    "JudgesConfig",
    "ModelSource",
    "recorded_models",
    "resolve_models",
]

PromptSource = Literal["prompt", "prompt_file", "prompt_xml"]
ModelSource = Literal["judge", "config", "argument", "KYRO_MODEL", "provider"]
MODEL_SOURCES: dict[str, str] = {
    "judge": "the judge's `model:`",
    "config": "the config's top-level `model:`",
    "argument": "model= / --model",
    "KYRO_MODEL": "the KYRO_MODEL environment variable",
    "provider": "the provider's default model",
}
"""How each model source reads in messages and in ``kyro validate``."""


class Judge(msgspec.Struct, frozen=True, kw_only=True):
    """One judge (a pipeline "step"), its prompt compiled.

    ``system`` is the XML prompt's ``role`` section (``None`` for other prompt sources);
    ``user`` is the rest of the prompt. ``variables`` are the judge's own values, which
    override the run-level variables for this judge only. ``model`` is the judge's own or the
    config's default (``model_source`` says which), or None until :func:`resolve_models`
    fills it from ``model=``/``--model``, ``KYRO_MODEL`` or the provider's default.

    Example::

        judge = config.judges[0]
        judge.messages(transcript, {"product": "X"})
    """

    name: str
    model: str | None
    prompt_source: PromptSource
    user: Template
    system: Template | None = None
    prompt_file: str | None = None
    output_format: Literal["json"] = "json"
    params: dict[str, Any] = {}
    variables: dict[str, str] = {}
    depends_on: tuple[str, ...] = ()
    on_failure: str | None = None
    model_source: ModelSource | None = None
    pass_threshold: float = 0.5

    @property
    def fields(self) -> tuple[str, ...]:
        """Every template field the prompt uses, in order of first appearance."""
        seen = dict.fromkeys(self.system.fields if self.system else ())
        seen.update(dict.fromkeys(self.user.fields))
        return tuple(seen)

    def merged_variables(self, run_variables: Mapping[str, str]) -> Mapping[str, str]:
        """Run-level variables overridden by this judge's own."""
        if not self.variables:
            return run_variables
        return {**run_variables, **self.variables}

    def messages(
        self,
        transcript: Transcript,
        variables: Mapping[str, str],
        cache: dict[str, str] | None = None,
        steps: StepValues | None = None,
    ) -> tuple[Message, ...]:
        """Render the chat messages for one transcript (``variables`` already merged;
        ``steps`` the upstream results a pipeline step's prompt reads).

        A JSON judge's messages start with kyro's verdict system message (the verdict
        contract), then the XML prompt's ``role`` as a system message, then the prompt.
        """
        head = (verdict_message(),) if self.output_format == "json" else ()
        content = self.user.render(transcript, variables, cache, steps)
        user = Message(role="user", content=content)
        if self.system is None:
            return (*head, user)
        content = self.system.render(transcript, variables, cache, steps)
        return (*head, Message(role="system", content=content), user)

    @property
    def step_refs(self) -> tuple[str, ...]:
        """The steps this judge's prompt names in ``{{steps.<name>.…}}``, in order."""
        seen = dict.fromkeys(self.system.steps if self.system else ())
        seen.update(dict.fromkeys(self.user.steps))
        return tuple(seen)


class JudgesConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A loaded, validated judges config (either the ``judges:`` or the ``steps:`` shape).

    ``sha256`` covers the config file and every prompt file it reads, so a job can tell when
    the config it was submitted with has changed. ``model`` is the top-level default model;
    ``name`` and ``description`` are the config's optional, documentation-only top-level keys.
    ``samples: false`` sends every run as its own request (by default runs travel as ``n``
    samples where the provider supports it); ``prices`` overrides kyro's price table.

    Example::

        config = kyro.load_config("judges.yml")
        [j.name for j in config.judges]
    """

    path: Path
    version: int
    shape: Literal["judges", "steps"]
    judges: tuple[Judge, ...]
    sha256: str
    model: str | None = None
    name: str | None = None
    description: str | None = None
    samples: bool = True
    prices: dict[str, Any] | None = None

    @property
    def uses_pipeline(self) -> bool:
        """True when any judge uses ``depends_on`` or ``on_failure``."""
        return any(j.depends_on or j.on_failure for j in self.judges)

    def graph(self) -> StepGraph:
        """The steps' DAG: stages, gating and effective verdicts (see :mod:`kyro._config.dag`)."""
        return StepGraph(self.judges)

    def judge(self, name: str) -> Judge:
        """The judge called ``name`` (``KeyError`` if there is none)."""
        for judge in self.judges:
            if judge.name == name:
                return judge
        raise KeyError(name)

    @property
    def models(self) -> dict[str, str]:
        """Judge name → model, for the judges whose model is known."""
        return {j.name: j.model for j in self.judges if j.model is not None}


def resolve_models(
    config: JudgesConfig,
    *,
    model: str | None = None,
    provider_default: str | None = None,
    provider: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> JudgesConfig:
    """``config`` with every judge's model set, first found: the judge's ``model:``, the
    config's ``model:``, ``model`` (``model=`` / ``--model``), ``KYRO_MODEL``, then
    ``provider_default`` (the provider's documented default). Each judge's ``model_source``
    records which one it was.

    Raises :class:`BatchValidationError` naming the judges left without a model and every way
    to give one. ``provider`` names the provider in that message.

    Example::

        config = resolve_models(load_config("judges.yml"), provider_default="gpt-4o-mini")
        config.judges[0].model, config.judges[0].model_source   # ('gpt-4o-mini', 'provider')
    """
    env = os.environ if environ is None else environ
    fallbacks: list[tuple[str | None, ModelSource]] = [
        (model, "argument"),
        (env.get("KYRO_MODEL"), "KYRO_MODEL"),
        (provider_default, "provider"),
    ]
    for value, source in fallbacks:
        if value is not None and not value.strip():
            what = MODEL_SOURCES[source]
            raise BatchValidationError(
                f"{what} is empty; name a model (e.g. gpt-4o-mini) or leave it unset",
                path=config.path,
            )
    chosen = next(((value, source) for value, source in fallbacks if value), None)
    judges: list[Judge] = []
    missing: list[str] = []
    for judge in config.judges:
        if judge.model is None:
            if chosen is None:
                missing.append(judge.name)
                continue
            judge = msgspec.structs.replace(judge, model=chosen[0], model_source=chosen[1])
        judges.append(judge)
    if missing:
        names = ", ".join(repr(name) for name in missing)
        whose = f"the {provider} provider names" if provider else "the provider names"
        raise BatchValidationError(
            f"no model for judge {names}: set `model:` on the judge or at the top of the "
            f"config, pass model= (--model), or set KYRO_MODEL; {whose} no default model",
            path=config.path,
        )
    return msgspec.structs.replace(config, judges=tuple(judges))


def recorded_models(config: JudgesConfig, models: Mapping[str, str]) -> JudgesConfig:
    """``config`` with each judge's model set to the one a job recorded for it at submit.

    A pipeline's later stages are built long after submit, when ``model=`` and
    ``KYRO_MODEL`` may differ: every stage uses the models stage 0 resolved. A judge the
    record lacks keeps its own ``model:`` (or none).

    Example::

        config = recorded_models(load_config("pipeline.yml"), state.models)
    """
    judges = tuple(
        msgspec.structs.replace(judge, model=models[judge.name])
        if judge.name in models and judge.model != models[judge.name]
        else judge
        for judge in config.judges
    )
    return msgspec.structs.replace(config, judges=judges)
