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

import typing as _typing

from kyro._public import lazy_face as _lazy_face

if _typing.TYPE_CHECKING:
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

# Where each name lives. A name is imported on first use (PEP 562), with the other names of its
# module, and then named after this face (reprs, pickles and docs say `kyro.X`): so
# `import kyro` — and `python3 -m kyro --help` — loads no dependency until a name is touched.
_HOMES = {
    "AuthenticationError": "kyro._exceptions",
    "BatchJobError": "kyro._job.job_error",
    "BatchJudge": "kyro._job.batch_judge",
    "BatchProgress": "kyro._state.progress",
    "BatchRunResult": "kyro._verdicts.result_types",
    "BatchValidationError": "kyro._exceptions",
    "BudgetExceededError": "kyro._exceptions",
    "Evaluations": "kyro._verdicts.result_types",
    "JobBusyError": "kyro._exceptions",
    "JobPendingError": "kyro._exceptions",
    "JobProgress": "kyro._state.progress",
    "Judge": "kyro._config.judges",
    "JudgeCounts": "kyro._verdicts.result_types",
    "JudgeVerdict": "kyro._verdicts.result_types",
    "JudgesConfig": "kyro._config.judges",
    "KyroError": "kyro._exceptions",
    "KyroJudge": "kyro._live.live_judge",
    "NoJobError": "kyro._exceptions",
    "ProviderError": "kyro._exceptions",
    "ProviderNotFoundError": "kyro._exceptions",
    "ResultCounts": "kyro._verdicts.result_types",
    "RunVerdict": "kyro._verdicts.result_types",
    "StageProgress": "kyro._state.progress",
    "StepCounts": "kyro._verdicts.result_types",
    "StepOutcome": "kyro._verdicts.result_types",
    "TranscriptEvaluation": "kyro._verdicts.result_types",
    "VoteSettings": "kyro._verdicts.vote",
    "available_providers": "kyro._registry",
    "get_provider": "kyro._registry",
    "load_config": "kyro._config.loader",
    "redact": "kyro._redact",
    "verdict_message": "kyro._contract",
    "verdict_schema": "kyro._contract",
}
__getattr__, __dir__ = _lazy_face(globals(), _HOMES, __name__)
