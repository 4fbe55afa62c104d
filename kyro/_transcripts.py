"""Transcripts: the items judges evaluate, produced lazily from any mix of sources."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["Transcript"]


class Transcript(msgspec.Struct, frozen=True, kw_only=True):
    """One item to evaluate: its position in the input, where it came from, and its value.

    ``value`` is text (an inline string, a ``.txt`` file) or structured data (a dict, a ``.json``
    file, a ``.jsonl`` line). ``source`` is a path (``data/t1.json``; ``data/set.jsonl:17`` for a
    dataset line) or ``inline:<index>`` for values given in code.

    Example::

        Transcript(index=0, source="inline:0", value="user: hi\\nassistant: hello")
    """

    index: int
    source: str
    value: str | dict[str, Any]
