"""examples/seeds/: configs in the product documents' shapes validate, plan and run as written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kyro.cli import ExitCode, main
from kyro_openai.testing import Emulator, EmulatorConfig, serve
from tests.cli.cli_helpers import ROOT

pytestmark = pytest.mark.slow  # each seed example end to end over HTTP

# config -> transcript folders (relative to examples/seeds), and whether it is a pipeline
SEEDS = {
    "judges.yml": (["transcripts/qa", "transcripts/chats"], False),
    "steps.yml": (["transcripts/qa"], False),
    "pipeline.yml": (["transcripts/qa"], True),
}


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    """A copy of examples/seeds, so state folders land in the test's own directory."""
    return Path(shutil.copytree(ROOT / "examples" / "seeds", tmp_path / "seeds"))


def test_every_seed_config_is_covered() -> None:
    """Each config in examples/seeds is exercised below."""
    assert sorted(p.name for p in (ROOT / "examples" / "seeds").glob("*.yml")) == sorted(SEEDS)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seed_config_validates_plans_and_runs_on_the_emulator(
    seeds: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """validate, plan, submit and check each exit 0 with a verdict for every transcript."""
    folders, pipeline = SEEDS[name]
    config = str(seeds / name)
    transcripts = [str(seeds / folder) for folder in folders]
    assert main(["validate", config]) == ExitCode.OK
    described = capsys.readouterr().out
    assert "(from the openai provider's default model)" in described
    assert ("  stage 1: " in described) is pipeline
    assert main(["plan", config, *transcripts]) == ExitCode.OK
    planned = capsys.readouterr().out
    with Emulator(EmulatorConfig()) as emulator, serve(emulator) as url:
        base = ["--base-url", url, "-q"]
        assert main(["submit", config, *transcripts, *base]) == ExitCode.OK
        output = seeds / "out.jsonl"
        assert main(["check", config, *base, "--output", str(output)]) == ExitCode.OK
    capsys.readouterr()
    count = sum(len(list((seeds / folder).iterdir())) for folder in folders)
    assert f"plan for {config}: {count} transcripts" in planned
    evaluations = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(evaluations) == count
    for evaluation in evaluations:
        for verdict in evaluation["verdicts"].values():
            assert verdict["status"] in ("SUCCESS", "ERROR", "NA")  # a verdict, not an error
            assert verdict["root_cause"].startswith("Emulated verdict")
