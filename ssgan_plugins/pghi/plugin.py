"""Registers the ``pghi`` inverter through the public hooks."""

from __future__ import annotations

from ssgan_core import hookimpl
from ssgan_plugins.pghi import pghi


@hookimpl
def register_inverters(register):
    register(
        "pghi",
        pghi.build_pghi,
        options=pghi.PghiOptions,
        description="Phase-gradient heap integration, then fast Griffin-Lim from its phase.",
    )
