"""``ssgan encode``: audio files or folders -> ``(N, C, F, T)`` float32 ``.npy`` + sidecar JSON.

``(C, F, T)`` is the transform's image shape (``(2, 256, 256)`` for ``stft-db``). The
sidecar is ``<output>.json`` (``data.npy`` -> ``data.npy.json``): the transform (name
and every option), the audio spec, the image shape and the transform's package and
version (``built_with``), the source files and the skipped ones, so ``ssgan invert``,
``ssgan evaluate`` and training can rebuild the exact transform later.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
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
from ssgan_core.config import BUILT_WITH
from ssgan_core.errors import AudioError, InputError, SsganError

if TYPE_CHECKING:
    from ssgan_core.config import RunConfig
    from ssgan_core.generation import RunParts
    from ssgan_core.interfaces import Transform

SIDECAR_FORMAT = "ssgan-encoded/1"
CHUNK = 16
"""Files read and encoded per transform call: 32 measured slower and 35% more RSS (its
buffers pass glibc's mmap threshold, so each call maps them afresh; docs/benchmarks.md)."""


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


def array_config(npy_path: Path, cfg: RunConfig) -> tuple[RunConfig, dict[str, Any] | None]:
    """The config an ``.npy`` was encoded with: ``cfg`` with its sidecar's transform and audio
    (the inverter stays ``cfg``'s), and the sidecar; ``cfg`` itself when there is none."""
    from ssgan_core.config import deep_merge, dump_config, validate_config

    sidecar = load_sidecar(npy_path)
    if sidecar is None:
        return cfg, None
    update = {"transform": sidecar["transform"], "audio": sidecar["audio"]}
    try:
        return validate_config(deep_merge(dump_config(cfg), update)), sidecar
    except SsganError as exc:
        raise InputError(f"{sidecar['_path']}: does not describe a usable transform: {exc}") from None


def array_parts(
    npy_path: Path, cfg: RunConfig, kinds: tuple[str, ...] = ("inverter",)
) -> tuple[RunParts, RunConfig, dict[str, Any] | None]:
    """The parts that turn an encoded ``.npy`` back into audio (its sidecar's transform when it
    has one), through the run builder; a sidecar made for another image shape is refused."""
    from ssgan_core.generation import build_run_parts, check_recorded_shape

    own, sidecar = array_config(npy_path, cfg)
    where = sidecar["_path"] if sidecar is not None else None
    try:
        parts = build_run_parts(own, kinds=kinds)
    except SsganError as exc:
        raise InputError(f"{where}: {exc}") if where else exc from None
    if sidecar is not None:
        try:
            check_recorded_shape(sidecar.get(BUILT_WITH), parts.context.image, where)  # type: ignore[arg-type]
        except SsganError as exc:
            raise InputError(str(exc)) from None
    return parts, own, sidecar


@handle_errors
def encode(
    paths: list[Path] = typer.Argument(..., help="Audio files and/or folders (searched recursively)."),
    output: Path = typer.Option(..., "--output", "-o", help="Output .npy file."),
    preset: str | None = PresetOption,
    config: Path | None = ConfigOption,
    set_: list[str] | None = SetOption,
    downmix: bool = typer.Option(False, "--downmix", help="Average files with more than 2 channels."),
) -> None:
    """Encode audio into (N, C, F, T) images plus a sidecar OUTPUT.json; unreadable files are skipped."""
    import torch  # here, not at the top: commands that need no torch start fast

    from ssgan_core.audio import find_audio_files, read_many
    from ssgan_core.data import encoded_in_order
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
    from ssgan_core.generation import build_run_parts, built_with

    transform: Transform = build_run_parts(cfg, kinds=()).transform.eval()

    encoded: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    remove_leftovers(output.parent)
    with atomic_write(output) as handle, progress() as bar:
        store: NpyStream | None = None
        task = bar.add_task("encoding", total=len(files), status="")

        def chunks() -> Iterator[tuple[list[Path], list[np.ndarray]]]:
            """Decoded files ``CHUNK`` at a time (read in parallel threads, in order); skips noted."""
            reads = read_many(files, spec, downmix=downmix)
            for _ in range(0, len(files), CHUNK):
                names, clips = [], []
                for path, audio in itertools.islice(reads, CHUNK):
                    if isinstance(audio, AudioError):
                        skipped.append((path, audio.reason))
                    else:
                        names.append(path)
                        clips.append(audio)
                    bar.update(task, advance=1, status=f"{len(skipped)} skipped" if skipped else "")
                if clips:
                    yield names, clips

        def encode_chunk(chunk: tuple[list[Path], list[np.ndarray]]) -> tuple[list[Path], np.ndarray]:
            names, clips = chunk
            with torch.no_grad():
                return names, transform.encode(torch.from_numpy(np.stack(clips))).float().numpy()

        for names, images in encoded_in_order(encode_chunk, chunks(), "cpu"):
            if store is None:
                store = NpyStream(handle)
            store.append(images)
            encoded.extend(names)
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
        BUILT_WITH: built_with(cfg, transform.image_shape, kinds=("transform",)),
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
