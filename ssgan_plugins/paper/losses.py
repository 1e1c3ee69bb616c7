"""The paper's loss terms: WGAN-GP plus spectral and feature-matching terms.

Paper objective (default weights)::

    critic    = W + 5 GP + 0.15 spectral-difference + 0.15 spectral-convergence
    generator = -mean D(fake) + 0.35 feature-matching

The spectral terms compare the real and fake images directly. On the critic step
``fake`` is detached from the generator and neither image depends on the critic, so
they carry no gradient at all: they shift the logged critic loss and nothing else.
They are kept because the paper's critic loss includes them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssgan_core import AudioSpec, ConfigError, LossContext, LossOptions, LossTerm
from ssgan_plugins.paper.options import (
    LOSS_TERM_OPTIONS,
    Comparison,
    FeatureMatchingOptions,
    GradientPenaltyOptions,
    SpectralConvergenceOptions,
    SpectralDifferenceOptions,
    WassersteinOptions,
)

# --------------------------------------------------------------------------- wasserstein


class Wasserstein(LossTerm):
    """Critic: ``mean D(fake) - mean D(real)``; generator: ``-mean D(fake)``."""

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def critic_loss(self, ctx: LossContext) -> Tensor:
        return ctx.fake_scores.mean() - ctx.real_scores.mean()

    def generator_loss(self, ctx: LossContext) -> Tensor:
        return -ctx.fake_scores.mean()


# --------------------------------------------------------------------------- gradient penalty


class GradientPenalty(LossTerm):
    """``mean (||grad_x D(x)||_2 - 1)^2`` at random interpolates of real and fake.

    One interpolation factor per item, drawn from the global torch RNG (seeded runs
    repeat). Works for any :class:`~ssgan_core.Critic` and any batch size; when the
    real and fake batches differ in size, the first ``min`` items of each are used.
    """

    NORM_EPS = 1e-12
    """Added under the square root so the norm has a gradient where ``grad = 0``."""

    def __init__(self, weight: float = 5.0) -> None:
        self.weight = weight

    def critic_loss(self, ctx: LossContext) -> Tensor:
        n = min(ctx.real.shape[0], ctx.fake.shape[0])
        real, fake = ctx.real[:n].detach().float(), ctx.fake[:n].detach().float()
        eps = torch.rand((n,) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
        mixed = torch.lerp(fake, real, eps).requires_grad_(True)
        # Float32 even under mixed precision: the penalty's double backward is a small
        # difference of large terms, which bfloat16 would round away.
        with torch.enable_grad(), torch.autocast(real.device.type, enabled=False):
            scores = ctx.critic(mixed)
            (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
        norms = (grad.flatten(1).pow(2).sum(dim=1) + self.NORM_EPS).sqrt()
        return (norms - 1).pow(2).mean()


# --------------------------------------------------------------------------- spectral terms


class SpectralDifference(LossTerm):
    """Critic side: ``mean |real - fake|`` over every pixel. Carries no gradient to the critic."""

    def __init__(self, weight: float = 0.15) -> None:
        self.weight = weight

    def critic_loss(self, ctx: LossContext) -> Tensor:
        return (ctx.real - ctx.fake).abs().mean()


class SpectralConvergence(LossTerm):
    """Critic side: ``||fake - real||_2 / ||real||_2`` over the whole batch (Frobenius norms).

    Carries no gradient to the critic. ``EPS`` keeps an all-zero real batch finite.
    """

    EPS = 1e-8

    def __init__(self, weight: float = 0.15) -> None:
        self.weight = weight

    def critic_loss(self, ctx: LossContext) -> Tensor:
        return torch.linalg.vector_norm(ctx.fake - ctx.real) / (torch.linalg.vector_norm(ctx.real) + self.EPS)


# --------------------------------------------------------------------------- feature matching


class FeatureMatching(LossTerm):
    """Generator side: L1 distance between the critic's features of real and fake batches.

    For each layer the critic names in ``feature_layers`` (the paper critic: its
    attention layer and second-to-last conv block) a distance, averaged over layers:

    ``items`` (default)
        ``mean |f(real) - f(fake)|`` over every element, item ``i`` of the real batch
        against item ``i`` of the fake batch: the original implementation's formula.
        The pairs are random, so this pulls each fake towards the typical real
        features rather than matching one partner; it is what keeps the generator's
        level and stereo balance near the data (see ``docs/paper.md``).
    ``batch-means``
        ``mean |mean_batch f(real) - mean_batch f(fake)|``, feature matching as in
        Salimans et al. (2016). Weaker here: the critic's BatchNorm gives both batch
        means the same per-channel level, so it cannot see a level offset.

    The real pass runs without a graph: the generator's gradient does not depend on it.
    When the batches differ in size, the first ``min`` items of each are paired.
    """

    def __init__(self, weight: float = 0.35, compare: Comparison = "items") -> None:
        if compare not in ("items", "batch-means"):
            raise ConfigError(f"feature matching: compare must be 'items' or 'batch-means', got {compare!r}")
        self.weight = weight
        self.compare = compare

    def generator_loss(self, ctx: LossContext) -> Tensor:
        fake = ctx.fake_features
        if not fake:
            raise ConfigError(
                f"losses.feature-matching: critic {type(ctx.critic).__name__} returns no features "
                "(its feature_layers is empty); set the weight to 0 or use a critic that names layers"
            )
        with torch.no_grad():
            real = ctx.real_features
        distances = [self._distance(real[name].detach(), fake[name]) for name in fake]
        return torch.stack(distances).mean()

    def _distance(self, real: Tensor, fake: Tensor) -> Tensor:
        if self.compare == "batch-means":
            return (real.mean(dim=0) - fake.mean(dim=0)).abs().mean()
        n = min(real.shape[0], fake.shape[0])
        return (real[:n] - fake[:n]).abs().mean()


# --------------------------------------------------------------------------- registration


_TERM_OF: dict[type[LossOptions], type[LossTerm]] = {
    WassersteinOptions: Wasserstein,
    GradientPenaltyOptions: GradientPenalty,
    SpectralDifferenceOptions: SpectralDifference,
    SpectralConvergenceOptions: SpectralConvergence,
    FeatureMatchingOptions: FeatureMatching,
}


def build_loss_term(options: LossOptions, audio: AudioSpec) -> LossTerm:
    """Factory of every paper loss term: the term whose options model ``options`` is an instance of."""
    return _TERM_OF[type(options)](**options.model_dump())  # type: ignore[call-arg]


LOSS_TERMS = tuple(
    (name, build_loss_term, options, description) for name, options, description in LOSS_TERM_OPTIONS
)
"""``(name, factory, options model, description)`` for each term, registered by the paper plugin."""
