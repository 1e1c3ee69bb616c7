"""``ssgan encode``: audio files or folders -> ``(N, 2, 256, 256)`` float32 ``.npy`` + sidecar JSON.

The sidecar is ``<output>.json`` (``data.npy`` -> ``data.npy.json``): the transform
(name and every option), the audio spec, the source files and the skipped ones, so
``ssgan invert`` and training can rebuild the exact transform later.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
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
from ssgan_core.audio import find_audio_files, read_many
from ssgan_core.data import release_free_memory
from ssgan_core.errors import AudioError, InputError, SsganError
from ssgan_core.interfaces import AudioSpec, Transform
from ssgan_core.plugins import registry

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
    return data


def transform_from_sidecar(data: dict[str, Any]) -> tuple[Transform, AudioSpec]:
    """Rebuild the transform a sidecar describes."""
    options = {k: v for k, v in data["transform"].items() if k != "name"}
    try:
        spec = AudioSpec(int(data["audio"]["sample_rate"]), float(data["audio"]["seconds"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"sidecar audio spec is invalid ({exc})") from None
    return registry("transform").create(data["transform"]["name"], options, spec), spec


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
    if output.suffix.lower() != ".npy":
        raise InputError(f"--output {output}: must end in .npy")
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

    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial.npy")
    encoded: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    try:
        store: np.memmap | None = None
        with progress() as bar:
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
                    store = np.lib.format.open_memmap(
                        partial, mode="w+", dtype=np.float32, shape=(len(files), *images.shape[1:])
                    )
                store[len(encoded) : len(encoded) + len(images)] = images
                encoded.extend(names)
                release_free_memory()  # else freed buffers pile up in fragmented heaps
        if store is None:
            _report_skipped(skipped)
            raise SsganError(f"nothing could be encoded: all {len(files)} input files were skipped")
        item_shape = store.shape[1:]
        _finish(store, partial, output, len(encoded))
        del store
    finally:
        partial.unlink(missing_ok=True)

    sidecar = {
        "format": SIDECAR_FORMAT,
        "ssgan_version": __version__,
        "shape": [len(encoded), *item_shape],
        "layout": "(item, channel, freq, time); freq bin 0 is DC",
        "transform": {"name": cfg.transform.name, **cfg.transform.options},
        "audio": {"sample_rate": spec.sample_rate, "seconds": spec.seconds},
        "downmix": downmix,
        "sources": [str(p) for p in encoded],
        "skipped": [{"path": str(p), "reason": r} for p, r in skipped],
    }
    side = sidecar_path(output)
    tmp = side.with_name(f".{side.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, side)
    _report_skipped(skipped)
    shape = (len(encoded), *item_shape)
    summary = f"encoded {len(encoded)} of {len(files)} files -> {output} {shape}, sidecar {side}"
    console.print(summary, highlight=False)


def _finish(store: np.memmap, partial: Path, output: Path, count: int) -> None:
    """Move the memory-mapped array into place, cutting it to ``count`` rows if files were skipped."""
    if count == store.shape[0]:
        store.flush()
        os.replace(partial, output)
        return
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp.npy")
    try:
        final = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(count, *store.shape[1:]))
        for start in range(0, count, 256):
            final[start : start + 256] = store[start : min(count, start + 256)]
        final.flush()
        del final
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)


def _report_skipped(skipped: list[tuple[Path, str]]) -> None:
    if not skipped:
        return
    err_console.print(f"[yellow]skipped {len(skipped)} file(s):[/]")
    for path, reason in skipped:
        err_console.print(f"  {path}: {reason}", highlight=False, soft_wrap=True)
