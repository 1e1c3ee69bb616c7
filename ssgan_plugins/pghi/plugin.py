"""Registers the ``pghi`` inverter through the public hooks (by path: no torch or numba)."""

from __future__ import annotations

from ssgan_core import hookimpl
from ssgan_plugins.pghi.options import PghiOptions


@hookimpl
def register_inverters(register):
    register(
        "pghi",
        "ssgan_plugins.pghi.pghi:build_pghi",
        options=PghiOptions,
        description="Phase-gradient heap integration, then fast Griffin-Lim from its phase.",
    )
