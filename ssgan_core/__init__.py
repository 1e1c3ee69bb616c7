"""ssgan core: the interfaces, registries and machinery every plugin plugs into.

The public API for plugin authors is what this module exports plus the hooks in
``ssgan_core.hookspecs``. Nothing here names a concrete model.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

import pluggy

from ssgan_core.config import LossOptions, RunConfig, resolve_config
from ssgan_core.errors import AudioError, CheckpointError, ConfigError, InputError, SsganError
from ssgan_core.registry import NoOptions

if TYPE_CHECKING:
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

hookimpl = pluggy.HookimplMarker("ssgan")
"""Decorator for plugin hook implementations: ``@hookimpl def register_generators(register): ...``."""

try:
    __version__ = version("ssgan")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_FROM_INTERFACES = frozenset(
    {
        "CHANNELS",
        "IMAGE_SIZE",
        "AudioSpec",
        "Clip",
        "Critic",
        "DatasetSource",
        "Generator",
        "Inverter",
        "LossContext",
        "LossTerm",
        "SkippedItem",
        "StftSpec",
        "Transform",
    }
)


def __getattr__(name: str) -> Any:
    """The interfaces (which import torch, ~1 s) load on first use, so ``ssgan --version`` starts fast."""
    if name in _FROM_INTERFACES:
        from ssgan_core import interfaces

        return getattr(interfaces, name)
    raise AttributeError(f"module 'ssgan_core' has no attribute {name!r}")


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
