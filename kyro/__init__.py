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

from kyro._build.plan_build import build_shards
from kyro._build.shards import BuildSummary, Shard, ShardBuilder
from kyro._config.judges import Judge, JudgesConfig
from kyro._config.loader import load_config
from kyro._config.templates import Template
from kyro._contract import verdict_message, verdict_schema
from kyro._exceptions import (
    BatchJobError,
    BatchValidationError,
    BudgetExceededError,
    JobBusyError,
    KyroError,
    ProviderError,
)
from kyro._job.batch_judge import BatchJudge
from kyro._live.live_judge import KyroJudge
from kyro._plan.planner import aplan_requests, plan_requests
from kyro._plan.preflight import Preflight, PreflightProblem
from kyro._provider import BatchProvider, LiveProvider
from kyro._redact import redact
from kyro._registry import available_providers, get_provider
from kyro._retry import RetryPolicy, header_problem, retry_after_seconds, send_with_retries
from kyro._state.progress import BatchProgress, JobProgress, StageProgress
from kyro._transcript_index import (
    IndexEntry,
    TranscriptIndexReader,
    TranscriptIndexWriter,
    iter_index,
)
from kyro._transcripts import Transcript, aiter_transcripts, iter_transcripts
from kyro._types import (
    BatchError,
    BatchLimits,
    BatchState,
    BatchStatus,
    JudgeRequest,
    Message,
    RequestCounts,
    ResponseSchema,
    ResultError,
    ResultLine,
    Usage,
)
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
from kyro._verdicts.vote import VoteSettings, parse_reply, vote

__version__ = "0.1.0"

__all__ = [
    "BatchError",
    "BatchJobError",
    "BatchJudge",
    "BatchLimits",
    "BatchProgress",
    "BatchProvider",
    "BatchRunResult",
    "BatchState",
    "BatchStatus",
    "BatchValidationError",
    "BudgetExceededError",
    "BuildSummary",
    "Evaluations",
    "IndexEntry",
    "JobBusyError",
    "JobProgress",
    "Judge",
    "JudgeCounts",
    "JudgeRequest",
    "JudgeVerdict",
    "JudgesConfig",
    "KyroError",
    "KyroJudge",
    "LiveProvider",
    "Message",
    "Preflight",
    "PreflightProblem",
    "ProviderError",
    "RequestCounts",
    "ResponseSchema",
    "ResultCounts",
    "ResultError",
    "ResultLine",
    "RetryPolicy",
    "RunVerdict",
    "Shard",
    "ShardBuilder",
    "StageProgress",
    "StepCounts",
    "StepOutcome",
    "Template",
    "Transcript",
    "TranscriptEvaluation",
    "TranscriptIndexReader",
    "TranscriptIndexWriter",
    "Usage",
    "VoteSettings",
    "__version__",
    "aiter_transcripts",
    "aplan_requests",
    "available_providers",
    "build_shards",
    "get_provider",
    "header_problem",
    "iter_index",
    "iter_transcripts",
    "load_config",
    "parse_reply",
    "plan_requests",
    "redact",
    "retry_after_seconds",
    "send_with_retries",
    "verdict_message",
    "verdict_schema",
    "vote",
]
