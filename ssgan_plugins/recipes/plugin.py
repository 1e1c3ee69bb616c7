"""Registers the measured non-paper recipes as presets, through the public hook."""

from __future__ import annotations

from importlib.resources import files

from ssgan_core import hookimpl
from ssgan_core.config import load_preset_file

PRESETS = {
    "recommended": "Recipe for your own folder of one-shots (the default of `ssgan train`): Adam, "
    "layer-norm critic, weight average, FD validation, a step schedule (docs/training.md).",
}


@hookimpl
def register_presets(register):
    folder = files("ssgan_plugins.recipes") / "presets"
    for name, description in PRESETS.items():
        register(name, load_preset_file(str(folder / f"{name}.toml")), description)
