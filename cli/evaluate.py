"""``ssgan evaluate GENERATED --reference REAL``: offline quality metrics between two sets.

Each side is a folder of audio files or an ``.npy`` of encoded spectrograms; the
generated side may also be a run directory or checkpoint, generated on the fly.
The metrics themselves live in ``ssgan_core.metrics`` (see ``docs/metrics.md``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import typer
from rich.progress import Progress
from rich.table import Table

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
from ssgan_core.config import RunConfig
from ssgan_core.errors import AudioError, CheckpointError, InputError

if TYPE_CHECKING:
    import torch

    from ssgan_core.interfaces import SkippedItem

CHECKPOINT_SUFFIXES = {".ckpt", ".pt", ".pth"}


@dataclass
class ClipSet:
    """One side of the comparison, as audio ``(N, 2, samples)`` at ``sample_rate``."""

    label: str
    source: Path
    kind: str
    audio: torch.Tensor
    sample_rate: int
    skipped: list[SkippedItem] = field(default_factory=list)


# --------------------------------------------------------------------------- loading


def _is_run(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() in CHECKPOINT_SUFFIXES
    from ssgan_core.checkpoint import find_checkpoint

    try:
        find_checkpoint(path)
    except CheckpointError:
        return False
    return True


def load_folder(label: str, root: Path, cfg: RunConfig, limit: int | None, bar: Progress) -> ClipSet:
    """Every readable audio file under ``root`` at the config's rate and length; bad files are skipped."""
    import torch

    from ssgan_core.audio import find_audio_files, read_many
    from ssgan_core.interfaces import SkippedItem

    files = sorted(Path(p) for p in find_audio_files([root], recursive=True))
    if not files:
        raise InputError(f"{label}: {root} has no audio files (searched sub-folders too)")
    files = files[:limit] if limit else files
    spec = cfg.audio.spec()
    task = bar.add_task(f"reading {label}", total=len(files), status="")
    clips, skipped = [], []
    for path, audio in read_many(files, spec):  # the one folder reader: threads, in order
        if isinstance(audio, AudioError):
            skipped.append(SkippedItem(str(path.relative_to(root)), audio.reason))
        else:
            clips.append(np.asarray(audio, dtype=np.float32))
        bar.advance(task)
    if len(clips) < 2:
        raise InputError(f"{label}: {root} has {len(clips)} readable audio files; at least 2 are needed")
    return ClipSet(label, root, "folder", torch.from_numpy(np.stack(clips)), spec.sample_rate, skipped)


def load_encoded(
    label: str, path: Path, cfg: RunConfig, limit: int | None, device: torch.device, bar: Progress
) -> ClipSet:
    """Decode and invert an ``.npy`` of images ``(N, C, F, T)`` in ``[-1, 1]`` (the shape its
    sidecar's transform, else the config's, makes)."""
    import torch

    from ssgan_cli.encode import array_parts
    from ssgan_core.generation import render_audio
    from ssgan_core.image_arrays import load_image_array

    parts, own, _ = array_parts(path, cfg)
    images, _ = load_image_array(path, parts.context.image)  # type: ignore[arg-type]
    if limit:
        images = images[:limit]
    if len(images) < 2:
        raise InputError(f"{label}: {path} holds {len(images)} image; at least 2 are needed")
    transform = parts.transform.to(device).eval()
    inverter = parts.inverter.to(device).eval()  # type: ignore[union-attr]
    tensor = torch.from_numpy(images)
    task = bar.add_task(f"inverting {label}", total=len(tensor), status="")
    chunks = []
    for chunk in tensor.split(64):
        chunks.append(render_audio(chunk, transform, inverter, device=device))
        bar.advance(task, len(chunk))
    return ClipSet(label, path, "npy", torch.cat(chunks), own.audio.spec().sample_rate)


def generate_set(model: Any, n: int, seed: int, bar: Progress) -> ClipSet:
    """``n`` clips from a loaded generation model, with seeded latents."""
    import torch

    from ssgan_core.generation import iter_generated

    task = bar.add_task("generating", total=n, status=model.checkpoint.name)
    parts = []
    for batch in iter_generated(model, n, seed=seed):  # images rendered on the device they came from
        parts.append(batch.audio)
        bar.advance(task, len(batch.audio))
    audio = torch.cat(parts)
    return ClipSet("generated", model.checkpoint, "checkpoint", audio, model.config.audio.spec().sample_rate)


def load_set(
    label: str, path: Path, cfg: RunConfig, limit: int | None, device: torch.device, bar: Progress
) -> ClipSet:
    if not path.exists():
        raise InputError(f"{label}: {path} does not exist")
    if path.is_dir():
        return load_folder(label, path, cfg, limit, bar)
    if path.suffix.lower() == ".npy":
        return load_encoded(label, path, cfg, limit, device, bar)
    raise InputError(f"{label}: {path} must be a folder of audio files or an .npy of encoded spectrograms")


# --------------------------------------------------------------------------- command


@handle_errors
def evaluate(
    generated: Path = typer.Argument(
        ..., help="Folder of audio files, .npy of encoded spectrograms, or a run directory / checkpoint."
    ),
    reference: Path = typer.Option(
        ...,
        "--reference",
        "-r",
        help="Real clips: a folder of audio files or an .npy of encoded spectrograms.",
    ),
    n: int | None = typer.Option(
        None,
        "-n",
        "--count",
        min=2,
        help="Clips to generate from a run/checkpoint (default: as many as the reference); "
        "for folders and .npy, use at most N of each side.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seeds generation latents, KID subsets and k-means."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON on stdout."),
    roundtrip: bool = typer.Option(
        True, "--roundtrip/--no-roundtrip", help="Also measure encode -> decode -> invert on the reference."
    ),
    device: str = typer.Option(
        "auto", "--device", help="Device for generation and inversion (auto, cpu, cuda)."
    ),
    preset: str | None = PresetOption,
    config: Path | None = ConfigOption,
    set_: list[str] | None = SetOption,
) -> None:
    """Compare generated one-shots with real ones: FD, KID, NDB/JSD, diversity, precision/recall."""
    from ssgan_core.device import resolve_device
    from ssgan_core.generation import build_run_parts
    from ssgan_core.metrics import evaluate_sets

    from_run = generated.exists() and _is_run(generated)
    if from_run and (preset or config or set_):
        raise InputError(
            "--preset/--config/--set do not apply when GENERATED is a run: its saved config is used"
        )
    dev = resolve_device(device, what="--device")
    with progress(transient=True) as bar:
        if from_run:
            # The run's saved config decides rate, length, transform and inverter for both sides.
            from ssgan_core.generation import load_generation_model

            model = load_generation_model(generated, device=device)
            cfg = model.config
            ref = load_set("reference", reference, cfg, None, dev, bar)
            gen = generate_set(model, n or len(ref.audio), seed, bar)
        else:
            cfg = load_config(preset, config, set_)
            gen = load_set("generated", generated, cfg, n, dev, bar)
            ref = load_set("reference", reference, cfg, n, dev, bar)
        for clip_set in (gen, ref):
            _check_silence(clip_set)
        if gen.sample_rate != ref.sample_rate:
            raise InputError(
                f"generated clips are at {gen.sample_rate} Hz but reference clips at {ref.sample_rate} Hz"
            )
        spec = cfg.audio.spec()
        transform = inverter = None
        if roundtrip and ref.audio.shape[-1] == spec.num_samples and ref.sample_rate == spec.sample_rate:
            parts = build_run_parts(cfg, kinds=("inverter",))
            transform = parts.transform.to(dev).eval()
            inverter = parts.inverter.to(dev).eval()  # type: ignore[union-attr]
        elif roundtrip:
            err_console.print(
                f"[yellow]round trip skipped:[/] reference clips ({ref.audio.shape[-1]} samples at "
                f"{ref.sample_rate} Hz) do not match the config "
                f"({spec.num_samples} at {spec.sample_rate} Hz)",
                highlight=False,
            )
        metrics = evaluate_sets(
            gen.audio,
            ref.audio,
            gen.sample_rate,
            seed=seed,
            transform=transform,
            inverter=inverter,
            device=dev,
            progress=bar,
        )
    _report(gen, ref, metrics, seed, as_json)


SILENCE_PEAK = 1e-6
"""Peak below which a clip counts as silent (-120 dBFS): its features carry no information."""


def _check_silence(s: ClipSet) -> None:
    """Refuse a set of silent clips, warn about some: the metrics would look like nonsense (KID 2e11)."""
    peaks = s.audio.abs().amax(dim=tuple(range(1, s.audio.ndim)))
    silent = int((peaks < SILENCE_PEAK).sum())
    if silent == len(peaks):
        raise InputError(f"{s.label}: all {silent} clips from {s.source} are silent; nothing to compare")
    if silent:
        err_console.print(
            f"[yellow]warning:[/] {s.label}: {silent} of {len(peaks)} clips from {s.source} are silent "
            "(peak below -120 dBFS); they distort FD and KID",
            highlight=False,
            soft_wrap=True,
        )


def _set_info(s: ClipSet) -> dict[str, Any]:
    return {
        "source": str(s.source),
        "kind": s.kind,
        "clips": int(s.audio.shape[0]),
        "sample_rate": s.sample_rate,
        "samples": int(s.audio.shape[-1]),
        "skipped": [{"name": k.name, "reason": k.reason} for k in s.skipped],
    }


def _report(gen: ClipSet, ref: ClipSet, metrics: dict[str, float], seed: int, as_json: bool) -> None:
    from ssgan_core.metrics import METRIC_DESCRIPTIONS

    for s in (gen, ref):
        if s.skipped:
            err_console.print(f"[yellow]{s.label}: skipped {len(s.skipped)} file(s):[/]", highlight=False)
            for item in s.skipped[:10]:
                err_console.print(f"  {item.name}: {item.reason}", highlight=False, soft_wrap=True)
            if len(s.skipped) > 10:
                err_console.print(f"  ... and {len(s.skipped) - 10} more", highlight=False)
    if as_json:
        payload = {"metrics": metrics, "seed": seed, "generated": _set_info(gen), "reference": _set_info(ref)}
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table(header_style="bold", title=f"{gen.source} vs {ref.source}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("meaning")
    for key, value in metrics.items():
        shown = f"{int(value)}" if key.startswith("n_") or key == "ndb_bins" else f"{value:.4g}"
        table.add_row(key, shown, METRIC_DESCRIPTIONS.get(key, ""))
    console.print(table)
