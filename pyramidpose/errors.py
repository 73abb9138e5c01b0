"""User-facing errors.

Anything a user can cause (a bad file, a wrong flag, a mismatched checkpoint) raises a subclass of
:class:`PyramidPoseError` with a message that says what is wrong, where, and what to do. The CLI
prints these messages without a traceback.
"""

from __future__ import annotations


class PyramidPoseError(Exception):
    """Base class for errors caused by user input, printed by the CLI without a traceback."""


class CheckpointError(PyramidPoseError):
    """A checkpoint that cannot be read or does not match the model it is loaded into."""


class DataError(PyramidPoseError):
    """An input file (image, annotation, results, motion capture, video) that cannot be used."""


class ConfigError(PyramidPoseError):
    """A config with unknown, mistyped or missing fields."""


class MissingDependencyError(PyramidPoseError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the optional package '{package}', which is not installed. "
            f"Install it with: pip install 'pyramidpose[{extra}]'"
        )
        self.package = package
        self.extra = extra


def format_keys(keys: list[str], limit: int = 12) -> str:
    """The first ``limit`` of ``keys`` for an error message, with how many more were left out."""
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")
