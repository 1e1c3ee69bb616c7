"""The hook implementations ssgan calls; the entry point in pyproject.toml names this module."""

from __future__ import annotations

from importlib.resources import files

from ssgan_core import hookimpl
from ssgan_core.config import load_preset_file
from ssgan_example_plugin import generator, loss


@hookimpl
def register_generators(register):
    register(
        "example-upsample-generator",
        generator.build_upsample_generator,
        options=generator.UpsampleGeneratorOptions,
        description="Nearest-upsample + 3x3 conv generator (no checkerboard); example plugin.",
    )


@hookimpl
def register_losses(register):
    register(
        "example-stereo-balance",
        loss.build_stereo_balance,
        options=loss.StereoBalanceOptions,
        description="Matches real/fake left-right balance and width per band; example plugin.",
    )


@hookimpl
def register_presets(register):
    path = files("ssgan_example_plugin") / "presets" / "example-tiny.toml"
    register("example-tiny", load_preset_file(str(path)), "Tiny, fast run of the example plugin's parts.")
