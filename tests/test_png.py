"""Spectrogram pictures: layout, the fixed and the peak-relative colour scale, the PNG file."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from ssgan_core.errors import InputError
from ssgan_core.interfaces import AudioSpec
from ssgan_core.png import CHANNEL_GAP, GAP_COLOUR, colormap, save_spectrogram_png, spectrogram_grid
from ssgan_plugins.logfreq.transform import LogFreqOptions, build_logfreq
from ssgan_plugins.paper.stft_db import StftDbOptions, build_stft_db

BLACK, WHITE = tuple(colormap(np.array(0.0))), tuple(colormap(np.array(1.0)))


def _item(level: float, peak: float, right_gain: float = 0.0) -> np.ndarray:
    """A flat floor at ``level`` with one pixel at ``peak`` (left channel, lowest row, frame 0)."""
    image = np.full((2, 8, 8), level, np.float32)
    image[0, 0, 0] = peak
    image[1] += right_gain
    return image


def test_layout_and_fixed_scale() -> None:
    rgb = spectrogram_grid(_item(-1.0, 1.0), columns=1)
    assert rgb.shape == (8, 2 * 8 + CHANNEL_GAP, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[-1, 0]) == WHITE  # low frequency at the bottom, time left to right
    assert tuple(rgb[0, 0]) == BLACK
    assert tuple(rgb[0, 8]) == GAP_COLOUR


def test_span_draws_each_item_from_its_own_peak() -> None:
    quiet, loud = _item(-0.7, -0.2), _item(-0.3, 0.2)
    fixed = spectrogram_grid(np.stack([quiet, loud]), columns=2)
    relative = spectrogram_grid(np.stack([quiet, loud]), columns=2, span=0.5)
    left_quiet, left_loud = (0, 0), (0, 8 * 2 + CHANNEL_GAP + 6)
    # Fixed: the two floors differ; relative: each floor is exactly `span` below its peak -> black.
    assert tuple(fixed[left_quiet]) != tuple(fixed[left_loud])
    assert tuple(relative[left_quiet]) == tuple(relative[left_loud]) == BLACK
    assert tuple(relative[7, 0]) == WHITE


def test_span_keeps_the_balance_between_channels() -> None:
    rgb = spectrogram_grid(_item(-0.8, 0.0, right_gain=0.3), columns=1, span=1.0)
    left_floor, right_floor = rgb[0, 0], rgb[0, 8 + CHANNEL_GAP]
    assert right_floor.astype(int).sum() > left_floor.astype(int).sum()  # right drawn louder


def test_any_channel_count_draws_side_by_side() -> None:
    """A 4-channel image (magnitude + phase per side) is four panels with three gaps."""
    rgb = spectrogram_grid(np.zeros((1, 4, 8, 5)))
    assert rgb.shape == (8, 4 * 5 + 3 * CHANNEL_GAP, 3)


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="expected"):
        spectrogram_grid(np.zeros((8, 8)))
    with pytest.raises(InputError, match="span"):
        spectrogram_grid(_item(-1, 1), span=0.0)


def test_png_file_holds_the_grid(tmp_path: Path) -> None:
    path = save_spectrogram_png(np.stack([_item(-1, 1)] * 3), tmp_path / "grid.png", columns=3)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (3 * 18 + 2 * 6, 8)
    start = data.index(b"IDAT") + 4
    length = struct.unpack(">I", data[start - 8 : start - 4])[0]
    raw = zlib.decompress(data[start : start + length])
    assert len(raw) == height * (1 + 3 * width)


def test_transforms_say_how_much_to_draw() -> None:
    kick = AudioSpec(44_100, 0.6)
    # level scaling: 100 dB over [-1, 1], top_db 80 -> 1.6 image units.
    assert build_stft_db(StftDbOptions(), kick).display_span == pytest.approx(1.6)
    assert build_stft_db(StftDbOptions(scaling="paper"), kick).display_span is None
    assert build_logfreq(LogFreqOptions(), kick).display_span == pytest.approx(2 * 80 / 96)
