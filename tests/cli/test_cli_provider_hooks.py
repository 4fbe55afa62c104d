"""The built-in providers through the command line's provider hooks: options and building."""

from __future__ import annotations

import argparse
from pathlib import Path

import anyio
import pytest

from kyro import BatchValidationError
from kyro.cli import build_parser
from kyro.cli._options import make_provider
from kyro_local import LocalProvider
from kyro_openai import OpenAIBatchProvider


def parse(*argv: str) -> argparse.Namespace:
    """Parse ``argv`` with the provider options it asks for."""
    return build_parser(argv[0], argv=argv).parse_args(argv)


def test_local_options_join_only_when_local_is_asked_for(tmp_path: Path) -> None:
    """``--local-concurrency`` parses under ``--provider local`` (run's default too), and
    builds a LocalProvider with it, its batches under the job's state folder."""
    config = str(tmp_path / "judges.yml")
    args = parse(
        "submit", config, "t.txt", "--provider", "local", "--base-url", "http://127.0.0.1:9/v1",
        "--local-concurrency", "3",
    )  # fmt: skip
    provider = make_provider(args)
    assert isinstance(provider, LocalProvider)
    assert provider.concurrency == 3
    assert provider.state_dir == (tmp_path / ".kyro" / "local").absolute()
    anyio.run(provider.aclose)
    unset = parse("run", config, "t.txt", "--base-url", "http://127.0.0.1:9/v1")
    assert unset.local_concurrency is None
    default = make_provider(unset)
    assert isinstance(default, LocalProvider)
    assert default.concurrency == 16
    anyio.run(default.aclose)


def test_a_provider_without_hooks_gets_base_url_only(tmp_path: Path) -> None:
    """openai defines no hooks: it is built with ``base_url=`` and knows no local option."""
    config = str(tmp_path / "judges.yml")
    args = parse("status", config, "--base-url", "http://127.0.0.1:9/v1")
    provider = make_provider(args)
    assert isinstance(provider, OpenAIBatchProvider)
    assert provider.base_url == "http://127.0.0.1:9/v1"
    anyio.run(provider.aclose)
    with pytest.raises(SystemExit) as info:
        parse("status", config, "--local-concurrency", "3")
    assert info.value.code == 2


def test_local_refuses_a_missing_endpoint_and_a_zero_concurrency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local provider's own checks: an endpoint is needed, and at least one request at once."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    config = str(tmp_path / "judges.yml")
    with pytest.raises(BatchValidationError, match="needs an OpenAI-compatible endpoint"):
        make_provider(parse("check", config, "--provider", "local"))
    args = parse(
        "check", config, "--provider", "local", "--base-url", "http://127.0.0.1:9/v1",
        "--local-concurrency", "0",
    )  # fmt: skip
    with pytest.raises(BatchValidationError, match="--local-concurrency must be at least 1"):
        make_provider(args)
