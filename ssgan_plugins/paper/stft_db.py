"""``stft-db``: the paper's representation, stereo audio <-> ``(B, 2, 256, 256)`` in ``[-1, 1]``.

Per channel: STFT with ``n_fft = win_length = 510`` (256 bins), a symmetric
``kaiser(510, beta=12)`` window, ``center=True`` with reflect padding and
``hop = samples // 255`` (103 for 0.6 s, 259 for 1.5 s at 44.1 kHz), keeping the first
256 frames. Magnitude -> dB (``20 log10(max(|X|, amin) / ref)``, floor at ``top_db``
below the peak) -> ``[-1, 1]``. The image is ``(batch, channel, freq, time)`` with
frequency bin 0 (DC) first.

Two scalings:

``paper``
    What the paper describes. Encode: each channel of each example is min-max scaled
    to ``[-1, 1]`` on its own. Decode: ``[-1, 1]`` maps linearly to ``-40..40`` dB
    (``paper_decode_range_db``). Absolute loudness and the left/right balance are
    thrown away: a quiet right channel comes back as loud as the left one.

``level`` (default)
    One fixed dB range (``level_min_db..level_max_db``) for every example and both
    channels, applied the same way on encode and decode; ``top_db`` is measured from
    the example's peak over both channels. Loudness, decay and left/right balance
    survive the round trip exactly (up to the range's clipping). Bins at or below the
    ``top_db`` floor are stored as ``-1`` (``level_floor = "silence"``), as the paper's
    per-example scaling stores its floor: silence is then the generator's saturated
    ``tanh`` value. Stored at the floor's own level (``"level"``, -0.62 for a loud
    kick), silence sits in ``tanh``'s linear range, and trained generators drew it as
    a checkerboard floor (measured in ``docs/training.md``). Both decode to bins 80 dB
    or more below the peak, which the inverter's noise gate silences.

Why ``level`` is the default: the point of the paper is stereo, and ``paper`` scaling
makes every channel span the full range, so a model trained on it cannot learn
panning or level differences between channels, and the decoded level of every clip
is arbitrary. ``level`` keeps the same STFT, dB conversion and value range, costs
nothing, and is exactly invertible. Select ``scaling = "paper"`` to reproduce the
paper (or to use checkpoints trained with it).

The default range: a full-scale DC signal has magnitude ``sum(window)`` = 182.2
(45.2 dB) with this window, so no input in ``[-1, 1]`` exceeds ``level_max_db = 46``;
``level_min_db = -54`` gives 100 dB, room for ``top_db = 80`` below a loud peak.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from ssgan_core.errors import ConfigError, InputError
from ssgan_core.interfaces import AUDIO_CHANNELS as CHANNELS
from ssgan_core.interfaces import AudioSpec, ImageShape, Spectrogram, StftSpec, Transform
from ssgan_plugins.paper.options import StftDbOptions

FRAMES = 256
"""Image columns: the first 256 STFT frames (the paper's image is 256 x 256)."""
IMAGE_SIZE = FRAMES  # n_fft 510 or 511 gives 256 bins too: the image is square


def kaiser_window(length: int, beta: float) -> Tensor:
    """Symmetric Kaiser window (``scipy.signal.windows.kaiser(length, beta)``) as float32.

    Computed by torch in float64: the same values as scipy's, without importing
    ``scipy.signal`` (0.7 s of every command's start-up).
    """
    return torch.kaiser_window(length, periodic=False, beta=beta, dtype=torch.float64).float()


def stft_cpu(flat: Tensor, n_fft: int, hop: int, window: Tensor, frames: int) -> Tensor:
    """``torch.stft(flat, n_fft, hop, n_fft, window, center=True, pad_mode="reflect")`` on the
    CPU, first ``frames`` frames: ``(rows, n_fft // 2 + 1, frames)`` complex.

    The same frames and window through scipy's FFT (pocketfft), which did these 510-point
    transforms in half the time of torch's (MKL): 2.9-3.4 vs 5.6-6.3 ms per stereo clip,
    batch 16, 2 threads, in one run on a loaded machine; results agree to 1e-6 of the peak.
    The STFT is most of the cost of encoding a folder.
    """
    import scipy.fft  # only when encoding: start-up stays free of scipy

    half = n_fft // 2
    padded = np.pad(flat.numpy(), ((0, 0), (half, half)), mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[:, ::hop][:, :frames]
    workers = max(1, torch.get_num_threads())
    spectrum = scipy.fft.rfft(windows * window.numpy(), axis=-1, workers=workers)
    return torch.from_numpy(spectrum).transpose(1, 2)


class StftDbTransform(Transform):
    """Kaiser STFT magnitude in dB, scaled to ``[-1, 1]``; see the module docstring."""

    window: Tensor

    def __init__(self, options: StftDbOptions, audio: AudioSpec) -> None:
        super().__init__()
        samples = audio.num_samples
        if samples < options.n_fft:
            raise ConfigError(
                f"audio: {audio.seconds} s at {audio.sample_rate} Hz is {samples} samples; stft-db needs "
                f"at least n_fft={options.n_fft}"
            )
        self.options, self.audio = options, audio
        self.hop_length = samples // (IMAGE_SIZE - 1)
        self.register_buffer("window", kaiser_window(options.n_fft, options.kaiser_beta))

    @property
    def display_span(self) -> float | None:  # type: ignore[override]
        """``top_db`` (80 dB if unset) in image units; ``paper`` images span [-1, 1] already."""
        o = self.options
        if o.scaling == "paper":
            return None
        return min(2.0, 2.0 * (o.top_db or 80.0) / (o.level_max_db - o.level_min_db))

    @property
    def layout(self) -> str:  # type: ignore[override]
        step = self.audio.sample_rate / self.options.n_fft
        return f"freq row k is STFT bin k at k * {step:g} Hz (row 0 is DC), linear in frequency"

    @property
    def image_shape(self) -> ImageShape:
        """``(2, 256, 256)``: stereo, ``n_fft // 2 + 1`` bins, the first 256 frames."""
        return ImageShape(CHANNELS, self.options.n_fft // 2 + 1, FRAMES)

    @property
    def stft_spec(self) -> StftSpec:
        n_fft = self.options.n_fft
        return StftSpec(n_fft, self.hop_length, n_fft, self.window, self.audio.num_samples, center=True)

    # ------------------------------------------------------------------ encode
    def magnitude(self, audio: Tensor) -> Tensor:
        """``(B, 2, samples)`` -> linear magnitude ``(B, 2, 256, 256)`` (first 256 frames)."""
        return self._spectrum(audio).abs().reshape(audio.shape[0], CHANNELS, IMAGE_SIZE, IMAGE_SIZE)

    def _spectrum(self, audio: Tensor) -> Tensor:
        """Complex STFT ``(B * 2, 256, 256)``: every channel, first 256 frames."""
        self._check(audio, (CHANNELS, self.audio.num_samples), "audio", "samples")
        flat = audio.to(self.window.dtype).reshape(audio.shape[0] * CHANNELS, -1)
        n_fft = self.options.n_fft
        if flat.device.type == "cpu" and not flat.requires_grad:
            return stft_cpu(flat, n_fft, self.hop_length, self.window, IMAGE_SIZE)
        spectrum = torch.stft(
            flat, n_fft, self.hop_length, n_fft, self.window, center=True, pad_mode="reflect",
            return_complex=True,
        )  # fmt: skip
        return spectrum[..., :IMAGE_SIZE]

    def _decibels(self, audio: Tensor) -> Tensor:
        """``20 log10(max(|X|, amin) / ref)`` ``(B, 2, 256, 256)``, as ``10 log10`` of the power.

        Computed in place in one buffer: the square root and each step's fresh tensor
        cost more than the FFT (a batch of 32 allocated ~10 buffers of 17-34 MB, each
        paged in anew), so folders encoded at half the speed. In place, it is not
        differentiable (nothing back-propagates through ``encode``).
        """
        o = self.options
        spectrum = self._spectrum(audio)
        power = spectrum.real.square()
        power.addcmul_(spectrum.imag, spectrum.imag)
        del spectrum
        db = power.clamp_min_(o.amin**2).log10_().mul_(10.0)
        if o.ref != 1.0:
            db.sub_(20.0 * math.log10(o.ref))
        return db.reshape(audio.shape[0], CHANNELS, IMAGE_SIZE, IMAGE_SIZE)

    def encode(self, audio: Tensor) -> Tensor:
        o = self.options
        db = self._decibels(audio)
        if o.scaling == "paper":
            if o.top_db is not None:
                torch.maximum(db, db.amax(dim=(2, 3), keepdim=True) - o.top_db, out=db)
            low = db.amin(dim=(2, 3), keepdim=True)
            span = (db.amax(dim=(2, 3), keepdim=True) - low).clamp_min(1e-6)
            return db.sub_(low).mul_(2.0 / span).sub_(1.0)
        floor = None if o.top_db is None else db.amax(dim=(1, 2, 3), keepdim=True) - o.top_db
        silent = db <= floor if floor is not None and o.level_floor == "silence" else None
        if floor is not None and o.level_floor == "level":
            torch.maximum(db, floor, out=db)
        scale = 2.0 / (o.level_max_db - o.level_min_db)
        image = db.mul_(scale).sub_(1.0 + o.level_min_db * scale)
        if silent is not None:
            image.masked_fill_(silent, -1.0)
        return image.clamp_(-1.0, 1.0)

    # ------------------------------------------------------------------ decode
    def decode(self, image: Tensor) -> Spectrogram:
        """``(B, 2, 256, 256)`` -> linear magnitude of :attr:`stft_spec`, no phase (the inverter finds it)."""
        o = self.options
        self._check(image, (CHANNELS, IMAGE_SIZE, IMAGE_SIZE), "image", "freq, time")
        # ref * 10^(dB / 20) as one exp of an affine map of the image, in place in one
        # buffer: measured 6x faster than the step-by-step form (a 256-item invert spent
        # 0.9 s of CPU in it).
        if o.scaling == "paper":
            slope, offset = o.paper_decode_range_db, 0.0
        else:
            slope = 0.5 * (o.level_max_db - o.level_min_db)
            offset = o.level_min_db + slope
        per_db = math.log(10.0) / 20.0
        out = image.to(self.window.dtype).clamp(-1.0, 1.0)
        magnitude = out.mul_(slope * per_db).add_(offset * per_db + math.log(o.ref)).exp_()
        return Spectrogram(magnitude, self.stft_spec)

    def _check(self, x: Tensor, tail: tuple[int, ...], what: str, names: str) -> None:
        if not isinstance(x, Tensor) or x.dim() != 1 + len(tail) or tuple(x.shape[1:]) != tail:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise InputError(
                f"stft-db {what} has shape {shape}; expected (batch, {', '.join(map(str, tail))}) "
                f"= (batch, channels, {names})"
            )
        if not x.is_floating_point():
            raise InputError(f"stft-db {what} has dtype {x.dtype}; expected a floating-point tensor")


def build_stft_db(options: StftDbOptions, audio: AudioSpec) -> StftDbTransform:
    """Factory registered as ``stft-db``."""
    return StftDbTransform(options, audio)
