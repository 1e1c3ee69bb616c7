"""The error types users see. The CLI prints these as one line, without a traceback."""

from __future__ import annotations


class SsganError(Exception):
    """Base class for errors caused by input, config or environment, not by a bug."""


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
