"""The validated judges config: what the rest of kyro reads after ``load_config``.

The YAML side (parsing with positions, the user-facing schema and its error messages) lives in
``kyro._config_load``; this module holds only the resolved, compiled model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from kyro._dag import StepGraph
from kyro._templates import StepValues, Template
from kyro._transcripts import Transcript
from kyro._types import Message

__all__ = ["Judge", "JudgesConfig"]

PromptSource = Literal["prompt", "prompt_file", "prompt_xml"]


class Judge(msgspec.Struct, frozen=True, kw_only=True):
    """One judge (a pipeline "step"), its prompt compiled and its model resolved.

    ``system`` is the XML prompt's ``role`` section (``None`` for other prompt sources);
    ``user`` is the rest of the prompt. ``variables`` are the judge's own values, which
    override the run-level variables for this judge only.

    Example::

        judge = config.judges[0]
        judge.messages(transcript, {"product": "X"})
    """

    name: str
    model: str
    prompt_source: PromptSource
    user: Template
    system: Template | None = None
    prompt_file: str | None = None
    output_format: Literal["json"] = "json"
    params: dict[str, Any] = {}
    variables: dict[str, str] = {}
    depends_on: tuple[str, ...] = ()
    on_failure: str | None = None

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
        ``steps`` the upstream results a pipeline step's prompt reads)."""
        content = self.user.render(transcript, variables, cache, steps)
        user = Message(role="user", content=content)
        if self.system is None:
            return (user,)
        content = self.system.render(transcript, variables, cache, steps)
        return (Message(role="system", content=content), user)

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

    @property
    def uses_pipeline(self) -> bool:
        """True when any judge uses ``depends_on`` or ``on_failure``."""
        return any(j.depends_on or j.on_failure for j in self.judges)

    def graph(self) -> StepGraph:
        """The steps' DAG: stages, gating and effective verdicts (see :mod:`kyro._dag`)."""
        return StepGraph(self.judges)

    def judge(self, name: str) -> Judge:
        """The judge called ``name`` (``KeyError`` if there is none)."""
        for judge in self.judges:
            if judge.name == name:
                return judge
        raise KeyError(name)
