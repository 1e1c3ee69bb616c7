"""Option models of the ``logfreq`` transform, apart from their torch code.

Importing this module loads pydantic only: ``ssgan config show``, ``config docs`` and
``list-plugins`` validate and describe the parts without importing torch (1 to 2 s).
The part modules re-export their models from here.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LogFreqOptions(BaseModel):
    """Options of the ``logfreq`` transform."""

    model_config = ConfigDict(extra="forbid")

    n_fft: int = Field(
        4096, ge=512, le=32768, description="STFT size; sets the low-frequency resolution (sr / n_fft Hz)."
    )
    fmin: float = Field(20.0, gt=0, description="Centre frequency (Hz) of the lowest image row.")
    fmax: float = Field(20_000.0, gt=0, description="Centre frequency (Hz) of the highest image row.")
    db_min: float = Field(-90.0, description="dB (re. a full-scale sine) mapped to -1; quieter is clipped.")
    db_max: float = Field(6.0, description="dB (re. a full-scale sine) mapped to +1; louder is clipped.")

    @model_validator(mode="after")
    def _ordered(self) -> LogFreqOptions:
        if self.fmin >= self.fmax:
            raise ValueError(f"fmin ({self.fmin}) must be below fmax ({self.fmax})")
        if self.db_min >= self.db_max:
            raise ValueError(f"db_min ({self.db_min}) must be below db_max ({self.db_max})")
        return self
