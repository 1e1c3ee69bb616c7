"""Augmented copies of clips for small folders: pitch/speed, decay, onset offset, width, gain.

Every transform is a batched torch function over ``(B, 2, S)`` audio with one parameter
per item, so a batch of copies costs a few tensor ops whatever its size. Copies are made
when the dataset is encoded and cached with it (``data.augment``), so training reads
them like any other image and costs the same per step.

Parameters come from a counter-based generator (Philox) keyed by the run seed and the
copy number and advanced to the clip's index, so copy ``c`` of clip ``i`` is the same
whichever batch the clip falls in and however many copies are asked for.

Why not a library: ``torch-audiomentations`` needs ``torchaudio`` (a large runtime
dependency tied to the torch build, which ssgan avoids), has no stereo-width or decay
transform, and its pitch shift is a per-example loop; ``audiomentations`` is numpy, one
sample at a time. Each of ours is a few lines of tensor code.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ssgan_core.config import AugmentConfig

PARAMETERS = ("pitch_semitones", "decay_db_per_s", "offset_ms", "width", "gain_db")
"""Drawn per copy, applied in this order."""
_DRAWS_PER_CLIP = 8
"""Uniform numbers reserved per clip and copy (two Philox blocks); ``PARAMETERS`` use the first ones."""
ANTIALIAS_RAMP = 0.02
"""Width of the low-pass taper before a speed-up, as a fraction of the Nyquist frequency."""


def draw_parameters(
    cfg: AugmentConfig, seed: int, first_clip: int, count: int, copy: int
) -> dict[str, Tensor]:
    """Copy ``copy``'s parameters for clips ``first_clip .. first_clip + count - 1``, ``(count,)`` each."""
    bits = np.random.Philox(key=(seed % 2**64) + (copy << 64))
    bits.advance(first_clip * _DRAWS_PER_CLIP // 4)  # one Philox step yields four draws
    uniform = np.random.Generator(bits).random((count, _DRAWS_PER_CLIP))
    out = {}
    for column, name in enumerate(PARAMETERS):
        low, high = getattr(cfg, name)
        out[name] = torch.from_numpy(low + uniform[:, column] * (high - low)).float()
    return out


def augment(audio: Tensor, params: dict[str, Tensor], sample_rate: int) -> Tensor:
    """``(B, 2, S)`` -> ``(B, 2, S)``: every transform of :data:`PARAMETERS` with its per-item value."""
    params = {k: v.to(audio.device) for k, v in params.items()}
    out = change_speed(audio, params["pitch_semitones"])
    out = shape_decay(out, params["decay_db_per_s"], sample_rate)
    out = shift_onset(out, params["offset_ms"], sample_rate)
    out = scale_width(out, params["width"])
    return scale_gain(out, params["gain_db"])


def change_speed(audio: Tensor, semitones: Tensor) -> Tensor:
    """Play each item ``2 ** (semitones / 12)`` times faster: ``y(t) = x(r t)``, linear interpolation.

    Speeding up shortens the clip (silence at the end); slowing down cuts its tail. Before a
    speed-up the item is low-passed below its new Nyquist frequency, so nothing aliases.
    """
    rate = torch.pow(2.0, semitones.to(audio.dtype) / 12.0)
    samples = audio.shape[-1]
    source = _antialias(audio, rate)
    position = torch.arange(samples, device=audio.device, dtype=audio.dtype)[None] * rate[:, None]
    left = position.floor().clamp(max=samples - 1)
    frac = (position - left)[:, None]
    left_i = left.long()[:, None].expand(-1, audio.shape[1], -1)
    right_i = (left_i + 1).clamp(max=samples - 1)
    a, b = source.gather(-1, left_i), source.gather(-1, right_i)
    inside = (position <= samples - 1)[:, None]
    return torch.where(inside, a + (b - a) * frac, torch.zeros((), dtype=audio.dtype, device=audio.device))


def _antialias(audio: Tensor, rate: Tensor) -> Tensor:
    """Low-pass items with ``rate > 1`` below ``1 / rate`` of Nyquist (a short taper); leave the rest."""
    if not bool((rate > 1).any()):
        return audio
    spectrum = torch.fft.rfft(audio, dim=-1)
    freqs = torch.linspace(0.0, 1.0, spectrum.shape[-1], device=audio.device, dtype=audio.dtype)
    taper = ((1.0 / rate[:, None] - freqs[None]) / ANTIALIAS_RAMP).clamp(0.0, 1.0)
    filtered = torch.fft.irfft(spectrum * taper[:, None], n=audio.shape[-1], dim=-1)
    return torch.where((rate > 1)[:, None, None], filtered, audio)


def shape_decay(audio: Tensor, db_per_s: Tensor, sample_rate: int) -> Tensor:
    """Multiply each item by ``10 ** (-db_per_s * t / 20)``, ``t`` in seconds from the clip start."""
    t = torch.arange(audio.shape[-1], device=audio.device, dtype=audio.dtype) / sample_rate
    envelope = torch.pow(10.0, -db_per_s.to(audio.dtype)[:, None] * t[None] / 20.0)
    return audio * envelope[:, None]


def shift_onset(audio: Tensor, ms: Tensor, sample_rate: int) -> Tensor:
    """Move each item ``ms`` later (zeros first) or, if negative, earlier (start cut, zeros at the end)."""
    samples = audio.shape[-1]
    shift = torch.round(ms.to(audio.dtype) * sample_rate / 1000.0).long()
    source = torch.arange(samples, device=audio.device)[None] - shift[:, None]
    inside = ((source >= 0) & (source < samples))[:, None]
    index = source.clamp(0, samples - 1)[:, None].expand(-1, audio.shape[1], -1)
    return audio.gather(-1, index) * inside


def scale_width(audio: Tensor, width: Tensor) -> Tensor:
    """Scale the side ``(L - R) / 2`` by ``width`` per item (0 = mono), keeping the mid ``(L + R) / 2``."""
    mid = (audio[:, 0] + audio[:, 1]) * 0.5
    side = (audio[:, 0] - audio[:, 1]) * 0.5 * width.to(audio.dtype)[:, None]
    return torch.stack([mid + side, mid - side], dim=1)


def scale_gain(audio: Tensor, db: Tensor) -> Tensor:
    """Multiply each item by ``10 ** (db / 20)``."""
    return audio * torch.pow(10.0, db.to(audio.dtype) / 20.0)[:, None, None]
