"""PGHI per signal, compiled with numba: gradients and the heap integration in one pass.

Kept apart from :mod:`ssgan_plugins.pghi.pghi` so that ``numba`` (0.3 s to import,
plus a cached compile) is loaded only when a PGHI inversion actually runs.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _push(values: np.ndarray, slots: np.ndarray, size: int, value: float, slot: int) -> int:
    """Push ``(value, slot)`` onto the max-heap held in ``values[:size]``/``slots[:size]``."""
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if values[parent] >= value:
            break
        values[i] = values[parent]
        slots[i] = slots[parent]
        i = parent
    values[i] = value
    slots[i] = slot
    return size + 1


@njit(cache=True, nogil=True)
def _pop(values: np.ndarray, slots: np.ndarray, size: int) -> int:
    """Remove the root of the max-heap (read ``slots[0]`` first); returns the new size."""
    size -= 1
    value, slot = values[size], slots[size]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and values[child + 1] > values[child]:
            child += 1
        if values[child] <= value:
            break
        values[i] = values[child]
        slots[i] = slots[child]
        i = child
    values[i] = value
    slots[i] = slot
    return size


@njit(cache=True, nogil=True)
def _steps(
    log_mag: np.ndarray, hop: int, n_fft: int, ratio: float, time_step: np.ndarray, freq_step: np.ndarray
) -> None:
    """Phase advance per frame and per bin of one ``(bins, frames)`` log-magnitude.

    Central differences (one-sided at the edges) in the formulas of
    :mod:`ssgan_plugins.pghi.pghi`, with ``dx = hop`` samples and ``dw = 1 / n_fft``.
    """
    bins, frames = log_mag.shape
    to_time = hop * n_fft / ratio
    to_freq = -ratio / (n_fft * hop)
    for k in range(bins):
        # A real signal's magnitude is even about DC and Nyquist: mirror the missing neighbour.
        below = k - 1 if k > 0 else min(1, bins - 1)
        above = k + 1 if k < bins - 1 else max(bins - 2, 0)
        spread = 2
        carrier = hop * 2.0 * np.pi * k / n_fft
        for m in range(frames):
            per_bin = (log_mag[above, m] - log_mag[below, m]) / spread
            before, after = max(m - 1, 0), min(m + 1, frames - 1)
            per_frame = (log_mag[k, after] - log_mag[k, before]) / max(after - before, 1)
            time_step[k, m] = carrier + to_time * per_bin
            freq_step[k, m] = to_freq * per_frame


@njit(cache=True, nogil=True)
def _spread(
    values: np.ndarray,
    slots: np.ndarray,
    size: int,
    flat: np.ndarray,
    done: np.ndarray,
    out: np.ndarray,
    tstep: np.ndarray,
    fstep: np.ndarray,
    bins: int,
    frames: int,
) -> None:
    """Pop the loudest known coefficient and give each unknown neighbour its phase, until the heap is empty.

    A neighbour's phase is the popped one's plus the trapezoid rule on the two
    coefficients' steps; it then joins the heap.
    """
    while size > 0:
        slot = slots[0]
        size = _pop(values, slots, size)
        k, m = slot // frames, slot % frames
        here = out[slot]
        if m + 1 < frames and not done[slot + 1]:
            out[slot + 1] = here + 0.5 * (tstep[slot] + tstep[slot + 1])
            done[slot + 1] = True
            size = _push(values, slots, size, flat[slot + 1], slot + 1)
        if m > 0 and not done[slot - 1]:
            out[slot - 1] = here - 0.5 * (tstep[slot] + tstep[slot - 1])
            done[slot - 1] = True
            size = _push(values, slots, size, flat[slot - 1], slot - 1)
        if k + 1 < bins and not done[slot + frames]:
            out[slot + frames] = here + 0.5 * (fstep[slot] + fstep[slot + frames])
            done[slot + frames] = True
            size = _push(values, slots, size, flat[slot + frames], slot + frames)
        if k > 0 and not done[slot - frames]:
            out[slot - frames] = here - 0.5 * (fstep[slot] + fstep[slot - frames])
            done[slot - frames] = True
            size = _push(values, slots, size, flat[slot - frames], slot - frames)


@njit(cache=True, nogil=True)
def pghi_signals(
    mag: np.ndarray,
    hop: int,
    n_fft: int,
    ratio: float,
    centre: float,
    tols: np.ndarray,
    seed: int,
    first: int,
    phase: np.ndarray,
) -> None:
    """PGHI phase of each ``(bins, frames)`` signal of ``mag`` (float32), written into ``phase``.

    ``tols``: descending natural-log thresholds below each signal's peak, one stage each
    (the authors' multi-stage scheme): a stage integrates the coefficients above its
    threshold, continuing from every coefficient known from earlier stages; where the
    heap runs dry, the loudest coefficient not reached yet starts a new region at phase
    0. Coefficients below the last threshold keep a uniform random phase (seeded by
    ``seed + first + index``, so chunks run in any order give the same result).
    Log-magnitudes are clamped 11 nepers (95 dB) below the peak, as in the authors'
    code: a bin of exact zeros would otherwise give its loud neighbour an infinite
    gradient. The result is shifted from the window centre to ``torch.stft``'s
    frame-start convention and wrapped to ``[0, 2 pi)``.
    """
    signals, bins, frames = mag.shape
    count = bins * frames
    values = np.empty(count, np.float64)
    slots = np.empty(count, np.int64)
    log_mag = np.empty((bins, frames), np.float64)
    time_step = np.empty((bins, frames), np.float64)
    freq_step = np.empty((bins, frames), np.float64)
    out = np.empty((bins, frames), np.float64)
    for n in range(signals):
        np.random.seed(seed + first + n)
        peak = 0.0
        for k in range(bins):
            for m in range(frames):
                peak = max(peak, mag[n, k, m])
        peak_log = np.log(max(peak, 1e-30))
        for k in range(bins):
            for m in range(frames):
                log_mag[k, m] = max(np.log(max(mag[n, k, m], 1e-300)), peak_log - 11.0)
        _steps(log_mag, hop, n_fft, ratio, time_step, freq_step)
        flat, flat_out = log_mag.ravel(), out.ravel()
        tstep, fstep = time_step.ravel(), freq_step.ravel()
        done = np.zeros(count, np.bool_)
        for tol in tols:
            if peak <= 0.0:
                break
            eligible = flat >= peak_log + tol
            size = 0
            for slot in np.nonzero(done)[0]:  # earlier stages' coefficients continue outwards
                size = _push(values, slots, size, flat[slot], slot)
            done |= ~eligible
            _spread(values, slots, size, flat, done, flat_out, tstep, fstep, bins, frames)
            seeds = np.nonzero(~done)[0]
            for start in seeds[np.argsort(-flat[seeds])]:
                if done[start]:
                    continue
                done[start] = True
                flat_out[start] = 0.0
                values[0], slots[0] = flat[start], start
                _spread(values, slots, 1, flat, done, flat_out, tstep, fstep, bins, frames)
            done &= eligible
        turn = 2.0 * np.pi
        for k in range(bins):
            shift = turn * centre * k / n_fft
            for m in range(frames):
                if done[k * frames + m]:
                    value = out[k, m] - shift
                    phase[n, k, m] = value - turn * np.floor(value / turn)
                else:
                    phase[n, k, m] = turn * np.random.random()
