"""``mel``: stereo audio <-> mel-band dB image ``(2, n_mels, frames)``.

Per channel, a Hann STFT (``n_fft``, hop chosen so the clip's frames fit ``frames``
columns), its magnitude summed into ``n_mels`` triangular bands on the Slaney mel scale
(linear below 1 kHz, logarithmic above; librosa's default, unnormalised), in dB re. a
full-scale sine, mapped from ``[db_min, db_max]`` to ``[-1, 1]``.

``decode`` maps bands back to a linear STFT magnitude with the filterbank's
pseudo-inverse (the least-squares solution of smallest norm, one batched matrix product,
clipped at zero) and returns it without phase, so the configured inverter (Griffin-Lim,
PGHI) makes the audio. Many bins share a high band, so decode spreads a band's energy
evenly over its bins: fine structure inside a band is what mel loses (the round-trip
spectral convergence in docs/plugins.md is that loss).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ssgan_core import AUDIO_CHANNELS, AudioSpec, ConfigError, ImageShape, Spectrogram, StftSpec, Transform
from ssgan_plugins.spectra import common
from ssgan_plugins.spectra.options import MelOptions

AMIN = 1e-10
"""Smallest band magnitude (re. full scale) before log10, so silence stays finite."""


def hz_to_mel(hz: Tensor) -> Tensor:
    """Slaney's mel scale: linear (200/3 Hz per mel) to 1 kHz, then logarithmic."""
    linear = hz / (200.0 / 3.0)
    log = 15.0 + torch.log(hz.clamp_min(1e-9) / 1000.0) / (
        torch.log(torch.tensor(6.4, dtype=hz.dtype)) / 27.0
    )
    return torch.where(hz >= 1000.0, log, linear)


def mel_to_hz(mel: Tensor) -> Tensor:
    linear = mel * (200.0 / 3.0)
    log = 1000.0 * torch.exp((torch.log(torch.tensor(6.4, dtype=mel.dtype)) / 27.0) * (mel - 15.0))
    return torch.where(mel >= 15.0, log, linear)


def mel_filterbank(n_bins: int, n_mels: int, sample_rate: int, fmin: float, fmax: float) -> Tensor:
    """Triangular bands ``(n_mels, n_bins)`` in float64, each peaking at 1 on its centre
    (``librosa.filters.mel(norm=None)``)."""
    edges = mel_to_hz(torch.linspace(float(hz_to_mel(torch.tensor(fmin, dtype=torch.float64))),
                                     float(hz_to_mel(torch.tensor(fmax, dtype=torch.float64))),
                                     n_mels + 2, dtype=torch.float64))  # fmt: skip
    freqs = torch.linspace(0, sample_rate / 2, n_bins, dtype=torch.float64)
    widths = edges.diff()
    rising = (freqs - edges[:-2, None]) / widths[:-1, None]
    falling = (edges[2:, None] - freqs) / widths[1:, None]
    return torch.minimum(rising, falling).clamp_min(0.0)


def pseudo_inverse(matrix: Tensor) -> Tensor:
    """Moore-Penrose pseudo-inverse through numpy's SVD: for the 128 x 1025 default bank it
    took 0.14 s, torch.linalg.pinv 3.1-4.3 s (same values to 1e-15; busy 2-core machine)."""
    return torch.from_numpy(np.linalg.pinv(matrix.numpy()))


class MelTransform(Transform):
    """Stereo clip ``(B, 2, samples)`` <-> ``(B, 2, n_mels, frames)``; decode is least squares."""

    window: Tensor
    bands: Tensor
    unbands: Tensor

    def __init__(self, options: MelOptions, audio: AudioSpec) -> None:
        super().__init__()
        self.options, self.audio = options, audio
        nyquist = audio.sample_rate / 2
        fmax = options.fmax if options.fmax is not None else nyquist
        if fmax > nyquist or options.fmin >= fmax:
            raise ConfigError(
                f"transform.fmax: bands must lie in fmin ({options.fmin:g} Hz) < fmax <= Nyquist "
                f"({nyquist:g} Hz)"
            )
        spec = common.framed_stft("mel", options.n_fft, options.frames, audio)
        self.hop = spec.hop_length
        self.full_scale = common.full_scale(spec)
        bank = mel_filterbank(options.n_fft // 2 + 1, options.n_mels, audio.sample_rate, options.fmin, fmax)
        self.register_buffer("window", spec.window, persistent=False)
        self.register_buffer("bands", bank.float(), persistent=False)
        self.register_buffer("unbands", pseudo_inverse(bank).float(), persistent=False)
        self.display_span = common.display_span(options)
        self.layout = (
            f"freq rows are {options.n_mels} mel bands (Slaney scale) from {options.fmin:g} Hz (row 0) "
            f"to {fmax:g} Hz"
        )

    @property
    def image_shape(self) -> ImageShape:
        return ImageShape(AUDIO_CHANNELS, self.options.n_mels, self.options.frames)

    @property
    def stft_spec(self) -> StftSpec:
        n_fft = self.options.n_fft
        return StftSpec(n_fft, self.hop, n_fft, self.window, self.audio.num_samples, center=True)

    def encode(self, audio: Tensor) -> Tensor:
        """``(B, 2, samples)`` -> ``(B, 2, n_mels, frames)`` in ``[-1, 1]``."""
        common.check_audio("mel", audio, self.audio.num_samples)
        magnitude = self.stft_spec.magnitude(audio.float()) / self.full_scale
        bands = torch.matmul(self.bands, magnitude)  # (B, 2, n_mels, clip frames)
        image = common.to_unit(20 * torch.log10(bands.clamp_min(AMIN)), self.options)
        pad = self.options.frames - image.shape[-1]
        return torch.nn.functional.pad(image, (0, pad), value=-1.0)

    def decode(self, image: Tensor) -> Spectrogram:
        """``(B, 2, n_mels, frames)`` -> linear magnitude ``(B, 2, n_fft // 2 + 1, clip frames)``."""
        common.check_image("mel", image, self.image_shape)
        spec = self.stft_spec
        bands = torch.pow(
            10.0, common.from_unit(image[..., : common.clip_frames(spec)].float(), self.options) / 20
        )
        magnitude = torch.matmul(self.unbands, bands).clamp_min_(0.0).mul_(self.full_scale)
        return Spectrogram(magnitude, spec)


def build_mel(options: MelOptions, audio: AudioSpec) -> MelTransform:
    """Factory registered as ``mel``."""
    return MelTransform(options, audio)
