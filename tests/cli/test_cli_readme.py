"""The README's two commands are the ones the demo and `.ci/run` actually run."""

from __future__ import annotations

import re

from cli_helpers import ROOT

from kyro.cli import build_parser
from kyro.cli._demo import register as register_demo

_FENCE = re.compile(r"^```[a-z]*\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _two_commands_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Two commands\n", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in _FENCE.findall(section)]


def test_two_commands_section_has_install_then_two_commands() -> None:
    """The section holds the install block, then exactly two one-line command blocks."""
    install, main_job, tests = _two_commands_blocks()
    assert "python3 -m venv .venv" in install
    assert "python3 -m pip install -e '.[test]'" in install
    assert main_job == "python3 -m kyro demo"
    assert tests == "python3 -m pytest -q"


def test_main_job_is_the_demo_command() -> None:
    """`python3 -m kyro demo` parses to the demo command with its defaults."""
    _, main_job, _ = _two_commands_blocks()
    args = build_parser().parse_args(main_job.split()[3:])
    assert args.command == "demo"
    assert args.func.__module__ == register_demo.__module__
    assert (args.runs, args.dir) == (3, None)


def test_ci_runs_the_readme_test_command() -> None:
    """`.ci/run` runs the README's test command verbatim, as a line of its own."""
    _, _, tests = _two_commands_blocks()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert tests in ci_lines
    assert "python3 -m pip install --quiet -e '.[test]'" in ci_lines
