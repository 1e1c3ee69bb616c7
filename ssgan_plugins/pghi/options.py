"""Option models of the ``pghi`` inverter, apart from their torch code.

Importing this module loads pydantic only: ``ssgan config show``, ``config docs`` and
``list-plugins`` validate and describe the parts without importing torch (1 to 2 s).
The part modules re-export their models from here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TOL_DB = (-15.0, -30.0, -60.0)
"""Default integration stages (dB below each signal's peak); see :class:`PghiOptions`.
Chosen on the dev set's training kicks and tones (docs/benchmarks.md): better than one
stage at -20 or -50 dB and than (-10, -20, -50), alone and as the start of Griffin-Lim."""


RATIO_SCALES = (1.0, 1.2, 1.44)
"""Default multiples of the window's time-frequency ratio; each item starts from the most
consistent. On 64 held-out recorded kicks (pghi + fast Griffin-Lim x10): -18.4 dB where
the best single value (1.2) gave -17.5; on tones as good as their best single value (1.0)
(docs/benchmarks.md)."""


ChannelPhase = Literal["shared-start", "linked", "independent"]


class PghiOptions(BaseModel):
    """Options of the ``pghi`` inverter."""

    model_config = ConfigDict(extra="forbid")

    iterations: int = Field(
        10, ge=0, le=10_000, description="Fast Griffin-Lim iterations after PGHI (0: PGHI's phase alone)."
    )
    momentum: float = Field(0.99, ge=0.0, le=1.0, description="Fast Griffin-Lim momentum.")
    tol_db: list[float] = Field(
        default_factory=lambda: list(TOL_DB),
        min_length=1,
        description=(
            "PGHI stages, in dB below each signal's peak (negative, descending): each stage "
            "integrates the coefficients above its level, continuing from the earlier stages'; "
            "coefficients below the last get a random phase."
        ),
    )
    gate_db: float | None = Field(
        -70.0,
        le=0.0,
        description=(
            "Noise gate of the Griffin-Lim iterations: target bins more than this many dB below "
            "the item's loudest bin are silenced; null disables the gate."
        ),
    )
    channel_phase: ChannelPhase = Field(
        "shared-start",
        description=(
            "shared-start: one PGHI phase per item, from the channels' summed magnitude, then "
            "Griffin-Lim per channel (a pan stays exactly in phase, channels that differ find "
            "their own); linked: that phase kept shared through the iterations too; "
            "independent: each channel gets its own PGHI phase."
        ),
    )
    ratio_scales: list[Annotated[float, Field(gt=0.0, le=10.0)]] = Field(
        default_factory=lambda: list(RATIO_SCALES),
        min_length=1,
        max_length=16,
        description=(
            "Multiples of the window's time-frequency ratio (1: the window's own) that PGHI "
            "integrates with, all in one pass; with several, each item starts from the one "
            "whose phase is most consistent with its magnitude (one inverse STFT and STFT each)."
        ),
    )
    seed: int = Field(0, description="Seed of the random phase of the quiet coefficients.")

    @model_validator(mode="before")
    @classmethod
    def _single_ratio_scale(cls, data: Any) -> Any:
        """Earlier runs name one ``ratio_scale``; read it as a one-element list.

        It wins over a ``ratio_scales`` beside it: no default or preset names the old
        field, so where both meet (a run's ``config.json`` merged onto the defaults) the
        old one is what the run used.
        """
        if isinstance(data, dict) and "ratio_scale" in data:
            data = dict(data)
            data["ratio_scales"] = [data.pop("ratio_scale")]
        return data

    @field_validator("tol_db")
    @classmethod
    def _negative_descending(cls, value: list[float]) -> list[float]:
        if any(t >= 0 for t in value) or value != sorted(value, reverse=True):
            raise ValueError("must be negative and descending, e.g. [-15, -30, -60]")
        return value
