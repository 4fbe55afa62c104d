"""custom_id: how a request's indices travel to the provider and back.

Format: ``t<transcript>-j<judge>-r<run>``, prefixed with ``s<stage>-`` for pipeline stages
after the first (``s1-t12-j0-r2``). Only ``[A-Za-z0-9_-]``, so it is valid for OpenAI and
Anthropic alike, and at most 64 characters for any index below 10**15.
"""

from __future__ import annotations

import re

import msgspec

__all__ = ["RequestKey", "format_custom_id", "parse_custom_id"]

MAX_LENGTH = 64
_PATTERN = re.compile(r"^(?:s(\d+)-)?t(\d+)-j(\d+)-r(\d+)$")


class RequestKey(msgspec.Struct, frozen=True, order=True):
    """The indices a custom_id encodes: (stage, transcript, judge, run)."""

    stage: int
    transcript: int
    judge: int
    run: int


def format_custom_id(transcript: int, judge: int, run: int, stage: int = 0) -> str:
    """The custom_id for one request.

    Example::

        format_custom_id(12, 0, 2)            # 't12-j0-r2'
        format_custom_id(12, 0, 2, stage=1)   # 's1-t12-j0-r2'
    """
    if stage:
        return f"s{stage}-t{transcript}-j{judge}-r{run}"
    return f"t{transcript}-j{judge}-r{run}"


def parse_custom_id(custom_id: str) -> RequestKey | None:
    """The indices of a custom_id kyro made, or None for anything else.

    Example::

        parse_custom_id("t12-j0-r2")   # RequestKey(stage=0, transcript=12, judge=0, run=2)
    """
    match = _PATTERN.match(custom_id)
    if match is None:
        return None
    stage, transcript, judge, run = match.groups()
    return RequestKey(int(stage or 0), int(transcript), int(judge), int(run))
