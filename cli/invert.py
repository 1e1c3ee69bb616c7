"""``ssgan invert``: image ``.npy`` -> audio files, through the transform's decode and the inverter.

Accepted arrays, with ``(C, F, T)`` the transform's image shape (``(2, 256, 256)`` for
``stft-db``): ``(C, F, T)`` (one item), ``(F, T)`` (one mono image, used for every
channel) and ``(N, C, F, T)`` (``out.wav`` becomes ``out_000.wav`` ...).
``-o`` names a file (``.wav`` or ``.flac``) or a folder (no suffix, or an existing
folder): ``-o DIR/`` writes ``DIR/<array name>_000.wav`` ..., one WAV per item, as
``ssgan generate -o DIR`` does.
The transform comes from the array's sidecar (``<name>.npy.json``, written by
``ssgan encode``) when there is one, else from the preset/config; the inverter
always comes from the config, and runs only when the decoded spectrogram has no phase
(``mag-if`` images carry it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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
from ssgan_cli.encode import array_parts
from ssgan_core.errors import InputError

if TYPE_CHECKING:
    from ssgan_core.config import PartConfig

BATCH = 64
"""Items decoded and inverted per call."""


@handle_errors
def invert(
    spectrogram: Path = typer.Argument(
        ...,
        help="Image .npy: (C,F,T), (F,T) or (N,C,F,T); (C,F,T) is the transform's image, e.g. (2,256,256).",
    ),
    output: Path = typer.Option(
        ..., "--output", "-o", help="out.wav / out.flac (N items: out_000.wav, ...) or a folder DIR/."
    ),
    iterations: int | None = typer.Option(None, "--iterations", "-n", help="Override inverter iterations."),
    png: bool = typer.Option(False, "--png", help="Also write a spectrogram PNG beside each audio file."),
    normalize: bool = typer.Option(
        False, "--normalize", help="Scale each clip to a -1 dBFS peak (useful with paper scaling)."
    ),
    device: str = typer.Option("auto", "--device", help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps."),
    preset: str | None = PresetOption,
    config: Path | None = ConfigOption,
    set_: list[str] | None = SetOption,
) -> None:
    """Turn spectrogram images back into audio (decode, then Griffin-Lim by default)."""
    import torch  # here, not at the top: commands that need no torch start fast

    from ssgan_core.audio import WRITE_FORMATS, AudioWriter
    from ssgan_core.device import resolve_device
    from ssgan_core.files import check_output_file, ensure_folder
    from ssgan_core.generation import render_audio
    from ssgan_core.image_arrays import load_image_array
    from ssgan_core.png import save_spectrogram_png

    if output.suffix.lower() not in WRITE_FORMATS and output.suffix and not output.is_dir():
        raise InputError(f"--output {output}: must end in {' or '.join(WRITE_FORMATS)}, or be a folder")
    if output.suffix.lower() in WRITE_FORMATS:
        check_output_file(output, "--output file")
    else:
        ensure_folder(output, "--output folder")
    cfg = load_config(preset, config, set_)
    if iterations is not None:
        if iterations < 0:
            raise InputError(f"--iterations must be 0 or more (got {iterations})")
        cfg = cfg.model_copy(update={"inverter": _with_iterations(cfg.inverter, iterations)})
    parts, own, sidecar = array_parts(spectrogram, cfg)
    if sidecar is not None:
        console.print(f"transform from sidecar: {sidecar['transform']['name']}", highlight=False)
    else:
        err_console.print(
            f"note: {spectrogram} has no sidecar ({spectrogram.name}.json); decoding it with transform "
            f"{cfg.transform.name!r} from the {'preset/config' if preset or config or set_ else 'defaults'}",
            highlight=False,
            soft_wrap=True,
        )
    images, batched = load_image_array(spectrogram, parts.context.image)  # type: ignore[arg-type]
    spec = own.audio.spec()
    transform, inverter = parts.transform, parts.inverter
    dev = resolve_device(device, what="--device")
    transform.to(dev).eval()
    inverter.to(dev).eval()  # type: ignore[union-attr]

    paths = _output_paths(output, len(images), batched, spectrogram.stem)
    clipped = 0
    writer = AudioWriter(spec.sample_rate, cfg.output.wav_subtype)  # writes batch i while i + 1 inverts
    with progress() as bar, writer:
        task = bar.add_task("inverting", total=len(images), status="")
        for start in range(0, len(images), BATCH):
            chunk = torch.from_numpy(images[start : start + BATCH])
            audio = render_audio(chunk, transform, inverter, device=dev, batch_size=BATCH).numpy()
            peaks = np.abs(audio).max(axis=(1, 2))
            if normalize:
                audio *= (10 ** (-1 / 20) / np.maximum(peaks, 1e-9))[:, None, None]
            else:
                clipped += int(np.count_nonzero(peaks > 1.0))
            writer.write(paths[start : start + len(audio)], audio)
            for offset in range(len(audio) if png else 0):
                png_path = paths[start + offset].with_suffix(".png")
                save_spectrogram_png(images[start + offset], png_path, span=transform.display_span)
            bar.update(task, advance=len(audio))
    if clipped and cfg.output.wav_subtype != "FLOAT":
        err_console.print(
            f"[yellow]warning:[/] {clipped} clip(s) peaked above full scale and were clipped; "
            "pass --normalize or --set output.wav_subtype=FLOAT",
            highlight=False,
        )
    where = paths[0] if len(paths) == 1 else f"{paths[0]} .. {paths[-1].name}"
    console.print(f"wrote {len(paths)} file(s): {where}", highlight=False)


def _with_iterations(section: PartConfig, iterations: int) -> PartConfig:
    """The inverter section with ``iterations`` overridden (``--iterations``)."""
    from ssgan_core.config import PartConfig

    return PartConfig(name=section.name, **{**section.options, "iterations": iterations})


def _output_paths(output: Path, count: int, batched: bool, stem: str) -> list[Path]:
    """A file name per item: ``out.wav`` / ``out_000.wav`` ..., or ``DIR/<stem>[_000].wav`` for a folder."""
    from ssgan_core.audio import WRITE_FORMATS

    if output.suffix.lower() not in WRITE_FORMATS:  # a folder (checked by the caller)
        output = output / f"{stem}.wav"
    if not batched:
        return [output]
    digits = max(3, len(str(count - 1)))
    return [output.with_name(f"{output.stem}_{i:0{digits}d}{output.suffix}") for i in range(count)]
