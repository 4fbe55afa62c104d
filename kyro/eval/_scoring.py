"""A run's scorers, resolved once: deterministic names, callables, and LLM judges.

``scorers`` entries, mixed freely:

* a deterministic scorer's name (``"exact_match"``) or a :func:`~kyro.eval.scorer` built with
  options;
* a preset's name (``"correctness"``) or ``"llm:<criteria>"`` — an :class:`LLMJudge` with
  default settings — or an ``LLMJudge`` / preset instance;
* a plain callable ``(output, expected, input) -> bool | float | Score`` (sync or async; one
  taking fewer parameters gets the first ones). A number passes at ``>= 0.5``. Its name is
  the function's ``__name__``.

A scorer that raises (or returns something else) gives an errored score naming the exception;
the item and the other scores are unaffected. Two scorers with one name are refused, since
results are looked up by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from kyro.eval._llm import PRESETS, LLMJudge
from kyro.eval._records import ScorerResultSummary, as_summary, errored_score
from kyro.eval._scorers import SCORER_NAMES, DeterministicScorer, scorer

__all__ = ["ScorerPlan", "plan_scorers"]

ScorerSpec = str | DeterministicScorer | LLMJudge | Callable[..., Any]


class _CallableScorer:
    """A user's function as a scorer: arity-adapted, exceptions caught."""

    __slots__ = ("arity", "fn", "name")

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.fn = fn
        self.name = name
        self.arity = _arity(fn)

    def __call__(self, output: Any, expected: Any, value: Any) -> ScorerResultSummary:
        try:
            returned = self.fn(*(output, expected, value)[: self.arity])
        except Exception as exc:
            return errored_score(self.name, f"the scorer raised {type(exc).__name__}: {exc}")
        return as_summary(self.name, returned)

    async def ascore(self, output: Any, expected: Any, value: Any) -> ScorerResultSummary:
        try:
            returned = await self.fn(*(output, expected, value)[: self.arity])
        except Exception as exc:
            return errored_score(self.name, f"the scorer raised {type(exc).__name__}: {exc}")
        return as_summary(self.name, returned)


def _arity(fn: Callable[..., Any]) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 3
    positional = 0
    for param in params:
        if param.kind is param.VAR_POSITIONAL:
            return 3
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            positional += 1
    if positional == 0:
        raise ValueError(
            f"scorer {fn!r} takes no positional parameters; a scorer is called as "
            "fn(output, expected, input)"
        )
    return min(positional, 3)


def _is_async(fn: Callable[..., Any]) -> bool:
    call = getattr(fn, "__call__", None)  # noqa: B004 (an object with an async __call__)
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)


class ScorerPlan:
    """The resolved scorers: sync checks, async callables, and LLM judges, in the given order.

    ``order`` maps each scorer's name to its position, so scores added later (LLM judges)
    land where the user listed them.
    """

    def __init__(self) -> None:
        self.sync: list[Callable[[Any, Any, Any], ScorerResultSummary]] = []
        self.asynchronous: list[Callable[[Any, Any, Any], Awaitable[ScorerResultSummary]]] = []
        self.judges: list[LLMJudge] = []
        self.order: dict[str, int] = {}

    @property
    def names(self) -> list[str]:
        """Every scorer's name in the order given."""
        return list(self.order)

    def _add(self, name: str) -> None:
        if name in self.order:
            raise ValueError(
                f"two scorers are both called {name!r}; results are looked up by name, so "
                "give one another name (scorer(..., label=...), LLMJudge(..., name=...), or "
                "another function name)"
            )
        self.order[name] = len(self.order)

    async def score(self, output: Any, expected: Any, value: Any) -> list[ScorerResultSummary]:
        """Every deterministic and callable score of one output, in scorer order."""
        scores = [check(output, expected, value) for check in self.sync]
        if self.asynchronous:
            for check in self.asynchronous:
                scores.append(await check(output, expected, value))
            scores.sort(key=lambda s: self.order[s.scorer])
        return scores


def _from_string(text: str) -> DeterministicScorer | LLMJudge:
    if text.startswith("llm:"):
        return LLMJudge(text[4:])
    if text in PRESETS:
        return PRESETS[text]()
    if text in SCORER_NAMES:
        return scorer(text)
    raise ValueError(
        f"unknown scorer {text!r}: use a deterministic scorer ({', '.join(SCORER_NAMES)}), a "
        f"preset ({', '.join(PRESETS)}), 'llm:<criteria>', an LLMJudge or a function"
    )


def plan_scorers(scorers: Sequence[ScorerSpec] | ScorerSpec) -> ScorerPlan:
    """Resolve ``scorers`` (see the module docstring); ``ValueError`` names a bad entry."""
    if isinstance(scorers, str | DeterministicScorer | LLMJudge) or callable(scorers):
        scorers = [scorers]
    plan = ScorerPlan()
    for entry in scorers:
        spec = _from_string(entry) if isinstance(entry, str) else entry
        if isinstance(spec, DeterministicScorer):
            plan._add(spec.name)
            plan.sync.append(spec)
        elif isinstance(spec, LLMJudge):
            plan._add(spec.name)
            plan.judges.append(spec)
        elif callable(spec):
            name = getattr(spec, "__name__", None) or type(spec).__name__
            wrapped = _CallableScorer(spec, name.strip("<>"))
            plan._add(wrapped.name)
            if _is_async(spec):
                plan.asynchronous.append(wrapped.ascore)
            else:
                plan.sync.append(wrapped)
        else:
            raise ValueError(
                f"scorer {entry!r} is not a scorer name, an LLMJudge or a callable "
                "(output, expected, input) -> bool | float | Score"
            )
    if not plan.order:
        raise ValueError("give at least one scorer, e.g. scorers=['exact_match']")
    return plan
