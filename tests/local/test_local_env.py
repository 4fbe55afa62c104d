"""LocalProvider reads its endpoint and key from the environment, as the command line does."""

from __future__ import annotations

from pathlib import Path

import pytest

from kyro import KyroError
from kyro_local import LocalProvider


async def test_base_url_and_key_default_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no base_url or handler, OPENAI_BASE_URL is the endpoint and OPENAI_API_KEY its key."""
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local\r")
    provider = LocalProvider(state_dir=tmp_path)
    try:
        assert "http://127.0.0.1:9/v1/chat/completions" in repr(provider)
        with pytest.raises(KyroError, match=r"ends in whitespace \(a carriage return\)"):
            provider.check_credentials()
    finally:
        await provider.aclose()
    quiet = LocalProvider(state_dir=tmp_path, api_key="")  # "" sends no key at all
    try:
        quiet.check_credentials()  # no key is fine for a local endpoint: nothing is raised
    finally:
        await quiet.aclose()


def test_no_endpoint_anywhere_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without base_url, handler or OPENAI_BASE_URL, the error names all three."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="set OPENAI_BASE_URL, or pass handler=fn"):
        LocalProvider(state_dir=tmp_path)
