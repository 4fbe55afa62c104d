"""LocalProvider against kyro's public provider contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kyro.provider import BatchProvider
from kyro.testing import check_provider
from kyro_local import LocalProvider


async def test_callable_backend_passes_the_conformance_kit(tmp_path: Path) -> None:
    """The callable-backed provider keeps every rule of kyro.testing's conformance kit."""
    provider = LocalProvider(handler=lambda body: '{"status": "SUCCESS"}', state_dir=tmp_path)
    await check_provider(provider, workdir=tmp_path)


async def test_http_backend_passes_the_conformance_kit(server: Any, tmp_path: Path) -> None:
    """The endpoint-backed provider keeps every rule of kyro.testing's conformance kit."""
    provider = LocalProvider(server.base_url, state_dir=tmp_path)
    try:
        await check_provider(provider, workdir=tmp_path)
    finally:
        await provider.aclose()
    assert sum(server.state.calls.values()) > 0


def test_is_a_batch_provider_with_a_clear_constructor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LocalProvider satisfies BatchProvider and demands exactly one backend."""
    provider = LocalProvider(handler=lambda body: "", state_dir=tmp_path)
    assert isinstance(provider, BatchProvider)
    assert provider.name == "local"
    assert provider.limits.max_requests == 1_000_000
    with pytest.raises(ValueError, match=r"exactly one backend: base_url=.* handler="):
        LocalProvider(state_dir=tmp_path, base_url="http://127.0.0.1:1/v1", handler=lambda body: "")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ValueError, match=r"needs a backend: pass base_url=.* handler=fn"):
        LocalProvider(state_dir=tmp_path)
