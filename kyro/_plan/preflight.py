"""Pre-flight: every problem that would fail a batch at the provider, found before upload.

Planning and building report problems here instead of stopping at the first one, so a user sees
a whole list (up to ``max_problems``) in one go, each naming the item it concerns: transcript
index and source, judge, custom_id. The kinds:

==========================  =================================================================
``unresolved_field``        a template field the transcript or the variables cannot fill
``duplicate_custom_id``     two requests with the same custom_id in one file
``line_too_large``          one request's line alone is larger than a batch file may be
``mixed_models``            a request whose model differs from its file's model
==========================  =================================================================
"""

from __future__ import annotations

from typing import Literal

import msgspec

from kyro._exceptions import BatchValidationError

__all__ = ["Preflight", "PreflightProblem"]

ProblemKind = Literal[
    "unresolved_field",
    "duplicate_custom_id",
    "line_too_large",
    "mixed_models",
]


class PreflightProblem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One problem found before upload, with whatever identifies the item it concerns.

    Example::

        PreflightProblem(kind="line_too_large", custom_id="t7-j0-r0",
                         message="line is 3,000,000 bytes; a batch file may hold 2,000,000")
    """

    kind: ProblemKind
    message: str
    custom_id: str | None = None
    transcript: int | None = None
    source: str | None = None
    judge: str | None = None

    def describe(self) -> str:
        """One line: the item (transcript, judge, custom_id as known), then the message."""
        parts = []
        if self.transcript is not None:
            parts.append(f"transcript #{self.transcript}")
        if self.source:
            parts.append(f"({self.source})")
        if self.judge:
            parts.append(f"judge {self.judge!r}")
        if self.custom_id:
            parts.append(f"custom_id {self.custom_id}")
        # Messages that come from a template error already name the judge and transcript.
        prefix = " ".join(part for part in parts if part not in self.message)
        head = f"[{self.kind}] {prefix}" if prefix else f"[{self.kind}]"
        return f"{head}: {self.message}" if prefix else f"{head} {self.message}"


class Preflight:
    """Collects pre-flight problems; raises one :class:`BatchValidationError` listing them.

    Pass one to :func:`kyro._plan.planner.plan_requests` and
    :class:`kyro._build.shards.ShardBuilder` to keep going past a bad item (it is skipped,
    never written) and see every problem at once. Once ``max_problems`` are collected,
    :meth:`add` raises at once: a systematic mistake (a misspelt variable) would otherwise
    repeat for every transcript.

    Example::

        preflight = Preflight(max_problems=20)
        for request in plan_requests(config, transcripts, preflight=preflight):
            builder.add(request)
        summary = builder.close()
        preflight.raise_if_any()     # BatchValidationError: 3 problems found before upload: ...
    """

    __slots__ = ("max_problems", "problems", "truncated")

    def __init__(self, *, max_problems: int = 20) -> None:
        if max_problems < 1:
            raise ValueError("max_problems must be at least 1")
        self.max_problems = max_problems
        self.problems: list[PreflightProblem] = []
        self.truncated = False

    def __bool__(self) -> bool:
        return bool(self.problems)

    def __len__(self) -> int:
        return len(self.problems)

    def add(self, problem: PreflightProblem) -> None:
        """Record ``problem``; raise the combined error once ``max_problems`` are recorded."""
        self.problems.append(problem)
        if len(self.problems) >= self.max_problems:
            self.truncated = True
            raise self.error()

    def error(self) -> BatchValidationError:
        """The combined error for the problems so far (whether or not any were found)."""
        count = len(self.problems)
        more = f" (stopped after the first {count})" if self.truncated else ""
        lines = [f"{count} problem{'s' if count != 1 else ''} found before upload{more}:"]
        lines.extend(f"  {problem.describe()}" for problem in self.problems)
        lines.append("Nothing was uploaded: fix these and plan again.")
        return BatchValidationError("\n".join(lines))

    def raise_if_any(self) -> None:
        """Raise the combined :class:`BatchValidationError` if any problem was recorded."""
        if self.problems:
            raise self.error()


def report(preflight: Preflight | None, problem: PreflightProblem) -> None:
    """Record ``problem`` in ``preflight``, or raise it alone when there is no collector."""
    if preflight is None:
        raise BatchValidationError(problem.describe())
    preflight.add(problem)
