"""``ssgan import-checkpoint``: the original StereoSampleGAN generator weights as an ssgan checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from ssgan_cli.common import SetOption, console, handle_errors
from ssgan_core.errors import InputError


@handle_errors
def import_checkpoint(
    original: Path = typer.Argument(..., help="Original generator weights (.pth state dict)."),
    out: Path = typer.Option(..., "-o", "--out", help="Checkpoint file to write (.ckpt)."),
    preset: str = typer.Option(
        "paper-kicks", "--preset", "-p", help="Preset whose transform and inverter render the images."
    ),
    set_: list[str] | None = SetOption,
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite OUT if it exists."),
) -> None:
    """Convert original weights (strict key and shape checks; (time, freq) -> (freq, time)).

    The result is a generator-only checkpoint: `ssgan generate OUT.ckpt` works on it.
    """
    from ssgan_plugins.paper.original import import_original_checkpoint  # torch: loaded here

    if out.is_dir():
        raise InputError(f"{out} is a directory; give a file name such as {out / 'imported.ckpt'}")
    if out.exists() and not force:
        raise InputError(f"{out} already exists; pass --force to overwrite it")
    path = import_original_checkpoint(original, out, preset=preset, overrides=set_ or [])
    console.print(f"wrote {path} (generator from {original.name}, preset {preset})", highlight=False)
    console.print(f"next: ssgan generate {path} -n 16 -o generated --png", highlight=False)
