"""What the ``mel`` and ``mag-if`` transforms share: frame layout, checks, dB scaling."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ssgan_core import AUDIO_CHANNELS, AudioSpec, ConfigError, InputError, StftSpec
from ssgan_plugins.spectra.options import FramedOptions

DISPLAY_DB = 80.0
"""Pictures show each item from its peak down to 80 dB below it."""


def frame_hop(num_samples: int, frames: int) -> int:
    """The smallest hop whose centred STFT of ``num_samples`` has at most ``frames`` frames,
    so every frame of the clip fits in the image (none is cut, unlike stft-db's 256 of 257)."""
    return max(1, math.ceil(num_samples / (frames - 1)))


def framed_stft(name: str, n_fft: int, frames: int, audio: AudioSpec) -> StftSpec:
    """The Hann-windowed STFT spec of a transform, checked against the clip length."""
    hop = frame_hop(audio.num_samples, frames)
    if hop > n_fft // 2:
        raise ConfigError(
            f"transform.n_fft: {name} needs a window at least twice the hop, and {frames} frames over "
            f"{audio.num_samples} samples take a hop of {hop}; set transform.n_fft >= {2 * hop} "
            "or more frames"
        )
    window = torch.hann_window(n_fft)
    return StftSpec(n_fft, hop, n_fft, window, audio.num_samples, center=True)


def clip_frames(spec: StftSpec) -> int:
    """Frames of the centred STFT of one clip: the columns ``decode`` returns."""
    return spec.length // spec.hop_length + 1


def full_scale(spec: StftSpec) -> float:
    """STFT magnitude of a full-scale sine at its peak bin: the 0 dB reference."""
    return float(spec.window.double().sum()) / 2


def check_audio(name: str, audio: Tensor, num_samples: int) -> None:
    if audio.ndim != 3 or tuple(audio.shape[1:]) != (AUDIO_CHANNELS, num_samples):
        raise InputError(
            f"{name}.encode expects audio of shape (batch, {AUDIO_CHANNELS}, {num_samples}), "
            f"got {tuple(audio.shape)}"
        )


def check_image(name: str, image: Tensor, shape: tuple[int, ...]) -> None:
    if image.ndim != 4 or tuple(image.shape[1:]) != tuple(shape):
        raise InputError(
            f"{name}.decode expects images of shape (batch, {', '.join(map(str, shape))}), "
            f"got {tuple(image.shape)}"
        )


def to_unit(db: Tensor, options: FramedOptions) -> Tensor:
    """dB -> ``[-1, 1]`` over ``[db_min, db_max]``."""
    return ((db - options.db_min) * (2 / (options.db_max - options.db_min)) - 1).clamp(-1, 1)


def from_unit(image: Tensor, options: FramedOptions) -> Tensor:
    """``[-1, 1]`` -> dB, the inverse of :func:`to_unit` inside the range."""
    return (image.clamp(-1, 1) + 1) * ((options.db_max - options.db_min) / 2) + options.db_min


def display_span(options: FramedOptions) -> float:
    return min(2.0, 2.0 * DISPLAY_DB / (options.db_max - options.db_min))
