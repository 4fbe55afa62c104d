"""Shared test setup: async tests run on anyio's plugin, pinned to the asyncio backend."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Every async test in the suite runs on asyncio."""
    return "asyncio"
