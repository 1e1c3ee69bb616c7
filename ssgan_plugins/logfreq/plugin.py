"""Registers the log-frequency transform (``logfreq``) through the public hooks (by path: no torch)."""

from __future__ import annotations

from ssgan_core import hookimpl
from ssgan_plugins.logfreq.options import LogFreqOptions


@hookimpl
def register_transforms(register):
    register(
        "logfreq",
        "ssgan_plugins.logfreq.transform:build_logfreq",
        options=LogFreqOptions,
        description="256 log-spaced bands 20 Hz-20 kHz over a 4096-point STFT, fixed dB range.",
    )
