"""``mag-if``: stereo audio <-> magnitude + instantaneous-frequency image ``(4, n_fft / 2, frames)``.

GANSynth's representation (Engel et al., ICLR 2019): per channel, the log magnitude and
the instantaneous frequency (the phase's frame-to-frame difference, wrapped to
``(-pi, pi]`` and divided by pi) of a Hann STFT. Channels are ``(left magnitude, right
magnitude, left IF, right IF)``, so the first two read like any stereo spectrogram
(pictures, health checks). The Nyquist bin is dropped (as in GANSynth), so ``n_fft / 2``
rows: a power of two when ``n_fft`` is one, as SpecGAN networks need.

``decode`` integrates the IF back to phase (a cumulative sum over frames) and returns it
with the magnitude, so audio is one inverse STFT away: no inverter runs. The round trip
is exact but for the dB floor and the Nyquist bin (spectral convergence in
docs/plugins.md).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ssgan_core import AUDIO_CHANNELS, AudioSpec, ImageShape, Spectrogram, StftSpec, Transform
from ssgan_plugins.spectra import common
from ssgan_plugins.spectra.options import MagIfOptions

AMIN = 1e-10
"""Smallest magnitude (re. full scale) before log10."""


def wrap(angle: Tensor) -> Tensor:
    """Angles to ``(-pi, pi]``."""
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


class MagIfTransform(Transform):
    """Stereo clip ``(B, 2, samples)`` <-> ``(B, 4, n_fft // 2, frames)``; decode carries phase."""

    window: Tensor

    def __init__(self, options: MagIfOptions, audio: AudioSpec) -> None:
        super().__init__()
        self.options, self.audio = options, audio
        spec = common.framed_stft("mag-if", options.n_fft, options.frames, audio)
        self.hop = spec.hop_length
        self.full_scale = common.full_scale(spec)
        self.register_buffer("window", spec.window, persistent=False)
        self.layout = (
            "channels: left, right log magnitude, then left, right instantaneous frequency; freq row k "
            f"is STFT bin k at k * {audio.sample_rate / options.n_fft:g} Hz (row 0 is DC)"
        )

    @property
    def image_shape(self) -> ImageShape:
        return ImageShape(2 * AUDIO_CHANNELS, self.options.n_fft // 2, self.options.frames)

    @property
    def stft_spec(self) -> StftSpec:
        n_fft = self.options.n_fft
        return StftSpec(n_fft, self.hop, n_fft, self.window, self.audio.num_samples, center=True)

    def encode(self, audio: Tensor) -> Tensor:
        """``(B, 2, samples)`` -> ``(B, 4, n_fft // 2, frames)`` in ``[-1, 1]``."""
        common.check_audio("mag-if", audio, self.audio.num_samples)
        spectrum = self.stft_spec.stft(audio.float())[:, :, : self.options.n_fft // 2]  # no Nyquist bin
        db = 20 * torch.log10((spectrum.abs() / self.full_scale).clamp_min(AMIN))
        phase = spectrum.angle()
        if_ = wrap(torch.diff(phase, dim=-1, prepend=torch.zeros_like(phase[..., :1]))) / math.pi
        pad = (0, self.options.frames - phase.shape[-1])
        magnitude = torch.nn.functional.pad(common.to_unit(db, self.options), pad, value=-1.0)
        return torch.cat([magnitude, torch.nn.functional.pad(if_, pad)], dim=1)

    def decode(self, image: Tensor) -> Spectrogram:
        """Magnitude and phase ``(B, 2, n_fft // 2 + 1, clip frames)``; the Nyquist bin is zero."""
        common.check_image("mag-if", image, self.image_shape)
        spec = self.stft_spec
        image = image[..., : common.clip_frames(spec)].float().clamp(-1, 1)
        level, if_ = image[:, :AUDIO_CHANNELS], image[:, AUDIO_CHANNELS:]
        magnitude = torch.pow(10.0, common.from_unit(level, self.options) / 20) * self.full_scale
        magnitude = magnitude.masked_fill(level <= -1.0, 0.0)  # the floor is silence
        phase = torch.cumsum(if_ * math.pi, dim=-1)
        nyquist = (0, 0, 0, 1)
        return Spectrogram(
            torch.nn.functional.pad(magnitude, nyquist), spec, torch.nn.functional.pad(phase, nyquist)
        )


def build_mag_if(options: MagIfOptions, audio: AudioSpec) -> MagIfTransform:
    """Factory registered as ``mag-if``."""
    return MagIfTransform(options, audio)
