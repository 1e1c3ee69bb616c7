"""Built-in synthetic data: deterministic stereo kicks and tonal one-shots.

They let the main job run on a fresh machine with nothing downloaded. Every random
parameter of the whole set is drawn up front from one seeded generator, then clips
are synthesised in chunks with numpy over the chunk, so clip ``i`` is the same
whatever the chunk size. Bump ``SYNTH_VERSION`` whenever the sound changes, so
encoded caches of the old sound are not reused.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ssgan_core.interfaces import AudioSpec, Clip, DatasetSource, SkippedItem

SYNTH_VERSION = 1
CHUNK = 64
"""Clips synthesised per numpy batch (bounds memory for long clips)."""
FADE_S = 0.01
"""Fade-out at the clip end, so no clip ends in a click."""


class SyntheticKicksOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(
        3000,
        ge=2,
        le=200_000,
        description="Number of kicks (sized so paper-kicks trains in < 15 min on 2 CPUs).",
    )
    seed: int = Field(0, description="Seed of the kick parameters (independent of the run seed).")
    variety: Literal["curated", "diverse"] = Field(
        "curated",
        description="curated: short, similar kicks; diverse: wider decay, tone, drive and width.",
    )


class SyntheticTonesOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(1000, ge=2, le=200_000, description="Number of tonal one-shots.")
    seed: int = Field(0, description="Seed of the note parameters (independent of the run seed).")


# --------------------------------------------------------------------------- kicks

# (low, high) ranges per variety; each kick draws uniformly (log-uniformly for *_hz, *_s).
KICK_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "curated": {
        "end_hz": (45.0, 62.0),
        "start_hz": (160.0, 280.0),
        "sweep_s": (0.012, 0.040),
        "hold_s": (0.0, 0.02),
        "decay_s": (0.06, 0.18),
        "attack_s": (0.0005, 0.002),
        "click": (0.15, 0.45),
        "click_s": (0.001, 0.004),
        "drive": (1.0, 2.5),
        "harmonic": (0.0, 0.10),
        "width": (0.0, 0.15),
        "gain": (0.75, 0.95),
    },
    "diverse": {
        "end_hz": (35.0, 95.0),
        "start_hz": (110.0, 480.0),
        "sweep_s": (0.006, 0.090),
        "hold_s": (0.0, 0.08),
        "decay_s": (0.04, 0.40),
        "attack_s": (0.0005, 0.006),
        "click": (0.0, 1.0),
        "click_s": (0.0008, 0.010),
        "drive": (1.0, 4.0),
        "harmonic": (0.0, 0.5),
        "width": (0.0, 0.5),
        "gain": (0.55, 0.95),
    },
}
LOG_PARAMS = {"end_hz", "start_hz", "sweep_s", "decay_s", "attack_s", "click_s"}
CLICK_S = 0.04
"""Length of the noise burst drawn per kick; its envelope is long gone by then."""


def _draw(rng: np.random.Generator, ranges: dict[str, tuple[float, float]], n: int) -> dict[str, np.ndarray]:
    params = {}
    for name, (lo, hi) in ranges.items():
        u = rng.random(n)
        if name in LOG_PARAMS:
            params[name] = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo)))
        else:
            params[name] = lo + u * (hi - lo)
    return params


def _fade(samples: int, sample_rate: int) -> np.ndarray:
    n = min(samples, max(1, int(FADE_S * sample_rate)))
    ramp = np.ones(samples, dtype=np.float64)
    ramp[samples - n :] = np.linspace(1.0, 0.0, n)
    return ramp


def _normalise(x: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Scale each clip (B, 2, S) so its peak is ``gain``."""
    peak = np.abs(x).max(axis=(1, 2), keepdims=True)
    return x * (gain[:, None, None] / np.maximum(peak, 1e-9))


def synth_kicks(params: dict[str, np.ndarray], noise: np.ndarray, audio: AudioSpec) -> np.ndarray:
    """Kicks ``(B, 2, samples)`` from per-kick parameter arrays of length B.

    Body: a sine whose pitch falls exponentially from ``start_hz`` to ``end_hz``,
    with a second harmonic, a short hold and an exponential decay. Click: a
    high-passed noise burst. Drive: tanh saturation. Width: the two channels get
    detuned bodies and partly decorrelated clicks (mid/side).
    """
    sr, n = audio.sample_rate, audio.num_samples
    t = (np.arange(n) / sr)[None, None, :]
    p = {k: v[:, None, None] for k, v in params.items()}
    detune = 1.0 + 0.006 * p["width"] * np.array([1.0, -1.0])[None, :, None]
    f_end, f_start = p["end_hz"] * detune, p["start_hz"] * detune
    tau = p["sweep_s"]
    phase = 2 * np.pi * (f_end * t + (f_start - f_end) * tau * (1.0 - np.exp(-t / tau)))
    body = np.sin(phase) + p["harmonic"] * np.sin(2 * phase + 0.5)
    env = (1.0 - np.exp(-t / p["attack_s"])) * np.exp(-np.maximum(t - p["hold_s"], 0.0) / p["decay_s"])
    x = body * env

    click_len = noise.shape[-1]
    hp = np.diff(noise, axis=-1, prepend=0.0)  # first difference: a gentle high-pass
    mid, side = hp[:, 0:1], hp[:, 1:2]
    burst = np.concatenate([mid + p["width"] * side, mid - p["width"] * side], axis=1)
    burst *= np.exp(-t[..., :click_len] / p["click_s"]) * p["click"]
    x[..., :click_len] += burst

    drive = p["drive"]
    x = np.tanh(drive * x) / np.tanh(drive)
    x *= _fade(n, sr)
    return _normalise(x, params["gain"]).astype(np.float32)


class SyntheticKicks(DatasetSource):
    """Deterministic stereo kicks (``synthetic-kicks``)."""

    def __init__(self, options: SyntheticKicksOptions, audio: AudioSpec) -> None:
        self.options, self.audio = options, audio
        self.skipped: list[SkippedItem] = []

    def size_hint(self) -> int:
        return self.options.count

    def fingerprint(self) -> str:
        o = self.options
        return f"synthetic-kicks:v{SYNTH_VERSION}:{o.count}:{o.seed}:{o.variety}"

    def clips(self) -> Iterator[Clip]:
        count = self.options.count
        rng = np.random.default_rng(self.options.seed)
        params = _draw(rng, KICK_RANGES[self.options.variety], count)
        click_len = max(1, int(CLICK_S * self.audio.sample_rate))
        click_len = min(click_len, self.audio.num_samples)
        noise = rng.standard_normal((count, 2, click_len)) * 0.5
        for start in range(0, count, CHUNK):
            sl = slice(start, min(start + CHUNK, count))
            batch = synth_kicks({k: v[sl] for k, v in params.items()}, noise[sl], self.audio)
            for offset, clip in enumerate(batch):
                yield Clip(f"kick_{start + offset:05d}", clip)


def build_synthetic_kicks(options: SyntheticKicksOptions, audio: AudioSpec) -> SyntheticKicks:
    return SyntheticKicks(options, audio)


# --------------------------------------------------------------------------- tones

HARMONICS = 12
TIMBRES = ("pluck", "organ", "bass", "bell", "pad")
# Per timbre (in TIMBRES order): (low, high) of each parameter.
TONE_RANGES: dict[str, list[tuple[float, float]]] = {
    "note": [(45, 81), (43, 79), (28, 52), (57, 88), (40, 76)],  # MIDI note numbers
    "tilt": [(0.9, 1.3), (1.4, 2.2), (0.8, 1.2), (1.5, 2.2), (0.9, 1.4)],  # amplitude ~ k^-tilt
    "even": [(0.6, 1.0), (0.1, 0.9), (0.0, 0.2), (0.5, 1.0), (0.7, 1.0)],  # even-harmonic weight
    "damp": [(3.0, 10.0), (0.0, 0.2), (1.5, 5.0), (0.8, 2.5), (0.0, 0.8)],  # extra decay per harmonic, 1/s
    "inharm": [(0.0, 2e-4), (0.0, 0.0), (0.0, 1e-4), (2e-3, 8e-3), (0.0, 0.0)],  # stiff-string stretch
    "attack": [(0.001, 0.005), (0.005, 0.03), (0.001, 0.01), (0.0005, 0.002), (0.08, 0.35)],  # s
    "decay": [(0.15, 0.6), (0.1, 0.4), (0.1, 0.5), (0.4, 1.2), (0.2, 0.6)],  # s
    "sustain": [(0.0, 0.15), (0.7, 1.0), (0.3, 0.7), (0.0, 0.05), (0.6, 0.9)],
    "release": [(0.05, 0.2), (0.05, 0.15), (0.05, 0.2), (0.3, 0.8), (0.2, 0.5)],  # s
    "vibrato": [(0.0, 0.0), (0.0, 4.0), (0.0, 0.0), (0.0, 0.0), (3.0, 10.0)],  # depth, cents
}


def _draw_tones(rng: np.random.Generator, n: int, seconds: float) -> dict[str, np.ndarray]:
    timbre = rng.integers(0, len(TIMBRES), n)
    params: dict[str, np.ndarray] = {"timbre": timbre.astype(np.float64)}
    for name, ranges in TONE_RANGES.items():
        table = np.asarray(ranges, dtype=np.float64)
        lo, hi = table[timbre, 0], table[timbre, 1]
        params[name] = lo + rng.random(n) * (hi - lo)
    params["note"] = np.round(params["note"])
    params["off"] = seconds * (0.35 + 0.4 * rng.random(n))  # note-off time
    params["detune"] = rng.uniform(0.0, 8.0, n)  # cents between channels
    params["pan"] = rng.uniform(-0.3, 0.3, n)
    params["vib_hz"] = rng.uniform(4.0, 6.5, n)
    params["gain"] = rng.uniform(0.5, 0.95, n)
    params["phases"] = rng.random((n, HARMONICS))  # type: ignore[assignment]  # start phases, in turns
    return params


def synth_tones(params: dict[str, np.ndarray], audio: AudioSpec) -> np.ndarray:
    """Tonal one-shots ``(B, 2, samples)``: additive harmonics under an ADSR envelope.

    Timbre comes from the harmonic tilt, the even/odd balance, per-harmonic damping
    (bright attacks that mellow, as in plucked strings) and inharmonicity (bells).
    """
    sr, n = audio.sample_rate, audio.num_samples
    t = (np.arange(n) / sr)[None, None, :]
    p = {k: v[:, None, None] for k, v in params.items() if k != "phases"}
    cents = 0.5 * p["detune"] * np.array([1.0, -1.0])[None, :, None]
    f0 = 440.0 * 2.0 ** ((p["note"] - 69.0) / 12.0) * 2.0 ** (cents / 1200.0)
    vib = (
        (2.0 ** (p["vibrato"] / 1200.0) - 1.0)
        * np.sin(2 * np.pi * p["vib_hz"] * t)
        / (2 * np.pi * p["vib_hz"])
    )
    cycles = f0 * (t + vib)  # integral of f0 * (1 + depth * cos), in cycles
    x = np.zeros((len(params["note"]), 2, n), dtype=np.float32)
    damping = np.exp(-p["damp"] * t).astype(np.float32)  # per-harmonic decay step
    decay = np.ones_like(damping)
    for k in range(1, HARMONICS + 1):  # a loop over harmonics; each step is the whole batch
        stretch = np.sqrt(1.0 + p["inharm"] * k * k)
        weight = k ** -p["tilt"] * (p["even"] if k % 2 == 0 else 1.0) * ((k * f0 * stretch) < 0.45 * sr)
        turn = cycles * (k * stretch) + params["phases"][:, k - 1][:, None, None]
        turn -= np.floor(turn)  # wrap in float64 so the float32 sine stays exact and fast
        partial = np.sin((2 * np.pi * turn).astype(np.float32))
        x += (weight.astype(np.float32) * decay) * partial
        decay *= damping

    a, d, s = p["attack"], p["decay"], p["sustain"]
    env = np.where(t < a, t / a, s + (1.0 - s) * np.exp(-np.maximum(t - a, 0.0) / d))
    env = env * np.where(t < p["off"], 1.0, np.exp(-np.maximum(t - p["off"], 0.0) / p["release"]))
    pan = np.concatenate([1.0 - p["pan"], 1.0 + p["pan"]], axis=1)
    x = x * env * pan * _fade(n, sr)
    return _normalise(x, params["gain"]).astype(np.float32)


class SyntheticTones(DatasetSource):
    """Deterministic tonal one-shots (``synthetic-tones``): five timbres across a note range."""

    def __init__(self, options: SyntheticTonesOptions, audio: AudioSpec) -> None:
        self.options, self.audio = options, audio
        self.skipped: list[SkippedItem] = []

    def size_hint(self) -> int:
        return self.options.count

    def fingerprint(self) -> str:
        return f"synthetic-tones:v{SYNTH_VERSION}:{self.options.count}:{self.options.seed}"

    def clips(self) -> Iterator[Clip]:
        count = self.options.count
        params = _draw_tones(np.random.default_rng(self.options.seed), count, self.audio.seconds)
        for start in range(0, count, CHUNK // 2):
            sl = slice(start, min(start + CHUNK // 2, count))
            batch = synth_tones({k: v[sl] for k, v in params.items()}, self.audio)
            names = params["timbre"][sl].astype(int)
            for offset, clip in enumerate(batch):
                yield Clip(f"{TIMBRES[names[offset]]}_{start + offset:05d}", clip)


def build_synthetic_tones(options: SyntheticTonesOptions, audio: AudioSpec) -> SyntheticTones:
    return SyntheticTones(options, audio)
