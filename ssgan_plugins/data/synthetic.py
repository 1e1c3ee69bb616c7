"""Built-in synthetic data: deterministic stereo kicks and tonal one-shots.

They let the main job run on a fresh machine with nothing downloaded. Every random
parameter of the whole set is drawn up front from one seeded generator, and the noise
of clip ``i`` comes from a counter-based generator at an offset fixed by ``i``; clips
are synthesised in chunks with numpy over the chunk, so clip ``i`` is the same
whatever the chunk size. Bump ``SYNTH_VERSION`` whenever the sound changes, so
encoded caches of the old sound are not reused.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ssgan_core.interfaces import AudioSpec, Clip, DatasetSource, SkippedItem
from ssgan_plugins.data.options import SyntheticKicksOptions, SyntheticTonesOptions

SYNTH_VERSION = 2
CHUNK = 64
"""Clips synthesised per numpy batch (bounds memory for long clips)."""
FADE_S = 0.01
"""Fade-out at the clip end, so no clip ends in a click."""


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
    detuned bodies and partly decorrelated clicks (mid/side). The recorded layers add
    optional ``tail``/``tail_s`` (a second, slower decay) and ``body_phase`` (radians
    between the channels).
    """
    sr, n = audio.sample_rate, audio.num_samples
    t = (np.arange(n) / sr)[None, None, :]
    p = {k: v[:, None, None] for k, v in params.items()}
    detune = 1.0 + 0.006 * p["width"] * np.array([1.0, -1.0])[None, :, None]
    f_end, f_start = p["end_hz"] * detune, p["start_hz"] * detune
    tau = p["sweep_s"]
    phase = 2 * np.pi * (f_end * t + (f_start - f_end) * tau * (1.0 - np.exp(-t / tau)))
    if "body_phase" in p:  # recorded layers: two microphones at different distances
        phase = phase + 0.5 * p["body_phase"] * np.array([1.0, -1.0])[None, :, None]
    body = np.sin(phase) + p["harmonic"] * np.sin(2 * phase + 0.5)
    after_hold = np.maximum(t - p["hold_s"], 0.0)
    decay = np.exp(-after_hold / p["decay_s"])
    if "tail" in p:  # recorded layers: the head rings on, quieter, after the first drop
        decay = (1.0 - p["tail"]) * decay + p["tail"] * np.exp(-after_hold / p["tail_s"])
    x = body * (1.0 - np.exp(-t / p["attack_s"])) * decay

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


# ------------------------------------------------------------- recorded-kick layers

# Drawn after KICK_RANGES (and the click noise), so the sine kicks stay those of
# SYNTH_VERSION 1; a body parameter here replaces the sine kick's. Levels are relative to the body's
# peak of 1.
LAYER_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "curated": {
        # The body, redrawn: recorded kicks glide less, ring longer and are driven less.
        "start_hz": (70.0, 140.0),
        "hold_s": (0.0, 0.008),
        "decay_s": (0.04, 0.15),
        "tail": (0.01, 0.08),
        "tail_s": (0.2, 0.8),
        "body_phase": (0.0, 0.8),
        "click": (0.0, 0.15),
        "drive": (1.0, 1.6),
        "harmonic": (0.0, 0.2),
        "width": (0.1, 0.6),
        "gain": (0.5, 0.97),  # peak level: sample packs are not all normalised to the top
        "beater": (0.3, 1.2),  # beater click: band-passed noise burst
        "beater_hz": (1500.0, 5000.0),
        "beater_s": (0.0008, 0.004),
        "beater_q": (0.5, 2.0),
        "shell": (0.2, 0.8),  # damped membrane modes above the body
        "shell_hz": (80.0, 200.0),
        "shell_s": (0.1, 0.4),
        "shell_tilt": (0.3, 1.2),
        "room": (0.05, 0.3),  # stereo room tail
        "room_s": (0.08, 0.3),
        "room_hz": (1000.0, 5000.0),
        "air_hz": (5000.0, 11000.0),  # roll-off of the recording chain
        "noise": (0.01, 0.06),  # noise under the decay (rattle, head ring) ...
        "noise_s": (0.1, 0.5),
        "noise_hz": (500.0, 4000.0),
        "floor": (0.001, 0.004),  # ... over a steady floor (microphone, preamp, tape)
    },
    "diverse": {
        "start_hz": (60.0, 300.0),
        "hold_s": (0.0, 0.03),
        "decay_s": (0.03, 0.5),
        "tail": (0.0, 0.3),
        "tail_s": (0.1, 1.0),
        "body_phase": (0.0, 1.2),
        "gain": (0.4, 0.97),
        "click": (0.0, 0.4),
        "drive": (1.0, 3.0),
        "harmonic": (0.0, 0.4),
        "beater": (0.05, 2.0),
        "beater_hz": (800.0, 8000.0),
        "beater_s": (0.0005, 0.008),
        "beater_q": (0.3, 3.0),
        "shell": (0.0, 0.8),
        "shell_hz": (60.0, 300.0),
        "shell_s": (0.04, 0.6),
        "shell_tilt": (0.2, 2.0),
        "room": (0.0, 0.5),
        "room_s": (0.03, 0.4),
        "room_hz": (800.0, 8000.0),
        "air_hz": (4000.0, 16000.0),
        "noise": (0.0, 0.08),
        "noise_s": (0.05, 0.8),
        "noise_hz": (300.0, 8000.0),
        "floor": (0.0003, 0.008),
    },
}
LOG_PARAMS |= {"beater_hz", "beater_s", "beater_q", "shell_hz", "shell_s", "room_s", "room_hz", "air_hz"}
LOG_PARAMS |= {"noise_s", "noise_hz", "floor", "tail_s"}
MEMBRANE_RATIOS = np.array([1.0, 1.594, 2.136, 2.296, 2.653])
"""Frequency ratios of a circular membrane's first modes (zeros of Bessel functions)."""
BEATER_S = 0.03
"""Length of the beater burst drawn per kick; its envelope is long gone by then."""
TAIL_S = 0.3
"""Length of the room impulse response."""
PREROLL_S = 0.001
"""Silence before the onset, as sample packs trim: a clip that starts at full level
spreads its first analysis frame over every frequency."""
NOISE_KEY = 0x5EED
"""Second word of the Philox key of the per-clip noise (the first is the seed)."""


def _noise_sizes(audio: AudioSpec) -> dict[str, int]:
    """Samples (beater, room) and spectrum bins (beater, noise layer) each clip draws."""
    sr, n = audio.sample_rate, audio.num_samples
    beater = min(n, max(2, int(BEATER_S * sr)))
    return {
        "beater": beater,
        "beater_bins": beater // 2 + 1,
        "layer_bins": n // 2 + 1,
        "room": min(n, max(2, int(TAIL_S * sr))),
    }


def _noise_per_clip(sizes: dict[str, int]) -> int:
    """Noise draws per clip: two channels of each layer, real and imaginary bins."""
    return 2 * (2 * sizes["beater_bins"] + 2 * sizes["layer_bins"] + sizes["room"])


def clip_noise(seed: int, start: int, count: int, per_clip: int) -> np.ndarray:
    """Zero-mean, unit-variance uniform noise ``(count, per_clip)`` of clips ``start...``.

    Philox is counter-based: clip ``i``'s noise starts at a counter fixed by ``i``, so it
    is drawn only for the clips of a chunk and is still the same for any chunk size.
    """
    per_clip = -(-per_clip // 8) * 8  # whole Philox blocks of 8 float32 draws per clip
    generator = np.random.Philox(key=[seed, NOISE_KEY], counter=[start * per_clip // 8, 0, 0, 0])
    u = np.random.Generator(generator).random((count, per_clip), dtype=np.float32)
    return (u - 0.5) * np.float32(np.sqrt(12.0))


def _split_noise(noise: np.ndarray, sizes: dict[str, int]) -> dict[str, np.ndarray]:
    """The chunk's noise ``(B, k)`` cut into the layers' stereo arrays ``(B, 2, ...)``."""
    b, out, offset = len(noise), {}, 0
    for name, width in (("beater", 2 * sizes["beater_bins"]), ("layer", 2 * sizes["layer_bins"])):
        raw = noise[:, offset : offset + 2 * width].reshape(b, 2, width // 2, 2)
        out[name] = raw[..., 0] + 1j * raw[..., 1]  # white complex spectrum
        offset += 2 * width
    out["room"] = noise[:, offset : offset + 2 * sizes["room"]].reshape(b, 2, sizes["room"])
    return out


def coloured_noise(spectrum: np.ndarray, gain: np.ndarray, length: int) -> np.ndarray:
    """Noise ``(B, 2, length)`` of unit RMS from a white spectrum ``(B, 2, length // 2 + 1)``
    and the magnitude response ``gain`` ``(B, 1, length // 2 + 1)``."""
    x = np.fft.irfft(spectrum * gain, length, axis=-1)
    return x / (np.sqrt((x**2).mean(axis=(1, 2), keepdims=True)) + 1e-9)


def _stereo(noise: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Two noise channels ``(B, 2, m)`` -> mid/side mix with side level ``width``."""
    mid, side = noise[:, 0:1], noise[:, 1:2] * width
    return np.concatenate([mid + side, mid - side], axis=1)


def beater_click(
    spectrum: np.ndarray, p: dict[str, np.ndarray], t: np.ndarray, sr: int, length: int
) -> np.ndarray:
    """The beater hitting the head: noise through two resonant band-passes at
    ``beater_hz`` (Q ``beater_q``), decaying within milliseconds. Two, because one
    leaves a broadband edge that recorded kicks do not have."""
    ratio = np.fft.rfftfreq(length, 1.0 / sr).astype(np.float32)[None, None, :] / p["beater_hz"] + 1e-6
    gain = 1.0 / (1.0 + (p["beater_q"] * (ratio - 1.0 / ratio)) ** 2)  # two resonators in series
    burst = _stereo(coloured_noise(spectrum, gain, length), p["width"])
    return burst * np.exp(-t[..., :length] / p["beater_s"]) * p["beater"]


def shell_modes(p: dict[str, np.ndarray], t: np.ndarray) -> np.ndarray:
    """The drum's resonances: damped membrane modes over ``shell_hz``, higher ones shorter.

    The channels are detuned by a fraction of ``width``, so the modes beat slowly
    between left and right, as two microphones on one drum hear them. Float32: the
    modes are the costliest layer, and their phase needs no more.
    """
    tt = t.astype(np.float32)
    detune = 1.0 + 0.004 * p["width"] * np.array([1.0, -1.0])[None, :, None]
    out = np.zeros((len(p["shell_hz"]), 2, t.shape[-1]), dtype=np.float32)
    for ratio in MEMBRANE_RATIOS:  # a loop over modes; each step is the whole batch
        freq = (2 * np.pi * p["shell_hz"] * ratio * detune).astype(np.float32)
        rate = (np.sqrt(ratio) / p["shell_s"]).astype(np.float32)
        amp = (ratio ** -p["shell_tilt"]).astype(np.float32)
        out += amp * np.sin(freq * tt + np.float32(ratio)) * np.exp(-rate * tt)
    out *= 1.0 - np.exp(-tt / np.float32(0.0005))  # no step at the onset
    return out * (p["shell"] / MEMBRANE_RATIOS.size).astype(np.float32)


def noise_layer(spectrum: np.ndarray, p: dict[str, np.ndarray], t: np.ndarray, sr: int) -> np.ndarray:
    """Noise under the whole clip: a decaying part (rattle, the head's broadband ring)
    over a steady floor (microphone, preamp and tape noise of a recording), low-passed
    at ``noise_hz`` with a second-order slope (recordings hold little above 10 kHz)."""
    n = t.shape[-1]
    freqs = np.fft.rfftfreq(n, 1.0 / sr).astype(np.float32)[None, None, :]
    gain = 1.0 / (1.0 + (freqs / p["noise_hz"]) ** 2)
    noise = _stereo(coloured_noise(spectrum, gain, n), np.maximum(p["width"], 0.3))
    return noise * (p["noise"] * np.exp(-t / p["noise_s"]) + p["floor"])


def room_and_air(dry: np.ndarray, noise: np.ndarray, p: dict[str, np.ndarray], sr: int) -> np.ndarray:
    """The dry kick ``(B, 2, n)`` in a small room, through a band-limited recording chain.

    Room: the mid signal convolved with a decaying stereo noise response (independent
    channels, so left and right differ), its highs damped (one pole at ``room_hz``).
    Air: an eighth-order roll-off at ``air_hz`` on everything; recorded one-shots hold
    almost nothing at the top of the spectrum. Both in one FFT pass.
    """
    import scipy.fft  # 0.35 s to import: only when kicks are synthesised, not when the plugin loads

    n, m = dry.shape[-1], noise.shape[-1]
    t = (np.arange(m, dtype=np.float32) / np.float32(sr))[None, None, :]
    response = noise * np.exp(-t / p["room_s"])
    response /= np.sqrt((response**2).sum(axis=-1, keepdims=True)) + 1e-9
    size = scipy.fft.next_fast_len(n + m, real=True)
    spectrum = scipy.fft.rfft(dry, size, axis=-1)
    freqs = np.fft.rfftfreq(size, 1.0 / sr).astype(np.float32)[None, None, :]
    room = spectrum.mean(axis=1, keepdims=True) * scipy.fft.rfft(response, size, axis=-1)
    spectrum += room * (p["room"] / np.sqrt(1.0 + (freqs / p["room_hz"]) ** 2))
    spectrum /= 1.0 + (freqs / p["air_hz"]) ** 8
    return scipy.fft.irfft(spectrum, size, axis=-1)[..., :n]


def synth_recorded_kicks(
    params: dict[str, np.ndarray], click: np.ndarray, noise: np.ndarray, audio: AudioSpec
) -> np.ndarray:
    """Kicks ``(B, 2, samples)`` layered like a recorded one: the swept body of
    :func:`synth_kicks` (its click too), a beater click, shell modes, a noise layer and a
    stereo room tail, each at the clip's own level. ``noise`` ``(B, k)`` is the clips'
    :func:`clip_noise`.
    """
    sr, n = audio.sample_rate, audio.num_samples
    sizes = _noise_sizes(audio)
    preroll = min(n - 1, round(PREROLL_S * sr))
    layers = _split_noise(noise, sizes)
    # The layers are float32 (half the time of float64 in the FFTs); only the body's
    # swept phase needs float64, and synth_kicks keeps it.
    t = (np.arange(n, dtype=np.float32) / np.float32(sr))[None, None, :]
    p = {k: v.astype(np.float32)[:, None, None] for k, v in params.items()}
    dry = synth_kicks({**params, "gain": np.ones(len(noise))}, click, audio) + shell_modes(p, t)
    dry[..., : sizes["beater"]] += beater_click(layers["beater"], p, t, sr, sizes["beater"])
    dry += noise_layer(layers["layer"], p, t, sr)
    dry = np.pad(dry, ((0, 0), (0, 0), (preroll, 0)))[..., :n]  # the filters' pre-ringing goes here
    x = room_and_air(dry, layers["room"], p, sr) * _fade(n, sr).astype(np.float32)
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
        return f"synthetic-kicks:v{SYNTH_VERSION}:{o.count}:{o.seed}:{o.variety}:{o.layers}"

    def clips(self) -> Iterator[Clip]:
        o, count = self.options, self.options.count
        rng = np.random.default_rng(o.seed)
        params = _draw(rng, KICK_RANGES[o.variety], count)
        click_len = max(1, int(CLICK_S * self.audio.sample_rate))
        click_len = min(click_len, self.audio.num_samples)
        click = rng.standard_normal((count, 2, click_len)) * 0.5
        if o.layers == "recorded":  # drawn after the sine kicks' own, which stay as they were
            params |= _draw(rng, LAYER_RANGES[o.variety], count)
        per_clip = _noise_per_clip(_noise_sizes(self.audio))
        for start in range(0, count, CHUNK):
            sl = slice(start, min(start + CHUNK, count))
            chunk = {k: v[sl] for k, v in params.items()}
            if o.layers == "sine":
                batch = synth_kicks(chunk, click[sl], self.audio)
            else:
                noise = clip_noise(o.seed, start, sl.stop - start, per_clip)
                batch = synth_recorded_kicks(chunk, click[sl], noise, self.audio)
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
