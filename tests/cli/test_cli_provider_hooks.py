"""The built-in providers through the command line's provider hooks: options and building,
in every command that takes ``--provider`` (``serve`` and ``eval`` too)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from kyro import BatchValidationError
from kyro.cli import build_parser, main
from kyro.cli._options import make_provider
from kyro.cli._serve import _live_provider
from kyro_local import LocalProvider
from kyro_openai import OpenAIBatchProvider
from tests.cli.cli_helpers import read_csv, write_job


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


def polite_judge(body: dict[str, Any]) -> str:
    """A judge callable for ``--handler``: every reply passes, naming the model it was asked."""
    return json.dumps({"status": "SUCCESS", "root_cause": f"asked {body['model']}"})


HANDLER = f"{__name__}:polite_judge"
URL = "http://127.0.0.1:9/v1"


def test_handler_builds_a_local_provider_over_the_callable_for_every_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--handler MODULE:FUNCTION`` is the local provider's option on every command that takes
    ``--provider local``: it needs no endpoint, and the callable becomes the backend."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    config = str(tmp_path / "judges.yml")
    commands = [
        ("run", config, "t.txt"),
        ("submit", config, "t.txt", "--provider", "local"),
        ("check", config, "--provider", "local"),
    ]
    for argv in commands:
        provider = make_provider(parse(*argv, "--handler", HANDLER))
        assert isinstance(provider, LocalProvider)
        assert provider.cache_scope == "callable:polite_judge"
        anyio.run(provider.aclose)


def test_run_judges_with_a_handler_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``run --handler`` sends every request to the callable and collects its verdicts."""
    config = write_job(tmp_path, ["alpha", "beta"])
    out = tmp_path / "out.csv"
    code = main(["run", str(config), str(tmp_path / "data.jsonl"), "--handler", HANDLER,
                 "--csv", str(out), "-q"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    rows = read_csv(out)
    assert [(r["judge"], r["status"]) for r in rows] == [
        ("tone", "SUCCESS"), ("facts", "SUCCESS"), ("tone", "SUCCESS"), ("facts", "SUCCESS"),
    ]  # fmt: skip
    assert {r["root_cause"] for r in rows} == {"asked gpt-4o-mini"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--handler", HANDLER, "--base-url", URL], "pass --base-url (an endpoint) or --handler"),
        (["--handler", "polite_judge"], "--handler 'polite_judge': write it as MODULE:FUNCTION"),
        (["--handler", "json:__doc__"], "--handler 'json:__doc__' is not callable"),
        (["--handler", "no_such_module_zz:f"], "cannot import it (ModuleNotFoundError"),
        (["--handler", f"{__name__}:missing"], "cannot import it (AttributeError"),
        ([], "pass --base-url (e.g. http://127.0.0.1:11434/v1 for Ollama), set OPENAI_BASE_URL"),
    ],
)
def test_bad_handler_or_backend_is_a_clear_error(
    argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two backends, a malformed, uncallable or unimportable handler, or none at all: the
    local provider's error names the option and the fix."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    args = parse("run", str(tmp_path / "judges.yml"), "t.txt", *argv)
    with pytest.raises(BatchValidationError) as info:
        make_provider(args)
    assert message in str(info.value)


def test_an_option_of_another_provider_names_its_owner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--handler`` under ``--provider openai`` exits 2 saying whose option it is and what
    to add; an option nobody owns is plain argparse's error."""
    config = str(tmp_path / "judges.yml")
    with pytest.raises(SystemExit) as info:
        main(["submit", config, "t.txt", "--handler", HANDLER, "--local-concurrency=4"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"unrecognized arguments: --handler {HANDLER} --local-concurrency=4" in err
    assert "--handler and --local-concurrency are options of the local provider: " in err
    assert "add --provider local" in err
    with pytest.raises(SystemExit):
        main(["status", config, "--no-such-option"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: --no-such-option" in err
    assert "provider" not in err


def test_serve_builds_its_provider_through_the_hooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """serve's ``--concurrency`` is also the local provider's limit unless
    ``--local-concurrency`` says otherwise; ``--handler`` is the local provider's option; a
    batch provider is checked at start and left to each execution."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    base = ("serve", "--judges", str(tmp_path))
    jobs = tmp_path / "data" / "jobs"
    args = parse(*base, "--base-url", URL, "--concurrency", "4")
    live = _live_provider(args, jobs)
    assert isinstance(live, LocalProvider)
    assert (live.concurrency, args.live_concurrency) == (4, 4)
    assert live.state_dir == (jobs / "local").absolute()
    anyio.run(live.aclose)
    own = _live_provider(parse(*base, "--handler", HANDLER, "--local-concurrency", "32"), jobs)
    assert isinstance(own, LocalProvider)
    assert (own.concurrency, own.cache_scope) == (32, "callable:polite_judge")
    anyio.run(own.aclose)
    assert _live_provider(parse(*base, "--provider", "openai", "--base-url", URL), jobs) is None
    assert not jobs.exists()  # building touched no disk
    with pytest.raises(SystemExit):
        parse(*base, "--provider", "openai", "--handler", HANDLER)


def test_eval_picks_and_builds_its_judge_provider_through_the_hooks(tmp_path: Path) -> None:
    """eval's judges: local by default (``--judge-concurrency`` its limit, ``--handler`` its
    backend), openai with ``--batch`` or ``--check``, any ``--provider`` when named."""
    state = ("--state-dir", str(tmp_path))
    args = parse("eval", "app:f", "d.jsonl", "--judge-concurrency", "5", "--base-url", URL, *state)
    assert args.provider == "local"
    provider = make_provider(args, state_dir=tmp_path)
    assert isinstance(provider, LocalProvider)
    assert (provider.concurrency, provider.state_dir) == (5, (tmp_path / "local").absolute())
    anyio.run(provider.aclose)
    handled = make_provider(
        parse("eval", "app:f", "d.jsonl", "--handler", HANDLER), state_dir=tmp_path
    )
    assert isinstance(handled, LocalProvider)
    assert handled.cache_scope == "callable:polite_judge"
    anyio.run(handled.aclose)
    assert parse("eval", "app:f", "d.jsonl", "--batch").provider == "openai"
    assert parse("eval", "--check", "eval-1").provider == "openai"
    assert parse("eval", "app:f", "d.jsonl", "--batch", "--provider", "local").provider == "local"
    with pytest.raises(SystemExit):
        parse("eval", "app:f", "d.jsonl", "--batch", "--handler", HANDLER)


def test_an_abbreviated_provider_option_picks_the_options_it_names(tmp_path: Path) -> None:
    """``--prov openai`` (argparse's abbreviation) chooses openai's options too, so the local
    provider's ``--handler`` is refused rather than silently ignored; ``--bat`` is eval's
    ``--batch`` when choosing its default provider."""
    with pytest.raises(SystemExit):
        parse("serve", "--judges", str(tmp_path), "--prov", "openai", "--handler", HANDLER)
    assert parse("serve", "--judges", str(tmp_path), "--prov=openai").provider == "openai"
    assert parse("eval", "app:f", "d.jsonl", "--bat").provider == "openai"
