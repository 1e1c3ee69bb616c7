"""Registers the log-frequency transform (``logfreq``) through the public hooks."""

from __future__ import annotations

from ssgan_core import hookimpl
from ssgan_plugins.logfreq import transform


@hookimpl
def register_transforms(register):
    register(
        "logfreq",
        transform.build_logfreq,
        options=transform.LogFreqOptions,
        description="256 log-spaced bands 20 Hz-20 kHz over a 4096-point STFT, fixed dB range.",
    )
