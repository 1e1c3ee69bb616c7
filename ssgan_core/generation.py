"""From a checkpoint to audio: build the parts a config names, load weights, render clips.

``load_generation_model(path)`` accepts a run directory (best checkpoint, else last)
or a ``.ckpt`` file, including generator-only checkpoints (critic ``None``) written by
the importer. ``generate(model, n, seed=...)`` runs the generator in eval mode in
batches, then ``transform.decode`` and the inverter, and returns images and audio.
"""

from __future__ import annotations

import warnings
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
from ssgan_core.errors import CheckpointError, ConfigError, InputError, SsganError
from ssgan_core.files import ensure_folder
from ssgan_core.interfaces import (
    PAPER_IMAGE_SHAPE,
    AudioSpec,
    BuildContext,
    Critic,
    Generator,
    ImageShape,
    Inverter,
    Spectrogram,
    Transform,
)

PART_SECTIONS = ("transform", "generator", "critic", "inverter")
"""Config sections naming the parts whose provider a ``built_with`` record keeps."""


def _host(host: Any) -> Any:
    if host is not None:
        return host
    from ssgan_core.plugins import get_host

    return get_host()


def build_part(kind: str, section: PartConfig, audio: AudioSpec, host: Any = None) -> Any:
    """One part from its config section (``{"name": ..., **options}``) through the registry."""
    return _host(host).registry(kind).create(section.name, section.options, audio)


class PartVersionWarning(UserWarning):
    """A part was saved by another version of the package that provides it."""


@dataclass
class RunParts:
    """The networks and signal parts of one run, built together so their shapes agree."""

    transform: Transform
    context: BuildContext
    """The audio spec plus the transform's image shape: what generator and critic were built from."""
    generator: Generator | None = None
    critic: Critic | None = None
    inverter: Inverter | None = None


def build_run_parts(
    cfg: RunConfig, host: Any = None, *, kinds: tuple[str, ...] = ("generator", "critic", "inverter")
) -> RunParts:
    """The transform, then the ``kinds`` a command needs, sized from the transform's image.

    The one place a run's parts are built (training, generate, encode, invert, evaluate).
    Generator and critic receive a :class:`BuildContext` carrying ``transform.image_shape``;
    when the generator is built, :func:`check_image_shapes` runs it (and the critic, if
    built) once on a tiny batch.
    """
    audio = cfg.audio.spec()
    transform: Transform = build_part("transform", cfg.transform, audio, host)
    context = BuildContext.of(audio, transform.image_shape)
    parts = RunParts(transform, context)
    for kind in kinds:
        section = getattr(cfg, kind)
        setattr(parts, kind, build_part(kind, section, context if kind != "inverter" else audio, host))
    if parts.generator is not None:
        check_image_shapes(cfg, context.image, parts.generator, parts.critic)  # type: ignore[arg-type]
    return parts


@torch.no_grad()
def check_image_shapes(
    cfg: RunConfig, image: ImageShape, generator: Generator, critic: Critic | None
) -> None:
    """One forward pass of two items, in eval mode with a private RNG (so training draws the
    same numbers as without it): a generator or critic that disagrees with the transform's
    image shape fails here, by name, instead of deep inside the first training step."""
    latents = generator.sample_latent(2, generator=torch.Generator().manual_seed(0))
    modes = [(net, net.training) for net in (generator, critic) if net is not None]
    try:
        for net, _ in modes:
            net.eval()
        device = next(iter(generator.parameters()), torch.empty(0)).device
        with torch.random.fork_rng(devices=[]):  # a part drawing numbers in eval mode shifts nothing
            fake = _checked_call(
                "generator", cfg.generator.name, lambda: generator(latents.to(device)), image, cfg
            )
        made = tuple(fake.shape[1:])
        if made != tuple(image):
            raise ConfigError(
                f"generator {cfg.generator.name!r} makes images of shape {made}, but transform "
                f"{cfg.transform.name!r} makes {image.describe()}; use a generator sized from the transform "
                "(e.g. specgan-generator) or set its options to match"
            )
        if critic is None:
            return
        with torch.random.fork_rng(devices=[]):
            scores = _checked_call(
                "critic", cfg.critic.name, lambda: critic(torch.zeros(2, *image, device=device)), image, cfg
            )
        if tuple(scores.shape) != (2,):
            raise ConfigError(
                f"critic {cfg.critic.name!r} returns scores of shape {tuple(scores.shape)} for a batch of 2 "
                f"images of shape {image.describe()}; expected (2,)"
            )
    finally:
        for net, was_training in modes:
            net.train(was_training)


def _checked_call(kind: str, name: str, call: Any, image: ImageShape, cfg: RunConfig) -> Tensor:
    """Run one part's forward pass; any failure becomes a ConfigError naming the part and the shape."""
    try:
        return call()  # type: ignore[no-any-return]
    except (SsganError, RuntimeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"{kind} {name!r} cannot {'make' if kind == 'generator' else 'take'} images of shape "
            f"{image.describe()} (transform {cfg.transform.name!r}): {first}"
        ) from None


def built_with(
    cfg: RunConfig, image: ImageShape, host: Any = None, *, kinds: tuple[str, ...] = PART_SECTIONS
) -> dict[str, Any]:
    """What made these images and weights: the image shape and each part's providing package
    and version (saved in checkpoints, ``config.json`` and encode sidecars)."""
    from ssgan_core import __version__

    registries = _host(host)
    parts = {}
    for kind in kinds:
        name = getattr(cfg, kind).name
        entry = registries.registry(kind).get(name)
        parts[kind] = {"name": name, "package": entry.package, "version": entry.version}
    return {"ssgan": __version__, "image_shape": list(image), "parts": parts}


def recorded_image_shape(record: Any) -> ImageShape:
    """The image shape a ``built_with`` record names; files from before it existed hold the paper's."""
    shape = record.get("image_shape") if isinstance(record, dict) else None
    return ImageShape(*shape) if isinstance(shape, list) and len(shape) == 3 else PAPER_IMAGE_SHAPE


def warn_version_changes(record: Any, where: str, host: Any = None) -> None:
    """A warning (not an error: the weights may well still fit) for each part whose providing
    package is now installed at another version than the one that saved ``where``."""
    saved = record.get("parts") if isinstance(record, dict) else None
    if not isinstance(saved, dict):
        return
    registries = _host(host)
    for kind, part in saved.items():
        if not isinstance(part, dict) or kind not in PART_SECTIONS:
            continue
        try:
            entry = registries.registry(kind).get(str(part.get("name")))
        except SsganError:
            continue  # an unknown part fails later, with the config's own error
        if part.get("version") not in (None, entry.version):
            warnings.warn(
                PartVersionWarning(
                    f"{where}: {kind} {entry.name!r} was saved with {part.get('package')} "
                    f"{part.get('version')}; {entry.package} {entry.version} is installed"
                ),
                stacklevel=2,
            )


def check_recorded_shape(record: Any, image: ImageShape, where: Path | str) -> None:
    """Refuse weights or images made for another image shape than the transform now makes
    (a transform plugin changed). Files from before the record existed are not checked here:
    loading their weights (or reading their array) checks the shape itself."""
    if record is None:
        return
    saved = recorded_image_shape(record)
    if saved != image:
        raise CheckpointError(
            f"{where}: was made for images of shape {saved.describe()}, but its transform now makes "
            f"{image.describe()}; install the plugin version it was saved with"
        )


def build_all_parts(cfg: RunConfig, host: Any = None) -> list[str]:
    """Build every part a config names, as training would; returns ``kind name`` for each.

    ``ssgan config show --check`` uses it so a preset whose options a plugin's factory
    refuses fails before a run, with the part's name (any factory error is a ConfigError),
    and a generator or critic that does not fit the transform's image fails too.
    """
    build_part("dataset", cfg.data.source, cfg.audio.spec(), host)
    build_run_parts(cfg, host)
    built = [
        f"{kind} {section.name}"
        for kind, section in (
            ("dataset", cfg.data.source),
            ("transform", cfg.transform),
            ("generator", cfg.generator),
            ("critic", cfg.critic),
            ("inverter", cfg.inverter),
        )
    ]
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
    inverter: Inverter | None,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 16,
) -> Tensor:
    """Images ``(N, C, F, T)`` -> audio ``(N, 2, samples)`` on the CPU.

    The one images-to-audio path (generate, invert, previews, evaluate): decode, then an
    inverse STFT when the decoded spectrogram carries phase, else the inverter. Images
    already on ``device`` stay there; only the audio comes back to the CPU.
    """
    out = []
    for start in range(0, images.shape[0], batch_size):
        spectrogram = transform.spectrogram(images[start : start + batch_size].to(device))
        out.append(spectrogram_audio(spectrogram, inverter).float().cpu())
    return torch.cat(out)


def spectrogram_audio(spectrogram: Spectrogram, inverter: Inverter | None) -> Tensor:
    """A decoded spectrogram's audio: an inverse STFT when it has phase, else the inverter."""
    if spectrogram.phase is not None:
        return spectrogram.istft()
    if inverter is None:
        raise ConfigError("the transform's decode has no phase, so an inverter is needed")
    return inverter(spectrogram.magnitude, spectrogram.spec)


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
    """``(N, C, F, T)`` in ``[-1, 1]``, CPU."""
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
    parts = build_run_parts(cfg, host, kinds=("generator", "inverter"))
    check_recorded_shape(payload.get("built_with"), parts.context.image, ckpt)  # type: ignore[arg-type]
    warn_version_changes(payload.get("built_with"), str(ckpt), host)
    generator, transform, inverter = parts.generator, parts.transform, parts.inverter
    assert generator is not None and inverter is not None
    try:
        generator.load_state_dict(payload["generator"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{ckpt}: generator weights do not fit generator {cfg.generator.name!r}: "
            f"{str(exc).splitlines()[0]}"
        ) from None
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
