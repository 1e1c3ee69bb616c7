"""The error types users see. The CLI prints these as one line, without a traceback."""

from __future__ import annotations


class SsganError(Exception):
    """Base class for errors caused by input, config or environment, not by a bug.

    ``exit_code`` is what the CLI exits with: 2 (bad input, like a usage error) unless a
    subclass says otherwise (a diverged training run is 1: the input was fine).
    """

    exit_code = 2


class ConfigError(SsganError):
    """A config field has a bad name or value; the message names the field path."""


class AudioError(SsganError):
    """An audio file could not be read or written; the message names the file and why."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


class InputError(SsganError):
    """An array, tensor or file given to a command has the wrong shape, type or values."""


class CheckpointError(SsganError):
    """A checkpoint is missing, corrupt, or does not match the config."""


class OutputError(SsganError):
    """A file or folder could not be written (full disk, read-only, a file in the way)."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


class AudioWarning(UserWarning):
    """An audio file was read, but something about it deserves a word (e.g. cut short)."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason
