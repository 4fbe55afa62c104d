"""kyro: LLM-as-judge evaluation at volume through provider Batch APIs.

Judges are written in YAML; transcripts × judges × runs become batch requests that a provider
runs at half the price of live calls. ``submit`` saves everything to disk and returns, so the
process may exit; ``check`` — from cron, another process, any time later — polls once and,
when the provider is done, returns majority-voted verdicts.

Example::

    from kyro import BatchJudge
    from kyro_openai import OpenAIBatchProvider

    judge = BatchJudge(OpenAIBatchProvider(), "judges.yml")
    job_id = await judge.submit(["transcripts/"], runs=3)
    ...
    result = await judge.check()     # None while the provider is still working
"""

from __future__ import annotations

from kyro._config import Judge, JudgesConfig
from kyro._exceptions import BatchJobError, BatchValidationError, KyroError, ProviderError
from kyro._provider import BatchProvider
from kyro._retry import RetryPolicy, retry_after_seconds, send_with_retries
from kyro._templates import Template
from kyro._transcripts import Transcript
from kyro._types import (
    BatchError,
    BatchLimits,
    BatchState,
    BatchStatus,
    JudgeRequest,
    Message,
    RequestCounts,
    ResultError,
    ResultLine,
    Usage,
)

__version__ = "0.1.0"

__all__ = [
    "BatchError",
    "BatchJobError",
    "BatchLimits",
    "BatchProvider",
    "BatchState",
    "BatchStatus",
    "BatchValidationError",
    "Judge",
    "JudgeRequest",
    "JudgesConfig",
    "KyroError",
    "Message",
    "ProviderError",
    "RequestCounts",
    "ResultError",
    "ResultLine",
    "RetryPolicy",
    "Template",
    "Transcript",
    "Usage",
    "__version__",
    "retry_after_seconds",
    "send_with_retries",
]
