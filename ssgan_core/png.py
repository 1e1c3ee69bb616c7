"""Spectrogram pictures as PNG, with nothing but numpy, zlib and struct.

:func:`save_spectrogram_png` draws images in ``[-1, 1]`` (``(C, F, T)`` or
``(N, C, F, T)``, any channel count) as a grid: each item shows its channels side by
side (left | right for stereo magnitudes), low frequencies at the bottom, coloured with
a magma-like map.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ssgan_core.errors import InputError
from ssgan_core.files import write_bytes

# Anchor colours of matplotlib's "magma" at 0, 1/8, ..., 1; linear in between.
_MAGMA_ANCHORS = np.array(
    [
        [0, 0, 4],
        [28, 16, 68],
        [79, 18, 123],
        [129, 37, 129],
        [181, 54, 122],
        [229, 80, 100],
        [251, 135, 97],
        [254, 194, 135],
        [252, 253, 191],
    ],
    dtype=np.float64,
)
CHANNEL_GAP = 2
"""Pixels between the channels of one item."""
ITEM_GAP = 6
"""Pixels between items of the grid."""
GAP_COLOUR = (40, 40, 40)


def colormap(values: np.ndarray, size: int = 256) -> np.ndarray:
    """Values in ``[0, 1]`` (NaN -> 0) -> uint8 RGB ``(..., 3)`` through a magma-like table."""
    stops = np.linspace(0.0, 1.0, len(_MAGMA_ANCHORS))
    grid = np.linspace(0.0, 1.0, size)
    table = np.stack([np.interp(grid, stops, _MAGMA_ANCHORS[:, c]) for c in range(3)], axis=1)
    table = np.round(table).astype(np.uint8)
    index = np.nan_to_num(values, nan=0.0).clip(0.0, 1.0) * (size - 1)
    return table[np.round(index).astype(np.intp)]


def encode_png(rgb: np.ndarray) -> bytes:
    """uint8 ``(H, W, 3)`` RGB or ``(H, W)`` grey -> PNG file bytes (8-bit, no interlace)."""
    pixels = np.ascontiguousarray(rgb, dtype=np.uint8)
    if pixels.ndim == 2:
        colour_type, channels = 0, 1
    elif pixels.ndim == 3 and pixels.shape[2] == 3:
        colour_type, channels = 2, 3
    else:
        raise InputError(f"PNG pixels have shape {pixels.shape}; expected (H, W) or (H, W, 3)")
    height, width = pixels.shape[:2]
    if height == 0 or width == 0:
        raise InputError("PNG image is empty")
    rows = pixels.reshape(height, width * channels)
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)  # filter type 0 per row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6))
        + chunk(b"IEND", b"")
    )


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write pixels to ``path`` atomically (temporary file, then rename)."""
    return write_bytes(path, encode_png(rgb))


def spectrogram_grid(images: Any, *, columns: int | None = None, span: float | None = None) -> np.ndarray:
    """Images ``(C, F, T)`` or ``(N, C, F, T)`` in ``[-1, 1]`` -> uint8 RGB grid ``(H, W, 3)``.

    ``columns`` defaults to a roughly square picture. ``span`` (image units, e.g. a
    transform's ``display_span``) draws each item from its loudest pixel, over both
    channels so their balance shows, down to ``span`` below it, which is black;
    ``None`` maps the fixed range ``[-1, 1]``.
    """
    if hasattr(images, "detach"):  # a torch tensor, without importing torch here
        images = images.detach().float().cpu().numpy()
    data = np.asarray(images, dtype=np.float32)
    if data.ndim == 3:
        data = data[None]
    if data.ndim != 4 or 0 in data.shape:
        raise InputError(f"spectrogram images have shape {data.shape}; expected (C, F, T) or (N, C, F, T)")
    n, channels, freq, time = data.shape
    item_width = channels * time + (channels - 1) * CHANNEL_GAP
    if columns is None:
        columns = max(1, round(math.sqrt(n * (freq + ITEM_GAP) / (item_width + ITEM_GAP))))
    columns = max(1, min(int(columns), n))
    rows = math.ceil(n / columns)

    # Values in [0, 1] with low frequencies at the bottom; NaN marks gaps.
    data = np.nan_to_num(data[:, :, ::-1, :], nan=-1.0, posinf=1.0, neginf=-1.0)
    if span is None:
        values = (data + 1.0) * 0.5
    else:
        if not span > 0:
            raise InputError(f"span must be positive, got {span}")
        floor = data.max(axis=(1, 2, 3), keepdims=True) - span
        values = (data - floor) / span
    gapped = np.full((n, channels, freq, time + CHANNEL_GAP), np.nan, np.float32)
    gapped[..., :time] = values  # each channel followed by a gap, then side by side
    items = gapped.transpose(0, 2, 1, 3).reshape(n, freq, -1)[..., :item_width]  # (N, F, C T + gaps)
    cell_h, cell_w = freq + ITEM_GAP, items.shape[2] + ITEM_GAP
    cells = np.full((rows * columns, cell_h, cell_w), np.nan, np.float32)
    cells[:n, :freq, : items.shape[2]] = items
    grid = cells.reshape(rows, columns, cell_h, cell_w).transpose(0, 2, 1, 3)
    grid = grid.reshape(rows * cell_h, columns * cell_w)[:-ITEM_GAP, :-ITEM_GAP]
    rgb = colormap(grid)
    rgb[np.isnan(grid)] = GAP_COLOUR
    return rgb


def save_spectrogram_png(
    images: Any, path: str | Path, *, columns: int | None = None, span: float | None = None
) -> Path:
    """Draw spectrogram images (see :func:`spectrogram_grid`) into a PNG file."""
    return write_png(path, spectrogram_grid(images, columns=columns, span=span))
