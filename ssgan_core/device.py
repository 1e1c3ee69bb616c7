"""Picking the torch device from a config string (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""

from __future__ import annotations

import torch

from ssgan_core.errors import ConfigError


def resolve_device(name: str = "auto", what: str = "training.device") -> torch.device:
    """``auto`` prefers cuda, then mps, then cpu; an unavailable device is a clear error.

    ``what`` names the setting in messages (``training.device``, ``--device``).
    """
    name = (name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{what}: unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{what}: {name!r} requested but CUDA is not available here; use cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"{what}: {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif device.type == "mps" and not _mps_available():
        raise ConfigError(f"{what}: {name!r} requested but MPS is not available here; use cpu or auto")
    elif device.type not in {"cpu", "cuda", "mps"}:
        raise ConfigError(f"{what}: unsupported device type {device.type!r}; use cpu, cuda or mps")
    return device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
