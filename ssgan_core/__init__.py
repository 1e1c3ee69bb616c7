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
        AUDIO_CHANNELS,
        PAPER_IMAGE_SHAPE,
        AudioSpec,
        BuildContext,
        Clip,
        Critic,
        DatasetSource,
        Generator,
        ImageShape,
        Inverter,
        LossContext,
        LossTerm,
        SkippedItem,
        Spectrogram,
        StftSpec,
        Transform,
        image_shape_of,
        spectral_convergence,
    )

hookimpl = pluggy.HookimplMarker("ssgan")
"""Decorator for plugin hook implementations: ``@hookimpl def register_generators(register): ...``."""

try:
    __version__ = version("ssgan")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_FROM_INTERFACES = frozenset(
    {
        "AUDIO_CHANNELS",
        "PAPER_IMAGE_SHAPE",
        "AudioSpec",
        "BuildContext",
        "Clip",
        "Critic",
        "DatasetSource",
        "Generator",
        "ImageShape",
        "Inverter",
        "LossContext",
        "LossTerm",
        "SkippedItem",
        "Spectrogram",
        "StftSpec",
        "Transform",
        "image_shape_of",
        "spectral_convergence",
    }
)
_DEPRECATED = {
    "IMAGE_SIZE": ("freq", "context.image.freq"),
    "CHANNELS": ("channels", "context.image.channels"),
}
"""Names from before the image shape belonged to the transform (docs/plugins.md, migration):
they still resolve, to the paper's shape, with a warning saying what replaces them."""


def __getattr__(name: str) -> Any:
    """The interfaces (which import torch, ~1 s) load on first use, so ``ssgan --version`` starts fast."""
    if name in _FROM_INTERFACES:
        from ssgan_core import interfaces

        return getattr(interfaces, name)
    if name in _DEPRECATED:
        import warnings

        from ssgan_core.interfaces import PAPER_IMAGE_SHAPE

        field, instead = _DEPRECATED[name]
        warnings.warn(
            f"ssgan_core.{name} is the paper's image only; size parts from {instead} "
            "(the BuildContext a factory receives); see docs/plugins.md, 'Migrating'",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(PAPER_IMAGE_SHAPE, field)
    raise AttributeError(f"module 'ssgan_core' has no attribute {name!r}")


__all__ = [
    "AUDIO_CHANNELS",
    "PAPER_IMAGE_SHAPE",
    "AudioError",
    "AudioSpec",
    "BuildContext",
    "CheckpointError",
    "Clip",
    "ConfigError",
    "Critic",
    "DatasetSource",
    "Generator",
    "ImageShape",
    "InputError",
    "Inverter",
    "LossContext",
    "LossOptions",
    "LossTerm",
    "NoOptions",
    "RunConfig",
    "SkippedItem",
    "Spectrogram",
    "SsganError",
    "StftSpec",
    "Transform",
    "__version__",
    "hookimpl",
    "image_shape_of",
    "resolve_config",
    "spectral_convergence",
]
