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

import argparse
import enum
import sys
from collections.abc import Callable

__all__ = ["ExitCode", "serve_until_stopped"]


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


def serve_until_stopped(serve: Callable[..., object], args: argparse.Namespace) -> ExitCode:
    """Run ``serve(host=, port=, on_bound=)`` on ``--host``/``--port`` until it stops, printing
    the base URL as the first line of stdout once bound; a port that cannot be listened on is
    one line on stderr and exit 2.

    Example::

        return serve_until_stopped(functools.partial(run_server, service), args)
    """
    try:
        serve(host=args.host, port=args.port, on_bound=lambda url: print(url, flush=True))
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    return ExitCode.OK
