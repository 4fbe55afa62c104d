"""Keeping credentials out of what kyro prints and logs.

A base URL may carry a key as userinfo (``http://user:sk-…@host/v1``), and a debug log of
httpx or httpcore shows request headers (``Authorization: Bearer sk-…``) as they are.
:func:`redact` masks both in any text; the command line's logging set-up applies it to every
record a handler emits (``kyro.cli._options.RedactingFilter``), so kyro's own loggers and the
third-party ones it configures stay clean at any verbosity. Nothing here imports ``logging``:
every error message passes through :func:`redact`, and a command that logs nothing should
not pay for it.

Example::

    redact("POST http://me:sk-123@127.0.0.1:8000/v1/files")
    # 'POST http://***@127.0.0.1:8000/v1/files'
"""

from __future__ import annotations

import re

__all__ = ["redact"]

# userinfo: everything between "//" and the last "@" before the host's end.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@?#]*@")
_BEARER = re.compile(
    r"(?i)(?P<head>\b(?:authorization|api-key|x-api-key)\b['\"]?\s*[:=,]\s*(?:b?['\"])?"
    r"(?:bearer\s+)?)[^\s'\",)\]]+"
)
_KEYLIKE = re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}")


def redact(text: str) -> str:
    """``text`` with URL userinfo, authorization header values and ``sk-…`` keys masked."""
    if "@" in text:
        text = _USERINFO.sub(r"\g<scheme>***@", text)
    text = _BEARER.sub(r"\g<head>***", text)
    return _KEYLIKE.sub("sk-***", text)
