"""Import the original StereoSampleGAN generator weights (public ``.pth`` state dicts).

The original files are plain state dicts of its generator, keys
``deconv_blocks.N.{weight,bias,running_mean,running_var,num_batches_tracked}``,
which :class:`~ssgan_plugins.paper.generator.PaperGenerator` shares key for key.
Conversion is strict: every key and shape must match, or a
:class:`~ssgan_core.CheckpointError` lists what is missing, unexpected or mismatched.

Layout. The original images are ``(channel, time, freq)``; ours are
``(channel, freq, time)``. The generator starts from a 1x1 latent and every layer has
a square kernel, stride and padding, so transposing the two spatial axes of every
transposed-convolution kernel transposes every feature map, and the output becomes
the original's output transposed. BatchNorm and biases act per channel and stay as
they are. :func:`to_our_layout` is the one place this happens.

Files are read with ``torch.load(weights_only=True)``: no code from a file runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ssgan_core import CheckpointError, ConfigError
from ssgan_core.checkpoint import read_torch_file
from ssgan_plugins.paper.generator import PaperGenerator, PaperGeneratorOptions

GENERATOR_PLUGIN = "paper-generator"


def to_our_layout(kernel: Tensor) -> Tensor:
    """A transposed-conv kernel ``(in, out, kh, kw)`` of the (time, freq) model -> (freq, time)."""
    return kernel.transpose(-2, -1).contiguous()


def read_original(path: str | Path) -> dict[str, Tensor]:
    """The state dict in an original ``.pth`` file, read without executing anything."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    state = read_torch_file(path, what="PyTorch state dict")
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        if isinstance(state, Mapping) and state.get("format") == "ssgan-checkpoint":
            raise CheckpointError(f"{path}: already an ssgan checkpoint; use it directly")
        raise CheckpointError(f"{path}: expected a plain state dict of tensors, got {type(state).__name__}")
    return dict(state)


def convert_original_generator(
    state: Mapping[str, Tensor],
    options: PaperGeneratorOptions | None = None,
    *,
    source: str = "original state dict",
) -> dict[str, Tensor]:
    """Check an original generator state dict key by key and return it in our layout."""
    model = PaperGenerator(options)
    expected = model.state_dict()
    if model.output_bias is not None:  # not in the original weights: it starts at zero
        state = {"output_bias": torch.zeros_like(model.output_bias), **state}
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    wrong_type = [
        f"{k} {state[k].dtype} (expected {v.dtype})"
        for k, v in expected.items()
        if k in state and state[k].is_floating_point() != v.is_floating_point()
    ]
    problems = [
        f"{label}: {', '.join(items)}"
        for label, items in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", mismatched),
            ("wrong dtype", wrong_type),
        )
        if items
    ]
    if problems:
        raise CheckpointError(
            f"{source} does not match the paper generator ({len(expected)} tensors): " + "; ".join(problems)
        )
    kernels = {
        f"deconv_blocks.{name}.weight"
        for name, module in model.deconv_blocks.named_children()
        if isinstance(module, nn.ConvTranspose2d)
    }
    return {
        key: (to_our_layout(state[key]) if key in kernels else state[key].clone()).to(expected[key].dtype)
        for key in expected
    }


def load_original_generator(path: str | Path, options: PaperGeneratorOptions | None = None) -> PaperGenerator:
    """A :class:`PaperGenerator` (eval mode) with an original file's weights, in our layout."""
    model = PaperGenerator(options)
    model.load_state_dict(convert_original_generator(read_original(path), options, source=str(path)))
    return model.eval()


def import_original_checkpoint(
    source: str | Path,
    destination: str | Path,
    *,
    preset: str = "paper-kicks",
    overrides: list[str] | None = None,
    host: Any = None,
) -> Path:
    """Write an original generator file as a generator-only ssgan checkpoint.

    The checkpoint's config is ``preset`` (with ``overrides``): the transform and
    inverter that turn the generator's images into audio. Its generator must be
    ``paper-generator``. Returns the written path.
    """
    from ssgan_core.checkpoint import new_payload, save_checkpoint
    from ssgan_core.config import dump_config, resolve_config

    cfg = resolve_config(preset=preset, overrides=overrides or [], host=host)
    if cfg.generator.name != GENERATOR_PLUGIN:
        raise ConfigError(
            f"generator.name: the original weights are a {GENERATOR_PLUGIN!r}, "
            f"but preset {preset!r} uses {cfg.generator.name!r}"
        )
    options = PaperGeneratorOptions.model_validate(cfg.generator.options)
    state = convert_original_generator(read_original(source), options, source=str(source))
    payload = new_payload(
        dump_config(cfg),
        state,
        critic=None,
        epoch=0,
        imported={
            "from": Path(source).name,
            "layout": "original (channel, time, freq) converted to (channel, freq, time)",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    return save_checkpoint(destination, payload)
