"""Registers the SpecGAN networks, the hinge loss and the presets that pair them with the
``mel`` and ``mag-if`` transforms, through the public hooks."""

from __future__ import annotations

from ssgan_core import hookimpl
from ssgan_core.config import register_preset_folder
from ssgan_plugins.specgan import options

HERE = "ssgan_plugins.specgan"


@hookimpl
def register_generators(register):
    register(
        "specgan-generator",
        f"{HERE}.networks:build_specgan_generator",
        options=options.SpecGanGeneratorOptions,
        description="SpecGAN/DCGAN transposed-conv generator sized from the transform's image "
        "(power-of-two sizes, any channel count).",
    )


@hookimpl
def register_critics(register):
    register(
        "specgan-critic",
        f"{HERE}.networks:build_specgan_critic",
        options=options.SpecGanCriticOptions,
        description="SpecGAN/DCGAN strided-conv critic sized from the transform's image.",
    )


@hookimpl
def register_losses(register):
    register(
        "hinge",
        f"{HERE}.hinge:build_hinge",
        options=options.HingeOptions,
        description="Hinge GAN loss (SNGAN).",
    )


PRESETS = {
    "specgan-kicks": "SpecGAN on kicks: 128 mel bands x 128 frames, SpecGAN networks, WGAN-GP, Adam, pghi.",
    "gansynth-kicks": "GANSynth-style kicks: magnitude + instantaneous frequency (4 x 256 x 128, no "
    "phase reconstruction), SpecGAN networks, hinge loss, Adam.",
}


@hookimpl
def register_presets(register):
    register_preset_folder(register, "ssgan_plugins.specgan", PRESETS)
