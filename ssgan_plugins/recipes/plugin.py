"""Registers the measured non-paper recipes as presets, through the public hook."""

from __future__ import annotations

from ssgan_core import hookimpl
from ssgan_core.config import register_preset_folder

PRESETS = {
    "recommended": "Recipe for your own folder of one-shots (the default of `ssgan train`): Adam, "
    "layer-norm critic, weight average, FD validation, a step schedule, pghi; not yet validated "
    "(docs/recipe.md).",
}


@hookimpl
def register_presets(register):
    register_preset_folder(register, "ssgan_plugins.recipes", PRESETS)
