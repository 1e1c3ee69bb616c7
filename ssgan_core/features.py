"""Fixed, deterministic descriptors of stereo one-shots, the input of every metric.

No pretrained network may be downloaded, so quality metrics compare hand-defined
features instead of embeddings. Each feature is a plain signal measurement that a
reader can recompute from ``docs/metrics.md``; all are batched torch code.

Features are returned raw (dB, log2 Hz, ms, ratios). Nothing is standardised here:
the metrics standardise with the *reference* set's statistics, floored by
:func:`feature_resolution` so a feature that is constant in the reference (for
example stereo width of mono kicks) cannot blow up.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import torch
from rich.progress import Progress
from torch import Tensor

from ssgan_core.errors import InputError
from ssgan_core.interfaces import AUDIO_CHANNELS

N_MELS = 32
MEL_FMIN = 20.0
MEL_FMAX = 20_000.0
POWER_FLOOR = 1e-10
"""Power floor (-100 dB re. a full-scale sine's STFT power) so silence is finite."""
MEL_RANGE_DB = 80.0
"""Log-mel cells more than this far below the clip's loudest cell are raised to that level.

Like the paper representation's ``top_db``: content the images cannot carry (and an
inverter's faint artefacts there) should not dominate the comparison."""
ROLLOFF_SHARE = 0.85
LOW_BAND = (20.0, 200.0)
"""Band (Hz) searched for the fundamental of the low end."""
WIDTH_BANDS = {"low": (0.0, 200.0), "mid": (200.0, 2_000.0), "high": (2_000.0, math.inf)}
PITCH_RATE = 2_756.25
"""Rate (Hz) the clip is decimated to before pitch analysis (44.1 kHz / 16)."""
PITCH_WINDOW_S = 0.093
ENVELOPE_SMOOTH_S = 0.005
ENVELOPE_HOP_S = 0.001
_EPS = 1e-12

FEATURE_RESOLUTION = {
    "mel_mean": 0.5,
    "mel_std": 0.5,
    "centroid": 0.01,
    "rolloff": 0.01,
    "rms_db": 0.5,
    "peak_db": 0.5,
    "peak_time_ms": 1.0,
    "attack_ms": 1.0,
    "decay20_ms": 1.0,
    "decay40_ms": 1.0,
    "f0": 0.01,
    "glide_oct": 0.01,
    "width": 0.005,
    "balance": 0.005,
}
"""Smallest spread (in each feature's unit) that counts when standardising, by name prefix."""


def stft_sizes(sample_rate: int) -> tuple[int, int]:
    """``(n_fft, hop)`` of the short STFT: ~46 ms windows (2048 at 44.1 kHz), 75% overlap."""
    n_fft = 2 ** round(math.log2(sample_rate * 2048 / 44_100))
    return n_fft, n_fft // 4


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: ``2595 * log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int = N_MELS) -> np.ndarray:
    """Triangular filters (peak 1) on the HTK mel scale, ``(n_fft // 2 + 1, n_mels)``.

    Edges are ``n_mels + 2`` points equally spaced in mel between ``MEL_FMIN`` and
    ``min(MEL_FMAX, sample_rate / 2)``. A filter too narrow to cover any FFT bin gets
    weight 1 on the bin nearest its centre, so no band is constantly silent.
    """
    fmax = min(MEL_FMAX, sample_rate / 2)
    edges = mel_to_hz(np.linspace(hz_to_mel(MEL_FMIN), hz_to_mel(fmax), n_mels + 2))
    freqs = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (freqs[:, None] - lower) / (centre - lower)
    falling = (upper - freqs[:, None]) / (upper - centre)
    bank = np.clip(np.minimum(rising, falling), 0.0, None)
    empty = bank.sum(axis=0) == 0
    if empty.any():
        nearest = np.abs(freqs[:, None] - centre[empty]).argmin(axis=0)
        bank[nearest, np.flatnonzero(empty)] = 1.0
    return bank


def feature_names(n_mels: int = N_MELS) -> list[str]:
    """Names of the columns :func:`extract_features` returns, in order."""
    return [
        *(f"mel_mean_{i:02d}" for i in range(n_mels)),
        *(f"mel_std_{i:02d}" for i in range(n_mels)),
        "centroid_mean",
        "centroid_std",
        "rolloff_mean",
        "rolloff_std",
        "rms_db",
        "peak_db",
        "peak_time_ms",
        "attack_ms",
        "decay20_ms",
        "decay40_ms",
        "f0_early",
        "f0_late",
        "glide_oct",
        "width",
        *(f"width_{band}" for band in WIDTH_BANDS),
        "balance",
    ]


def feature_resolution(names: Sequence[str]) -> np.ndarray:
    """Per-column floor for the standardising spread, looked up by longest name prefix."""
    prefixes = sorted(FEATURE_RESOLUTION, key=len, reverse=True)
    out = []
    for name in names:
        match = next((p for p in prefixes if name.startswith(p)), None)
        if match is None:
            raise KeyError(f"no resolution defined for feature {name!r}")
        out.append(FEATURE_RESOLUTION[match])
    return np.asarray(out, dtype=np.float64)


# --------------------------------------------------------------------------- pieces


def _as_batch(audio: np.ndarray | Tensor) -> Tensor:
    """Check and convert to a float32 ``(B, 2, samples)`` tensor (mono is duplicated)."""
    x = torch.as_tensor(audio)
    if x.ndim != 3 or x.shape[1] not in (1, AUDIO_CHANNELS):
        raise InputError(f"audio must have shape (batch, 2, samples); got {tuple(x.shape)}")
    if x.shape[-1] < 64:
        raise InputError(f"clips are too short for features: {x.shape[-1]} samples")
    if not x.is_floating_point():
        raise InputError(f"audio must be floating point in [-1, 1]; got {x.dtype}")
    x = x.to(torch.float32)
    bad = (~torch.isfinite(x)).flatten(1).any(dim=1)
    if bad.any():
        raise InputError(f"{int(bad.sum())} of {x.shape[0]} clips contain NaN or infinite samples")
    return x.expand(-1, AUDIO_CHANNELS, -1) if x.shape[1] == 1 else x


def _stft(x: Tensor, n_fft: int, hop: int, win: int) -> Tensor:
    """Complex STFT ``(B, C, n)`` -> ``(B, C, freq, frames)``; a sine of amplitude A peaks at A/2."""
    window = torch.hann_window(win, periodic=True, dtype=x.dtype, device=x.device)
    window = window / window.sum()
    b, c, n = x.shape
    spec = torch.stft(
        x.reshape(b * c, n), n_fft, hop, win, window, center=True, pad_mode="constant", return_complex=True
    )
    return spec.reshape(b, c, *spec.shape[-2:])


def _weighted_mean_std(values: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and std over the last axis with non-negative weights; all-zero weights mean uniform."""
    w = weights + 1e-20
    w = w / w.sum(dim=-1, keepdim=True)
    mean = (w * values).sum(dim=-1)
    var = (w * (values - mean.unsqueeze(-1)) ** 2).sum(dim=-1)
    return mean, var.clamp_min(0).sqrt()


def _log2_hz(hz: Tensor) -> Tensor:
    return torch.log2(hz.clamp_min(MEL_FMIN))


def _spectral_features(x: Tensor, sample_rate: int, bank: Tensor) -> list[Tensor]:
    """Log-mel mean/std, centroid and roll-off summaries, stereo width per band, L/R balance."""
    n_fft, hop = stft_sizes(sample_rate)
    mid_side = torch.stack([x[:, 0] + x[:, 1], x[:, 0] - x[:, 1]], dim=1) / 2
    spec = _stft(mid_side, n_fft, hop, n_fft)  # (B, 2, F, T): STFT is linear, so mid/side directly
    power_ms = spec.real.square() + spec.imag.square()
    power = (power_ms[:, 0] + power_ms[:, 1]).transpose(1, 2).contiguous()  # (B, T, F) = (|L|^2 + |R|^2) / 2
    freqs = torch.arange(power.shape[-1], dtype=power.dtype, device=x.device) * sample_rate / n_fft

    mel_db = 10 * torch.log10(power @ bank + POWER_FLOOR)  # (B, T, mels)
    mel_db = mel_db.maximum(mel_db.amax(dim=(1, 2), keepdim=True) - MEL_RANGE_DB)
    mel_mean, mel_std = mel_db.mean(dim=1), mel_db.std(dim=1, correction=0)

    frame_power = power.sum(dim=-1)  # (B, T)
    centroid = (power @ freqs) / (frame_power + _EPS)
    cumulative = power.cumsum(dim=-1)
    below = (cumulative < ROLLOFF_SHARE * cumulative[..., -1:]).sum(dim=-1)
    rolloff = freqs[below.clamp_max(len(freqs) - 1)]
    c_mean, c_std = _weighted_mean_std(_log2_hz(centroid), frame_power)
    r_mean, r_std = _weighted_mean_std(_log2_hz(rolloff), frame_power)

    mid_p, side_p = power_ms.sum(dim=-1).unbind(dim=1)  # (B, F) each
    bands = torch.stack(
        [torch.ones_like(freqs)]
        + [((freqs >= lo) & (freqs < hi)).to(freqs.dtype) for lo, hi in WIDTH_BANDS.values()],
        dim=1,
    )  # (F, 1 + bands)
    side_b, mid_b = side_p @ bands, mid_p @ bands
    widths = side_b / (mid_b + side_b + _EPS)
    left, right = x.square().sum(dim=-1).unbind(dim=1)
    balance = (left - right) / (left + right + _EPS)
    return [
        mel_mean,
        mel_std,
        torch.stack([c_mean, c_std, r_mean, r_std], dim=1),
        torch.cat([widths, balance[:, None]], dim=1),
    ]


def _first_true(mask: Tensor, default: Tensor) -> Tensor:
    """Index of the first True along the last axis, or ``default`` where there is none."""
    return torch.where(mask.any(dim=-1), mask.to(torch.uint8).argmax(dim=-1), default)


def _envelope_features(x: Tensor, spectrum: Tensor, sample_rate: int) -> Tensor:
    """Level, peak time, attack and decay times from a smoothed Hilbert envelope.

    ``spectrum`` is ``rfft(x)``; the analytic signal keeps its positive frequencies, doubled.
    """
    n = x.shape[-1]
    gain = torch.full((spectrum.shape[-1],), 2.0, dtype=x.dtype, device=x.device)
    gain[0] = 1.0
    if n % 2 == 0:
        gain[-1] = 1.0
    analytic = torch.fft.ifft(spectrum * gain, n=n, dim=-1)
    inst_power = (analytic.real**2 + analytic.imag**2).mean(dim=1, keepdim=True)  # (B, 1, n)
    smooth = max(1, round(ENVELOPE_SMOOTH_S * sample_rate))
    hop = max(1, round(ENVELOPE_HOP_S * sample_rate))
    env = torch.nn.functional.avg_pool1d(inst_power, smooth, hop, ceil_mode=True).squeeze(1).sqrt()
    times_ms = (torch.arange(env.shape[-1], device=x.device) * hop + smooth / 2) * 1000 / sample_rate
    times_ms = times_ms.clamp_max(n * 1000 / sample_rate)

    peak, peak_idx = env.max(dim=-1)
    idx = torch.arange(env.shape[-1], device=x.device)
    last = torch.full_like(peak_idx, env.shape[-1] - 1)
    start = _first_true(env >= 0.1 * peak[:, None], peak_idx)
    after = idx[None, :] > peak_idx[:, None]
    end20 = _first_true(after & (env < 0.1 * peak[:, None]), last)
    end40 = _first_true(after & (env < 0.01 * peak[:, None]), last)
    t_peak = times_ms[peak_idx]

    rms = x.pow(2).mean(dim=(1, 2))
    peak_abs = x.abs().amax(dim=(1, 2))
    return torch.stack(
        [
            10 * torch.log10(rms + POWER_FLOOR),
            20 * torch.log10(peak_abs + math.sqrt(POWER_FLOOR)),
            t_peak,
            t_peak - times_ms[start],
            times_ms[end20] - t_peak,
            times_ms[end40] - t_peak,
        ],
        dim=1,
    )


def _pitch_features(spectrum: Tensor, n: int, sample_rate: int) -> Tensor:
    """Low-band spectral peak at the loudest long frame and at the last frame within 10 dB of it.

    The clip is first band-limited and decimated through its ``rfft`` spectrum to about
    ``PITCH_RATE`` Hz, so the ~93 ms analysis windows are short FFTs.
    """
    factor = max(1, round(sample_rate / PITCH_RATE))
    m = max(8, n // factor)
    low = torch.fft.irfft(spectrum[..., : m // 2 + 1], n=m, dim=-1) * (m / n)
    rate = sample_rate * m / n
    win = 2 ** round(math.log2(PITCH_WINDOW_S * rate))
    n_fft, hop = 2 * win, win // 4
    spec = _stft(low, n_fft, hop, win)
    bin_hz = rate / n_fft
    lo = max(1, math.ceil(LOW_BAND[0] / bin_hz))
    hi = min(spec.shape[2] - 2, math.floor(LOW_BAND[1] / bin_hz))
    band = spec[:, :, lo - 1 : hi + 2]  # one guard bin each side for interpolation
    power = (band.real**2 + band.imag**2).mean(dim=1)  # (B, bins + 2, T)
    log_p = torch.log(power + POWER_FLOOR)

    inner = power[:, 1:-1]  # (B, bins, T)
    k = inner.argmax(dim=1) + 1  # index into the guarded band, (B, T)
    alpha = log_p.gather(1, (k - 1).unsqueeze(1)).squeeze(1)
    beta = log_p.gather(1, k.unsqueeze(1)).squeeze(1)
    gamma = log_p.gather(1, (k + 1).unsqueeze(1)).squeeze(1)
    denom = alpha - 2 * beta + gamma
    offset = torch.where(denom.abs() > _EPS, 0.5 * (alpha - gamma) / denom, torch.zeros_like(denom))
    peak_hz = (lo - 1 + k + offset.clamp(-0.5, 0.5)) * bin_hz  # (B, T)

    energy = inner.sum(dim=1)  # (B, T)
    loudest = energy.argmax(dim=1)
    frames = torch.arange(energy.shape[1], device=spec.device)
    within = (energy >= 0.1 * energy.gather(1, loudest[:, None])) & (frames[None] >= loudest[:, None])
    late = torch.where(within, frames[None], torch.zeros_like(frames[None])).amax(dim=1)
    early_hz = _log2_hz(peak_hz.gather(1, loudest[:, None]).squeeze(1))
    late_hz = _log2_hz(peak_hz.gather(1, late[:, None]).squeeze(1))
    return torch.stack([early_hz, late_hz, late_hz - early_hz], dim=1)


# --------------------------------------------------------------------------- public


@functools.lru_cache(maxsize=8)
def _filterbank_tensor(sample_rate: int) -> Tensor:
    return torch.as_tensor(mel_filterbank(sample_rate, stft_sizes(sample_rate)[0]), dtype=torch.float32)


def extract_batch(audio: np.ndarray | Tensor, sample_rate: int) -> Tensor:
    """Features of one batch ``(B, 2, samples)``: float64 ``(B, D)``, columns as :func:`feature_names`."""
    x = _as_batch(audio)
    bank = _filterbank_tensor(sample_rate).to(x.device)
    mel_mean, mel_std, shape, stereo = _spectral_features(x, sample_rate, bank)
    spectrum = torch.fft.rfft(x, dim=-1)
    envelope = _envelope_features(x, spectrum, sample_rate)
    pitch = _pitch_features(spectrum, x.shape[-1], sample_rate)
    columns = [mel_mean, mel_std, shape, envelope, pitch, stereo]
    return torch.cat([c.to(torch.float64) for c in columns], dim=1)


def extract_features(
    audio: np.ndarray | Tensor,
    sample_rate: int,
    *,
    chunk_size: int = 32,
    progress: Progress | None = None,
    description: str = "features",
) -> tuple[np.ndarray, list[str]]:
    """Descriptors of every clip: a float64 matrix ``(N, D)`` and the ``D`` feature names.

    ``audio`` is ``(N, 2, samples)``. It is processed ``chunk_size`` clips at a time to
    bound memory; pass a rich ``Progress`` to show a bar. Work runs on ``audio``'s
    device (a tensor on the GPU stays there); the result is on the CPU.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    x = audio if isinstance(audio, Tensor) else torch.from_numpy(np.asarray(audio))
    if x.ndim != 3:
        raise InputError(f"audio must have shape (clips, 2, samples); got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise InputError("no clips to extract features from")
    task = progress.add_task(description, total=x.shape[0], status="") if progress else None
    parts = []
    with torch.inference_mode():
        for start in range(0, x.shape[0], chunk_size):
            chunk = x[start : start + chunk_size]
            parts.append(extract_batch(chunk, sample_rate).cpu())
            if progress is not None and task is not None:
                progress.advance(task, chunk.shape[0])
    return torch.cat(parts).numpy(), feature_names()


__all__ = [
    "FEATURE_RESOLUTION",
    "N_MELS",
    "extract_batch",
    "extract_features",
    "feature_names",
    "feature_resolution",
    "mel_filterbank",
]
