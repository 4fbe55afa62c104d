"""``python3 -m kyro serve``: help with examples, and clear refusals of bad setups."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.cli_helpers import ROOT
from tests.serve.serve_helpers import KEY, verdicts_of_one_execution, write_judge

pytestmark = pytest.mark.slow  # every test starts python -m kyro serve in a child process


def _serve(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python3 -m kyro serve`` run in ``cwd``, where its default data folder would go."""
    base = {k: v for k, v in os.environ.items() if k != "KYRO_SERVE_API_KEYS"}
    return subprocess.run(
        [sys.executable, "-m", "kyro", "serve", "--port", "0", *args],
        capture_output=True,
        text=True,
        env={**base, **env},
        cwd=cwd,
        timeout=60,
    )


def test_help_shows_examples(tmp_path: Path) -> None:
    """``serve --help`` shows how to start it and a curl call in the seed's shape."""
    result = _serve(["--help"], {}, tmp_path)
    assert result.returncode == 0
    assert "python3 -m kyro serve --judges judges/ --base-url" in result.stdout
    assert "/v1/judges/relevance/batch-execute/" in result.stdout
    assert "Authorization: Api-Key" in result.stdout


def test_refuses_to_start_without_keys(tmp_path: Path) -> None:
    """With no API key configured the server does not start (exit 2) and says how to fix it."""
    judges = write_judge(tmp_path / "judges")
    result = _serve(["--judges", str(judges), "--base-url", "http://127.0.0.1:9/v1"], {}, tmp_path)
    assert result.returncode == 2
    assert "no API key: set KYRO_SERVE_API_KEYS or pass --api-keys-file" in result.stderr
    assert result.stdout == ""


def test_refuses_short_keys_and_names_the_keys_file(tmp_path: Path) -> None:
    """A short key is refused without echoing it; an unreadable keys file is named."""
    judges = write_judge(tmp_path / "judges")
    args = ["--judges", str(judges), "--base-url", "http://127.0.0.1:9/v1"]
    short = _serve(args, {"KYRO_SERVE_API_KEYS": "abc123"}, tmp_path)
    assert short.returncode == 2
    assert "API key #1 is shorter than 16 characters" in short.stderr
    assert "abc123" not in short.stderr
    missing = _serve([*args, "--api-keys-file", str(tmp_path / "keys.txt")], {}, tmp_path)
    assert missing.returncode == 2
    assert "keys.txt: cannot read the API keys file" in missing.stderr


def test_a_bad_config_is_refused_with_its_position(tmp_path: Path) -> None:
    """A judges config with a mistake stops the start with file:line:column."""
    folder = tmp_path / "judges"
    folder.mkdir()
    (folder / "bad.yml").write_text(
        "version: 1\nmodel: m\njudges:\n  - name: x\n    promt: hi\n", encoding="utf-8"
    )
    result = _serve(
        ["--judges", str(folder), "--base-url", "http://127.0.0.1:9/v1"],
        {"KYRO_SERVE_API_KEYS": KEY},
        tmp_path,
    )
    assert result.returncode == 2
    assert f"{folder / 'bad.yml'}:5:5:" in result.stderr
    assert "Traceback" not in result.stderr


def test_prompt_files_outside_the_config_folder_are_refused(tmp_path: Path) -> None:
    """A version must be kept whole, so a prompt_file above the config's folder is refused."""
    folder = tmp_path / "judges"
    folder.mkdir()
    (tmp_path / "p.txt").write_text("Reply in JSON: {{input}}", encoding="utf-8")
    (folder / "j.yml").write_text(
        "version: 1\nmodel: m\njudges:\n  - name: x\n    prompt_file: ../p.txt\n"
        "    output_format: json\n",
        encoding="utf-8",
    )
    result = _serve(
        ["--judges", str(folder), "--base-url", "http://127.0.0.1:9/v1"],
        {"KYRO_SERVE_API_KEYS": KEY},
        tmp_path,
    )
    assert result.returncode == 2
    assert "prompt_file '../p.txt' is outside the config's folder" in result.stderr


def test_the_local_provider_needs_an_endpoint_or_a_handler(tmp_path: Path) -> None:
    """Without --base-url, OPENAI_BASE_URL or --handler the command says what to pass."""
    judges = write_judge(tmp_path / "judges")
    env = {"KYRO_SERVE_API_KEYS": KEY, "OPENAI_BASE_URL": ""}
    result = _serve(["--judges", str(judges)], env, tmp_path)
    assert result.returncode == 2
    assert "pass --base-url" in result.stderr
    handler = _serve(["--judges", str(judges), "--handler", "no_such_module:fn"], env, tmp_path)
    assert handler.returncode == 2
    assert "--handler 'no_such_module:fn': cannot import it" in handler.stderr


def test_provider_choice_is_refused_clearly(tmp_path: Path) -> None:
    """An unknown ``--provider`` lists the installed ones; the local provider's ``--handler``
    under a batch provider names its owner; ``--concurrency 0`` names the flag — each exit 2
    before anything is written."""
    judges = write_judge(tmp_path / "judges")
    env = {"KYRO_SERVE_API_KEYS": KEY}
    unknown = _serve(["--judges", str(judges), "--provider", "nope"], env, tmp_path)
    assert unknown.returncode == 2
    assert "unknown provider 'nope': available providers are " in unknown.stderr
    assert "local, openai" in unknown.stderr
    foreign = _serve(
        ["--judges", str(judges), "--provider", "openai", "--handler", "m:f"], env, tmp_path
    )
    assert foreign.returncode == 2
    assert "unrecognized arguments: --handler m:f" in foreign.stderr
    assert "--handler is an option of the local provider: add --provider local" in foreign.stderr
    zero = _serve(
        ["--judges", str(judges), "--base-url", "http://127.0.0.1:9/v1", "--concurrency", "0"],
        env,
        tmp_path,
    )
    assert zero.returncode == 2
    assert "--concurrency must be at least 1" in zero.stderr
    assert not (tmp_path / "kyro-serve-data").exists()


def test_the_local_provider_options_reach_the_server(tmp_path: Path) -> None:
    """``--local-concurrency`` is accepted next to ``--concurrency`` (a bad value is refused
    naming it), and ``--handler`` with ``--base-url`` is refused as two backends."""
    judges = write_judge(tmp_path / "judges")
    env = {"KYRO_SERVE_API_KEYS": KEY}
    base = ["--judges", str(judges), "--base-url", "http://127.0.0.1:9/v1"]
    zero = _serve([*base, "--concurrency", "4", "--local-concurrency", "0"], env, tmp_path)
    assert zero.returncode == 2
    assert "--local-concurrency must be at least 1, got 0" in zero.stderr
    both = _serve([*base, "--handler", "json:dumps"], env, tmp_path)
    assert both.returncode == 2
    assert "pass --base-url (an endpoint) or --handler (a Python callable), not both" in both.stderr


def test_handler_judges_every_item_through_the_callable(tmp_path: Path) -> None:
    """``serve --handler MODULE:FUNCTION`` (the local provider's option) judges each item with
    the callable, live: its verdicts come back through the API."""
    judges = write_judge(tmp_path / "judges").parent
    args = ["--judges", str(judges), "--data-dir", str(tmp_path / "data"), "--concurrency", "2"]
    args += ["--handler", "tests.cli.test_cli_provider_hooks:polite_judge"]
    env = {"PYTHONPATH": str(ROOT), "OPENAI_BASE_URL": ""}
    verdicts = verdicts_of_one_execution(args, env, tmp_path / "server.log")
    assert verdicts == [("SUCCESS", "asked judge-model")] * 3
