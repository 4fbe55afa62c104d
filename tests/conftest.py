"""Shared test setup: async tests run on anyio's plugin, pinned to the asyncio backend.

Property tests run without Hypothesis's per-example deadline and its too-slow health check:
on a loaded two-core machine an example may take seconds, which says nothing about kyro.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "kyro", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("kyro")


@pytest.fixture
def anyio_backend() -> str:
    """Every async test in the suite runs on asyncio."""
    return "asyncio"
