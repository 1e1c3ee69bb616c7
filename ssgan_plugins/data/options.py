"""Option models of the built-in synthetic dataset sources, apart from their torch code.

Importing this module loads pydantic only: ``ssgan config show``, ``config docs`` and
``list-plugins`` validate and describe the parts without importing torch (1 to 2 s).
The part modules re-export their models from here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
    layers: Literal["recorded", "sine"] = Field(
        "recorded",
        description=(
            "recorded: a swept body plus beater click, shell modes, a stereo room tail and noise, "
            "in varied balance, like a recorded kick; sine: the swept sine and click alone "
            "(the built-in kicks before the layers, to compare with earlier runs)."
        ),
    )


class SyntheticTonesOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(1000, ge=2, le=200_000, description="Number of tonal one-shots.")
    seed: int = Field(0, description="Seed of the note parameters (independent of the run seed).")
