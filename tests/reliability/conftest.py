"""The reliability matrix shares its scenarios with ``benchmarks/reliability.py``.

Both import them from the test-support package (:mod:`tests.support.scenarios`, the cut-point
child ``tests/support/kyro_child.py``), so the tests and the report run the same code.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.scenarios import EmulatorProcess


@pytest.fixture(scope="module")
def emulator_process() -> Iterator[EmulatorProcess]:
    """One ``python -m kyro emulator --port 0`` process for a test module's scenarios.

    Each scenario's config is unique, so its batches are told apart by their metadata.
    """
    with EmulatorProcess() as emulator:
        yield emulator
