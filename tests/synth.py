"""Deterministic synthetic stereo one-shots for tests (no files, no downloads).

Keep the signatures stable: other test modules import these.
"""

from __future__ import annotations

import numpy as np


def synth_kick(
    seconds: float = 0.6,
    sample_rate: int = 44_100,
    f0: float = 55.0,
    decay: float = 0.15,
    pan: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """A kick drum: pitch-swept sine body + short noise click, exponential decay.

    ``f0`` is the final pitch of the body (Hz; the sweep starts four times higher),
    ``decay`` the amplitude time constant in seconds, ``pan`` in ``[-1, 1]`` (-1 = hard
    left) with a balance law: the far channel is scaled by ``1 - |pan|``, the near one
    keeps its level. ``seed`` only changes the click. Returns ``(2, n)`` float32 whose
    louder channel peaks at 0.9.
    """
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    sweep = 0.03  # pitch envelope time constant (s)
    # Phase of f(t) = f0 * (1 + 3 exp(-t / sweep)), integrated in closed form.
    phase = 2 * np.pi * f0 * (t + 3 * sweep * (1 - np.exp(-t / sweep)))
    body = np.sin(phase) * np.exp(-t / decay)
    rng = np.random.default_rng(seed)
    click_len = min(n, int(0.004 * sample_rate))
    click = np.zeros(n)
    click[:click_len] = rng.standard_normal(click_len) * np.linspace(1.0, 0.0, click_len) * 0.5
    mono = body + click
    mono *= 0.9 / max(np.abs(mono).max(), 1e-9)
    pan = float(np.clip(pan, -1.0, 1.0))
    gains = np.array([min(1.0, 1.0 - pan), min(1.0, 1.0 + pan)])
    return (gains[:, None] * mono[None, :]).astype(np.float32)


def synth_tone(
    seconds: float = 1.5,
    sample_rate: int = 44_100,
    f0: float = 220.0,
    decay: float = 0.5,
    harmonics: int = 6,
    width: float = 0.3,
    seed: int = 0,
) -> np.ndarray:
    """An instrument-like one-shot: decaying harmonic tone, slightly different per channel.

    ``width`` detunes the right channel's partials by up to that many Hz (a stereo
    image that a per-channel transform must keep). Returns ``(2, n)`` float32, peak 0.8.
    """
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    rng = np.random.default_rng(seed)
    amps = 1.0 / np.arange(1, harmonics + 1) * rng.uniform(0.5, 1.0, harmonics)
    freqs = f0 * np.arange(1, harmonics + 1)
    attack = np.minimum(t / 0.005, 1.0)
    env = attack * np.exp(-t / decay)
    left = (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t)).sum(0) * env
    detune = rng.uniform(-width, width, harmonics)
    right = (amps[:, None] * np.sin(2 * np.pi * (freqs + detune)[:, None] * t + 0.3)).sum(0) * env
    stereo = np.stack([left, right])
    return (stereo * (0.8 / max(np.abs(stereo).max(), 1e-9))).astype(np.float32)
