"""Exit codes of ``python3 -m kyro``, stable so cron jobs and CI can act on them."""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    """What a kyro command's exit status means.

    ========  ===================================================================
    0  OK          done: valid config, job submitted, or job complete
    1  GATE        the job completed but ``--fail-on`` matched its verdicts
    2  BAD_INPUT   bad config, transcripts, variables, arguments or state file
    3  PENDING     the job is still running: check again later
    4  JOB_FAILED  the job ended failed, expired or cancelled (partial results kept)
    5  PROVIDER    the provider could not be reached or refused a call
    ========  ===================================================================
    """

    OK = 0
    GATE = 1
    BAD_INPUT = 2
    PENDING = 3
    JOB_FAILED = 4
    PROVIDER = 5
