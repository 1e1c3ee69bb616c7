"""``ssgan invert``: image ``.npy`` -> audio files, through the transform's decode and the inverter.

Accepted arrays: ``(2, 256, 256)`` (one stereo item), ``(256, 256)`` (mono, used for
both channels) and ``(N, 2, 256, 256)`` (``out.wav`` becomes ``out_000.wav`` ...).
The transform comes from the array's sidecar (``<name>.npy.json``, written by
``ssgan encode``) when there is one, else from the preset/config; the inverter
always comes from the config.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import typer
from pydantic import ValidationError

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
from ssgan_cli.encode import load_sidecar, transform_from_sidecar
from ssgan_core.audio import WRITE_FORMATS, write_audio
from ssgan_core.config import format_validation_error
from ssgan_core.errors import ConfigError, InputError
from ssgan_core.interfaces import CHANNELS, IMAGE_SIZE
from ssgan_core.plugins import registry
from ssgan_core.png import save_spectrogram_png

RANGE_TOLERANCE = 1e-3
"""Values up to this far outside ``[-1, 1]`` are clipped (rounding); further is an error."""
BATCH = 64
"""Items decoded and inverted per call."""


def load_images(path: Path) -> tuple[np.ndarray, bool]:
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
        batch, batched = np.broadcast_to(data, (1, *item)), False
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
    batch = batch.astype(np.float32)
    bad = np.count_nonzero(~np.isfinite(batch))
    if bad:
        raise InputError(f"{path}: {bad} values are NaN or infinite")
    low, high = float(batch.min()), float(batch.max())
    if low < -1 - RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise InputError(f"{path}: values span [{low:.4g}, {high:.4g}]; images must lie in [-1, 1]")
    return np.clip(batch, -1.0, 1.0), batched


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available on this machine")
    return device


@handle_errors
def invert(
    spectrogram: Path = typer.Argument(..., help="Image .npy: (2,256,256), (256,256) or (N,2,256,256)."),
    output: Path = typer.Option(..., "--output", "-o", help=".wav or .flac; N items: out_000.wav, ..."),
    iterations: int | None = typer.Option(None, "--iterations", "-n", help="Override inverter iterations."),
    png: bool = typer.Option(False, "--png", help="Also write a spectrogram PNG beside each audio file."),
    normalize: bool = typer.Option(
        False, "--normalize", help="Scale each clip to a -1 dBFS peak (useful with paper scaling)."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    preset: str | None = PresetOption,
    config: Path | None = ConfigOption,
    set_: list[str] | None = SetOption,
) -> None:
    """Turn spectrogram images back into audio (decode, then Griffin-Lim by default)."""
    if output.suffix.lower() not in WRITE_FORMATS:
        raise InputError(f"--output {output}: must end in {' or '.join(WRITE_FORMATS)}")
    images, batched = load_images(spectrogram)
    cfg = load_config(preset, config, set_)
    inverter_options = dict(cfg.inverter.options)
    if iterations is not None:
        if iterations < 0:
            raise InputError(f"--iterations must be 0 or more (got {iterations})")
        inverter_options["iterations"] = iterations
    sidecar = load_sidecar(spectrogram)
    if sidecar is not None:
        transform, spec = transform_from_sidecar(sidecar)
        console.print(f"transform from sidecar: {sidecar['transform']['name']}", highlight=False)
    else:
        spec = cfg.audio.spec()
        transform = registry("transform").create(cfg.transform.name, cfg.transform.options, spec)
    try:
        inverter = registry("inverter").create(cfg.inverter.name, inverter_options, spec)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, prefix="inverter")) from None
    dev = _device(device)
    transform.to(dev).eval()
    inverter.to(dev).eval()

    paths = _output_paths(output, len(images), batched)
    clipped = 0
    with progress() as bar:
        task = bar.add_task("inverting", total=len(images), status="")
        for start in range(0, len(images), BATCH):
            chunk = torch.from_numpy(images[start : start + BATCH]).to(dev)
            with torch.no_grad():
                audio = inverter(transform.decode(chunk), transform.stft_spec).float().cpu().numpy()
            peaks = np.abs(audio).max(axis=(1, 2))
            if normalize:
                audio *= (10 ** (-1 / 20) / np.maximum(peaks, 1e-9))[:, None, None]
            else:
                clipped += int(np.count_nonzero(peaks > 1.0))
            for offset, clip in enumerate(audio):
                path = paths[start + offset]
                write_audio(path, clip, spec.sample_rate, cfg.output.wav_subtype)
                if png:
                    save_spectrogram_png(images[start + offset], path.with_suffix(".png"))
            bar.update(task, advance=len(audio))
    if clipped and cfg.output.wav_subtype != "FLOAT":
        err_console.print(
            f"[yellow]warning:[/] {clipped} clip(s) peaked above full scale and were clipped; "
            "pass --normalize or --set output.wav_subtype=FLOAT",
            highlight=False,
        )
    where = paths[0] if len(paths) == 1 else f"{paths[0]} .. {paths[-1].name}"
    console.print(f"wrote {len(paths)} file(s): {where}", highlight=False)


def _output_paths(output: Path, count: int, batched: bool) -> list[Path]:
    if not batched:
        return [output]
    digits = max(3, len(str(count - 1)))
    return [output.with_name(f"{output.stem}_{i:0{digits}d}{output.suffix}") for i in range(count)]
