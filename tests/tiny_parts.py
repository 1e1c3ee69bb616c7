"""Tiny stand-in parts (32x32 images, 1024-sample clips) so trainer tests run in a second.

They follow the interfaces exactly (dropout and random interpolates included, so RNG
handling is exercised) and register through the same hooks as real plugins.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor, nn

from ssgan_core import (
    AudioSpec,
    Critic,
    Generator,
    Inverter,
    LossContext,
    LossOptions,
    LossTerm,
    StftSpec,
    Transform,
    hookimpl,
)
from ssgan_core.config import RunConfig, apply_overrides, validate_config
from ssgan_core.plugins import PluginHost, PluginInfo

SIZE = 32
SAMPLE_RATE = 8000
SECONDS = 0.128  # 1024 samples


class TinyTransform(Transform):
    def __init__(self, options: Any, audio: AudioSpec) -> None:
        super().__init__()
        self.audio = audio
        self.n_fft = 2 * (SIZE - 1)
        self.hop = audio.num_samples // SIZE
        self.window: Tensor
        self.register_buffer("window", torch.hann_window(self.n_fft))

    @property
    def stft_spec(self) -> StftSpec:
        return StftSpec(self.n_fft, self.hop, self.n_fft, self.window, self.audio.num_samples)

    def encode(self, audio: Tensor) -> Tensor:
        b = audio.shape[0]
        spec = torch.stft(
            audio.reshape(-1, audio.shape[-1]), self.n_fft, self.hop, window=self.window, return_complex=True
        )
        db = 20 * torch.log10(spec.abs()[..., :SIZE] + 1e-5)
        return (db / 50 + 1).clamp(-1, 1).reshape(b, 2, SIZE, SIZE)

    def decode(self, image: Tensor) -> Tensor:
        mag = 10 ** ((image - 1) * 50 / 20)
        frames = self.audio.num_samples // self.hop + 1
        return torch.nn.functional.pad(mag, (0, frames - SIZE))


class ZeroPhaseInverter(Inverter):
    def forward(self, magnitude: Tensor, spec: StftSpec) -> Tensor:
        b = magnitude.shape[0]
        flat = magnitude.reshape(-1, *magnitude.shape[-2:]).to(torch.complex64)
        audio = torch.istft(flat, spec.n_fft, spec.hop_length, window=spec.window, length=spec.length)
        return audio.reshape(b, 2, -1)


class GenOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latent_dim: int = 8


class TinyGenerator(Generator):
    def __init__(self, options: GenOptions, audio: AudioSpec) -> None:
        super().__init__()
        self.latent_dim = options.latent_dim
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(self.latent_dim, 64),
            nn.BatchNorm1d(64),
            nn.LeakyReLU(0.2),
            nn.Dropout(0.2),
            nn.Linear(64, 2 * SIZE * SIZE),
            nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(-1, 2, SIZE, SIZE)


class TinyCritic(Critic):
    feature_layers = ("conv",)

    def __init__(self, options: Any, audio: AudioSpec) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(2, 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.Dropout(0.2))
        self.head = nn.Linear(4 * (SIZE // 2) ** 2, 1)

    def forward_features(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        h = self.conv(image)
        return self.head(h.flatten(1)).squeeze(1), {"conv": h}


class Wasserstein(LossTerm):
    def critic_loss(self, ctx: LossContext) -> Tensor:
        return ctx.fake_scores.mean() - ctx.real_scores.mean()

    def generator_loss(self, ctx: LossContext) -> Tensor:
        return -ctx.fake_scores.mean()


class GradientPenalty(LossTerm):
    def critic_loss(self, ctx: LossContext) -> Tensor:
        eps = torch.rand(ctx.real.shape[0], 1, 1, 1, device=ctx.real.device)
        mix = (eps * ctx.real + (1 - eps) * ctx.fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(ctx.critic(mix).sum(), mix, create_graph=True)
        return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


class FeatureMatching(LossTerm):
    def generator_loss(self, ctx: LossContext) -> Tensor:
        return (ctx.real_features["conv"].mean(0) - ctx.fake_features["conv"].mean(0)).abs().mean()


class Poison(LossTerm):
    """NaN from its ``after``-th critic call on: for the divergence test."""

    def __init__(self, after: int) -> None:
        self.after, self.calls = after, 0

    def critic_loss(self, ctx: LossContext) -> Tensor:
        self.calls += 1
        value = ctx.real.mean() * 0
        return value + math.nan if self.calls > self.after else value


class PoisonOptions(LossOptions):
    after: int = 3


@hookimpl
def register_transforms(register):
    register("tiny-stft", TinyTransform)


@hookimpl
def register_generators(register):
    register("tiny-gen", TinyGenerator, options=GenOptions)


@hookimpl
def register_critics(register):
    register("tiny-critic", TinyCritic)


@hookimpl
def register_inverters(register):
    register("zero-phase", lambda o, a: ZeroPhaseInverter())


@hookimpl
def register_losses(register):
    register("tiny-wasserstein", lambda o, a: Wasserstein(), options=LossOptions)
    register("tiny-gp", lambda o, a: GradientPenalty(), options=LossOptions)
    register("tiny-fm", lambda o, a: FeatureMatching(), options=LossOptions)
    register("poison", lambda o, a: Poison(o.after), options=PoisonOptions)


def tiny_host() -> PluginHost:
    """A fresh host with the built-in dataset sources and these tiny parts only."""
    from ssgan_plugins.data import plugin as data_plugin

    host = PluginHost(strict=True)
    host.add_plugin(data_plugin, PluginInfo("datasets", "ssgan", "test"))
    host.add_plugin(__import__(__name__, fromlist=["_"]), PluginInfo("tiny", "tests", "test"))
    return host


def tiny_config(tmp_path, host: PluginHost, *overrides: str) -> RunConfig:
    """A resolved config: 24 synthetic kicks at 8 kHz, batch 4, tiny parts, 2 epochs."""
    data = {
        "audio": {"sample_rate": SAMPLE_RATE, "seconds": SECONDS},
        "data": {"source": {"name": "synthetic-kicks", "count": 24}},
        "transform": {"name": "tiny-stft"},
        "generator": {"name": "tiny-gen"},
        "critic": {"name": "tiny-critic"},
        "inverter": {"name": "zero-phase"},
        "losses": {
            "tiny-wasserstein": {"weight": 1.0},
            "tiny-gp": {"weight": 5.0},
            "tiny-fm": {"weight": 0.35},
        },
        "training": {"batch_size": 4, "epochs": 2, "preview_count": 4, "fd_every_epoch": False},
        "output": {"runs_dir": str(tmp_path / "runs"), "preview_wavs": 2},
    }
    return validate_config(apply_overrides(data, overrides), host)
