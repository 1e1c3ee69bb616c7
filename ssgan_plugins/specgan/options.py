"""Option models of the SpecGAN plugin's parts, apart from their torch code.

Importing this module loads pydantic only, so ``ssgan config show`` and ``list-plugins``
describe the parts without importing torch; the part modules re-export these models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ssgan_core.config import LossOptions


class SpecGanGeneratorOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    latent_dim: int = Field(100, ge=1, description="Latent size (SpecGAN: 100).")
    width: int = Field(32, ge=1, description="Channels of the last hidden layer; doubled towards the latent.")
    max_width: int = Field(512, ge=1, description="Cap on any layer's channels.")
    norm: Literal["batch", "none"] = Field("batch", description="Normalisation after each hidden layer.")


class SpecGanCriticOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    width: int = Field(32, ge=1, description="Channels of the first layer; doubled at each halving.")
    max_width: int = Field(512, ge=1, description="Cap on any layer's channels.")
    leaky_slope: float = Field(0.2, ge=0, description="LeakyReLU negative slope.")
    spectral_norm: bool = Field(
        False, description="Spectral norm on every layer (SNGAN; common with the hinge loss)."
    )


class HingeOptions(LossOptions):
    pass
