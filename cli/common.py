"""What every command shares: the console, error handling and option helpers."""

from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ssgan_core.config import RunConfig, resolve_config
from ssgan_core.errors import AudioWarning, SsganError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def handle_errors(func: F) -> F:
    """Turn ssgan errors into one red line and an exit code instead of a traceback.

    Set ``SSGAN_DEBUG=1`` to see the traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", AudioWarning)
                warnings.showwarning = _show_warning
                return func(*args, **kwargs)
        except SsganError as exc:
            if os.environ.get("SSGAN_DEBUG"):
                raise
            raise fail(str(exc), exc.exit_code) from None
        except OSError as exc:  # the environment (disk, permissions), not a bug: one line
            if os.environ.get("SSGAN_DEBUG") or exc.filename is None:
                raise
            from ssgan_core.files import describe_os_error

            raise fail(f"{exc.filename}: {describe_os_error(exc)}", 2) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, *rest: Any
) -> None:
    """Audio warnings as one yellow line; anything else the usual way."""
    if isinstance(message, AudioWarning):
        err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno))


def progress(transient: bool = False) -> Progress:
    """The progress bar every long command uses."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=err_console,
        transient=transient,
    )


PresetOption = typer.Option(None, "--preset", "-p", help="Preset name (see `ssgan config presets`).")
ConfigOption = typer.Option(None, "--config", "-c", help="TOML or JSON config file.", exists=False)
SetOption = typer.Option(None, "--set", "-s", help="Override a field: section.field=value (repeatable).")


DEFAULT_PRESET = "recommended"
"""The preset commands start from when neither ``--preset`` nor a config file names one."""


def load_config(preset: str | None, config_file: Path | None, overrides: list[str] | None) -> RunConfig:
    return resolve_config(
        preset=preset, config_file=config_file, overrides=overrides or [], default_preset=DEFAULT_PRESET
    )
