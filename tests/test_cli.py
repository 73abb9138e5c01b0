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


def _help(argv: list[str], capsys) -> str:
    try:
        code = cli.main([*argv, "--help"])
    except SystemExit as exc:  # argparse's own --help
        code = exc.code
    assert code == 0, argv
    return capsys.readouterr().out


def test_every_subcommand_has_real_help_with_defaults(capsys):
    for argv in (["demo"], ["predict"], ["eval"], ["weights"], ["weights", "list"], ["weights", "download"],
                 ["train"], ["ablate"], ["lift"], ["lift", "train"], ["lift", "eval"], ["forecast"],
                 ["forecast", "train"], ["forecast", "eval"]):  # fmt: skip
        text = _help(argv, capsys)
        assert "--" in text and "usage:" in text, argv  # options are listed, not just a summary
    text = _help(["lift"], capsys)
    assert "--min-frames" in text and "(default: 1)" in text
    text = _help(["predict"], capsys)
    assert "--draw-thr" in text and "(default: 0.3)" in text and "--kpt-radius" in text


def test_out_of_range_values_are_refused_in_one_line(capsys):
    import pytest

    for argv, flag in ((["predict", "x.jpg", "--max-frames", "-3"], "--max-frames"),
                       (["predict", "x.jpg", "--draw-thr", "2"], "--draw-thr"),
                       (["predict", "x.jpg", "--batch-size", "0"], "--batch-size"),
                       (["predict", "x.jpg", "--det-thr", "nan"], "--det-thr"),
                       (["lift", "p.jsonl", "--out", "o", "--min-keypoint-score", "1.5"], "--min-keypoint-score"),
                       (["forecast", "s.npy", "--out", "o", "--fps", "0"], "--fps")):  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and flag in err and "out of range" in err, err


def test_help_into_a_closed_pipe_is_no_traceback() -> None:
    """``pyramidpose lift --help | head -1``: the reader leaves early; no BrokenPipeError traceback."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyramidpose", "lift", "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    proc.stdout.read(10)
    proc.stdout.close()  # the reader goes away before the help is written out
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
