"""Registers the StereoSampleGAN parts and presets through the public hooks.

Factories are registered by path and options come from :mod:`ssgan_plugins.paper.options`,
so loading this plugin imports no torch; a part's module is imported when it is built.
"""

from __future__ import annotations

from ssgan_core import hookimpl
from ssgan_core.config import register_preset_folder
from ssgan_plugins.paper import options

HERE = "ssgan_plugins.paper"


@hookimpl
def register_transforms(register):
    register(
        "stft-db",
        f"{HERE}.stft_db:build_stft_db",
        options=options.StftDbOptions,
        description="Kaiser-windowed STFT magnitude in dB scaled to [-1, 1] (paper).",
    )


@hookimpl
def register_generators(register):
    register(
        "paper-generator",
        f"{HERE}.generator:build_paper_generator",
        options=options.PaperGeneratorOptions,
        description="DCGAN-style transposed-conv generator, 440,106 parameters (paper).",
    )


@hookimpl
def register_critics(register):
    register(
        "paper-critic",
        f"{HERE}.critic:build_paper_critic",
        options=options.PaperCriticOptions,
        description="Spectral-norm conv critic with attention at 32x32, 177,858 parameters (paper).",
    )


@hookimpl
def register_losses(register):
    for name, model, description in options.LOSS_TERM_OPTIONS:
        register(name, f"{HERE}.losses:build_loss_term", options=model, description=description)


@hookimpl
def register_inverters(register):
    register(
        "griffin-lim",
        f"{HERE}.griffin_lim:build_griffin_lim",
        options=options.GriffinLimOptions,
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
