"""``ssgan list-plugins``: every registered part, and every plugin that failed."""

from __future__ import annotations

import fnmatch
import json

import typer
from rich.table import Table

from ssgan_cli.common import console, fail, handle_errors
from ssgan_core.plugins import KINDS, get_host


@handle_errors
def list_plugins(
    pattern: str = typer.Argument("*", help="Wildcard on part names, e.g. 'paper-*'."),
    kind: str | None = typer.Option(None, "--kind", "-k", help=f"Only this kind: {', '.join(KINDS)}."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    strict: bool = typer.Option(False, "--strict", help="Fail if any plugin failed to load."),
) -> None:
    """List registered parts (kind, name, package, version, description) and failed plugins."""
    if kind is not None and kind not in KINDS:
        raise fail(f"--kind must be one of {', '.join(KINDS)} (got {kind!r})", 2)
    host = get_host(strict=strict or None)
    kinds = [kind] if kind else list(KINDS)
    rows = [
        {
            "kind": entry.kind,
            "name": entry.name,
            "package": entry.package,
            "version": entry.version,
            "description": entry.description,
        }
        for k in kinds
        for entry in host.registry(k)
        if fnmatch.fnmatchcase(entry.name, pattern)
    ]
    failed = [
        {
            "plugin": f.plugin.name,
            "package": f.plugin.package,
            "version": f.plugin.version,
            "stage": f.stage,
            "error": f.error,
        }
        for f in host.failures
    ]
    presets = [
        {"name": p.name, "package": p.package, "version": p.version, "description": p.description}
        for p in sorted(host.presets.values(), key=lambda p: p.name)
        if kind is None and fnmatch.fnmatchcase(p.name, pattern)
    ]
    if as_json:
        typer.echo(json.dumps({"parts": rows, "presets": presets, "failed": failed}, indent=2))
        return
    table = Table(title="ssgan parts", header_style="bold")
    for col in ("kind", "name", "package", "version", "description"):
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(row[c] for c in ("kind", "name", "package", "version", "description")))
    for p in presets:
        table.add_row("preset", p["name"], p["package"], p["version"], p["description"])
    if rows or presets:
        console.print(table)
    else:
        console.print(f"[yellow]no parts or presets match {pattern!r}[/]")
    if failed:
        bad = Table(title="plugins that failed to load", header_style="bold red")
        for col in ("plugin", "package", "version", "stage", "error"):
            bad.add_column(col, overflow="fold")
        for f in failed:
            bad.add_row(*(f[c] for c in ("plugin", "package", "version", "stage", "error")))
        console.print(bad)
        console.print("Set SSGAN_DEBUG=1 for tracebacks, SSGAN_STRICT_PLUGINS=1 to make this an error.")
