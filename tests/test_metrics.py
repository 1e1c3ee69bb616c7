"""Features and metrics: known values, the orderings that make them useful, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from ssgan_core.errors import InputError
from ssgan_core.features import extract_features, feature_names, mel_filterbank
from ssgan_core.interfaces import Inverter
from ssgan_core.metrics import (
    Standardiser,
    evaluate_features,
    evaluate_sets,
    frechet_distance,
    frechet_distance_audio,
    inversion_round_trip,
    kernel_distance,
    mean_pairwise_distance,
    ndb_jsd,
    precision_recall,
)

SR = 22_050
SECONDS = 0.5
N = 120


def kicks(n: int, seed: int, sample_rate: int = SR, seconds: float = SECONDS) -> np.ndarray:
    """Varied stereo kicks: pitch sweep, exponential decay, noise click, random pan."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate

    def draw(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi, (n, 1))

    f_end, ratio, sweep = draw(40, 80), draw(3, 6), draw(0.015, 0.05)
    decay, click, pan = draw(0.06, 0.25), draw(0.05, 0.4), draw(-0.4, 0.4)
    phase = 2 * np.pi * (f_end * t + f_end * (ratio - 1) * sweep * (1 - np.exp(-t / sweep)))
    mono = np.sin(phase) * np.exp(-t / decay)
    mono += click * rng.normal(size=mono.shape) * np.exp(-t / 0.004)
    mono *= 0.8 / np.abs(mono).max(axis=1, keepdims=True)
    stereo = np.stack([mono * np.sqrt((1 - pan) / 2), mono * np.sqrt((1 + pan) / 2)], axis=1)
    return stereo.astype(np.float32)


@pytest.fixture(scope="module")
def feats() -> dict[str, np.ndarray]:
    torch.set_num_threads(1)
    ref, other = kicks(N, seed=1), kicks(N, seed=2)
    noise = (np.random.default_rng(3).normal(size=ref.shape) * 0.3).astype(np.float32)
    out = {}
    for name, audio in {"ref": ref, "other": other, "noise": noise, "silence": np.zeros_like(ref)}.items():
        out[name] = extract_features(audio, SR)[0]
    out["collapsed"] = np.repeat(out["other"][:1], N, axis=0)
    return out


NAMES = feature_names()


# --------------------------------------------------------------------------- features


def test_features_shape_dtype_and_finite_for_silence(feats):
    for name in ("ref", "silence", "noise"):
        x = feats[name]
        assert x.shape == (N, len(NAMES)) and x.dtype == np.float64
        assert np.isfinite(x).all(), name
    assert len(set(NAMES)) == len(NAMES)


def test_features_measure_what_they_say():
    sr = 44_100
    t = np.arange(int(0.6 * sr)) / sr
    decaying = np.sin(2 * np.pi * 55 * t) * np.exp(-t / 0.1) * np.minimum(t / 0.02, 1)
    sweep_phase = 2 * np.pi * (50 * t + 150 * 0.03 * (1 - np.exp(-t / 0.03)))
    sweep = np.sin(sweep_phase) * np.exp(-t / 0.15)
    left_only = np.stack([np.sin(2 * np.pi * 110 * t), np.zeros_like(t)])
    audio = np.stack([np.stack([decaying, decaying]), np.stack([sweep, sweep]), left_only]).astype(np.float32)
    x, names = extract_features(audio, sr)
    f = {n: x[:, i] for i, n in enumerate(names)}
    assert 2 ** f["f0_early"][0] == pytest.approx(55, abs=1.5)
    assert abs(f["glide_oct"][0]) < 0.05
    assert f["attack_ms"][0] == pytest.approx(18, abs=3)  # 10% of the 20 ms ramp to its end
    assert f["decay20_ms"][0] == pytest.approx(100 * np.log(10), rel=0.05)
    assert f["decay40_ms"][0] == pytest.approx(200 * np.log(10), rel=0.05)
    assert f["width"][0] < 1e-6 and abs(f["balance"][0]) < 1e-6
    assert f["glide_oct"][1] < -0.3 and 2 ** f["f0_late"][1] == pytest.approx(50, abs=5)
    assert f["balance"][2] == pytest.approx(1) and f["width"][2] == pytest.approx(0.5)
    assert f["rms_db"][2] == pytest.approx(10 * np.log10(0.25), abs=0.05)
    assert 2 ** f["centroid_mean"][2] == pytest.approx(110, rel=0.1)


def test_mel_filterbank_covers_every_band():
    bank = mel_filterbank(44_100, 2048)
    assert bank.shape == (1025, 32)
    assert (bank.sum(axis=0) > 0).all() and bank.max() <= 1
    assert (np.diff(bank.argmax(axis=0)) >= 0).all()


def test_bad_audio_is_refused_with_a_reason():
    with pytest.raises(InputError, match="shape"):
        extract_features(np.zeros((4, 1000), np.float32), SR)
    bad = np.zeros((3, 2, 2000), np.float32)
    bad[1, 0, 5] = np.nan
    with pytest.raises(InputError, match="1 of 3 clips"):
        extract_features(bad, SR)
    with pytest.raises(InputError, match="at least 2"):
        frechet_distance(np.zeros((1, 4)), np.zeros((5, 4)))


# --------------------------------------------------------------------------- metric definitions


def test_frechet_distance_matches_scipy_sqrtm():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(150, 6)) * 2 + 1
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * scipy.linalg.sqrtm(ca @ cb).real)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-8)


def test_kid_equals_the_unbiased_mmd_formula_on_whole_sets():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 5)), rng.normal(size=(30, 5)) + 0.5

    def k(a, b):
        return (a @ b.T / 5 + 1) ** 3

    m = 30
    kxx, kyy = k(x, x), k(y, y)
    expected = (
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * k(x, y).mean()
    )
    mean, std = kernel_distance(x, y, subsets=5, subset_size=100)
    assert mean == pytest.approx(expected, rel=1e-10) and std == pytest.approx(0, abs=1e-10)


def test_precision_recall_on_a_known_layout():
    ref = np.stack(np.meshgrid(np.arange(10.0), np.arange(10.0)), -1).reshape(-1, 2)
    inside = ref[:50] + 0.1
    far = ref + 100
    assert precision_recall(inside, ref, k=3) == (1.0, pytest.approx(0.5, abs=0.15))
    assert precision_recall(far, ref, k=3) == (0.0, 0.0)


def test_ndb_counts_significant_bins():
    rng = np.random.default_rng(2)
    ref = np.concatenate([rng.normal(size=(100, 2)) + c for c in ([0, 0], [8, 0], [0, 8], [8, 8])])
    same = np.concatenate([rng.normal(size=(100, 2)) + c for c in ([0, 0], [8, 0], [0, 8], [8, 8])])
    one_mode = rng.normal(size=(400, 2))
    ndb_same, jsd_same, k = ndb_jsd(same, ref, bins=4)
    ndb_one, jsd_one, _ = ndb_jsd(one_mode, ref, bins=4)
    assert k == 4 and ndb_same == 0 and jsd_same < 0.01
    assert ndb_one == 1.0 and jsd_one > 0.5


def test_standardiser_uses_reference_stats_and_floors_constant_features():
    ref = np.zeros((10, len(NAMES)))
    ref[:, 0] = np.arange(10)
    std = Standardiser.fit(ref, NAMES)
    assert std.scale[0] == pytest.approx(np.arange(10).std(ddof=1))
    width = NAMES.index("width")
    assert std.scale[width] == 0.005  # constant in the reference: floored, not zero
    assert np.isfinite(std(np.ones((3, len(NAMES))))).all()


# --------------------------------------------------------------------------- the orderings that matter


def test_identical_sets_score_zero(feats):
    r = evaluate_features(feats["ref"], feats["ref"], NAMES)
    assert r["fd"] == pytest.approx(0, abs=1e-6)
    # Identical sets are not independent draws: the cross term then holds the self-pairs,
    # so the estimate is -(2/m) (mean k(x, x) - mean k(x, x')), small next to any real gap.
    assert -0.3 < r["kid"] <= 0
    assert r["ndb"] == 0 and r["jsd"] == pytest.approx(0, abs=1e-12)
    assert r["precision"] == 1 and r["recall"] == 1


def test_noise_and_silence_score_far_worse_than_a_second_draw(feats):
    second = evaluate_features(feats["other"], feats["ref"], NAMES)
    for bad in ("noise", "silence"):
        r = evaluate_features(feats[bad], feats["ref"], NAMES)
        assert r["fd"] > 50 * second["fd"], bad
        assert r["kid"] > 50 * max(second["kid"], 0.01), bad
        assert r["ndb"] > second["ndb"] + 0.5 and r["jsd"] > second["jsd"] + 0.5, bad
        assert r["precision"] < 0.1 < 0.5 < second["precision"], bad
    assert second["recall"] > 0.5


def test_collapsed_set_scores_worse_on_diversity(feats):
    varied = evaluate_features(feats["other"], feats["ref"], NAMES)
    collapsed = evaluate_features(feats["collapsed"], feats["ref"], NAMES)
    assert collapsed["diversity_gen"] == 0 < 0.5 * varied["diversity_ref"] < varied["diversity_gen"]
    assert collapsed["ndb"] > varied["ndb"] + 0.5
    assert collapsed["jsd"] > varied["jsd"] + 0.5
    assert collapsed["recall"] < 0.1 < 0.5 < varied["recall"]
    assert collapsed["fd"] > 5 * varied["fd"]


def test_values_are_stable_for_a_seed_and_the_seed_matters(feats):
    kwargs = {"kid_subset_size": 40, "ndb_bins": 8}
    first = evaluate_features(feats["other"], feats["ref"], NAMES, seed=7, **kwargs)
    again = evaluate_features(feats["other"], feats["ref"], NAMES, seed=7, **kwargs)
    other_seed = evaluate_features(feats["other"], feats["ref"], NAMES, seed=8, **kwargs)
    assert first == again
    assert first["kid"] != other_seed["kid"] and first["fd"] == other_seed["fd"]
    assert mean_pairwise_distance(feats["ref"]) == mean_pairwise_distance(feats["ref"].copy())


# --------------------------------------------------------------------------- audio entry points


def test_evaluate_sets_and_fd_audio_from_waveforms():
    from ssgan_cli.common import progress

    a, b = kicks(16, seed=4), kicks(40, seed=5)
    bar = progress(transient=True)
    with bar:
        r = evaluate_sets(a, b, SR, progress=bar)
    assert all(task.completed == task.total for task in bar.tasks)
    assert r["n_generated"] == 16 and r["n_reference"] == 40 and np.isfinite(list(r.values())).all()
    fd = frechet_distance_audio(torch.from_numpy(a), b, SR)
    assert fd == pytest.approx(r["fd"])
    assert frechet_distance_audio(b, b, SR) == pytest.approx(0, abs=1e-6)


def _paper_parts():
    from ssgan_core import AudioSpec
    from ssgan_core.plugins import get_host

    host = get_host()
    if "stft-db" not in host.registry("transform") or "griffin-lim" not in host.registry("inverter"):
        pytest.skip("paper transform/inverter not installed yet")
    spec = AudioSpec(SR, SECONDS)
    transform = host.registry("transform").create("stft-db", {}, spec)
    inverter = host.registry("inverter").create("griffin-lim", {}, spec)
    return transform, inverter


def test_inversion_round_trip_is_deterministic_and_orders_inverters():
    transform, inverter = _paper_parts()
    audio = kicks(4, seed=6)
    first = inversion_round_trip(audio, transform, inverter, seed=0)
    assert first == inversion_round_trip(audio, transform, inverter, seed=0)
    assert 0 <= first["transform_sc"] <= first["roundtrip_sc"] < 1.5
    assert 0 < first["roundtrip_lsd"] < 40

    class SilentInverter(Inverter):
        def forward(self, magnitude, spec):
            return torch.zeros(magnitude.shape[0], 2, spec.length)

    worse = inversion_round_trip(audio, transform, SilentInverter(), seed=0)
    assert worse["roundtrip_sc"] == pytest.approx(1, rel=1e-5)  # float32 norms
    assert worse["roundtrip_lsd"] > first["roundtrip_lsd"]
    with pytest.raises(InputError, match="match the transform"):
        inversion_round_trip(audio[..., :-5], transform, inverter)
