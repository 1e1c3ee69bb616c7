"""Registers the ``mel`` and ``mag-if`` transforms through the public hook."""

from __future__ import annotations

from ssgan_core import hookimpl
from ssgan_plugins.spectra import options

HERE = "ssgan_plugins.spectra"


@hookimpl
def register_transforms(register):
    register(
        "mel",
        f"{HERE}.mel:build_mel",
        options=options.MelOptions,
        description="Mel-band dB image (2 x n_mels x frames, default 128 x 128); decode by least squares.",
    )
    register(
        "mag-if",
        f"{HERE}.mag_if:build_mag_if",
        options=options.MagIfOptions,
        description="GANSynth magnitude + instantaneous frequency (4 x n_fft/2 x frames); decode "
        "carries phase, no inverter.",
    )
