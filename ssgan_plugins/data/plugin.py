"""Registers the built-in dataset sources through the public hook."""

from __future__ import annotations

from ssgan_core import hookimpl
from ssgan_core.data import FolderOptions, build_folder_source
from ssgan_plugins.data import synthetic


@hookimpl
def register_datasets(register):
    register(
        "folder",
        build_folder_source,
        options=FolderOptions,
        description="Every audio file under a folder (what `--data DIR` uses).",
    )
    register(
        "synthetic-kicks",
        synthetic.build_synthetic_kicks,
        options=synthetic.SyntheticKicksOptions,
        description="Deterministic stereo kicks: swept body, beater, shell modes, room and noise.",
    )
    register(
        "synthetic-tones",
        synthetic.build_synthetic_tones,
        options=synthetic.SyntheticTonesOptions,
        description="Deterministic tonal one-shots: five timbres, notes across a range, ADSR.",
    )
