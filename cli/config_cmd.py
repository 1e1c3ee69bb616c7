"""``ssgan config show`` and ``ssgan config presets``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from ssgan_cli.common import (
    ConfigOption,
    PresetOption,
    SetOption,
    console,
    err_console,
    handle_errors,
    load_config,
)
from ssgan_core.config import dump_config
from ssgan_core.plugins import get_host

app = typer.Typer(help="Inspect run configs and presets.", no_args_is_help=True)


@app.command("show")
@handle_errors
def show(
    preset: str | None = PresetOption,
    config: Path | None = ConfigOption,
    set_: list[str] | None = SetOption,
    as_json: bool = typer.Option(False, "--json", help="Plain JSON (no colours)."),
    check: bool = typer.Option(False, "--check", help="Also build every part, as training would."),
) -> None:
    """Print the fully resolved config: defaults < preset < --config < --set."""
    cfg = load_config(preset, config, set_)
    text = json.dumps(dump_config(cfg), indent=2)
    if as_json:
        typer.echo(text)
    else:
        from rich.syntax import Syntax  # pygments: 30-80 ms, only for this output

        console.print(Syntax(text, "json", background_color="default"))
    if check:
        from ssgan_core.generation import build_all_parts

        built = build_all_parts(cfg)
        err_console.print(
            f"check: built {len(built)} parts ({', '.join(built)})", highlight=False, soft_wrap=True
        )


@app.command("presets")
@handle_errors
def presets() -> None:
    """List available presets."""
    table = Table(header_style="bold")
    for col in ("preset", "package", "version", "description"):
        table.add_column(col)
    for p in sorted(get_host().presets.values(), key=lambda p: p.name):
        table.add_row(p.name, p.package, p.version, p.description)
    console.print(table)


@app.command("docs")
@handle_errors
def docs() -> None:
    """Print the Markdown config reference (docs/config.md) for the installed plugins."""
    from ssgan_core.config_docs import render_config_docs

    typer.echo(render_config_docs(get_host()), nl=False)
