"""Shared test setup: async tests run on anyio's plugin, pinned to the asyncio backend.

Every test module carries the ``anyio`` marker, so each ``async def`` test runs on the plugin
with every anyio release the package allows (the plugin leaves plain functions alone).

Property tests run without Hypothesis's per-example deadline and its too-slow health check:
on a loaded two-core machine an example may take seconds, which says nothing about kyro.

Bytecode is cached even where the environment says not to (``PYTHONDONTWRITEBYTECODE``): the
suite rewrites some 130 test modules for pytest's assertions and starts hundreds of
``python -m kyro`` children, and compiling all of that afresh on every run costs more CPU than
most of the tests themselves. The caches land in ``__pycache__`` folders, which git ignores.
"""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

settings.register_profile(
    "kyro", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("kyro")


def pytest_collectstart(collector: pytest.Collector) -> None:
    """Mark every test module ``anyio``: its coroutine tests then run on the anyio plugin."""
    if isinstance(collector, pytest.Module):
        collector.add_marker(pytest.mark.anyio)


@pytest.fixture
def anyio_backend() -> str:
    """Every async test in the suite runs on asyncio."""
    return "asyncio"
