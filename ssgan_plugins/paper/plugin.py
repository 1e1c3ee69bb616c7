"""Registers the StereoSampleGAN parts and presets through the public hooks."""

from __future__ import annotations

from ssgan_core import hookimpl
from ssgan_core.config import register_preset_folder
from ssgan_plugins.paper import critic, generator, griffin_lim, losses, stft_db


@hookimpl
def register_transforms(register):
    register(
        "stft-db",
        stft_db.build_stft_db,
        options=stft_db.StftDbOptions,
        description="Kaiser-windowed STFT magnitude in dB scaled to [-1, 1] (paper).",
    )


@hookimpl
def register_generators(register):
    register(
        "paper-generator",
        generator.build_paper_generator,
        options=generator.PaperGeneratorOptions,
        description="DCGAN-style transposed-conv generator, 440,106 parameters (paper).",
    )


@hookimpl
def register_critics(register):
    register(
        "paper-critic",
        critic.build_paper_critic,
        options=critic.PaperCriticOptions,
        description="Spectral-norm conv critic with attention at 32x32, 177,858 parameters (paper).",
    )


@hookimpl
def register_losses(register):
    for name, factory, options, description in losses.LOSS_TERMS:
        register(name, factory, options=options, description=description)


@hookimpl
def register_inverters(register):
    register(
        "griffin-lim",
        griffin_lim.build_griffin_lim,
        options=griffin_lim.GriffinLimOptions,
        description="Fast (momentum) Griffin-Lim with a per-iteration noise gate (paper).",
    )


PRESETS = {
    "paper-kicks": "Curated kick set: 0.6 s clips, the paper's settings.",
    "paper-diverse-kicks": "Diverse kick set: 0.6 s clips, wider decay and tone.",
    "paper-instruments": "Instrument one-shots: 1.5 s clips.",
}


@hookimpl
def register_presets(register):
    register_preset_folder(register, "ssgan_plugins.paper", PRESETS)
