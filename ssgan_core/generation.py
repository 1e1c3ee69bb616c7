"""From a checkpoint to audio: build the parts a config names, load weights, render clips.

``load_generation_model(path)`` accepts a run directory (best checkpoint, else last)
or a ``.ckpt`` file, including generator-only checkpoints (critic ``None``) written by
the importer. ``generate(model, n, seed=...)`` runs the generator in eval mode in
batches, then ``transform.decode`` and the inverter, and returns images and audio.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from ssgan_core.checkpoint import find_checkpoint, load_checkpoint
from ssgan_core.config import PartConfig, RunConfig, deep_merge, validate_config
from ssgan_core.device import resolve_device
from ssgan_core.errors import CheckpointError, ConfigError, InputError
from ssgan_core.files import ensure_folder
from ssgan_core.interfaces import AudioSpec, Generator, Inverter, Transform


def _host(host: Any) -> Any:
    if host is not None:
        return host
    from ssgan_core.plugins import get_host

    return get_host()


def build_part(kind: str, section: PartConfig, audio: AudioSpec, host: Any = None) -> Any:
    """One part from its config section (``{"name": ..., **options}``) through the registry."""
    return _host(host).registry(kind).create(section.name, section.options, audio)


def build_all_parts(cfg: RunConfig, host: Any = None) -> list[str]:
    """Build every part a config names, as training would; returns ``kind name`` for each.

    ``ssgan config show --check`` uses it so a preset whose options a plugin's factory
    refuses fails before a run, with the part's name (any factory error is a ConfigError).
    """
    audio = cfg.audio.spec()
    built = []
    for kind, section in (
        ("dataset", cfg.data.source),
        ("transform", cfg.transform),
        ("generator", cfg.generator),
        ("critic", cfg.critic),
        ("inverter", cfg.inverter),
    ):
        build_part(kind, section, audio, host)
        built.append(f"{kind} {section.name}")
    terms, _ = build_losses(cfg, host)
    return built + [f"loss {name}" for name in terms]


def build_losses(cfg: RunConfig, host: Any = None) -> tuple[dict[str, Any], dict[str, float]]:
    """Loss terms with a non-zero weight, and their weights, in config order."""
    registry, audio = _host(host).registry("loss"), cfg.audio.spec()
    terms, weights = {}, {}
    for name, options in cfg.losses.items():
        weight = float((options or {}).get("weight", 1.0))
        if weight == 0:
            continue
        terms[name] = registry.create(name, dict(options or {}), audio)
        weights[name] = weight
    return terms, weights


@torch.no_grad()
def render_audio(
    images: Tensor,
    transform: Transform,
    inverter: Inverter,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 16,
) -> Tensor:
    """Images ``(N, 2, F, T)`` -> audio ``(N, 2, samples)`` on the CPU: decode, then invert.

    Images already on ``device`` stay there; only the audio comes back to the CPU."""
    spec = transform.stft_spec
    out = []
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size].to(device)
        out.append(inverter(transform.decode(batch), spec).float().cpu())
    return torch.cat(out)


def write_wavs(
    audio: Tensor,
    folder: Path,
    sample_rate: int,
    subtype: Literal["PCM_16", "PCM_24", "FLOAT"] = "PCM_24",
    *,
    prefix: str = "sample",
    start: int = 0,
) -> list[Path]:
    """One WAV per clip of ``audio (N, 2, samples)``: ``<prefix>_<index:03d>.wav``."""
    from ssgan_core.audio import write_audio

    ensure_folder(folder)
    paths = []
    for i, clip in enumerate(audio.numpy().astype(np.float32)):
        path = folder / f"{prefix}_{start + i:03d}.wav"
        write_audio(path, clip, sample_rate, subtype)
        paths.append(path)
    return paths


@dataclass
class GenerationModel:
    """Everything needed to turn latents into audio."""

    config: RunConfig
    generator: Generator
    transform: Transform
    inverter: Inverter
    device: torch.device
    checkpoint: Path
    epoch: int | None


@dataclass
class Generated:
    images: Tensor
    """``(N, 2, F, T)`` in ``[-1, 1]``, CPU."""
    audio: Tensor
    """``(N, 2, samples)``, CPU."""


def config_from_payload(
    payload: dict[str, Any], path: Path, host: Any = None, overrides: dict | None = None
) -> RunConfig:
    """The run config saved in a checkpoint, validated against the installed plugins."""
    data = payload["config"]
    if overrides:
        data = deep_merge(data, overrides)
    try:
        return validate_config(data, _host(host))
    except ConfigError as exc:
        raise CheckpointError(
            f"{path}: its saved config does not validate with the installed plugins: {exc}"
        ) from None


def load_generation_model(
    path: str | Path,
    *,
    device: str = "auto",
    host: Any = None,
    inverter_options: dict[str, Any] | None = None,
) -> GenerationModel:
    """Generator, transform and inverter of a run directory or checkpoint file.

    ``inverter_options`` overrides the saved inverter options (e.g. ``{"iterations": 32}``).
    """
    ckpt = find_checkpoint(path)
    payload = load_checkpoint(ckpt)
    overrides = {"inverter": inverter_options} if inverter_options else None
    cfg = config_from_payload(payload, ckpt, host, overrides)
    dev = resolve_device(device, what="device")
    audio = cfg.audio.spec()
    generator = build_part("generator", cfg.generator, audio, host)
    try:
        generator.load_state_dict(payload["generator"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{ckpt}: generator weights do not fit generator {cfg.generator.name!r}: "
            f"{str(exc).splitlines()[0]}"
        ) from None
    transform = build_part("transform", cfg.transform, audio, host)
    inverter = build_part("inverter", cfg.inverter, audio, host)
    epoch = payload.get("epoch")
    return GenerationModel(
        cfg,
        generator.to(dev).eval(),
        transform.to(dev).eval(),
        inverter.to(dev).eval(),
        dev,
        ckpt,
        epoch if isinstance(epoch, int) else None,
    )


@torch.no_grad()
def generate_images(model: GenerationModel, n: int, *, seed: int = 0, batch_size: int = 16) -> Tensor:
    """``n`` images from seeded latents; the same seed gives the same images on any batch size."""
    return torch.cat(
        [batch.images for batch in iter_generated(model, n, seed=seed, batch_size=batch_size, audio=False)]
    )


@torch.no_grad()
def iter_generated(
    model: GenerationModel, n: int, *, seed: int = 0, batch_size: int = 16, audio: bool = True
) -> Iterator[Generated]:
    """``n`` clips in batches of ``batch_size``, so callers can write each batch and drop it.

    All latents are drawn first (``n * latent_dim`` floats), so the clips equal those of
    one big batch whatever ``batch_size`` is. Without ``audio`` only images are made.
    """
    if n < 1:
        raise InputError(f"number of clips must be at least 1 (got {n})")
    latents = model.generator.sample_latent(n, generator=torch.Generator().manual_seed(seed))
    model.generator.eval()
    for z in latents.split(batch_size):
        images = model.generator(z.to(model.device)).float()  # rendered where it was made
        sound = (
            render_audio(images, model.transform, model.inverter, device=model.device, batch_size=batch_size)
            if audio
            else torch.empty(0)
        )
        yield Generated(images.cpu(), sound)


def generate(model: GenerationModel, n: int, *, seed: int = 0, batch_size: int = 16) -> Generated:
    """Images and their audio (decode + inversion), each batch rendered on the device it came from."""
    batches = list(iter_generated(model, n, seed=seed, batch_size=batch_size))
    return Generated(torch.cat([b.images for b in batches]), torch.cat([b.audio for b in batches]))


def generate_audio(model: GenerationModel, n: int, *, seed: int = 0, batch_size: int = 16) -> Tensor:
    """Audio ``(n, 2, samples)`` on the CPU, e.g. for evaluation against a reference set."""
    return generate(model, n, seed=seed, batch_size=batch_size).audio
