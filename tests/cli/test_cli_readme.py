"""The README's two commands are the ones the demo and `.ci/run` actually run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kyro import load_config
from kyro.cli import build_parser
from kyro.cli._demo import register as register_demo
from tests.cli.cli_helpers import ROOT

_FENCE = re.compile(r"^```[a-z]*\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _two_commands_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Two commands\n", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in _FENCE.findall(section)]


def test_two_commands_section_has_exactly_two_commands() -> None:
    """The section holds two one-line blocks: venv + install + demo, then the test command."""
    setup, tests = _two_commands_blocks()
    assert setup.split(" && ") == [
        "python3 -m venv .venv",
        ". .venv/bin/activate",
        "python3 -m pip install -e '.[test]'",
        "python3 -m kyro demo",
    ]
    assert tests == "python3 -m pytest -q"


def test_first_command_ends_with_the_demo() -> None:
    """The first command's last step parses to the demo command with its defaults."""
    setup, _ = _two_commands_blocks()
    demo = setup.split(" && ")[-1]
    args = build_parser().parse_args(demo.split()[3:])
    assert args.command == "demo"
    assert args.func.__module__ == register_demo.__module__
    assert (args.runs, args.dir) == (3, None)


def test_ci_runs_the_readme_commands() -> None:
    """`.ci/run` installs the test extra, runs the demo and the README's test command verbatim."""
    setup, tests = _two_commands_blocks()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert ci_lines.count(tests) == 2  # the newest and the lowest dependency passes
    assert setup.split(" && ")[-1] in ci_lines
    installs = [line for line in ci_lines if line.endswith("-e '.[test]'")]
    assert len(installs) == 2
    assert "-c constraints-lowest.txt" in installs[1]
    for gate in ("ruff check .", "ruff format --check .", "mypy"):
        assert gate in ci_lines


def test_lowest_constraints_pin_every_declared_minimum() -> None:
    """constraints-lowest.txt pins each direct dependency (test extra too) to its declared floor."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared.extend(spec for spec in extra if not spec.startswith("kyro"))
    floors = {}
    for spec in declared:
        name, _, version = spec.partition(">=")
        assert version, f"{spec} has no lower bound"
        floors[name.strip().lower()] = version.split(",")[0].strip()
    pins = {}
    for line in (ROOT / "constraints-lowest.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    assert set(pins) == set(floors)
    for name, floor in floors.items():
        assert _padded(pins[name]) == _padded(floor), name


def _padded(version: str) -> tuple[int, ...]:
    parts = tuple(int(part) for part in version.split("."))
    return parts + (0,) * (3 - len(parts))


def test_readme_config_examples_load(tmp_path: Path) -> None:
    """Every YAML example of the README's "Judges config" section loads as written."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Judges config\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```yaml\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert len(blocks) == 2
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "safety.txt").write_text("Safe? {{input}}", encoding="utf-8")
    loaded = []
    for i, block in enumerate(blocks):
        path = tmp_path / f"example-{i}.yml"
        path.write_text(block, encoding="utf-8")
        loaded.append([judge.name for judge in load_config(path).judges])
    assert loaded == [["polite"], ["answers_the_question", "safety", "quality"]]
