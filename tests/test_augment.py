"""Augmented copies: each transform does what it says, draws are seeded, copies are cached and split."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ssgan_core.augment import (
    augment,
    change_speed,
    draw_parameters,
    scale_gain,
    scale_width,
    shape_decay,
    shift_onset,
)
from ssgan_core.config import AugmentConfig
from ssgan_core.data import load_dataset, split_indices
from ssgan_core.errors import ConfigError
from tests.tiny_parts import tiny_config, tiny_host

RATE = 8000
WIDE = AugmentConfig(
    copies=2,
    pitch_semitones=(-2, 2),
    gain_db=(-6, 6),
    width=(0, 1.5),
    decay_db_per_s=(0, 40),
    offset_ms=(-3, 3),
)


def _noise(batch: int = 3, samples: int = 1024) -> torch.Tensor:
    return torch.randn(batch, 2, samples, generator=torch.Generator().manual_seed(1)) * 0.3


def _all(value: float, batch: int = 3) -> torch.Tensor:
    return torch.full((batch,), float(value))


def test_parameters_are_seeded_and_independent_of_batching():
    one = draw_parameters(WIDE, seed=5, first_clip=0, count=10, copy=1)
    again = draw_parameters(WIDE, seed=5, first_clip=0, count=10, copy=1)
    assert all(torch.equal(one[k], again[k]) for k in one)
    assert set(one) == {"pitch_semitones", "gain_db", "width", "decay_db_per_s", "offset_ms"}
    assert not torch.equal(one["gain_db"], draw_parameters(WIDE, 6, 0, 10, 1)["gain_db"])  # other seed
    assert not torch.equal(one["gain_db"], draw_parameters(WIDE, 5, 0, 10, 2)["gain_db"])  # other copy
    # Clip 7's copy is the same whether it is drawn in one batch or in another.
    split = [draw_parameters(WIDE, 5, first, n, 1) for first, n in ((0, 4), (4, 3), (7, 3))]
    for key in one:
        assert torch.equal(one[key], torch.cat([part[key] for part in split]))
        low, high = getattr(WIDE, key)
        assert ((one[key] >= low) & (one[key] <= high)).all() and one[key].std() > 0


def test_augment_is_deterministic_and_keeps_shapes():
    audio = _noise()
    params = draw_parameters(WIDE, 0, 0, 3, 1)
    out = augment(audio, params, RATE)
    assert out.shape == audio.shape and out.dtype == audio.dtype and torch.isfinite(out).all()
    assert torch.equal(out, augment(audio, draw_parameters(WIDE, 0, 0, 3, 1), RATE))
    assert not torch.allclose(out, augment(audio, draw_parameters(WIDE, 1, 0, 3, 1), RATE))
    neutral = draw_parameters(AugmentConfig(copies=1), 0, 0, 3, 1)
    assert torch.allclose(augment(audio, neutral, RATE), audio, atol=1e-6)


def test_gain_scales_by_the_right_factor():
    audio = _noise()
    out = scale_gain(audio, torch.tensor([6.0, -20.0, 0.0]))
    factors = out.flatten(1).norm(dim=1) / audio.flatten(1).norm(dim=1)
    assert torch.allclose(factors, torch.tensor([10 ** (6 / 20), 0.1, 1.0]), rtol=1e-5)


def test_width_zero_is_mono_and_one_is_unchanged():
    audio = _noise()
    mono = scale_width(audio, torch.tensor([0.0, 1.0, 2.0]))
    assert torch.allclose(mono[0, 0], mono[0, 1]) and torch.allclose(mono[0, 0], audio[0].mean(0))
    assert torch.allclose(mono[1], audio[1], atol=1e-7)
    side = (mono[2, 0] - mono[2, 1]).norm() / (audio[2, 0] - audio[2, 1]).norm()
    assert side == pytest.approx(2.0, rel=1e-5)
    assert torch.allclose(mono[2].sum(0), audio[2].sum(0), atol=1e-6)  # the mid is kept


def test_offset_shifts_the_onset():
    audio = torch.zeros(3, 2, 1024)
    audio[:, :, 100] = 1.0
    out = shift_onset(audio, torch.tensor([1.0, -2.0, 0.0]), RATE)  # 8 and 16 samples at 8 kHz
    assert out[:, 0].argmax(-1).tolist() == [108, 84, 100]
    assert out.abs().sum((1, 2)).tolist() == [2.0, 2.0, 2.0]  # moved, not smeared
    cut = shift_onset(audio, _all(-20.0), RATE)  # 160 samples earlier: the onset falls off the start
    assert cut.abs().sum() == 0


def test_decay_multiplies_by_an_exponential_envelope():
    audio = torch.ones(2, 2, RATE)  # one second
    out = shape_decay(audio, torch.tensor([20.0, 0.0]), RATE)
    assert out[0, 0, 0] == 1.0 and out[0, 1, RATE // 2] == pytest.approx(10 ** (-0.5), rel=1e-5)
    assert out[0, 0, -1] == pytest.approx(0.1, rel=1e-3)  # 20 dB down after one second
    assert torch.equal(out[1], audio[1])


def test_speed_shifts_pitch_by_resampling():
    t = torch.arange(4096) / RATE
    sine = torch.sin(2 * math.pi * 250.0 * t).expand(3, 2, -1).contiguous()
    out = change_speed(sine, torch.tensor([12.0, 0.0, -12.0]))
    freqs = np.fft.rfftfreq(4096, 1 / RATE)
    for item, expected, valid in ((0, 500.0, 2048), (1, 250.0, 4096), (2, 125.0, 4096)):
        segment = out[item, 0, :valid].numpy()
        peak = freqs[np.abs(np.fft.rfft(segment, n=4096)).argmax()]
        assert peak == pytest.approx(expected, abs=3)
    assert out[0, :, 2049:].abs().max() == 0  # an octave up plays in half the time
    assert torch.allclose(out[1], sine[1], atol=1e-6)


def test_speed_up_removes_what_would_alias():
    t = torch.arange(2048) / RATE
    high = torch.sin(2 * math.pi * 3500.0 * t).expand(1, 2, -1).contiguous()  # 0.875 of Nyquist
    up = change_speed(high, torch.tensor([7.0]))  # x1.5: 3500 Hz would land at 5250 Hz and fold
    assert up.abs().max() < 0.02


def test_config_rejects_reversed_ranges(tmp_path):
    with pytest.raises(ValueError, match="gain_db"):
        AugmentConfig(gain_db=(6, -6))
    with pytest.raises(ValueError, match="width"):
        AugmentConfig(width=(-1, 1))
    host = tiny_host()
    with pytest.raises(ConfigError, match="offset_ms"):
        tiny_config(tmp_path, host, "data.augment.offset_ms=[5, 1]")


def test_copies_are_encoded_cached_and_split_by_clip(tmp_path):
    host = tiny_host()
    on = (
        "data.augment.copies=2",
        "data.augment.gain_db=[-6, 6]",
        "data.augment.width=[0, 1]",
        "data.augment.pitch_semitones=[-1, 1]",
    )
    plain = load_dataset(tiny_config(tmp_path, host), host)
    data = load_dataset(tiny_config(tmp_path, host, *on), host)
    assert len(data) == 3 * 24 and data.key != plain.key and not data.from_cache
    assert data.augmented.sum() == 48 and torch.equal(torch.bincount(data.groups), torch.full((24,), 3))
    assert data.names.count("kick_00005") == 1 and "kick_00005#2" in data.names
    originals = torch.nonzero(~data.augmented).flatten()
    assert torch.equal(data.images.take(originals), plain.images.take(range(24)))
    copies = torch.nonzero(data.augmented).flatten()
    assert not torch.equal(data.images.take(copies[:24]), plain.images.take(range(24)))

    again = load_dataset(tiny_config(tmp_path / "other", host, *on), host)  # a fresh cache
    assert torch.equal(again.images.take(range(72)), data.images.take(range(72)))
    assert load_dataset(tiny_config(tmp_path, host, *on), host).from_cache
    reseeded = load_dataset(tiny_config(tmp_path, host, *on, "seed=1"), host)
    assert reseeded.key != data.key
    assert not torch.equal(reseeded.images.take(copies), data.images.take(copies))
    assert load_dataset(tiny_config(tmp_path, host, "seed=1"), host).key == plain.key  # seed: copies only

    train, val = split_indices(data.groups, 0.25, 0, data.augmented)
    assert not data.augmented[val].any()
    assert not set(data.groups[val].tolist()) & set(data.groups[train].tolist())
