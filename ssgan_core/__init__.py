"""ssgan core: the interfaces, registries and machinery every plugin plugs into.

The public API for plugin authors is what this module exports plus the hooks in
``ssgan_core.hookspecs``. Nothing here names a concrete model.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import pluggy

from ssgan_core.config import LossOptions, RunConfig, resolve_config
from ssgan_core.errors import AudioError, CheckpointError, ConfigError, InputError, SsganError
from ssgan_core.interfaces import (
    CHANNELS,
    IMAGE_SIZE,
    AudioSpec,
    Clip,
    Critic,
    DatasetSource,
    Generator,
    Inverter,
    LossContext,
    LossTerm,
    SkippedItem,
    StftSpec,
    Transform,
)
from ssgan_core.registry import NoOptions

hookimpl = pluggy.HookimplMarker("ssgan")
"""Decorator for plugin hook implementations: ``@hookimpl def register_generators(register): ...``."""

try:
    __version__ = version("ssgan")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "CHANNELS",
    "IMAGE_SIZE",
    "AudioError",
    "AudioSpec",
    "CheckpointError",
    "Clip",
    "ConfigError",
    "Critic",
    "DatasetSource",
    "Generator",
    "InputError",
    "Inverter",
    "LossContext",
    "LossOptions",
    "LossTerm",
    "NoOptions",
    "RunConfig",
    "SkippedItem",
    "SsganError",
    "StftSpec",
    "Transform",
    "__version__",
    "hookimpl",
    "resolve_config",
]
