"""Option models of the ``mel`` and ``mag-if`` transforms, apart from their torch code.

Importing this module loads pydantic only, so ``ssgan config show`` and ``list-plugins``
describe the transforms without importing torch; the transform modules re-export them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FramedOptions(BaseModel):
    """STFT size, image columns and the dB range mapped onto ``[-1, 1]``."""

    model_config = ConfigDict(extra="forbid")

    frames: int = Field(128, ge=4, le=4096, description="Image columns: every STFT frame of the clip fits.")
    db_min: float = Field(-90.0, description="dB (re. a full-scale sine) stored as -1; quieter is clipped.")
    db_max: float = Field(6.0, description="dB (re. a full-scale sine) stored as +1; louder is clipped.")

    @model_validator(mode="after")
    def _range_is_ordered(self) -> FramedOptions:
        if self.db_max <= self.db_min:
            raise ValueError(f"db_max ({self.db_max}) must be above db_min ({self.db_min})")
        return self


class MelOptions(FramedOptions):
    n_mels: int = Field(128, ge=4, le=1024, description="Mel bands: the image's rows.")
    n_fft: int = Field(2048, ge=16, le=32768, description="STFT size = Hann window length.")
    fmin: float = Field(0.0, ge=0, description="Lowest band edge, Hz.")
    fmax: float | None = Field(None, gt=0, description="Highest band edge, Hz; null: Nyquist.")

    @model_validator(mode="after")
    def _bands_fit(self) -> MelOptions:
        if self.n_mels > self.n_fft // 2 + 1:
            raise ValueError(
                f"n_mels ({self.n_mels}) must not exceed the STFT's bins ({self.n_fft // 2 + 1})"
            )
        return self


class MagIfOptions(FramedOptions):
    n_fft: int = Field(512, ge=16, le=32768, description="STFT size = Hann window length; n_fft / 2 rows.")
    db_min: float = Field(-100.0, description="dB (re. a full-scale sine) stored as -1; quieter is silence.")
