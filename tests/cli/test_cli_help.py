"""Every command's `--help` shows a runnable example, and the parser refuses bad arguments."""

from __future__ import annotations

import pytest

from kyro.cli import ExitCode, main

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
