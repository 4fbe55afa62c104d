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

Three faces, one per audience: ``kyro`` (this module) for users; :mod:`kyro.provider` for
provider authors (the protocol, the request and result types, retries); :mod:`kyro.testing`
for test doubles and the provider conformance kit. Everything under ``kyro._*`` is private.
"""

from __future__ import annotations

from kyro._config.judges import Judge, JudgesConfig
from kyro._config.loader import load_config
from kyro._contract import verdict_message, verdict_schema
from kyro._exceptions import (
    AuthenticationError,
    BatchValidationError,
    BudgetExceededError,
    JobBusyError,
    JobPendingError,
    KyroError,
    NoJobError,
    ProviderError,
    ProviderNotFoundError,
)
from kyro._job.batch_judge import BatchJudge
from kyro._job.job_error import BatchJobError
from kyro._live.live_judge import KyroJudge
from kyro._public import present as _present
from kyro._redact import redact
from kyro._registry import available_providers, get_provider
from kyro._state.progress import BatchProgress, JobProgress, StageProgress
from kyro._verdicts.result_types import (
    BatchRunResult,
    Evaluations,
    JudgeCounts,
    JudgeVerdict,
    ResultCounts,
    RunVerdict,
    StepCounts,
    StepOutcome,
    TranscriptEvaluation,
)
from kyro._verdicts.vote import VoteSettings

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "BatchJobError",
    "BatchJudge",
    "BatchProgress",
    "BatchRunResult",
    "BatchValidationError",
    "BudgetExceededError",
    "Evaluations",
    "JobBusyError",
    "JobPendingError",
    "JobProgress",
    "Judge",
    "JudgeCounts",
    "JudgeVerdict",
    "JudgesConfig",
    "KyroError",
    "KyroJudge",
    "NoJobError",
    "ProviderError",
    "ProviderNotFoundError",
    "ResultCounts",
    "RunVerdict",
    "StageProgress",
    "StepCounts",
    "StepOutcome",
    "TranscriptEvaluation",
    "VoteSettings",
    "__version__",
    "available_providers",
    "get_provider",
    "load_config",
    "redact",
    "verdict_message",
    "verdict_schema",
]

# Reprs, pickles and docs name this face, not the private module defining each name.
_present(globals(), __all__, __name__)
