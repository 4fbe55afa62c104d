"""BatchJobError: a job that ended failed, expired, cancelled or over budget, with its partial
result.

It sits beside the result types rather than in :mod:`kyro._exceptions` because it carries a
:class:`~kyro.BatchRunResult`, which the base module cannot import; it is a
:class:`~kyro.KyroError` like every other error kyro raises (the tree is drawn in
:mod:`kyro._exceptions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from kyro._exceptions import KyroError
from kyro._types import BatchError
from kyro._verdicts.result_types import BatchRunResult

__all__ = ["BatchJobError", "JobEndStatus"]

JobEndStatus = Literal["failed", "expired", "cancelled", "over_budget"]
"""How a job that did not complete ended: the batch states of the same names, or
``over_budget`` (a pipeline whose next stage would have passed its ``max_cost``)."""


class BatchJobError(KyroError):
    """A job reached a terminal state other than completed: failed, expired or cancelled —
    or ``over_budget``, a pipeline whose next stage would have passed its ``max_cost``.

    ``status`` says which; ``errors`` lists the provider's job-level errors; ``result`` holds
    whatever partial results were gathered (also written to disk, see
    ``result.results_path``); the state is kept so the job can be resubmitted or inspected.

    Example::

        try:
            result = await judge.check()
        except kyro.BatchJobError as exc:
            print(exc.status, [e.code for e in exc.errors], exc.result)
    """

    def __init__(
        self,
        message: str,
        *,
        job_id: str,
        status: JobEndStatus,
        errors: Sequence[BatchError] = (),
        result: BatchRunResult | None = None,
    ) -> None:
        self.job_id = job_id
        self.status: JobEndStatus = status
        self.errors = tuple(errors)
        self.result = result
        super().__init__(message)
