"""Phase-gradient heap integration (Prusa, Balazs and Sondergaard 2017), then fast Griffin-Lim.

For a Gaussian window ``g(t) = exp(-pi t^2 / lam)`` the STFT's phase gradient is a
function of its log-magnitude's gradient. With the phase measured from the window
centre (``x`` in samples, ``w`` in cycles per sample)::

    d phase / dx = 2 pi w + (1 / lam) * d log|S| / dw      (instantaneous frequency)
    d phase / dw = -lam * d log|S| / dx                    (group delay)

so the phase can be integrated from the magnitude alone. The integration starts at the
loudest coefficient and always continues from the loudest coefficient whose phase is
known (a max-heap): the gradients are accurate where the magnitude is large, and the
errors made in quiet regions do not spread into loud ones. This runs in stages (the
authors' scheme): first over the coefficients within 15 dB of the signal's peak, then
30, then 60 dB, each stage continuing from the phases the earlier ones found.
Coefficients below the last stage carry no usable gradient; they get a random phase
and are never integrated over.

Other windows are treated as the Gaussian with the same time-frequency ratio ``lam``
(time spread / frequency spread of the squared window; :func:`window_ratio`). The paper
kick preset's Kaiser window (510 samples, beta 12) has ``lam = 0.1276 * 510^2``, 2.5 %
below the large-beta limit of a Kaiser window, ``pi L^2 / (2 beta) = 0.1309 L^2``. On a
chirp, PGHI's error is smallest at exactly this ``lam`` (tests/test_pghi.py). Recorded
sounds are not chirps: which multiple of ``lam`` suits a kick best varies from kick to
kick, so the inverter integrates once for several multiples (:func:`pghi_phases`) and
starts each item from the most consistent (:func:`most_consistent`).

PGHI's phase is a good start, not a consistent spectrogram: a few fast Griffin-Lim
iterations from it (:func:`ssgan_plugins.paper.griffin_lim.griffin_lim` with
``phase=``) cut the spectral convergence further, far below what Griffin-Lim reaches
from a zero or random start in the same iterations (docs/benchmarks.md).
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from ssgan_core.errors import InputError
from ssgan_core.interfaces import AudioSpec, Inverter, StftSpec
from ssgan_plugins.paper.griffin_lim import consistency, griffin_lim
from ssgan_plugins.pghi.options import RATIO_SCALES, TOL_DB, ChannelPhase, PghiOptions

# --------------------------------------------------------------------------- the window


def padded_window(spec: StftSpec) -> np.ndarray:
    """The window as the STFT applies it: centred in ``n_fft`` samples, float64."""
    window = spec.window.detach().cpu().double().numpy()
    if window.ndim != 1 or window.size != spec.win_length or spec.win_length > spec.n_fft:
        raise InputError(
            f"STFT window has shape {window.shape}; expected ({spec.win_length},) with "
            f"win_length <= n_fft={spec.n_fft}"
        )
    left = (spec.n_fft - spec.win_length) // 2
    return np.pad(window, (left, spec.n_fft - spec.win_length - left))


def window_centre(window: np.ndarray) -> float:
    """Centre of the squared window, in samples from its first sample (``(L - 1) / 2`` if symmetric)."""
    energy = window**2
    return float((np.arange(window.size) * energy).sum() / energy.sum())


def window_ratio(window: np.ndarray) -> float:
    """Time-frequency ratio ``lam`` (samples^2) of the Gaussian that best stands in for ``window``.

    For ``exp(-pi t^2 / lam)`` the spreads (standard deviations) of the squared window
    in time (samples) and of its squared spectrum (cycles per sample) are
    ``sqrt(lam / 4 pi)`` and ``sqrt(1 / (4 pi lam))``: their ratio is ``lam``. Other
    windows get the ratio of their own spreads; the spectrum is the DTFT, sampled by a
    16x zero-padded FFT.
    """
    energy = window**2
    t = np.arange(window.size) - window_centre(window)
    time_spread = math.sqrt((t**2 * energy).sum() / energy.sum())
    size = 16 * window.size
    power = np.abs(np.fft.fft(window, size)) ** 2
    freq = np.fft.fftfreq(size)
    freq_spread = math.sqrt((freq**2 * power).sum() / power.sum())
    return time_spread / freq_spread


# --------------------------------------------------------------------------- PGHI


def pghi(
    magnitude: Tensor,
    spec: StftSpec,
    *,
    tol_db: Sequence[float] = TOL_DB,
    seed: int = 0,
    ratio: float | None = None,
) -> Tensor:
    """PGHI phase (radians) for a linear magnitude ``(..., bins, frames)``; same shape, float32.

    Every ``(bins, frames)`` slice is one signal. The phase follows ``torch.stft``'s
    convention (measured from the frame's first sample), so ``torch.polar(magnitude,
    phase)`` is the STFT estimate. ``ratio`` replaces the window's own time-frequency
    ratio (:func:`window_ratio`), for experiments.
    """
    ratios = [window_ratio(padded_window(spec)) if ratio is None else ratio]
    return pghi_phases(magnitude, spec, ratios, tol_db=tol_db, seed=seed)[0]


def pghi_phases(
    magnitude: Tensor,
    spec: StftSpec,
    ratios: Sequence[float],
    *,
    tol_db: Sequence[float] = TOL_DB,
    seed: int = 0,
) -> Tensor:
    """:func:`pghi` for several time-frequency ratios at the cost of one: ``(len(ratios), *magnitude.shape)``.

    The heap's order depends on the magnitude alone, so one integration of three parts
    gives every ratio's phase (:func:`ssgan_plugins.pghi._heap.pghi_signals`). Signals
    run in parallel on ``torch.get_num_threads()`` threads (the integration releases
    the GIL).
    """
    from ssgan_plugins.pghi._heap import pghi_signals  # numba: imported only when used

    bins = spec.n_fft // 2 + 1
    if magnitude.dim() < 2 or magnitude.shape[-2] != bins or magnitude.shape[-1] < 1:
        raise InputError(
            f"magnitude has shape {tuple(magnitude.shape)}; expected (..., {bins} freq bins, frames) "
            f"for n_fft={spec.n_fft}"
        )
    if not tol_db or any(t >= 0 for t in tol_db) or list(tol_db) != sorted(tol_db, reverse=True):
        raise InputError(f"tol_db must be negative and descending, e.g. [-15, -30, -60] (got {list(tol_db)})")
    if not ratios or any(not r > 0 for r in ratios):
        raise InputError(f"ratios must be positive (got {list(ratios)})")
    tols = np.asarray(tol_db, dtype=np.float64) / 20 * math.log(10)
    lams = np.asarray(ratios, dtype=np.float64)
    centre = window_centre(padded_window(spec))
    flat = magnitude.detach().to("cpu", torch.float32).reshape(-1, *magnitude.shape[-2:])
    mag = torch.nan_to_num(flat, nan=0.0, posinf=0.0).clamp_min(0.0).contiguous().numpy()
    phase = np.empty((lams.size, *mag.shape), np.float32)

    def run(part: slice) -> None:
        first = part.start
        pghi_signals(mag[part], spec.hop_length, spec.n_fft, lams, centre, tols, seed, first, phase[:, part])

    signals = mag.shape[0]
    workers = max(1, min(torch.get_num_threads(), signals))
    chunk = math.ceil(signals / workers)
    parts = [slice(start, start + chunk) for start in range(0, signals, chunk)]
    if len(parts) == 1:
        run(parts[0])
    else:
        list(_pool(len(parts), os.getpid()).map(run, parts))
    return torch.from_numpy(phase).reshape(lams.size, *magnitude.shape).to(magnitude.device)


def most_consistent(magnitude: Tensor, phases: Tensor, spec: StftSpec) -> Tensor:
    """Per signal (``(bins, frames)`` slice), the candidate of ``phases`` (``(R, *magnitude.shape)``)
    whose STFT estimate is nearest to a real signal's: smallest spectral convergence of
    ``|STFT(ISTFT(polar(magnitude, phase)))|`` against ``magnitude``.

    The magnitude is all a phase reconstruction knows, and this is the error Griffin-Lim
    then reduces: on 64 held-out recorded kicks, picking among ratios x1, x1.2, x1.44 by
    it lands 0.6 dB from the best candidate chosen with hindsight (docs/benchmarks.md).
    """
    count, shape = phases.shape[0], magnitude.shape
    signals = magnitude.reshape(1, -1, *shape[-2:]).expand(count, -1, -1, -1)
    error = consistency(signals, phases.reshape(signals.shape), spec).view(count, -1)
    best = error.argmin(0)
    chosen = phases.reshape(count, -1, *shape[-2:])[best, torch.arange(best.numel(), device=best.device)]
    return chosen.reshape(shape)


@functools.cache
def _pool(workers: int, pid: int) -> ThreadPoolExecutor:
    """A kept pool of integration threads (per process: a forked child needs its own)."""
    return ThreadPoolExecutor(workers, thread_name_prefix="pghi")


def pghi_griffin_lim(
    magnitude: Tensor,
    spec: StftSpec,
    iterations: int = 10,
    momentum: float = 0.99,
    *,
    tol_db: Sequence[float] = TOL_DB,
    gate_db: float | None = -70.0,
    channel_phase: ChannelPhase = "shared-start",
    seed: int = 0,
    ratio_scales: Sequence[float] = RATIO_SCALES,
) -> Tensor:
    """PGHI's phase, then ``iterations`` of fast Griffin-Lim from it: ``(B, C, F, T)`` -> ``(B, C, samples)``.

    ``channel_phase``:

    - ``"shared-start"``: one PGHI phase per item, integrated from the channels' summed
      magnitude (the mid signal's, for channels in phase), then Griffin-Lim per channel.
      Griffin-Lim is scale-invariant, so channels that differ only in level (a pan) keep
      exactly the same phase; channels whose spectra differ drift apart as far as their
      magnitudes ask. On the dev set's training kicks: SC 1.7 dB better than ``linked``,
      and a median inter-channel phase coherence of 0.94 against 0.88 for the recordings
      (docs/benchmarks.md).
    - ``"linked"``: that phase kept shared through the iterations as well (coherence 1,
      as ``griffin-lim``'s linked mode; half the FFTs).
    - ``"independent"``: a PGHI phase per channel (coherence 0.66 on the same kicks).

    ``ratio_scales``: multiples of the window's time-frequency ratio to integrate with;
    with more than one, each PGHI signal starts from the most consistent of them
    (:func:`most_consistent`).
    """
    if magnitude.dim() != 4:
        raise InputError(
            f"magnitude has shape {tuple(magnitude.shape)}; expected (batch, channels, freq, frames)"
        )
    ratios = [window_ratio(padded_window(spec)) * scale for scale in ratio_scales]
    source = magnitude if channel_phase == "independent" else magnitude.sum(1, keepdim=True)
    phases = pghi_phases(source, spec, ratios, tol_db=tol_db, seed=seed)
    phase = phases[0] if len(ratios) == 1 else most_consistent(source, phases, spec)
    phase = phase.expand_as(magnitude)
    linked = channel_phase == "linked"
    return griffin_lim(magnitude, spec, iterations, momentum, gate_db=gate_db, phase=phase, linked=linked)


def _import_heap_in_background() -> None:
    """Start importing numba and the compiled integration (0.3 to 0.6 s, one core) on a thread.

    An inverter is built before the images are loaded and decoded, which release the
    GIL in numpy and torch; the first :func:`pghi` call waits for the import if it is
    not done yet (Python's per-module import lock).
    """
    name = "ssgan_plugins.pghi._heap"
    if name not in sys.modules:
        thread = threading.Thread(target=importlib.import_module, args=(name,), daemon=True)
        thread.start()


class Pghi(Inverter):
    """``pghi``: linear magnitude ``(B, 2, F, T)`` -> waveform ``(B, 2, spec.length)``."""

    def __init__(self, options: PghiOptions) -> None:
        super().__init__()
        self.options = options
        _import_heap_in_background()

    def forward(self, magnitude: Tensor, spec: StftSpec) -> Tensor:
        o = self.options
        return pghi_griffin_lim(
            magnitude,
            spec,
            o.iterations,
            o.momentum,
            tol_db=o.tol_db,
            gate_db=o.gate_db,
            channel_phase=o.channel_phase,
            seed=o.seed,
            ratio_scales=o.ratio_scales,
        )


def build_pghi(options: PghiOptions, audio: AudioSpec) -> Pghi:
    """Factory registered as ``pghi``."""
    return Pghi(options)
