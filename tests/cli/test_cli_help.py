"""Every command's `--help` shows a runnable example, and the parser refuses bad arguments."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kyro.cli import ExitCode, build_parser, main

COMMANDS = [
    "validate",
    "plan",
    "submit",
    "check",
    "status",
    "cancel",
    "run",
    "report",
    "cache",
    "emulator",
    "demo",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_an_example(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`kyro COMMAND --help` exits 0 and shows an example invocation of that command."""
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out
    assert f"python3 -m kyro {command}" in out


def test_top_level_help_lists_commands_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """`kyro --help` lists every command and the exit statuses."""
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert f"    {command} " in out
    assert "3 pending, 4 job failed/expired/cancelled" in out


def test_no_command_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    """No command prints the help, listing the commands, to stderr and returns 2."""
    assert main([]) == ExitCode.BAD_INPUT
    err = capsys.readouterr().err
    assert "kyro" in err
    assert all(f"    {command} " in err for command in COMMANDS)


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --fail-on value is an argument error, exit 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(["check", "judges.yml", "--fail-on", "sometimes"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--fail-on" in err
    assert "sometimes" in err


def test_bad_variable_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A --var without `=` is bad input, exit 2, with the fix in the message."""
    assert main(["submit", "judges.yml", "t.txt", "--var", "product"]) == ExitCode.BAD_INPUT
    assert "write it like --var product=Acme" in capsys.readouterr().err


def test_exit_codes_are_stable() -> None:
    """The exit codes are the documented numbers."""
    assert [int(code) for code in ExitCode] == [0, 1, 2, 3, 4, 5, 70, 75]
    assert [code.name for code in ExitCode] == [
        "OK",
        "GATE",
        "BAD_INPUT",
        "PENDING",
        "JOB_FAILED",
        "PROVIDER",
        "INTERNAL",
        "BUSY",
    ]


HELP_CHILD = """
import sys
from kyro.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(" ".join(sorted(sys.modules)), file=sys.stderr)
"""
HEAVY = ("httpx", "anyio", "rich", "starlette", "uvicorn", "msgspec", "ruamel", "tenacity")
PROVIDERS = ("kyro_openai", "kyro_anthropic", "kyro_local")


def _modules_loaded_by(*argv: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", HELP_CHILD, *argv], capture_output=True, text=True, check=True
    )
    return set(proc.stderr.split())


def test_top_level_help_imports_no_dependency_provider_or_command() -> None:
    """`kyro --help` loads no third-party library, no provider and no command module."""
    loaded = _modules_loaded_by("--help")
    tops = {name.split(".")[0] for name in loaded}
    assert tops.isdisjoint(HEAVY + PROVIDERS)
    assert "kyro.cli" in loaded
    commands = {name for name in loaded if name.startswith("kyro.cli.")}
    assert commands == {"kyro.cli._commands", "kyro.cli._exit"}


def test_a_command_help_loads_only_that_command() -> None:
    """`kyro validate --help` imports the validate module, not the serve or eval layers."""
    loaded = _modules_loaded_by("validate", "--help")
    assert "kyro.cli._validate" in loaded
    assert {"kyro.cli._serve", "kyro.cli._eval", "kyro.cli._jobs"}.isdisjoint(loaded)
    assert {name.split(".")[0] for name in loaded}.isdisjoint(("starlette", "uvicorn", "rich"))


def test_lazy_top_level_help_equals_the_full_parser_help() -> None:
    """The help printed without loading the commands is the full parser's, word for word."""
    assert build_parser(lazy=True).format_help() == build_parser().format_help()
    assert build_parser("plan", lazy=True).format_help() == build_parser().format_help()
