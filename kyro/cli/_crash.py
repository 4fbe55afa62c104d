"""An unexpected error in a command: one line on stderr, the traceback in a private log file.

Exit status 70 (``ExitCode.INTERNAL``) says "kyro itself failed", never "bad input" nor the
``--fail-on`` gate. The traceback goes to ``kyro-error-<time>-<pid>.log`` in the system's
temp folder (mode 0600, credentials masked); ``-v`` prints it on stderr as well.
"""

from __future__ import annotations

import datetime
import os
import sys
import tempfile
import traceback
from pathlib import Path

from kyro._redact import redact
from kyro.cli._exit import ExitCode

__all__ = ["report_internal_error"]


def report_internal_error(
    exc: BaseException, *, verbose: int = 0, folder: Path | None = None
) -> int:
    """Log ``exc``'s traceback, print one line saying where, and return ``ExitCode.INTERNAL``.

    Example::

        except Exception as exc:
            return report_internal_error(exc, verbose=args.verbose)
    """
    text = redact("".join(traceback.format_exception(exc)))
    summary = redact(f"{type(exc).__name__}: {exc}".splitlines()[0])[:300]
    where = _write_log(text, folder or Path(tempfile.gettempdir()))
    if verbose or where is None:
        print(text, file=sys.stderr, end="")
    if where is None:
        kept = "the traceback is above (it could not be written to a log file)"
    else:
        kept = f"the traceback is in {where}" + ("" if verbose else " (-v prints it here)")
    print(
        f"internal error: {summary}. This is a bug in kyro, not in your input; {kept}. "
        "Nothing kyro saved was harmed: the same command can be run again",
        file=sys.stderr,
    )
    return ExitCode.INTERNAL


def _write_log(text: str, folder: Path) -> Path | None:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = folder / f"kyro-error-{stamp}-{os.getpid()}.log"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as file:
            file.write(text)
    except OSError:
        return None
    return path
