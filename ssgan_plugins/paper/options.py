"""Option models of the paper plugin's parts, apart from their torch code.

Importing this module loads pydantic only: ``ssgan config show``, ``config docs`` and
``list-plugins`` validate and describe the parts without importing torch (1 to 2 s).
The part modules re-export their models from here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ssgan_core.config import LossOptions


class StftDbOptions(BaseModel):
    """Options of the ``stft-db`` transform."""

    model_config = ConfigDict(extra="forbid")

    scaling: Literal["paper", "level"] = Field(
        "level",
        description=(
            "paper: each channel min-max scaled to [-1, 1], decoded to -40..40 dB (loses loudness "
            "and stereo balance); level: one fixed dB range for all (keeps both)."
        ),
    )
    n_fft: int = Field(
        510, ge=510, le=511, description="FFT size = window length; 510 (paper) gives 256 frequency bins."
    )
    kaiser_beta: float = Field(12.0, ge=0.0, description="Shape of the symmetric Kaiser window (paper: 12).")
    top_db: float | None = Field(
        80.0, gt=0.0, description="Floor in dB below the peak (per channel in paper mode); null: none."
    )
    amin: float = Field(1e-5, gt=0.0, description="Smallest magnitude before log10 (avoids -inf).")
    ref: float = Field(1.0, gt=0.0, description="Magnitude that maps to 0 dB.")
    paper_decode_range_db: float = Field(
        40.0, gt=0.0, description="paper scaling: decode maps [-1, 1] to -this..+this dB (paper: 40)."
    )
    level_min_db: float = Field(-54.0, description="level scaling: dB value stored as -1 (and below).")
    level_max_db: float = Field(46.0, description="level scaling: dB value stored as +1 (and above).")
    level_floor: Literal["silence", "level"] = Field(
        "silence",
        description=(
            "level scaling: bins at or below the top_db floor are stored as -1 (silence, like "
            "paper scaling's floor), or at the floor's own level."
        ),
    )

    @model_validator(mode="after")
    def _range_is_ordered(self) -> StftDbOptions:
        if self.level_max_db <= self.level_min_db:
            raise ValueError(
                f"level_max_db ({self.level_max_db}) must be above level_min_db ({self.level_min_db})"
            )
        return self


class PaperGeneratorOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latent_dim: int = Field(128, ge=1, description="Latent size (paper: 128).")
    dropout: float = Field(0.2, ge=0, lt=1, description="Dropout after each hidden layer (paper: 0.2).")
    leaky_slope: float = Field(0.2, ge=0, description="LeakyReLU negative slope (paper: 0.2).")
    output_bias: Literal["none", "data-mean"] = Field(
        "none",
        description="A learnable per-pixel bias before the tanh; `data-mean` starts it at the training "
        "images' mean (not in the paper; docs/recipe.md).",
    )


AttentionKind = Literal["paper", "linear"]


AttentionImpl = Literal["auto", "sorted", "naive"]


NORMALIZE_EPS = 1e-12
"""The floor under each query's L1 norm: ``F.normalize``'s default, as in the original, and
the default of ``critic.attention_eps``. A query facing only keys nearly orthogonal to
it divides by almost zero and its gradient spikes; a higher floor removes the spikes,
but at the original code's learning rates the critic then ran away (docs/training.md)."""


FeatureName = Literal["input", "block1", "block2", "block3", "attention", "block4", "block5", "block6"]


class PaperCriticOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attention: AttentionKind = Field(
        "paper", description="paper: relu(k^T q) L1-normalised (original); linear: elu+1 kernel attention."
    )
    attention_impl: AttentionImpl = Field(
        "auto", description="How paper attention is computed: sorted (exact, O(N log N)), naive (N x N)."
    )
    attention_eps: float = Field(
        NORMALIZE_EPS,
        gt=0,
        description="Floor under each query's L1 norm in paper attention (original: 1e-12; docs/paper.md).",
    )
    feature_layers: tuple[FeatureName, ...] = Field(
        ("attention", "block5"),
        description="Activations returned for feature matching (paper: attention, second-to-last block).",
    )
    dropout: float = Field(0.2, ge=0, lt=1, description="Dropout in every block (paper: 0.2).")
    leaky_slope: float = Field(0.2, ge=0, description="LeakyReLU negative slope (paper: 0.2).")
    norm: Literal["batch", "layer", "none"] = Field(
        "batch",
        description="Normalisation in blocks 2-6: batch (paper), layer (GroupNorm with one group: per "
        "item, as the WGAN-GP paper advises for a gradient-penalised critic) or none.",
    )
    minibatch_std: int = Field(
        0,
        ge=0,
        description="Items per group of a minibatch-standard-deviation channel before the final conv "
        "(Karras et al. 2018): the critic sees how varied a group is, so a generator that makes "
        "one kick for every latent is told apart. 0: off (paper); 4 as in ProGAN.",
    )


class GriffinLimOptions(BaseModel):
    """Options of the ``griffin-lim`` inverter."""

    model_config = ConfigDict(extra="forbid")

    iterations: int = Field(10, ge=0, le=10_000, description="Griffin-Lim iterations (paper: 10).")
    momentum: float = Field(
        0.99,
        ge=0.0,
        le=1.0,
        description="Fast Griffin-Lim momentum on the STFT estimate (0 gives plain Griffin-Lim).",
    )
    gate_db: float | None = Field(
        -70.0,
        le=0.0,
        description=(
            "Noise gate: target bins more than this many dB below the item's loudest bin are "
            "silenced at every iteration; null disables the gate."
        ),
    )
    init: Literal["random", "zeros"] = Field(
        "random", description="Initial phase: uniform random, or zero phase."
    )
    seed: int = Field(0, description="Seed of the random initial phase.")
    channel_phase: Literal["linked", "independent"] = Field(
        "linked",
        description=(
            "linked: the channels of an item share one phase and keep their own magnitudes "
            "(coherent, mono-compatible stereo); independent: each channel finds its own phase."
        ),
    )


class WassersteinOptions(LossOptions):
    weight: float = Field(1.0, ge=0, description="Multiplier of both sides' Wasserstein term.")


class GradientPenaltyOptions(LossOptions):
    weight: float = Field(5.0, ge=0, description="Multiplier of the gradient penalty (paper: 5).")


class SpectralDifferenceOptions(LossOptions):
    weight: float = Field(0.15, ge=0, description="Multiplier (paper: 0.15). No gradient to the critic.")


class SpectralConvergenceOptions(LossOptions):
    weight: float = Field(0.15, ge=0, description="Multiplier (paper: 0.15). No gradient to the critic.")


Comparison = Literal["items", "batch-means"]


class FeatureMatchingOptions(LossOptions):
    weight: float = Field(0.35, ge=0, description="Multiplier of feature matching (paper: 0.35).")
    compare: Comparison = Field(
        "items",
        description=(
            "items: mean |f(real_i) - f(fake_i)| over the batch (the original implementation's "
            "formula); batch-means: |mean f(real) - mean f(fake)| (Salimans et al. 2016)."
        ),
    )


LOSS_TERM_OPTIONS = (
    (
        "wasserstein",
        WassersteinOptions,
        "WGAN loss: critic mean D(fake) - mean D(real), generator -mean D(fake).",
    ),
    (
        "gradient-penalty",
        GradientPenaltyOptions,
        "WGAN-GP penalty (||grad D|| - 1)^2 at random real/fake interpolates (paper weight 5).",
    ),
    (
        "spectral-difference",
        SpectralDifferenceOptions,
        "Critic-side mean |real - fake| (paper weight 0.15; no gradient to the critic).",
    ),
    (
        "spectral-convergence",
        SpectralConvergenceOptions,
        "Critic-side ||fake - real|| / ||real|| (paper weight 0.15; no gradient to the critic).",
    ),
    (
        "feature-matching",
        FeatureMatchingOptions,
        "Generator-side L1 between critic features of real and fake at named layers (paper weight 0.35).",
    ),
)
"""``(name, options model, description)`` of each loss term (``losses.LOSS_TERMS`` adds the factories)."""
