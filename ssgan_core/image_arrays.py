"""Reading image arrays (``.npy``) that users hand to ``invert`` and ``evaluate``."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np

from ssgan_core.errors import InputError

RANGE_TOLERANCE = 1e-3
"""Values up to this far outside ``[-1, 1]`` are clipped (rounding); further is an error."""


def load_image_array(path: Path, shape: Sequence[int]) -> tuple[np.ndarray, bool]:
    """Read and check an image array against the transform's image ``shape`` ``(C, F, T)``.

    Accepts ``(C, F, T)`` (one item), ``(F, T)`` (one mono image, used for every channel)
    and ``(N, C, F, T)``. Returns ``(N, C, F, T)`` float32 and whether it was batched.
    """
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
    item = tuple(int(n) for n in shape)
    image = item[1:]
    if data.shape == image:
        batch, batched = np.broadcast_to(data, (1, *item)).copy(), False
    elif data.shape == item:
        batch, batched = data[None], False
    elif data.ndim == 4 and data.shape[1:] == item and data.shape[0] > 0:
        batch, batched = data, True
    else:
        c, f, t = item
        raise InputError(
            f"{path}: array has shape {data.shape}; the transform makes images of {item}, so expected "
            f"({c}, {f}, {t}), ({f}, {t}) or (N, {c}, {f}, {t})"
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


class NpyStream:
    """Append rows to an open binary file as a ``.npy`` array; the header goes in at the end.

    Written with ordinary ``write`` calls, so a full disk raises ``OSError(ENOSPC)``
    (a memory-mapped array dies with SIGBUS instead), and memory holds one block at a
    time. The header is padded to a fixed size, so :meth:`finish` writes it in place
    once the row count is known. Serves ``ssgan encode`` (float32) and the training
    cache (float16).
    """

    HEADER_BYTES = 128

    def __init__(self, handle: IO[bytes], dtype: np.typing.DTypeLike = np.float32) -> None:
        self.handle, self.dtype, self.rows = handle, np.dtype(dtype), 0
        self.item_shape: tuple[int, ...] | None = None
        self.handle.write(b"\0" * self.HEADER_BYTES)

    def append(self, rows: np.ndarray) -> None:
        block = np.ascontiguousarray(rows, dtype=self.dtype)
        if self.item_shape is None:
            self.item_shape = tuple(block.shape[1:])
        elif block.shape[1:] != self.item_shape:
            raise InputError(f"rows of shape {block.shape[1:]} do not fit an array of {self.item_shape}")
        self.handle.write(block.data.cast("B"))
        self.rows += len(block)

    def finish(self) -> tuple[int, ...]:
        """Write the header for the rows written; returns the array's shape."""
        shape = (self.rows, *(self.item_shape or ()))
        text = f"{{'descr': '{np.lib.format.dtype_to_descr(self.dtype)}', 'fortran_order': False, "
        text += f"'shape': {shape}, }}"
        room = self.HEADER_BYTES - 10 - 1  # magic + version + length field; newline at the end
        if len(text) > room:
            raise InputError(f"array shape {shape} is too large for a .npy header")
        end = self.handle.tell()
        self.handle.seek(0)
        self.handle.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", room + 1))
        self.handle.write(text.ljust(room).encode("latin1") + b"\n")
        self.handle.seek(end)
        self.handle.flush()
        return shape
