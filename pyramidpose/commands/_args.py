"""Shared argparse pieces for the subcommands: a parser that shows defaults, and range-checked types.

Every subcommand builds its parser with :class:`ArgumentParser` so that ``--help`` shows each
option's default and a bad value (``--max-frames -3``, ``--draw-thr 2``) is refused by argparse with
one line and exit status 2, before anything is loaded.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to options that have a
    meaningful default (not ``None``/``False``, and not already mentioned in the help text)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text.lower()
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or default == []
            or not action.option_strings
            or isinstance(action, argparse._HelpAction)
        ):
            return text
        return f"{text} (default: %(default)s)"


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` with :class:`HelpFormatter` as the default formatter."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """One line on stderr (not the whole usage block), exit status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def int_range(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in ``[lo, hi]`` (``hi=None``: no upper bound)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(
                f"{value} is out of range: expected {'>= ' + str(lo) if hi is None else f'{lo}..{hi}'}"
            )
        return value

    parse.__name__ = "integer"
    return parse


def float_range(lo: float, hi: float | None = None, *, lo_open: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        bad = not math.isfinite(value) or value < lo or (lo_open and value == lo) or (hi is not None and value > hi)
        if bad:
            left = "(" if lo_open else "["
            right = f"{hi}]" if hi is not None else "inf)"
            raise argparse.ArgumentTypeError(f"{text} is out of range: expected a number in {left}{lo}, {right}")
        return value

    parse.__name__ = "number"
    return parse


#: Common types: scores/thresholds in [0, 1], counts >= 1, non-negative counts, positive numbers.
unit_float = float_range(0.0, 1.0)
positive_int = int_range(1)
nonneg_int = int_range(0)
positive_float = float_range(0.0, lo_open=True)


def run_subcommands(
    argv: list[str],
    command: str,
    doc: str,
    run_parser: Callable[[], argparse.ArgumentParser],
    run: Callable[[argparse.Namespace], int],
    train_parser: Callable[[], argparse.ArgumentParser],
    train: Callable[[argparse.Namespace], int],
    eval_parser: Callable[[], argparse.ArgumentParser],
    evaluate: Callable[[argparse.Namespace], int],
) -> int:
    """The ``COMMAND [train|eval] ...`` layout shared by ``lift`` and ``forecast``: help for all three,
    then the chosen one, its output location (``--work-dir`` / ``--out``) checked before any work."""
    from pyramidpose.utils.outputs import check_output_dir, check_output_file

    if not argv or argv[0] in ("-h", "--help"):
        print(doc.strip() + "\n\n" + run_parser().format_help())
        print(f"Run 'pyramidpose {command} train --help' or 'pyramidpose {command} eval --help' for their options.")
        return 0
    if argv[0] == "train":
        args = train_parser().parse_args(argv[1:])
        check_output_dir(args.work_dir, "--work-dir")
        return train(args)
    if argv[0] == "eval":
        args = eval_parser().parse_args(argv[1:])
        check_output_file(args.out)
        return evaluate(args)
    args = run_parser().parse_args(argv)
    check_output_dir(args.out)
    return run(args)
