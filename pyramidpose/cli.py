"""The ``pyramidpose`` command.

Each subcommand lives in its own module under :mod:`pyramidpose.commands` with a ``main(argv)``
function, and is imported only when it runs: ``pyramidpose eval`` must start without importing
torch. Add a subcommand by adding a row to :data:`COMMANDS`.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module under pyramidpose.commands, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "run the whole pipeline on bundled samples with the embedded default model"),
    "predict": ("predict", "2D keypoints for images, folders, globs or videos"),
    "eval": ("evaluate", "COCO keypoint AP/AR of a results file (identical to pycocotools)"),
    "weights": ("weights", "list or download the official ViTPose checkpoints"),
    "export": ("export", "export a pose checkpoint to ONNX (config in the metadata, parity checked)"),
    "train": ("train", "train or fine-tune a 2D pose model from a YAML config"),
    "distill": ("distill", "train a 2D pose student with a teacher (knowledge distillation)"),
    "ablate": ("ablate", "train and compare several configs with the same budget and seeds"),
    "lift": ("lift", "2D-to-3D lifting: train, eval, or lift tracks from a predict run"),
    "forecast": ("forecast", "future pose forecasting: train, eval, or forecast a sequence"),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    rows = "\n".join(f"  {name.ljust(width)}  {desc}" for name, (_, desc) in COMMANDS.items())
    return (
        "usage: pyramidpose <command> [options]\n\n"
        "Human pose estimation: ViTPose with feature pyramids.\n\n"
        f"commands:\n{rows}\n\n"
        "Run 'pyramidpose <command> --help' for a command's options."
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pyramidpose`` console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from pyramidpose import __version__

        print(f"pyramidpose {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"pyramidpose: unknown command '{name}'.\n\n{_usage()}", file=sys.stderr)
        return 2
    from pyramidpose.errors import PyramidPoseError

    module = importlib.import_module(f"pyramidpose.commands.{COMMANDS[name][0]}")
    try:
        return int(module.main(rest) or 0)
    except PyramidPoseError as exc:
        print(f"pyramidpose {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pyramidpose {name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (``pyramidpose lift --help | head``): not an error of ours
        _silence_stdout()
        return 141
    finally:  # flush here, also on SystemExit (--help), so a closed pipe is caught now, not at exit
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()


def _silence_stdout() -> None:
    """Point stdout at /dev/null: the interpreter's last flush has nowhere to fail."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
