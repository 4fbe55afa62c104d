"""Planning: transcripts × judges × runs → provider-neutral :class:`~kyro.provider.JudgeRequest` s.

A generator, never a list: transcripts are pulled one at a time, each is rendered once per
judge (one template cache per transcript, so a structured transcript is JSON-encoded once),
and the rendered messages are shared by every run of that judge. Memory stays flat however
many transcripts there are.

Order: transcript outermost, then judge (config order), then run — the order shard lines and
the transcript index follow.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any

from kyro._config.judges import Judge, JudgesConfig, resolve_models
from kyro._config.templates import StepValues, Template, variable_text
from kyro._contract import VERDICT_RESPONSE_SCHEMA, verdict_message
from kyro._exceptions import BatchValidationError
from kyro._limits import check_runs, printable
from kyro._plan.preflight import Preflight, PreflightProblem, report
from kyro._transcripts import Transcript
from kyro._types import JudgeRequest, Message

__all__ = [
    "STAND_IN",
    "JudgePlan",
    "Planner",
    "aplan_requests",
    "plan_requests",
    "validate_variables",
]


STAND_IN = {"status": "SUCCESS", "score": "0.5", "root_cause": "(stand-in: upstream root cause)"}
"""What ``{{steps.<name>.…}}`` renders to when no upstream results are given: a plan of a
pipeline as if every step ran (``kyro plan``), or the submit-time check of later stages."""


def validate_variables(variables: Mapping[str, Any] | None) -> dict[str, str]:
    """Check run-level variables and return them as a plain mapping of text.

    Values are text, numbers or booleans — numbers as written, booleans as ``true``/``false``,
    exactly as YAML variables are stored — anything else is a :class:`BatchValidationError`.

    Example::

        validate_variables({"product": "X", "n": 3, "strict": True})
        # {'product': 'X', 'n': '3', 'strict': 'true'}
    """
    if variables is None:
        return {}
    if not isinstance(variables, Mapping):
        raise BatchValidationError(
            f"variables must be a mapping of names to values, not {type(variables).__name__}"
        )
    out: dict[str, str] = {}
    for key, value in variables.items():
        if not isinstance(key, str) or not key:
            raise BatchValidationError(f"variable names must be non-empty strings, got {key!r}")
        text = variable_text(value)
        if text is None:
            raise BatchValidationError(
                f"variable {key!r} must be text, a number or true/false, got "
                f"{type(value).__name__} {value!r}"
            )
        for part in (key, text):
            if printable(part) != part:
                raise BatchValidationError(
                    f"variable {printable(key)!r} holds bytes that are not UTF-8 text "
                    f"(shown as \\xNN: {printable(part)}); pass it as UTF-8"
                )
        out[key] = text
    return out


def plan_requests(
    config: JudgesConfig,
    transcripts: Iterable[Transcript],
    *,
    runs: int = 1,
    variables: Mapping[str, Any] | None = None,
    stage: int = 0,
    preflight: Preflight | None = None,
    on_transcript: Callable[[Transcript], object] | None = None,
    samples: bool = False,
) -> Iterator[JudgeRequest]:
    """Yield one request per transcript × judge × run, lazily.

    Arguments are checked at once (not on the first ``next``): ``runs`` ≥ 1, ``stage`` ≥ 0,
    ``variables`` a mapping of str to str. A template field that cannot be resolved raises
    :class:`BatchValidationError` — or, with a ``preflight`` collector, is recorded there and
    that transcript × judge is skipped. Every request of an ``output_format: json`` judge
    starts with kyro's verdict system message and carries the verdict schema (see
    ``kyro._contract``), so no prompt has to ask for JSON itself.
    ``on_transcript`` is called with each transcript before its requests are yielded (to
    write the transcript index, or advance a progress bar). With ``samples`` (and ``runs`` >
    1), each transcript × judge is one request carrying every run (``JudgeRequest.samples``,
    OpenAI's ``n``), under run 0's custom_id.

    Example::

        for request in plan_requests(config, iter_transcripts(["a.txt"]), runs=3):
            provider.encode(request, buffer)
    """
    planner = Planner(config, runs, variables, stage, preflight, samples=samples)
    return planner.iterate(transcripts, on_transcript)


def aplan_requests(
    config: JudgesConfig,
    transcripts: AsyncIterable[Transcript] | Iterable[Transcript],
    *,
    runs: int = 1,
    variables: Mapping[str, Any] | None = None,
    stage: int = 0,
    preflight: Preflight | None = None,
    on_transcript: Callable[[Transcript], object] | None = None,
    samples: bool = False,
) -> AsyncIterator[JudgeRequest]:
    """:func:`plan_requests` over an async (or plain) iterable of transcripts.

    Example::

        async for request in aplan_requests(config, aiter_transcripts(items)):
            builder.add(request)
    """
    planner = Planner(config, runs, variables, stage, preflight, samples=samples)
    return planner.aiterate(transcripts, on_transcript)


class JudgePlan:
    """What stays the same for every request of one judge (the planner's ``judges``)."""

    __slots__ = (
        "fixed",
        "head",
        "json_output",
        "judge",
        "model",
        "params",
        "samples",
        "schema",
        "static_system",
        "suffixes",
        "templates",
        "variables",
    )

    def __init__(
        self,
        judge: Judge,
        index: int,
        runs: int,
        variables: Mapping[str, str],
        samples: bool = False,
    ) -> None:
        self.judge = judge
        assert judge.model is not None  # resolved by the Planner
        self.model: str = judge.model
        self.params: dict[str, Any] = judge.params
        self.json_output = judge.output_format == "json"
        # The verdict contract: kyro's system message first, and the verdict schema.
        self.head: tuple[Message, ...] = (verdict_message(),) if self.json_output else ()
        self.schema = VERDICT_RESPONSE_SCHEMA if self.json_output else None
        self.variables = judge.merged_variables(variables)
        # custom_id = transcript part + this suffix; equal to kyro._custom_id.format_custom_id.
        # As samples, one request (run 0's id) carries every run.
        self.samples = runs if samples and runs > 1 else 1
        sent = runs if self.samples == 1 else 1
        self.suffixes = tuple(f"-j{index}-r{run}" for run in range(sent))
        # A system prompt without fields renders to its text: build its message once.
        system = judge.system
        self.static_system = (
            Message(role="system", content=system.text)
            if system is not None and not system.fields
            else None
        )
        # Every request's messages: these constant ones first (the very same objects each
        # time), then one rendered from each of ``templates``.
        self.fixed: tuple[Message, ...] = self.head
        self.templates: tuple[Template, ...] = (judge.user,)
        if self.static_system is not None:
            self.fixed = (*self.head, self.static_system)
        elif system is not None:
            self.templates = (system, judge.user)

    def requests(self, head: str, messages: tuple[Message, ...]) -> list[JudgeRequest]:
        """The requests of one transcript (custom_ids ``head`` + suffix) for these messages."""
        return [
            JudgeRequest(
                custom_id=head + suffix,
                model=self.model,
                messages=messages,
                params=self.params,
                json_output=self.json_output,
                response_schema=self.schema,
                samples=self.samples,
            )
            for suffix in self.suffixes
        ]


class Planner:
    """The planning loop behind :func:`plan_requests` (``requests_for`` one transcript)."""

    __slots__ = ("judges", "prefix", "preflight", "stand_in")

    def __init__(
        self,
        config: JudgesConfig,
        runs: int,
        variables: Mapping[str, str] | None,
        stage: int,
        preflight: Preflight | None,
        *,
        samples: bool = False,
    ) -> None:
        check_runs(runs)  # bounded before any per-run tuple is built
        if isinstance(stage, bool) or not isinstance(stage, int) or stage < 0:
            raise BatchValidationError(f"stage must be a whole number ≥ 0, got {stage!r}")
        checked = validate_variables(variables)
        if any(judge.model is None for judge in config.judges):
            config = resolve_models(config)  # KYRO_MODEL, or a clear error
        self.judges = tuple(
            JudgePlan(judge, index, runs, checked, samples)
            for index, judge in enumerate(config.judges)
        )
        self.prefix = f"s{stage}-t" if stage else "t"
        self.preflight = preflight
        self.stand_in = {judge.name: STAND_IN for judge in config.judges}

    def iterate(
        self,
        transcripts: Iterable[Transcript],
        on_transcript: Callable[[Transcript], object] | None,
    ) -> Iterator[JudgeRequest]:
        for transcript in transcripts:
            if on_transcript is not None:
                on_transcript(transcript)
            yield from self.requests_for(transcript)

    async def aiterate(
        self,
        transcripts: AsyncIterable[Transcript] | Iterable[Transcript],
        on_transcript: Callable[[Transcript], object] | None,
    ) -> AsyncIterator[JudgeRequest]:
        if isinstance(transcripts, AsyncIterable):
            async for transcript in transcripts:
                if on_transcript is not None:
                    on_transcript(transcript)
                for request in self.requests_for(transcript):
                    yield request
        else:
            for transcript in transcripts:
                if on_transcript is not None:
                    on_transcript(transcript)
                for request in self.requests_for(transcript):
                    yield request

    def requests_for(
        self,
        transcript: Transcript,
        judges: Iterable[int] | None = None,
        steps: StepValues | None = None,
    ) -> list[JudgeRequest]:
        """Every request of one transcript (judges × runs: small and bounded).

        ``judges`` limits it to those judge indices (a pipeline stage's steps that run for
        this transcript); ``steps`` are the upstream results their prompts may read (without
        them, every step reads :data:`STAND_IN`).
        """
        if steps is None:
            steps = self.stand_in
        head = f"{self.prefix}{transcript.index}"
        cache: dict[str, str] = {}
        out: list[JudgeRequest] = []
        plans = self.judges if judges is None else [self.judges[j] for j in judges]
        for plan in plans:
            messages = self.render(plan, transcript, cache, steps)
            if messages is not None:
                out.extend(plan.requests(head, messages))
        return out

    def render(
        self,
        plan: JudgePlan,
        transcript: Transcript,
        cache: dict[str, str],
        steps: StepValues | None = None,
    ) -> tuple[Message, ...] | None:
        """``plan``'s messages for one transcript; None when a field cannot be rendered (the
        problem is recorded, or raised without a pre-flight collector).

        ``cache`` is shared by every judge rendering the same transcript (its ``""`` entry,
        once set, is the transcript's compact JSON); ``steps`` as in :meth:`requests_for`.
        """
        if steps is None:
            steps = self.stand_in
        try:
            if plan.static_system is not None:
                content = plan.judge.user.render(transcript, plan.variables, cache, steps)
                return (*plan.head, plan.static_system, Message(role="user", content=content))
            return plan.judge.messages(transcript, plan.variables, cache, steps)
        except BatchValidationError as exc:
            head = f"{self.prefix}{transcript.index}"
            self._problem("unresolved_field", exc.message, transcript, plan, head)
            return None

    def _problem(
        self, kind: Any, message: str, transcript: Transcript, plan: JudgePlan, head: str
    ) -> None:
        report(
            self.preflight,
            PreflightProblem(
                kind=kind,
                message=message,
                transcript=transcript.index,
                source=transcript.source,
                judge=plan.judge.name,
                custom_id=head + plan.suffixes[0],
            ),
        )
