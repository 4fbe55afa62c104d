"""Eval tests that start processes reuse the reliability harness in ``benchmarks/``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from eval_helpers import Clock

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))


@pytest.fixture
def clock() -> Clock:
    """The emulator's clock, moved by the test."""
    return Clock()
