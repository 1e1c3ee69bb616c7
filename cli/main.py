"""The ``ssgan`` command: a thin Typer layer over ``ssgan_core``.

Each command lives in its own module and is added here.
"""

from __future__ import annotations

import typer

from ssgan_cli import config_cmd, encode, evaluate, generate, import_checkpoint, invert, plugins_cmd, train
from ssgan_core import __version__

app = typer.Typer(
    name="ssgan",
    help="Stereo spectrogram GANs for one-shot audio: train, generate, encode, invert, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ssgan {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Stereo spectrogram GANs for one-shot audio."""


# --- commands (one module each) ---------------------------------------------------
app.command("list-plugins")(plugins_cmd.list_plugins)
app.add_typer(config_cmd.app, name="config")
app.command("evaluate")(evaluate.evaluate)
app.command("train")(train.train)
app.command("generate")(generate.generate)
app.command("encode")(encode.encode)
app.command("invert")(invert.invert)
app.command("import-checkpoint")(import_checkpoint.import_checkpoint)
