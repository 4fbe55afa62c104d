"""Fixtures of the eval tests (those that start processes use :mod:`tests.support.scenarios`)."""

from __future__ import annotations

import pytest

from tests.eval.eval_helpers import Clock


@pytest.fixture
def clock() -> Clock:
    """The emulator's clock, moved by the test."""
    return Clock()
