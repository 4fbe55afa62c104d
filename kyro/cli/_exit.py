"""Exit codes of ``python3 -m kyro``, stable so cron jobs and CI can act on them.

Only 1 means "the verdicts failed the ``--fail-on`` gate". A bug in kyro exits 70 with one
line on stderr naming the log file that holds the traceback (``-v`` prints it too); a job
whose lock another kyro process holds exits 75 ("busy": run the command again later).

Input kyro refuses with exit 2 before anything is sent, always naming the file or option:
a config, prompt file or transcript that is not a regular file (a FIFO, ``/dev/zero``) or
is larger than its limit (config and prompt file 1 MiB, one transcript 16 MiB; set
``KYRO_MAX_CONFIG_BYTES``, ``KYRO_MAX_PROMPT_BYTES``, ``KYRO_MAX_TRANSCRIPT_BYTES``), a
folder that cannot be read, a file name or ``--var`` that is not UTF-8, ``--runs`` outside
1–100, ``--min-valid-votes`` above ``--runs``, ``--interval`` not a number of seconds in
[0, 86400], and ``--output``/``--csv`` naming a folder, a missing folder or a file kyro
keeps in its state folder.
"""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    """What a kyro command's exit status means.

    ========  ===================================================================
    0  OK          done: valid config, job submitted, or job complete
    1  GATE        the job completed but ``--fail-on`` matched its verdicts, or
                   ``--max-cost`` refused a submit (nothing was uploaded)
    2  BAD_INPUT   bad config, transcripts, variables, arguments or state file
    3  PENDING     the job is still running: check again later
    4  JOB_FAILED  the job ended failed, expired, cancelled or over_budget (partial
                   results kept)
    5  PROVIDER    the provider could not be reached or refused a call
    70 INTERNAL    an unexpected error (a bug): the traceback is in a log file
    75 BUSY        another kyro process holds the job's lock: try again later
    ========  ===================================================================
    """

    OK = 0
    GATE = 1
    BAD_INPUT = 2
    PENDING = 3
    JOB_FAILED = 4
    PROVIDER = 5
    INTERNAL = 70
    BUSY = 75
