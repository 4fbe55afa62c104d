"""Bounds on what kyro reads: regular files only, at most so many bytes, at most so many runs.

A config, a prompt file or a transcript that is a FIFO, a device (``/dev/zero``) or a socket
is refused before a byte is read, so nothing hangs and nothing fills memory; a regular file
larger than its limit is refused too. The limits, and the environment variables that change
them (a whole number of bytes)::

    config file        1 MiB    KYRO_MAX_CONFIG_BYTES
    prompt file        1 MiB    KYRO_MAX_PROMPT_BYTES
    one transcript    16 MiB    KYRO_MAX_TRANSCRIPT_BYTES   (a .json/.txt file, a .jsonl line)
    runs per request   100      (MAX_RUNS)
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from kyro._exceptions import BatchValidationError

__all__ = [
    "MAX_RUNS",
    "check_runs",
    "max_bytes",
    "open_regular",
    "printable",
    "read_regular",
    "too_large",
    "unreadable",
]

MAX_RUNS = 100
"""Runs per transcript × judge kyro accepts (majority votes gain nothing beyond a handful)."""

_DEFAULTS = {
    "config file": ("KYRO_MAX_CONFIG_BYTES", 1 << 20),
    "prompt file": ("KYRO_MAX_PROMPT_BYTES", 1 << 20),
    "transcript file": ("KYRO_MAX_TRANSCRIPT_BYTES", 16 << 20),
}

_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def printable(name: str | os.PathLike[str]) -> str:
    """``name`` as text any terminal and JSON encoder accept (undecodable bytes as ``\\xNN``)."""
    text = os.fspath(name)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def max_bytes(label: str) -> int:
    """The byte limit for a ``label`` ("config file", "prompt file", "transcript file")."""
    variable, default = _DEFAULTS[label]
    value = os.environ.get(variable)
    if value is None or not value.strip():
        return default
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise BatchValidationError(
            f"{variable}={value!r} is not a positive whole number of bytes; fix or unset it"
        )
    return limit


def check_runs(runs: object, what: str = "runs") -> int:
    """``runs`` if it is a whole number from 1 to :data:`MAX_RUNS`, else a clear error."""
    if isinstance(runs, bool) or not isinstance(runs, int) or not 1 <= runs <= MAX_RUNS:
        raise BatchValidationError(
            f"{what} must be a whole number from 1 to {MAX_RUNS}, got {runs!r}"
        )
    return runs


@contextlib.contextmanager
def open_regular(path: Path, label: str, shown: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open ``path`` for reading if it is a regular file (symlinks followed); else refuse it.

    The file is opened without blocking, so a FIFO with no writer is refused at once instead
    of hanging.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError as exc:
        raise BatchValidationError(
            f"{label} not found; check the path", path=printable(shown)
        ) from exc
    except OSError as exc:
        raise unreadable(label, exc, shown, "; check the path and its permissions") from exc
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise BatchValidationError(
                f"{label} is a directory; name a file", path=printable(shown)
            )
        if not stat.S_ISREG(mode):
            kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
            raise BatchValidationError(
                f"{label} is {kind}, not a regular file; kyro reads only regular files",
                path=printable(shown),
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle


def read_regular(path: Path, label: str, shown: str | os.PathLike[str] | None = None) -> bytes:
    """The bytes of the regular file ``path``, refused beyond :func:`max_bytes` of ``label``."""
    shown = path if shown is None else shown
    limit = max_bytes(label)
    with open_regular(path, label, shown) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise unreadable(label, exc, shown) from exc
    if len(data) > limit:
        raise too_large(label, shown, limit)
    return data


def unreadable(
    label: str,
    exc: OSError,
    shown: str | os.PathLike[str],
    hint: str = "",
    line: int | None = None,
) -> BatchValidationError:
    """The error for a ``label`` the OS refused to read (``hint`` says what to check)."""
    reason = exc.strerror or type(exc).__name__
    return BatchValidationError(
        f"{label} cannot be read ({reason}){hint}", path=printable(shown), line=line
    )


def too_large(
    label: str, shown: str | os.PathLike[str], limit: int, line: int | None = None
) -> BatchValidationError:
    """The error for a ``label`` over its byte limit."""
    variable = _DEFAULTS[label][0]
    return BatchValidationError(
        f"{label} is larger than {limit:,} bytes, kyro's limit; split it, or raise the "
        f"limit with {variable}=BYTES",
        path=printable(shown),
        line=line,
    )
