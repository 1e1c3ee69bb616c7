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
    log_mag: np.ndarray, hop: int, n_fft: int, carrier: np.ndarray, per_bin: np.ndarray, per_frame: np.ndarray
) -> None:
    """The three parts of the phase advance of one ``(bins, frames)`` log-magnitude.

    Per frame the phase advances by ``carrier + per_bin / ratio``, per bin by
    ``per_frame * ratio`` (the formulas of :mod:`ssgan_plugins.pghi.pghi` with ``dx =
    hop`` samples and ``dw = 1 / n_fft``; central differences, one-sided at the edges).
    The ratio stays out, so one integration serves every ratio.
    """
    bins, frames = log_mag.shape
    to_time = hop * n_fft
    to_freq = -1.0 / (n_fft * hop)
    for k in range(bins):
        # A real signal's magnitude is even about DC and Nyquist: mirror the missing neighbour.
        below = k - 1 if k > 0 else min(1, bins - 1)
        above = k + 1 if k < bins - 1 else max(bins - 2, 0)
        turn = hop * 2.0 * np.pi * k / n_fft
        for m in range(frames):
            before, after = max(m - 1, 0), min(m + 1, frames - 1)
            carrier[k, m] = turn
            per_bin[k, m] = to_time * (log_mag[above, m] - log_mag[below, m]) / 2
            per_frame[k, m] = to_freq * (log_mag[k, after] - log_mag[k, before]) / max(after - before, 1)


@njit(cache=True, nogil=True)
def _reach(out: np.ndarray, steps: np.ndarray, here: int, there: int, sign: float, along_time: bool) -> None:
    """Give ``there`` the phase of ``here`` plus the trapezoid rule on the two coefficients' steps.

    ``out`` and ``steps`` hold the three parts of the phase (carrier, time gradient,
    frequency gradient; see :func:`_steps`) side by side, ``out[part, slot]``: a move
    along time adds the first two, a move along frequency the third.
    """
    for part in range(3):
        out[part, there] = out[part, here]
    first, last = (0, 1) if along_time else (2, 2)
    for part in range(first, last + 1):
        out[part, there] += sign * 0.5 * (steps[part, here] + steps[part, there])


@njit(cache=True, nogil=True)
def _spread(
    values: np.ndarray,
    slots: np.ndarray,
    size: int,
    flat: np.ndarray,
    done: np.ndarray,
    out: np.ndarray,
    steps: np.ndarray,
    bins: int,
    frames: int,
) -> None:
    """Pop the loudest known coefficient and give each unknown neighbour its phase, until the heap is empty.

    Each neighbour reached (:func:`_reach`) joins the heap.
    """
    while size > 0:
        slot = slots[0]
        size = _pop(values, slots, size)
        k, m = slot // frames, slot % frames
        if m + 1 < frames and not done[slot + 1]:
            _reach(out, steps, slot, slot + 1, 1.0, True)
            done[slot + 1] = True
            size = _push(values, slots, size, flat[slot + 1], slot + 1)
        if m > 0 and not done[slot - 1]:
            _reach(out, steps, slot, slot - 1, -1.0, True)
            done[slot - 1] = True
            size = _push(values, slots, size, flat[slot - 1], slot - 1)
        if k + 1 < bins and not done[slot + frames]:
            _reach(out, steps, slot, slot + frames, 1.0, False)
            done[slot + frames] = True
            size = _push(values, slots, size, flat[slot + frames], slot + frames)
        if k > 0 and not done[slot - frames]:
            _reach(out, steps, slot, slot - frames, -1.0, False)
            done[slot - frames] = True
            size = _push(values, slots, size, flat[slot - frames], slot - frames)


@njit(cache=True, nogil=True)
def pghi_signals(
    mag: np.ndarray,
    hop: int,
    n_fft: int,
    ratios: np.ndarray,
    centre: float,
    tols: np.ndarray,
    seed: int,
    first: int,
    phase: np.ndarray,
) -> None:
    """PGHI phase of each ``(bins, frames)`` signal of ``mag`` (float32) for each ratio: ``phase[r, n]``.

    ``tols``: descending natural-log thresholds below each signal's peak, one stage each
    (the authors' multi-stage scheme): a stage integrates the coefficients above its
    threshold, continuing from every coefficient known from earlier stages; where the
    heap runs dry, the loudest coefficient not reached yet starts a new region at phase
    0. Coefficients below the last threshold keep a uniform random phase (seeded by
    ``seed + first + index``, so chunks run in any order give the same result).
    Log-magnitudes are clamped 11 nepers (95 dB) below the peak, as in the authors'
    code: a bin of exact zeros would otherwise give its loud neighbour an infinite
    gradient. The order of integration depends on the magnitude alone and the phase is
    linear in ``1 / ratio`` and ``ratio``, so one integration of three parts gives the
    phase for every ratio. The result is shifted from the window centre to
    ``torch.stft``'s frame-start convention and wrapped to ``[0, 2 pi)``.
    """
    signals, bins, frames = mag.shape
    count = bins * frames
    values = np.empty(count, np.float64)
    slots = np.empty(count, np.int64)
    log_mag = np.empty((bins, frames), np.float64)
    steps = np.empty((3, bins, frames), np.float64)
    out = np.empty((3, count), np.float64)
    turn = 2.0 * np.pi
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
        _steps(log_mag, hop, n_fft, steps[0], steps[1], steps[2])
        flat, flat_steps = log_mag.ravel(), steps.reshape(3, count)
        done = np.zeros(count, np.bool_)
        for tol in tols:
            if peak <= 0.0:
                break
            eligible = flat >= peak_log + tol
            size = 0
            for slot in np.nonzero(done)[0]:  # earlier stages' coefficients continue outwards
                size = _push(values, slots, size, flat[slot], int(slot))
            done |= ~eligible
            _spread(values, slots, size, flat, done, out, flat_steps, bins, frames)
            seeds = np.nonzero(~done)[0]
            for start in seeds[np.argsort(-flat[seeds])]:
                if done[start]:
                    continue
                done[start] = True
                out[:, start] = 0.0
                values[0], slots[0] = flat[start], start
                _spread(values, slots, 1, flat, done, out, flat_steps, bins, frames)
            done &= eligible
        for k in range(bins):
            shift = turn * centre * k / n_fft
            for m in range(frames):
                slot = k * frames + m
                if done[slot]:
                    for r in range(ratios.size):
                        value = out[0, slot] + out[1, slot] / ratios[r] + out[2, slot] * ratios[r] - shift
                        phase[r, n, k, m] = value - turn * np.floor(value / turn)
                else:
                    value = turn * np.random.random()
                    for r in range(ratios.size):
                        phase[r, n, k, m] = value
