"""Offline quality metrics: how close, and how varied, a generated set of one-shots is.

Every set metric works on the descriptors of :mod:`ssgan_core.features`, first
standardised with the *reference* set's per-feature mean and spread (the spread
floored at each feature's resolution), so no unit (dB against ms against octaves)
dominates and the same generated set always meets the same yardstick.
Exact definitions are in ``docs/metrics.md``.

Entry points: :func:`evaluate_sets` (everything, from audio), :func:`evaluate_features`
(everything, from precomputed features) and :func:`frechet_distance_audio` (cheap, for
the per-epoch training log).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.stats
import torch
from rich.progress import Progress
from torch import Tensor

from ssgan_core.errors import InputError
from ssgan_core.features import extract_features, feature_resolution
from ssgan_core.generation import spectrogram_audio
from ssgan_core.interfaces import AUDIO_CHANNELS, Inverter, Transform, spectral_convergence

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
NDB_ALPHA = 0.05
PR_NEIGHBOURS = 3
LSD_RANGE_DB = 80.0
"""Log-spectral distance ignores everything more than this far below the clip's peak bin."""
_ROW_CHUNK = 1024


@dataclass(frozen=True)
class Standardiser:
    """Per-feature ``(x - mean) / scale`` with statistics of the reference set."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, reference: np.ndarray, names: Sequence[str]) -> Standardiser:
        """Mean and sample std (ddof=1) of ``reference``; std floored at the features' resolution."""
        ref = _check_features(reference, "reference", minimum=2)
        floor = feature_resolution(names)
        if floor.shape[0] != ref.shape[1]:
            raise InputError(f"{len(names)} feature names for {ref.shape[1]} feature columns")
        return cls(ref.mean(axis=0), np.maximum(ref.std(axis=0, ddof=1), floor))

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (np.asarray(features, dtype=np.float64) - self.mean) / self.scale


def _check_features(x: np.ndarray, what: str, minimum: int = 1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise InputError(f"{what} features must be a (samples, features) matrix; got shape {x.shape}")
    if x.shape[0] < minimum:
        raise InputError(f"{what} set needs at least {minimum} clips; got {x.shape[0]}")
    if not np.isfinite(x).all():
        raise InputError(f"{what} features contain NaN or infinite values")
    return x


# --------------------------------------------------------------------------- distribution distances


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """``|mu_x - mu_y|^2 + tr(Cx + Cy - 2 (Cx^1/2 Cy Cx^1/2)^1/2)`` of Gaussians fitted to two sets.

    The matrix square root goes through symmetric eigen-decompositions, so it stays
    real and finite even for the rank-deficient covariances of small sets.
    """
    x = _check_features(x, "first", minimum=2)
    y = _check_features(y, "second", minimum=2)
    cov_x, cov_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    w, v = scipy.linalg.eigh(cov_x)
    root_x = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = root_x @ cov_y @ root_x
    trace_root = np.sqrt(np.clip(scipy.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    diff = x.mean(axis=0) - y.mean(axis=0)
    value = diff @ diff + np.trace(cov_x) + np.trace(cov_y) - 2 * trace_root
    return float(max(value, 0.0))


def kernel_distance(
    x: np.ndarray,
    y: np.ndarray,
    *,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: mean and std over random subsets of the unbiased MMD^2 with ``k(a, b) = (a.b / d + 1)^3``.

    Each subset draws ``m = min(subset_size, len(x), len(y))`` rows of each set without
    replacement (Binkowski et al. 2018). Kernel matrices are computed once; subset sums
    are indicator-matrix products, so there is no loop over subsets.
    """
    xt = torch.from_numpy(_check_features(x, "first", minimum=2))
    yt = torch.from_numpy(_check_features(y, "second", minimum=2))
    m = min(subset_size, xt.shape[0], yt.shape[0])
    if m < 2:
        raise InputError("KID needs subsets of at least 2 clips")
    d = xt.shape[1]
    k_xx = (xt @ xt.T / d + 1) ** 3
    k_yy = (yt @ yt.T / d + 1) ** 3
    k_xy = (xt @ yt.T / d + 1) ** 3
    rng = np.random.default_rng(seed)
    pick_x = _subset_indicators(rng, subsets, xt.shape[0], m)
    pick_y = _subset_indicators(rng, subsets, yt.shape[0], m)

    def within(pick: Tensor, kernel: Tensor) -> Tensor:
        total = ((pick @ kernel) * pick).sum(dim=1)
        return (total - pick @ kernel.diagonal()) / (m * (m - 1))

    cross = ((pick_x @ k_xy) * pick_y).sum(dim=1) / (m * m)
    mmd = within(pick_x, k_xx) + within(pick_y, k_yy) - 2 * cross
    return float(mmd.mean()), float(mmd.std(correction=1)) if subsets > 1 else 0.0


def _subset_indicators(rng: np.random.Generator, subsets: int, n: int, m: int) -> Tensor:
    """``(subsets, n)`` 0/1 rows, each with ``m`` ones at distinct random positions."""
    chosen = np.argsort(rng.random((subsets, n)), axis=1)[:, :m]
    rows = np.zeros((subsets, n))
    np.put_along_axis(rows, chosen, 1.0, axis=1)
    return torch.from_numpy(rows)


# --------------------------------------------------------------------------- diversity


def kmeans(x: np.ndarray, k: int, *, seed: int = 0, iterations: int = 100) -> np.ndarray:
    """Seeded k-means (k-means++ start, Lloyd steps); returns ``(k, D)`` centroids.

    A cluster that empties keeps its previous centroid.
    """
    x = _check_features(x, "k-means input", minimum=k)
    rng = np.random.default_rng(seed)
    centres = np.empty((k, x.shape[1]))
    centres[0] = x[rng.integers(x.shape[0])]
    nearest = _sq_dist(x, centres[:1])[:, 0]
    for i in range(1, k):  # loop over clusters, not samples
        weights = nearest / nearest.sum() if nearest.sum() > 0 else np.full(len(x), 1 / len(x))
        centres[i] = x[rng.choice(len(x), p=weights)]
        nearest = np.minimum(nearest, _sq_dist(x, centres[i : i + 1])[:, 0])
    labels = np.full(len(x), -1)
    for _ in range(iterations):
        new_labels = _sq_dist(x, centres).argmin(axis=1)
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
        counts = np.bincount(labels, minlength=k)
        sums = np.zeros_like(centres)
        np.add.at(sums, labels, x)
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip((a * a).sum(1)[:, None] - 2 * a @ b.T + (b * b).sum(1)[None, :], 0, None)


def default_ndb_bins(n_reference: int) -> int:
    """About ten reference clips per bin, between 2 and 50 bins."""
    return int(np.clip(n_reference // 10, 2, 50))


def ndb_jsd(
    generated: np.ndarray,
    reference: np.ndarray,
    *,
    bins: int | None = None,
    alpha: float = NDB_ALPHA,
    seed: int = 0,
) -> tuple[float, float, int]:
    """NDB/K, JSD and K (Richardson & Weiss 2018) over k-means bins of the reference.

    Every clip goes to its nearest reference centroid. A bin is statistically
    different when the two-proportion z-test of its shares rejects at ``alpha``
    (two-sided). JSD is between the two bin histograms, in bits (0 = same, 1 = disjoint).
    """
    gen = _check_features(generated, "generated")
    ref = _check_features(reference, "reference", minimum=2)
    k = min(bins or default_ndb_bins(len(ref)), len(ref))
    centres = kmeans(ref, k, seed=seed)
    p_gen = np.bincount(_sq_dist(gen, centres).argmin(1), minlength=k) / len(gen)
    p_ref = np.bincount(_sq_dist(ref, centres).argmin(1), minlength=k) / len(ref)
    pooled = (p_gen * len(gen) + p_ref * len(ref)) / (len(gen) + len(ref))
    se = np.sqrt(pooled * (1 - pooled) * (1 / len(gen) + 1 / len(ref)))
    z = np.divide(p_gen - p_ref, se, out=np.zeros(k), where=se > 0)
    critical = scipy.stats.norm.ppf(1 - alpha / 2)
    different = int((np.abs(z) > critical).sum())
    return different / k, _jsd(p_gen, p_ref), k


def _jsd(p: np.ndarray, q: np.ndarray) -> float:
    mid = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / mid[nz])).sum())

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


def mean_pairwise_distance(x: np.ndarray) -> float:
    """Mean Euclidean distance over all pairs of distinct clips; 0 for a collapsed set."""
    t = torch.from_numpy(_check_features(x, "diversity", minimum=2))
    total = sum(float(_cdist(t[i : i + _ROW_CHUNK], t).sum()) for i in range(0, len(t), _ROW_CHUNK))
    return total / (len(t) * (len(t) - 1))


# --------------------------------------------------------------------------- fidelity / coverage


def _cdist(a: Tensor, b: Tensor) -> Tensor:
    """Exact Euclidean distances (no matmul shortcut, so equal rows are exactly 0 apart)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _kth_neighbour_radius(x: Tensor, k: int) -> Tensor:
    """Distance from each row to its k-th nearest other row (the row itself is excluded)."""
    return torch.cat(
        [_cdist(x[i : i + _ROW_CHUNK], x).kthvalue(k + 1, dim=1).values for i in range(0, len(x), _ROW_CHUNK)]
    )


def _inside_any_ball(points: Tensor, centres: Tensor, radii: Tensor) -> Tensor:
    return torch.cat(
        [
            (_cdist(points[i : i + _ROW_CHUNK], centres) <= radii[None]).any(dim=1)
            for i in range(0, len(points), _ROW_CHUNK)
        ]
    )


def precision_recall(
    generated: np.ndarray, reference: np.ndarray, *, k: int = PR_NEIGHBOURS
) -> tuple[float, float]:
    """Improved precision/recall (Kynkäänniemi et al. 2019) with k-NN balls.

    Precision: share of generated clips inside some reference ball (radius = distance
    to that reference clip's k-th nearest reference neighbour). Recall: share of
    reference clips inside some generated ball.
    """
    gen = torch.from_numpy(_check_features(generated, "generated", minimum=2))
    ref = torch.from_numpy(_check_features(reference, "reference", minimum=2))
    k_ref, k_gen = min(k, len(ref) - 1), min(k, len(gen) - 1)
    precision = _inside_any_ball(gen, ref, _kth_neighbour_radius(ref, k_ref)).double().mean()
    recall = _inside_any_ball(ref, gen, _kth_neighbour_radius(gen, k_gen)).double().mean()
    return float(precision), float(recall)


# --------------------------------------------------------------------------- inversion


def inversion_round_trip(
    audio: np.ndarray | Tensor,
    transform: Transform,
    inverter: Inverter,
    *,
    batch_size: int = 16,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
) -> dict[str, float]:
    """How much encode -> decode -> invert loses, measured on real clips ``(N, 2, samples)``.

    ``transform`` and ``inverter`` must already be on ``device``; batches are moved there.

    Magnitudes use the transform's own STFT, over the frames the transform keeps.
    Returns the means over clips of ``transform_sc`` (decoded magnitude vs true
    magnitude: what the image format loses), ``roundtrip_sc`` and ``roundtrip_lsd``
    (dB; magnitude of the inverted waveform vs the original, clamped to
    ``LSD_RANGE_DB`` below each clip's peak).
    """
    x_all = torch.as_tensor(audio, dtype=torch.float32)
    length = transform.stft_spec.length
    if x_all.ndim != 3 or x_all.shape[1] != AUDIO_CHANNELS or x_all.shape[2] != length:
        raise InputError(
            f"round-trip audio must be (clips, {AUDIO_CHANNELS}, {length}) to match the transform; "
            f"got {tuple(x_all.shape)}"
        )
    task = progress.add_task("round trip", total=len(x_all), status="") if progress else None
    sc_t, sc_r, lsd = [], [], []
    with torch.inference_mode(), torch.random.fork_rng():
        torch.manual_seed(seed)
        for start in range(0, len(x_all), batch_size):
            x = x_all[start : start + batch_size].to(device)
            spectrogram = transform.spectrogram(transform.encode(x))
            decoded, spec = spectrogram.magnitude, spectrogram.spec
            y = spectrogram_audio(spectrogram, inverter)
            true, back = spec.magnitude(x), spec.magnitude(y)
            # A transform may keep fewer frames than the STFT gives (stft-db keeps 256 of 257).
            bins, frames = (min(t.shape[i] for t in (true, back, decoded)) for i in (2, 3))
            true, back, decoded = (t[:, :, :bins, :frames] for t in (true, back, decoded))
            sc_t.append(spectral_convergence(true, decoded).cpu())
            sc_r.append(spectral_convergence(true, back).cpu())
            lsd.append(_log_spectral_distance(true, back).cpu())
            if progress is not None and task is not None:
                progress.advance(task, len(x))
    return {
        "transform_sc": float(torch.cat(sc_t).mean()),
        "roundtrip_sc": float(torch.cat(sc_r).mean()),
        "roundtrip_lsd": float(torch.cat(lsd).mean()),
    }


def _log_spectral_distance(true: Tensor, estimate: Tensor) -> Tensor:
    """Per clip mean over (channel, frame) of the RMS over frequency of the dB difference."""
    db_true = 20 * torch.log10(true.clamp_min(1e-12))
    db_est = 20 * torch.log10(estimate.clamp_min(1e-12))
    floor = db_true.amax(dim=(1, 2, 3), keepdim=True) - LSD_RANGE_DB
    diff = db_true.maximum(floor) - db_est.maximum(floor)
    return diff.pow(2).mean(dim=2).sqrt().mean(dim=(1, 2))


# --------------------------------------------------------------------------- all together


def evaluate_features(
    generated: np.ndarray,
    reference: np.ndarray,
    names: Sequence[str],
    *,
    seed: int = 0,
    kid_subsets: int = KID_SUBSETS,
    kid_subset_size: int = KID_SUBSET_SIZE,
    ndb_bins: int | None = None,
    pr_k: int = PR_NEIGHBOURS,
) -> dict[str, float]:
    """Every set metric from raw feature matrices (standardised here with the reference)."""
    standardise = Standardiser.fit(reference, names)
    gen = standardise(_check_features(generated, "generated", minimum=2))
    ref = standardise(reference)
    kid, kid_std = kernel_distance(gen, ref, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    ndb, jsd, bins = ndb_jsd(gen, ref, bins=ndb_bins, seed=seed)
    precision, recall = precision_recall(gen, ref, k=pr_k)
    return {
        "fd": frechet_distance(gen, ref),
        "kid": kid,
        "kid_std": kid_std,
        "ndb": ndb,
        "ndb_bins": float(bins),
        "jsd": jsd,
        "diversity_gen": mean_pairwise_distance(gen),
        "diversity_ref": mean_pairwise_distance(ref),
        "precision": precision,
        "recall": recall,
        "n_generated": float(len(gen)),
        "n_reference": float(len(ref)),
    }


def evaluate_sets(
    generated_audio: np.ndarray | Tensor,
    reference_audio: np.ndarray | Tensor,
    sample_rate: int,
    *,
    seed: int = 0,
    transform: Transform | None = None,
    inverter: Inverter | None = None,
    kid_subsets: int = KID_SUBSETS,
    kid_subset_size: int = KID_SUBSET_SIZE,
    ndb_bins: int | None = None,
    pr_k: int = PR_NEIGHBOURS,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
) -> dict[str, float]:
    """All metrics between two sets of clips ``(N, 2, samples)`` at ``sample_rate``.

    With a ``transform`` and ``inverter`` (on ``device``) the reference set's inversion
    round trip is measured too. Values are deterministic for a given ``seed``.
    """
    gen, names = extract_features(generated_audio, sample_rate, progress=progress, description="generated")
    ref, _ = extract_features(reference_audio, sample_rate, progress=progress, description="reference")
    result = evaluate_features(
        gen,
        ref,
        names,
        seed=seed,
        kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size,
        ndb_bins=ndb_bins,
        pr_k=pr_k,
    )
    if transform is not None and inverter is not None:
        result |= inversion_round_trip(
            reference_audio, transform, inverter, seed=seed, device=device, progress=progress
        )
    return result


def frechet_distance_audio(a: np.ndarray | Tensor, b: np.ndarray | Tensor, sample_rate: int) -> float:
    """FD between clips ``a`` and reference clips ``b`` (both ``(N, 2, samples)``), standardised by ``b``.

    Cheap enough to run every epoch (16 previews vs 64 validation clips: well under 1 s).
    Raises ``InputError`` for NaN/inf audio or fewer than 2 clips on a side.
    """
    fa, names = extract_features(a, sample_rate)
    fb, _ = extract_features(b, sample_rate)
    standardise = Standardiser.fit(fb, names)
    return frechet_distance(standardise(fa), standardise(fb))


METRIC_DESCRIPTIONS: dict[str, str] = {
    "fd": "Frechet distance of Gaussians fitted to standardised features (lower is better)",
    "kid": "Kernel distance: unbiased MMD^2, cubic polynomial kernel (lower is better, ~0 = same)",
    "kid_std": "Std of KID over random subsets",
    "ndb": "Share of k-means bins whose proportions differ significantly (lower is better)",
    "ndb_bins": "Number of k-means bins K",
    "jsd": "Jensen-Shannon divergence of bin histograms, bits (lower is better)",
    "diversity_gen": "Mean pairwise feature distance within the generated set",
    "diversity_ref": "Mean pairwise feature distance within the reference set",
    "precision": "Share of generated clips on the reference manifold (higher is better)",
    "recall": "Share of reference clips on the generated manifold (higher is better)",
    "n_generated": "Generated clips",
    "n_reference": "Reference clips",
    "transform_sc": "Spectral convergence of decode(encode(x)) vs |STFT x| (lower is better)",
    "roundtrip_sc": "Spectral convergence after encode -> decode -> invert (lower is better)",
    "roundtrip_lsd": "Log-spectral distance after the round trip, dB (lower is better)",
}
"""One line per metric key, for tables and ``--json`` consumers."""

__all__ = [
    "METRIC_DESCRIPTIONS",
    "Standardiser",
    "evaluate_features",
    "evaluate_sets",
    "frechet_distance",
    "frechet_distance_audio",
    "inversion_round_trip",
    "kernel_distance",
    "kmeans",
    "mean_pairwise_distance",
    "ndb_jsd",
    "precision_recall",
]
