"""Log-frequency transform: 256 geometrically spaced bands from 20 Hz to 20 kHz.

Why
---
The paper's linear STFT (n_fft 510) puts bins 86 Hz apart, so a kick's whole body
(roughly 40-120 Hz) sits in bins 0-2 and kicks with different fundamentals look
alike. Here the 256 image rows are log-spaced instead: about 25.6 rows per octave,
so 45 Hz and 60 Hz are 10.6 rows apart (their kicks peak 14 rows apart, see 2.)
rather than sharing one bin.

Construction
------------
1. **Long STFT.** A Hann-windowed STFT with ``n_fft = 4096`` (10.8 Hz bins, 93 ms
   window at 44.1 kHz). A long window is needed at all: no mapping can resolve
   20-60 Hz from bins that are wider than that whole range. Framing follows
   ``stft-db``: ``hop = samples // 255`` (103 for 0.6 s, 259 for 1.5 s) so
   ``torch.stft(center=True)`` gives at least 256 frames, and the first 256 are
   kept; ``stft_spec.length`` is the clip length, so inverters return clips of the
   run's length. The price of the long window is time smearing: a transient is
   spread over 93 ms, which the image shows as a softer attack; the waveform is
   still recoverable because the STFT is highly redundant (hop 103 of 4096).
2. **Analysis filterbank (encode).** Each band is a triangle on the linear frequency
   axis centred on its log-spaced centre frequency ``c_j``, reaching to its
   neighbours' centres, but never narrower than one STFT bin on either side. Rows
   are normalised to sum to one and applied to *power* (``|X|**2``), so a band holds
   the mean power of its range: broadband levels are the same as in the linear
   spectrum and energy is preserved when decoding.

   - Above ~400 Hz a band is wider than an STFT bin and averages several bins (up
     to ~100 near 20 kHz): a pure high tone is spread over its band.
   - Below ~400 Hz bands are narrower than the 10.8 Hz bin spacing, so the
     one-bin-minimum triangle turns into *linear interpolation* between the two
     nearest STFT bins. The 20-60 Hz region (about 40 rows) is therefore drawn from
     only 4 real bins (21.5, 32.3, 43.1, 53.8 Hz): rows there are smooth, and a
     kick's fundamental shows as a peak at its nearest STFT bin. Fundamentals at
     least one bin (~11 Hz) apart stay distinguishable, which is the resolution
     that matters for kicks (45 vs 60 Hz: measured 14 rows apart). Finer resolution
     would need a longer window and so more time smearing.
3. **Level scaling.** Band power is taken relative to a full-scale sine's STFT peak
   (``(sum(window) / 2) ** 2``), converted to dB and mapped from a *fixed* range
   ``[db_min, db_max]`` (default -90..+6 dB) to ``[-1, 1]``, nearly the range of
   ``stft-db``'s level scaling (its -54..46 dB of raw Kaiser-window magnitude is
   -93..+7 dB re. a full-scale sine). No per-clip normalisation: level and the
   balance between left and right are kept exactly, up to clipping.
4. **Decode.** The image is mapped back to band power and evaluated at every STFT
   bin frequency by linear interpolation in log frequency: the inverse of the
   sampling in step 2 where bands are narrow (below ~400 Hz the round trip is
   nearly exact) and a smooth spread of each band's mean power over its bins where
   bands are wide. Bins outside ``[fmin, fmax]`` (DC, 10.8 Hz, above 20 kHz) hold
   the nearest band's value: a kick's sub-20 Hz content is real and close to its
   20 Hz level (on the test kicks the held DC bin is within 4% of the true one), and
   fading those bins to zero instead measurably worsened the round trip (magnitude
   spectral convergence 0.063 vs 0.055). The square root gives the linear magnitude
   of the STFT that :attr:`stft_spec` describes, so any inverter can invert it.

   A least-squares (pseudo-inverse) decode was tried and rejected: on a synthetic
   kick it round-trips a little better (magnitude spectral convergence 0.050 vs
   0.055), but on smooth random images, closer to what a generator emits, it
   returns negative power in 7% of bins and overshoots its input up to 7x.
   Interpolation is non-negative and never exceeds the bands it reads.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ssgan_core import AUDIO_CHANNELS as CHANNELS
from ssgan_core import AudioSpec, ConfigError, ImageShape, InputError, Spectrogram, StftSpec, Transform
from ssgan_plugins.logfreq.options import LogFreqOptions

IMAGE_SIZE = 256
"""Bands (rows) and frames (columns) of the image, as the paper's 256 x 256."""

POWER_FLOOR = 1e-20
"""Added before taking dB so silence stays finite (far below any ``db_min``)."""


def band_centres(fmin: float, fmax: float, n_bands: int) -> Tensor:
    """Geometrically spaced centre frequencies (Hz), float64."""
    steps = torch.arange(n_bands, dtype=torch.float64) / (n_bands - 1)
    return fmin * (fmax / fmin) ** steps


def analysis_weights(centres: Tensor, bin_freqs: Tensor) -> Tensor:
    """``(n_bands, n_bins)`` triangles reaching the neighbouring centres, at least one bin wide.

    Rows sum to one (band = weighted mean of its bins' power). Where bands are
    narrower than a bin this is linear interpolation between the two nearest bins.
    """
    bin_width = float(bin_freqs[1] - bin_freqs[0])
    ratio = float(centres[1] / centres[0])
    left = (centres - centres / ratio).clamp(min=bin_width)
    right = (centres * ratio - centres).clamp(min=bin_width)
    offset = bin_freqs[None, :] - centres[:, None]
    weights = torch.where(offset < 0, 1 + offset / left[:, None], 1 - offset / right[:, None]).clamp(min=0)
    return weights / weights.sum(dim=1, keepdim=True)


def synthesis_interpolation(centres: Tensor, bin_freqs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Where each STFT bin falls on the band axis: ``(lower band, upper band, fraction)``.

    Bins below the lowest centre sit on band 0, bins above the highest on the last
    band (fraction clamped); bin power is ``(1 - frac) * p[lower] + frac * p[upper]``.
    """
    n_bands = centres.numel()
    log_step = math.log(float(centres[1] / centres[0]))
    position = torch.log(bin_freqs.clamp(min=1e-9) / centres[0]) / log_step
    position = position.clamp(0, n_bands - 1)
    lower = position.floor().long().clamp(max=n_bands - 2)
    return lower, lower + 1, position - lower


def frame_hop(num_samples: int, frames: int = IMAGE_SIZE) -> int:
    """Largest hop giving at least ``frames`` centred STFT frames (``1 + samples // hop``)."""
    return max(1, num_samples // (frames - 1))


DISPLAY_DB = 80.0
"""Pictures show each item from its peak down to 80 dB below it."""


class LogFreqTransform(Transform):
    """Stereo clip ``(B, 2, samples)`` <-> log-frequency dB image ``(B, 2, 256, 256)``.

    ``decode`` returns the linear magnitude ``(B, 2, n_fft // 2 + 1, 256)`` of the
    STFT in :attr:`stft_spec`.
    """

    window: Tensor
    analysis: Tensor
    lower: Tensor
    upper: Tensor
    fraction: Tensor
    centres: Tensor

    def __init__(self, options: LogFreqOptions, audio: AudioSpec) -> None:
        super().__init__()
        self.audio = audio
        self.options = options
        nyquist = audio.sample_rate / 2
        if options.fmax > nyquist:
            raise ConfigError(
                f"transform.fmax: {options.fmax:g} Hz is above the Nyquist frequency "
                f"({nyquist:g} Hz) of audio.sample_rate={audio.sample_rate}"
            )
        self.n_fft = options.n_fft
        self.num_samples = audio.num_samples
        self.display_span = min(2.0, 2.0 * DISPLAY_DB / (options.db_max - options.db_min))
        self.layout = (
            f"freq rows are log-spaced bands centred from {options.fmin:g} Hz (row 0) "
            f"to {options.fmax:g} Hz (row 255)"
        )
        self.hop = frame_hop(self.num_samples)
        if self.hop > self.n_fft // 2:
            raise ConfigError(
                f"transform.n_fft: {self.n_fft} is too short for {audio.seconds:g} s clips; 256 frames "
                f"need a hop of {self.hop} samples and the window must be at least twice that "
                f"(set transform.n_fft >= {2 * self.hop})"
            )
        if self.num_samples <= self.n_fft // 2:
            raise ConfigError(
                f"audio.seconds: {audio.seconds:g} s clips are shorter than half the "
                f"transform.n_fft={self.n_fft} window; use a smaller n_fft or longer clips"
            )
        bin_freqs = torch.arange(self.n_fft // 2 + 1, dtype=torch.float64) * audio.sample_rate / self.n_fft
        centres = band_centres(options.fmin, options.fmax, IMAGE_SIZE)
        window = torch.hann_window(self.n_fft, dtype=torch.float64)
        lower, upper, fraction = synthesis_interpolation(centres, bin_freqs)
        self.register_buffer("window", window.float(), persistent=False)
        self.register_buffer("analysis", analysis_weights(centres, bin_freqs).float(), persistent=False)
        self.register_buffer("lower", lower, persistent=False)
        self.register_buffer("upper", upper, persistent=False)
        self.register_buffer("fraction", fraction.float()[:, None], persistent=False)
        self.register_buffer("centres", centres.float(), persistent=False)
        self.full_scale = float(window.sum()) / 2
        """STFT magnitude of a full-scale sine at its peak bin: the 0 dB reference."""

    @property
    def image_shape(self) -> ImageShape:
        return ImageShape(CHANNELS, IMAGE_SIZE, IMAGE_SIZE)

    @property
    def stft_spec(self) -> StftSpec:
        return StftSpec(
            n_fft=self.n_fft,
            hop_length=self.hop,
            win_length=self.n_fft,
            window=self.window,
            length=self.num_samples,
            center=True,
        )

    def encode(self, audio: Tensor) -> Tensor:
        """``(B, 2, samples)`` -> ``(B, 2, 256, 256)``."""
        if audio.ndim != 3 or tuple(audio.shape[1:]) != (CHANNELS, self.num_samples):
            raise InputError(
                f"logfreq.encode expects audio of shape (batch, {CHANNELS}, {self.num_samples}) "
                f"({self.audio.seconds:g} s at {self.audio.sample_rate} Hz), got {tuple(audio.shape)}"
            )
        if not audio.is_floating_point():
            raise InputError(f"logfreq.encode expects floating-point audio, got {audio.dtype}")
        batch = audio.shape[0]
        spectrum = torch.stft(
            audio.float().reshape(batch * CHANNELS, -1),
            self.n_fft,
            self.hop,
            window=self.window,
            center=True,
            return_complex=True,
        )
        power = spectrum[..., :IMAGE_SIZE].abs().square_().div_(self.full_scale**2)
        bands = torch.matmul(self.analysis, power)
        db = 10 * torch.log10(bands + POWER_FLOOR)
        image = self._db_to_unit(db)
        return image.reshape(batch, CHANNELS, IMAGE_SIZE, IMAGE_SIZE)

    def decode(self, image: Tensor) -> Spectrogram:
        """``(B, 2, 256, 256)`` -> linear magnitude ``(B, 2, n_fft // 2 + 1, 256)``, no phase."""
        if image.ndim != 4 or tuple(image.shape[1:]) != (CHANNELS, IMAGE_SIZE, IMAGE_SIZE):
            raise InputError(
                f"logfreq.decode expects images of shape (batch, {CHANNELS}, {IMAGE_SIZE}, {IMAGE_SIZE}), "
                f"got {tuple(image.shape)}"
            )
        opts = self.options
        db = (image.float().clamp(-1, 1) + 1) * ((opts.db_max - opts.db_min) / 2) + opts.db_min
        band_power = torch.pow(10.0, db / 10)
        low = band_power.index_select(-2, self.lower)
        high = band_power.index_select(-2, self.upper)
        bin_power = torch.lerp(low, high, self.fraction)
        return Spectrogram(bin_power.sqrt_().mul_(self.full_scale), self.stft_spec)

    def _db_to_unit(self, db: Tensor) -> Tensor:
        opts = self.options
        return ((db - opts.db_min) * (2 / (opts.db_max - opts.db_min)) - 1).clamp(-1, 1)


def build_logfreq(options: LogFreqOptions, audio: AudioSpec) -> LogFreqTransform:
    """Log-frequency dB image over a 4096-point STFT, level-preserving (see module docs)."""
    return LogFreqTransform(options, audio)
