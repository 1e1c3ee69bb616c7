"""Reading image arrays (``.npy``) that users hand to ``invert`` and ``evaluate``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ssgan_core.errors import InputError
from ssgan_core.interfaces import CHANNELS, IMAGE_SIZE

RANGE_TOLERANCE = 1e-3
"""Values up to this far outside ``[-1, 1]`` are clipped (rounding); further is an error."""


def load_image_array(path: Path) -> tuple[np.ndarray, bool]:
    """Read and check an image array; returns ``(N, 2, 256, 256)`` float32 and whether it was batched."""
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a .npy file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{path}: not a readable .npy array ({exc})") from None
    if not isinstance(data, np.ndarray):
        raise InputError(f"{path}: holds several arrays (.npz); pass a single .npy array")
    image, item = (IMAGE_SIZE, IMAGE_SIZE), (CHANNELS, IMAGE_SIZE, IMAGE_SIZE)
    if data.shape == image:
        batch, batched = np.broadcast_to(data, (1, *item)).copy(), False
    elif data.shape == item:
        batch, batched = data[None], False
    elif data.ndim == 4 and data.shape[1:] == item and data.shape[0] > 0:
        batch, batched = data, True
    else:
        raise InputError(
            f"{path}: array has shape {data.shape}; expected (2, 256, 256), (256, 256) or (N, 2, 256, 256)"
        )
    if not np.issubdtype(data.dtype, np.floating):
        raise InputError(f"{path}: array has dtype {data.dtype}; expected float16, float32 or float64")
    # Three passes over the data (load, min, max), not seven: a 256-item array is 134 MB.
    batch = batch.astype(np.float32, copy=False)
    low, high = float(batch.min()), float(batch.max())
    if not (math.isfinite(low) and math.isfinite(high)):  # NaN or inf anywhere shows here
        bad = np.count_nonzero(~np.isfinite(batch))
        raise InputError(f"{path}: {bad} values are NaN or infinite")
    if low < -1 - RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise InputError(f"{path}: values span [{low:.4g}, {high:.4g}]; images must lie in [-1, 1]")
    if low < -1.0 or high > 1.0:
        batch = np.clip(batch, -1.0, 1.0)
    return batch, batched
