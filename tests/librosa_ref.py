"""``librosa.griffinlim`` with ssgan's STFT settings: the reference for tests and benchmarks.

librosa is a dev dependency (tests and benchmarks only, never imported at run time).
"""

from __future__ import annotations

import librosa
import numpy as np
import torch

from ssgan_core.interfaces import StftSpec


def start_phase(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """The phase ``librosa.griffinlim(init="random", random_state=default_rng(seed))`` draws."""
    return 2 * np.pi * np.random.default_rng(seed).random(shape)


def librosa_griffinlim(
    magnitude: torch.Tensor | np.ndarray,
    spec: StftSpec,
    iterations: int,
    momentum: float = 0.99,
    seed: int | None = 0,
) -> torch.Tensor:
    """librosa.griffinlim with our window, hop and reflect padding, zero-padded to ``spec.length``.

    ``seed=None`` starts from zero phase; otherwise from :func:`start_phase` with ``seed``.
    """
    mag = magnitude.numpy() if isinstance(magnitude, torch.Tensor) else magnitude
    out = librosa.griffinlim(
        mag,
        n_iter=iterations,
        hop_length=spec.hop_length,
        win_length=spec.win_length,
        n_fft=spec.n_fft,
        window=spec.window.numpy(),
        center=spec.center,
        pad_mode="reflect",
        momentum=momentum,
        init="random" if seed is not None else None,
        random_state=None if seed is None else np.random.default_rng(seed),
    )
    return torch.from_numpy(np.pad(out, [(0, 0)] * (out.ndim - 1) + [(0, spec.length - out.shape[-1])]))
