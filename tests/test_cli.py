"""The command dispatcher: help, unknown commands, and that every listed command module exists."""

from __future__ import annotations

import importlib.util

from pyramidpose import cli


def test_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_unknown_command_is_a_clear_error(capsys):
    assert cli.main(["no-such-command"]) == 2
    assert "unknown command 'no-such-command'" in capsys.readouterr().err


def test_every_command_module_exists():
    missing = [
        mod
        for mod, _ in cli.COMMANDS.values()
        if importlib.util.find_spec(f"pyramidpose.commands.{mod}") is None
    ]
    assert not missing, f"commands listed in cli.COMMANDS without a module: {missing}"
