"""kyro's exceptions: one root, every error carrying the context needed to act on it.

The tree::

    KyroError                     anything kyro raises on purpose
    ├── BatchValidationError      bad config, transcripts, variables or state on disk
    │   │                         (always names the file, and line:column for YAML)
    │   ├── JobPendingError       submit() while a job of the same config is pending;
    │   │                         carries its job id (check or cancel it first)
    │   └── NoJobError            check(), status() or cancel() with no job to act on
    ├── BatchJobError             a job ended failed, expired, cancelled or over_budget;
    │                             carries the typed status, the provider's errors and
    │                             the partial BatchRunResult (defined in
    │                             ``kyro._job.job_error``: it holds a result, which this
    │                             base module cannot import)
    ├── JobBusyError              another kyro process holds the job's lock; carries its pid
    │                             and since when
    ├── ProviderError             an HTTP or transport failure talking to a provider;
    │   │                         carries the status code, error code and request id
    │   └── AuthenticationError   the provider refused the credentials (HTTP 401 or 403)
    ├── ProviderNotFoundError     no installed provider goes by the name asked for;
    │                             carries the name and the available ones
    └── BudgetExceededError       a submit (or a later stage, or a resubmission) whose cost
                                  ceiling passes ``max_cost``; refused before any upload

Each subclass is raised where its base was raised before, so an ``except`` of the base still
catches it. Catch ``KyroError`` to handle everything kyro raises; foreign exceptions are
always chained (``raise ... from exc``) so the original cause stays visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kyro._redact import redact

__all__ = [
    "AuthenticationError",
    "BatchValidationError",
    "BudgetExceededError",
    "JobBusyError",
    "JobPendingError",
    "KyroError",
    "NoJobError",
    "ProviderError",
    "ProviderNotFoundError",
]


class KyroError(Exception):
    """The root of every error kyro raises on purpose.

    Example::

        try:
            result = await judge.check()
        except kyro.KyroError as exc:
            print(f"kyro: {exc}")
    """


class BatchValidationError(KyroError):
    """Input that kyro refuses: a config, transcript, variable or state file that is wrong.

    ``path`` names the file (``None`` for inline input), ``line`` and ``column`` are 1-based
    positions inside it when known. ``str(exc)`` reads ``file:line:column: message``.

    Example::

        try:
            kyro.load_config("judges.yml")
        except kyro.BatchValidationError as exc:
            print(exc)   # judges.yml:4:5: unknown key 'promt' in judge 'relevance' ...
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.column = column
        super().__init__(self.location_prefix() + message)

    def location_prefix(self) -> str:
        """``file:line:column: `` (as much of it as is known), or an empty string."""
        if self.path is None:
            return ""
        parts = [self.path]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts) + ": "


class JobPendingError(BatchValidationError):
    """submit() found a job of the same config still pending: nothing new was planned.

    ``job_id`` is the pending job's; ``path`` its state file. Collect it with check() or
    stop it with cancel(), then submit again.

    Example::

        try:
            await judge.submit(transcripts)
        except kyro.JobPendingError as exc:
            print(f"job {exc.job_id} is still running")
    """

    def __init__(self, message: str, *, job_id: str, path: str | Path | None = None) -> None:
        self.job_id = job_id
        super().__init__(message, path=path)


class NoJobError(BatchValidationError):
    """check(), status() or cancel() found no job to act on (or not the job id asked for).

    ``job_id`` is the id asked for (None when none was); ``path`` the state file that is
    missing. Submit first — or give the state folder the job was submitted with.

    Example::

        try:
            result = await judge.check()
        except kyro.NoJobError:
            result = None      # nothing submitted yet
    """

    def __init__(
        self, message: str, *, job_id: str | None = None, path: str | Path | None = None
    ) -> None:
        self.job_id = job_id
        super().__init__(message, path=path)


class JobBusyError(KyroError):
    """Another kyro process is working on the job: its lock stayed taken for the whole wait.

    Nothing is wrong with the input; try again once that process is done (the lock is freed
    when it exits, even if it is killed). ``lock_path`` names the lock file; ``pid`` and
    ``since`` (an ISO 8601 time) say who holds it, when the holder recorded them.

    Example::

        except kyro.JobBusyError as exc:
            print(f"busy: pid {exc.pid} since {exc.since}")
    """

    def __init__(
        self,
        message: str,
        *,
        lock_path: str | Path,
        pid: int | None = None,
        since: str | None = None,
    ) -> None:
        self.lock_path = str(lock_path)
        self.pid = pid
        self.since = since
        super().__init__(message)


class ProviderError(KyroError):
    """A provider call failed: an HTTP error status, or a transport failure (status ``None``).

    Carries ``status_code``, the provider's error ``code`` (``rate_limit_exceeded``,
    ``insufficient_quota``…) and ``request_id`` (OpenAI's ``x-request-id``) for support
    tickets. Never carries the API key, nor credentials written into a URL (masked as
    ``***@``).

    Example::

        except kyro.ProviderError as exc:
            print(exc.status_code, exc.code, exc.request_id)
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        provider: str | None = None,
    ) -> None:
        self.message = message = redact(message)
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.provider = provider
        details = []
        if status_code is not None:
            details.append(f"HTTP {status_code}")
        if code:
            details.append(f"code {code}")
        if request_id:
            details.append(f"request id {request_id}")
        suffix = f" ({', '.join(details)})" if details else ""
        prefix = f"{provider}: " if provider else ""
        super().__init__(f"{prefix}{message}{suffix}")


class AuthenticationError(ProviderError):
    """The provider refused the credentials (HTTP 401 or 403): no retry will help.

    Set the key the message names (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``…), or give one
    allowed to use the organization, project or model, then run the command again.

    Example::

        except kyro.AuthenticationError as exc:
            print(f"fix the key: {exc}")
    """


class ProviderNotFoundError(KyroError):
    """No installed provider goes by ``name``: :func:`kyro.get_provider` and ``--provider``.

    ``available`` lists the names that are installed. Install the provider's package, or
    pick one of those names.

    Example::

        try:
            kyro.get_provider("opnai")
        except kyro.ProviderNotFoundError as exc:
            print(exc.name, exc.available)
    """

    def __init__(self, message: str, *, name: str, available: Sequence[str] = ()) -> None:
        self.name = name
        self.available = tuple(available)
        super().__init__(message)


class BudgetExceededError(KyroError):
    """The cost ceiling of what would be sent passes the budget: nothing was uploaded.

    ``ceiling_usd`` is the worst case (every output up to ``max_tokens``), ``estimate_usd``
    the typical one, ``spent_usd`` what the job already cost (later stages, resubmissions),
    ``max_cost`` the budget. ``ceiling_usd`` is None when a model has no known price (the
    budget cannot be checked, so the submit is refused too).

    Example::

        except kyro.BudgetExceededError as exc:
            print(exc.ceiling_usd, exc.max_cost)
    """

    def __init__(
        self,
        message: str,
        *,
        max_cost: float,
        ceiling_usd: float | None,
        estimate_usd: float | None,
        spent_usd: float = 0.0,
    ) -> None:
        self.max_cost = max_cost
        self.ceiling_usd = ceiling_usd
        self.estimate_usd = estimate_usd
        self.spent_usd = spent_usd
        super().__init__(message)
