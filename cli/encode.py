"""``ssgan encode``: audio files or folders -> ``(N, 2, 256, 256)`` float32 ``.npy`` + sidecar JSON.

The sidecar is ``<output>.json`` (``data.npy`` -> ``data.npy.json``): the transform
(name and every option), the audio spec, the source files and the skipped ones, so
``ssgan invert`` and training can rebuild the exact transform later.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import typer

from ssgan_cli.common import (
    ConfigOption,
    PresetOption,
    SetOption,
    console,
    err_console,
    handle_errors,
    load_config,
    progress,
)
from ssgan_core import __version__
from ssgan_core.errors import AudioError, InputError, SsganError
from ssgan_core.plugins import registry

if TYPE_CHECKING:
    from ssgan_core.interfaces import AudioSpec, Transform

SIDECAR_FORMAT = "ssgan-encoded/1"
CHUNK = 32
"""Files read and encoded per transform call."""


def sidecar_path(npy_path: str | Path) -> Path:
    """``data.npy`` -> ``data.npy.json``."""
    npy_path = Path(npy_path)
    return npy_path.with_name(npy_path.name + ".json")


def load_sidecar(npy_path: str | Path) -> dict[str, Any] | None:
    """The sidecar of an encoded array, or ``None`` when there is none."""
    path = sidecar_path(npy_path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        transform, audio = data["transform"], data["audio"]
        if not isinstance(transform, dict) or "name" not in transform or not isinstance(audio, dict):
            raise KeyError("transform.name")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a valid ssgan sidecar ({exc})") from None
    return {**data, "_path": str(path)}


def transform_from_sidecar(data: dict[str, Any]) -> tuple[Transform, AudioSpec]:
    """Rebuild the transform a sidecar describes; a bad field is an error naming it."""

    where = data.get("_path", "sidecar")
    options = {k: v for k, v in data["transform"].items() if k != "name"}
    from pydantic import ValidationError

    from ssgan_core.config import AudioConfig, format_validation_error

    audio = {k: data["audio"].get(k) for k in ("sample_rate", "seconds")}
    try:
        spec = AudioConfig.model_validate(audio).spec()
    except ValidationError as exc:
        raise InputError(f"{where}: {format_validation_error(exc, prefix='audio')}") from None
    name = data["transform"]["name"]
    if not isinstance(name, str):
        raise InputError(f"{where}: transform.name: expected a part name, got {name!r}")
    try:
        return registry("transform").create(name, options, spec), spec
    except SsganError as exc:
        raise InputError(f"{where}: {exc}") from None


@handle_errors
def encode(
    paths: list[Path] = typer.Argument(..., help="Audio files and/or folders (searched recursively)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output .npy file."),
    preset: str | None = PresetOption,
    config: Path | None = ConfigOption,
    set_: list[str] | None = SetOption,
    downmix: bool = typer.Option(False, "--downmix", help="Average files with more than 2 channels."),
) -> None:
    """Encode audio into (N, 2, 256, 256) images plus a sidecar OUTPUT.json; unreadable files are skipped."""
    import torch  # here, not at the top: commands that need no torch start fast

    from ssgan_core.audio import find_audio_files, read_many
    from ssgan_core.data import release_free_memory
    from ssgan_core.files import atomic_write, check_output_file, remove_leftovers, write_text
    from ssgan_core.image_arrays import NpyStream

    if output.suffix.lower() != ".npy":
        raise InputError(f"--output {output}: must end in .npy")
    check_output_file(output, "--output file")
    check_output_file(sidecar_path(output), "sidecar file")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise InputError(f"no such file or folder: {', '.join(missing)}")
    cfg = load_config(preset, config, set_)
    spec = cfg.audio.spec()
    files = find_audio_files(paths)
    if not files:
        raise InputError(f"no audio files found in {', '.join(map(str, paths))}")
    transform: Transform = registry("transform").create(cfg.transform.name, cfg.transform.options, spec)
    transform.eval()

    encoded: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    remove_leftovers(output.parent)
    with atomic_write(output) as handle, progress() as bar:
        store: NpyStream | None = None
        task = bar.add_task("encoding", total=len(files), status="")
        reads = read_many(files, spec, downmix=downmix)  # decoded in parallel threads, in order
        for _ in range(0, len(files), CHUNK):
            clips, names = [], []
            for path, audio in itertools.islice(reads, CHUNK):
                if isinstance(audio, AudioError):
                    skipped.append((path, audio.reason))
                else:
                    clips.append(audio)
                    names.append(path)
                bar.update(task, advance=1, status=f"{len(skipped)} skipped" if skipped else "")
            if not clips:
                continue
            with torch.no_grad():
                images = transform.encode(torch.from_numpy(np.stack(clips))).float().numpy()
            if store is None:
                store = NpyStream(handle)
            store.append(images)
            encoded.extend(names)
            release_free_memory()  # else freed buffers pile up in fragmented heaps
        if store is None:
            _report_skipped(skipped)
            raise InputError(f"nothing could be encoded: all {len(files)} input files were skipped")
        shape = store.finish()

    sidecar = {
        "format": SIDECAR_FORMAT,
        "ssgan_version": __version__,
        "shape": list(shape),
        "layout": f"(item, channel, freq, time); {transform.layout}",
        "transform": {"name": cfg.transform.name, **cfg.transform.options},
        "audio": {"sample_rate": spec.sample_rate, "seconds": spec.seconds},
        "downmix": downmix,
        "sources": [str(p) for p in encoded],
        "skipped": [{"path": str(p), "reason": r} for p, r in skipped],
    }
    side = sidecar_path(output)
    write_text(side, json.dumps(sidecar, indent=2) + "\n")
    _report_skipped(skipped)
    summary = f"encoded {len(encoded)} of {len(files)} files -> {output} {shape}, sidecar {side}"
    console.print(summary, highlight=False)


def _report_skipped(skipped: list[tuple[Path, str]]) -> None:
    if not skipped:
        return
    err_console.print(f"[yellow]skipped {len(skipped)} file(s):[/]")
    for path, reason in skipped:
        err_console.print(f"  {path}: {reason}", highlight=False, soft_wrap=True)
