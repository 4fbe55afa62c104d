"""The reliability matrix shares its scenarios with ``benchmarks/reliability.py``.

``benchmarks/_scenarios.py`` (and the cut-point child ``benchmarks/_kyro_child.py``) are
imported from the benchmarks folder, so the tests and the report run the same code.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

from _scenarios import EmulatorProcess  # noqa: E402  # needs the path above


@pytest.fixture(scope="module")
def emulator_process() -> Iterator[EmulatorProcess]:
    """One ``python -m kyro emulator --port 0`` process for a test module's scenarios.

    Each scenario's config is unique, so its batches are told apart by their metadata.
    """
    with EmulatorProcess() as emulator:
        yield emulator
