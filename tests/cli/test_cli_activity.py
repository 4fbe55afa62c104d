"""The CLI's live status line: shown on a terminal inside ``with``, gone when the block ends."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from kyro.cli._activity import Activity


def test_the_line_is_live_inside_the_block_and_stopped_after_an_error() -> None:
    """On a terminal the line runs inside ``with`` and is stopped even when the block raises."""
    activity = Activity(Console(file=io.StringIO(), force_terminal=True))
    assert activity._progress is not None
    seen: list[bool] = []

    def fail() -> None:
        with activity as entered:
            assert entered is activity
            entered.show("uploading shard 0")
            assert activity._progress is not None
            seen.append(activity._progress.live.is_started)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    assert seen == [True]
    assert not activity._progress.live.is_started
    activity.close()  # closing again is harmless
    assert not activity._progress.live.is_started


def test_off_a_terminal_nothing_is_shown() -> None:
    """Writing to a file (or with ``enabled=False``) the activity shows nothing at all."""
    out = io.StringIO()
    with Activity(Console(file=out)) as activity:
        activity.show("uploading shard 0")
    assert activity._progress is None
    assert out.getvalue() == ""
    terminal = Console(file=io.StringIO(), force_terminal=True)
    assert Activity(terminal, enabled=False)._progress is None
