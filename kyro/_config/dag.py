"""The pipeline DAG: stages from ``depends_on`` and ``on_failure``, gating and effective verdicts.

Semantics (the README's "Pipelines" section says the same for users):

* A step with no ``depends_on`` that is nobody's ``on_failure`` is a **root**: roots run first,
  side by side.
* A step **runs** for a transcript once every step it depends on has a *passing effective
  verdict* there (SUCCESS or NA). Otherwise it is **SKIPPED**, naming the first dependency (in
  ``depends_on`` order) that did not pass.
* ``on_failure: F`` makes F a **fallback**: F runs for the transcripts where its primary step
  ran and ended ERROR or ERRORED (no verdict), and is **NOT_TRIGGERED** everywhere else. A
  fallback may have ``depends_on`` of its own (it is then also gated by them) and an
  ``on_failure`` of its own (a chain).
* A step's **effective verdict** is its own, unless it failed and its fallback ran: then it is
  the fallback's effective verdict (so along a chain, the last fallback that ran decides).
  Dependents and the transcript's roll-up use effective verdicts.
* The **roll-up** (the transcript's status) is taken over the effective verdicts of every step
  that is not a fallback and was not skipped: SUCCESS when all pass, ERROR when all fail,
  PARTIAL for a mix, ERRORED when any has no verdict. A skipped step always has a failed
  dependency among those steps, so leaving it out hides nothing.

Restrictions checked when the config is loaded (each has one obvious reading otherwise):
a step is the ``on_failure`` of at most one step, and no step depends on a fallback (depend on
its primary, whose effective verdict already is the fallback's when it fails).

**Stages.** ``stage(X)`` is 0 for a root; otherwise one more than the latest of: the stage in
which each dependency's effective verdict is known (``done``), and — for a fallback — its
primary's stage. ``done(X)`` is ``done(fallback)`` when X has a fallback, else ``stage(X)``.
Every step of stage *k* can be decided from the outcomes of stages before *k* alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, Protocol

__all__ = ["PASSING", "Decision", "StepGraph", "StepLinks"]

PASSING = frozenset({"SUCCESS", "NA"})
_VERDICTS = frozenset({"SUCCESS", "ERROR", "NA", "ERRORED"})
_FAILED = frozenset({"ERROR", "ERRORED"})

Decision = tuple[Literal["RUN", "SKIPPED", "NOT_TRIGGERED"], str | None]
"""What a step does for one transcript: run, or why it does not."""


class StepLinks(Protocol):
    """What the graph reads of a step (a :class:`kyro.Judge` has these)."""

    @property
    def name(self) -> str: ...

    @property
    def depends_on(self) -> tuple[str, ...]: ...

    @property
    def on_failure(self) -> str | None: ...


class StepGraph:
    """The stages and links of a validated config's steps (``judges:`` configs included).

    ``own`` mappings below give, per step that ran for one transcript, its own verdict status
    (``SUCCESS``, ``ERROR``, ``NA`` or ``ERRORED``); steps absent did not run.

    Example::

        graph = StepGraph(config.judges)
        graph.stages                       # (('grounded', 'tone'), ('resolution',), ...)
        graph.decide("resolution", {"grounded": "SUCCESS", "tone": "ERROR"})
        # ('SKIPPED', "dependency 'tone' ended ERROR")
    """

    __slots__ = ("_ancestors", "deps", "done", "fallback", "names", "stage", "stages", "trigger")

    def __init__(self, steps: Iterable[StepLinks]) -> None:
        listed = list(steps)
        self.names: tuple[str, ...] = tuple(s.name for s in listed)
        self.deps: dict[str, tuple[str, ...]] = {s.name: tuple(s.depends_on) for s in listed}
        self.fallback: dict[str, str] = {s.name: s.on_failure for s in listed if s.on_failure}
        self.trigger: dict[str, str] = {f: p for p, f in self.fallback.items()}
        self.stage: dict[str, int] = {}
        self.done: dict[str, int] = {}
        for name in self.names:
            self._done_of(name, ())
        count = max(self.stage.values(), default=-1) + 1
        self.stages: tuple[tuple[str, ...], ...] = tuple(
            tuple(n for n in self.names if self.stage[n] == k) for k in range(count)
        )
        self._ancestors: dict[str, frozenset[str]] = {}

    @property
    def is_pipeline(self) -> bool:
        """True when any step has a link (so there is more than one stage, or a fallback)."""
        return bool(self.fallback) or any(self.deps.values())

    @property
    def rolled_up(self) -> tuple[str, ...]:
        """The steps whose effective verdicts make the transcript's status (not fallbacks)."""
        return tuple(n for n in self.names if n not in self.trigger)

    def chain(self, name: str) -> tuple[str, ...]:
        """The fallbacks after ``name``: its ``on_failure``, that step's, and so on."""
        out: list[str] = []
        step = self.fallback.get(name)
        while step is not None:
            out.append(step)
            step = self.fallback.get(step)
        return tuple(out)

    def waits_for(self, name: str) -> tuple[str, ...]:
        """The steps that must be decided before ``name`` is: its dependencies with their
        fallback chains, and its primary (for a fallback)."""
        waits = [step for dep in self.deps[name] for step in (dep, *self.chain(dep))]
        primary = self.trigger.get(name)
        if primary is not None:
            waits.append(primary)
        return tuple(dict.fromkeys(waits))

    def ancestors(self, name: str) -> frozenset[str]:
        """Every step whose outcome is known before ``name`` is decided for a transcript.

        That is: its dependencies with their fallback chains, its primary (for a fallback),
        and, recursively, theirs. Only these may appear in ``{{steps.<name>.…}}``.
        """
        known = self._ancestors.get(name)
        if known is not None:
            return known
        found: set[str] = set()
        for dep in self.deps[name]:
            for step in (dep, *self.chain(dep)):
                found.add(step)
                found |= self.ancestors(step)
        primary = self.trigger.get(name)
        if primary is not None:
            found.add(primary)
            found |= self.ancestors(primary)
        result = frozenset(found)
        self._ancestors[name] = result
        return result

    def decide(self, name: str, own: Mapping[str, str]) -> Decision:
        """Whether ``name`` runs for a transcript, given the outcomes of earlier stages."""
        primary = self.trigger.get(name)
        if primary is not None:
            status = own.get(primary)
            if status not in _FAILED:
                why = f"ended {status}" if status is not None else "did not run"
                return "NOT_TRIGGERED", f"{primary!r} {why}"
        for dep in self.deps[name]:
            status, source = self.effective(dep, own)
            if status not in PASSING:
                via = f" (through its fallback {source!r})" if source != dep else ""
                what = "was skipped" if status == "SKIPPED" else f"ended {status}{via}"
                return "SKIPPED", f"dependency {dep!r} {what}"
        return "RUN", None

    def effective(self, name: str, own: Mapping[str, str]) -> tuple[str, str]:
        """``name``'s effective status for a transcript and the step it comes from.

        The status is a verdict (``SUCCESS``, ``ERROR``, ``NA``, ``ERRORED``) or, for a step
        that did not run, ``SKIPPED``/``NOT_TRIGGERED``.
        """
        status = own.get(name)
        if status is None:
            return self.decide(name, own)[0], name
        fallback = self.fallback.get(name)
        if status in _FAILED and fallback is not None:
            taken, source = self.effective(fallback, own)
            if taken in _VERDICTS:
                return taken, source
        return status, name

    def _stage_of(self, name: str, path: Sequence[str]) -> int:
        """``stage[name]``, computed on first use (the config loader has ruled out cycles)."""
        known = self.stage.get(name)
        if known is not None:
            return known
        if name in path:  # only reachable if the loader's checks were bypassed
            raise ValueError(f"dependency cycle through {name!r}")
        inner = (*path, name)
        stage = 0
        for dep in self.deps[name]:
            stage = max(stage, self._done_of(dep, inner) + 1)
        primary = self.trigger.get(name)
        if primary is not None:
            stage = max(stage, self._stage_of(primary, inner) + 1)
        self.stage[name] = stage
        return stage

    def _done_of(self, name: str, path: Sequence[str]) -> int:
        """``done[name]``: the stage by which ``name``'s effective verdict is known."""
        known = self.done.get(name)
        if known is not None:
            return known
        stage = self._stage_of(name, path)
        fallback = self.fallback.get(name)
        done = self._done_of(fallback, (*path, name)) if fallback is not None else stage
        self.done[name] = done
        return done
