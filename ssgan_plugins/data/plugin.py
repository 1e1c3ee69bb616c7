"""Registers the built-in dataset sources through the public hook (by path: no torch)."""

from __future__ import annotations

from ssgan_core import hookimpl
from ssgan_core.config import FolderOptions
from ssgan_plugins.data.options import SyntheticKicksOptions, SyntheticTonesOptions


@hookimpl
def register_datasets(register):
    register(
        "folder",
        "ssgan_core.data:build_folder_source",
        options=FolderOptions,
        description="Every audio file under a folder (what `--data DIR` uses).",
    )
    register(
        "synthetic-kicks",
        "ssgan_plugins.data.synthetic:build_synthetic_kicks",
        options=SyntheticKicksOptions,
        description="Deterministic stereo kicks: swept body, beater, shell modes, room and noise.",
    )
    register(
        "synthetic-tones",
        "ssgan_plugins.data.synthetic:build_synthetic_tones",
        options=SyntheticTonesOptions,
        description="Deterministic tonal one-shots: five timbres, notes across a range, ADSR.",
    )
