"""The public plugin API: every hook a plugin may implement.

A plugin is a module (or object) with functions decorated by ``ssgan_core.hookimpl``
and named after the hooks below, exposed through the ``ssgan`` entry-point group::

    [project.entry-points.ssgan]
    my_plugin = "my_package.plugin"

Each ``register_*`` hook receives a ``register`` callback. Call it once per part::

    register(name, factory, options=MyOptions, description="one line")

``factory(options, context)`` receives an instance of ``options`` (a pydantic model,
validated from the run config) and the run's ``ssgan_core.BuildContext`` (an
``AudioSpec`` whose ``image`` is the transform's ``ImageShape``, for generators and
critics to size themselves from), and returns the part. ``options`` defaults to a
model with no fields. Names are global per kind; use a prefix of your own (``myorg-``)
to avoid clashes.

``factory`` may also be a ``"package.module:function"`` path, imported when the part is
first built. With the options model in a module that does not import torch, loading the
plugin then imports no torch, so ``ssgan list-plugins``, ``config show`` and ``config docs``
start in a fraction of a second (the built-in plugins do this: ``ssgan_plugins/*/options.py``).

The built-in parts in ``ssgan_plugins`` register through these same hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("ssgan")

Register = Callable[..., None]


@hookspec
def register_transforms(register: Register) -> None:
    """Register audio <-> image transforms (``ssgan_core.Transform``); each declares its
    ``image_shape`` and decodes to a ``Spectrogram``.

    Called once when the plugin manager starts.
    """


@hookspec
def register_generators(register: Register) -> None:
    """Register generators (``ssgan_core.Generator``): latent -> image of ``context.image``."""


@hookspec
def register_critics(register: Register) -> None:
    """Register critics (``ssgan_core.Critic``): image of ``context.image`` -> score and features."""


@hookspec
def register_losses(register: Register) -> None:
    """Register loss terms (``ssgan_core.LossTerm``).

    Options models should subclass ``ssgan_core.LossOptions`` so every term has a
    ``weight``.
    """


@hookspec
def register_inverters(register: Register) -> None:
    """Register inverters (``ssgan_core.Inverter``): linear magnitude -> waveform."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register dataset sources (``ssgan_core.DatasetSource``) that yield clips."""


@hookspec
def register_presets(register: Callable[[str, dict[str, Any], str], None]) -> None:
    """Register named run configs: ``register(name, config_dict, description)``.

    ``config_dict`` is a (possibly partial) run config, merged over the defaults of
    ``ssgan_core.config.RunConfig``. ``ssgan_core.config.load_preset_file(path)``
    reads a TOML or JSON file into such a dict.
    """
