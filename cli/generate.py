"""``ssgan generate``: WAVs (and a spectrogram PNG grid) from a trained run or checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from ssgan_cli.common import console, handle_errors
from ssgan_core.config import MAX_SEED
from ssgan_core.errors import InputError


@handle_errors
def generate(
    source: Path = typer.Argument(..., help="Run directory (best.ckpt, else last.ckpt) or a .ckpt file."),
    count: int = typer.Option(16, "-n", "--count", help="Number of clips."),
    out: Path = typer.Option(Path("generated"), "-o", "--out", help="Output folder."),
    seed: int = typer.Option(0, "--seed", help="Latent seed; the same seed gives the same clips."),
    png: bool = typer.Option(False, "--png", help="Also write a spectrogram grid PNG."),
    iterations: int | None = typer.Option(None, "--iterations", help="Override the inverter's iterations."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    batch_size: int = typer.Option(16, "--batch-size", help="Clips per generator batch."),
) -> None:
    """Generate clips: generator (eval mode) -> decode -> inversion -> WAV."""
    from ssgan_core.files import ensure_folder
    from ssgan_core.generation import (  # torch: loaded here, not at start-up
        iter_generated,
        load_generation_model,
        write_wavs,
    )

    if count < 1:
        raise InputError(f"-n must be at least 1 (got {count})")
    if batch_size < 1:
        raise InputError(f"--batch-size must be at least 1 (got {batch_size})")
    if iterations is not None and iterations < 1:
        raise InputError(f"--iterations must be at least 1 (got {iterations})")
    if not 0 <= seed <= MAX_SEED:
        raise InputError(f"--seed must be between 0 and {MAX_SEED} (got {seed})")
    ensure_folder(out, "-o output folder")
    model = load_generation_model(
        source, device=device, inverter_options={"iterations": iterations} if iterations is not None else None
    )
    epoch = f" (epoch {model.epoch})" if model.epoch is not None else ""
    console.print(f"checkpoint: {model.checkpoint}{epoch}  device: {model.device}", highlight=False)
    cfg = model.config
    paths: list[Path] = []
    images = []  # kept only for the PNG grid; audio is written and dropped batch by batch
    with console.status(f"generating {count} clips") as status:
        for batch in iter_generated(model, count, seed=seed, batch_size=batch_size):
            rate, subtype = cfg.audio.sample_rate, cfg.output.wav_subtype
            paths += write_wavs(batch.audio, out, rate, subtype, prefix=f"seed{seed}", start=len(paths))
            if png:
                images.append(batch.images)
            status.update(f"generating {count} clips ({len(paths)} written)")
    names = f"{paths[0].name} ... {paths[-1].name}"
    console.print(f"wrote {len(paths)} WAVs to {out}/ ({names})", highlight=False)
    if png:
        import torch

        from ssgan_core.png import save_spectrogram_png

        grid = out / f"seed{seed}_grid.png"
        save_spectrogram_png(torch.cat(images), grid, span=model.transform.display_span)
        console.print(f"wrote {grid}", highlight=False)
