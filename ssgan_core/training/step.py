"""One training step and what it needs: optimisers, precision, the weight average.

``GanStepper`` is the whole of the GAN update; the trainer around it only feeds batches.
Under ``torchrun`` it runs its forward passes through DDP replicas (``replicas``) while
the plain networks keep the weights, so checkpoints never hold DDP's wrappers.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ssgan_core.config import OptimizerConfig
from ssgan_core.errors import ConfigError, SsganError
from ssgan_core.interfaces import Critic, Generator, LossContext, LossTerm

AutocastFactory = Callable[[], contextlib.AbstractContextManager[Any]]
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TrainingDiverged(SsganError):
    """A loss became NaN or infinite; the update was not applied."""

    exit_code = 1


@dataclass
class Replicas:
    """The modules the step calls forward on when they differ from the networks (DDP wrappers).

    The generator update calls the plain critic: its weights are frozen there, and a DDP
    forward would wait for gradients that never come.
    """

    generator: torch.nn.Module
    critic: Critic


class GanStepper:
    """One critic update per batch and, every ``n_critic``-th batch, one generator update.

    As in the original implementation, the generator updates on batches ``0, n_critic,
    2 n_critic, ...`` of each epoch (so it moves from the first batch on), re-running the
    generator on the same latents after the critic update. The critic's forward passes
    are cached per update (``LossContext``); during the generator update its weights are
    frozen, so only the generator's gradients are computed. Each update checks its total
    for NaN/inf before stepping, so bad values never reach the weights. With ``joint`` the
    critic scores real and fake in one call (``training.critic_batches``, docs/training.md).
    ``scalers`` (fp16 only) scale each network's loss so small gradients survive float16.
    """

    def __init__(
        self,
        generator: Generator,
        critic: Critic,
        terms: dict[str, LossTerm],
        weights: dict[str, float],
        generator_opt: torch.optim.Optimizer,
        critic_opt: torch.optim.Optimizer,
        n_critic: int,
        joint: bool = False,
        autocast: AutocastFactory = contextlib.nullcontext,
        *,
        replicas: Replicas | None = None,
        scalers: dict[str, torch.amp.GradScaler] | None = None,
    ) -> None:
        self.generator, self.critic = generator, critic
        self.replicas = replicas or Replicas(generator, critic)
        self.joint = joint
        self.autocast = autocast
        self.terms, self.weights = terms, weights
        self.generator_opt, self.critic_opt = generator_opt, critic_opt
        self.n_critic = n_critic
        self.scalers = scalers

    def step(self, real: Tensor, batch: int, z: Tensor | None = None) -> dict[str, Tensor]:
        """Train on the epoch's ``batch``-th real batch; return detached unweighted term values.

        ``z`` replaces the latents the step would draw (tests compare runs with it)."""
        if z is None:
            z = self.generator.sample_latent(real.shape[0], device=real.device)
        generator, critic = self.replicas.generator, self.replicas.critic
        with torch.no_grad(), self.autocast():
            fake = generator(z)
        with self.autocast():
            total, values = self._objective("critic", LossContext(real, fake, critic, self.joint))
        self._update("critic", total, self.critic_opt)
        if batch % self.n_critic == 0:
            self.critic.requires_grad_(False)
            try:
                with self.autocast():
                    fake = generator(z)
                    total_g, values_g = self._objective(
                        "generator", LossContext(real, fake, self.critic, self.joint)
                    )
                self.generator_opt.zero_grad(set_to_none=True)
                self._backward("generator", total_g)
            finally:
                self.critic.requires_grad_(True)
            self._step("generator", self.generator_opt)
            values.update(values_g)
        return values

    def _update(self, side: str, total: Tensor, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)
        self._backward(side, total)
        self._step(side, optimizer)

    def _backward(self, side: str, total: Tensor) -> None:
        (self.scalers[side].scale(total) if self.scalers else total).backward()

    def _step(self, side: str, optimizer: torch.optim.Optimizer) -> None:
        if self.scalers is None:
            optimizer.step()
            return
        self.scalers[side].step(optimizer)  # skips the step when a scaled gradient overflowed
        self.scalers[side].update()

    def _objective(self, side: str, ctx: LossContext) -> tuple[Tensor, dict[str, Tensor]]:
        total: Tensor | None = None
        values: dict[str, Tensor] = {}
        for name, term in self.terms.items():
            value = term.critic_loss(ctx) if side == "critic" else term.generator_loss(ctx)
            if value is None:
                continue
            values[f"{side}/{name}"] = value.detach()
            weighted = value * self.weights[name]
            total = weighted if total is None else total + weighted
        if total is None:
            raise ConfigError(
                f"losses: no configured loss term acts on the {side}; add one (e.g. wasserstein)"
            )
        values[f"{side}_loss"] = total.detach()
        if not bool(torch.isfinite(total)):
            bad = [
                k.split("/", 1)[1]
                for k, v in values.items()
                if "/" in k and not bool(torch.isfinite(v).all())
            ]
            raise TrainingDiverged(_diverged_message(side, bad, values))
        return total, values


def _diverged_message(side: str, bad: list[str], values: dict[str, Tensor]) -> str:
    shown = ", ".join(f"{k.split('/', 1)[-1]}={float(v):.4g}" for k, v in values.items() if "/" in k)
    which = f"loss term {', '.join(repr(b) for b in bad)}" if bad else "the weighted sum of the loss terms"
    return f"{which} became non-finite in the {side} update ({shown})"


# --------------------------------------------------------------------------- optimisers, precision


def build_optimizer(cfg: OptimizerConfig, params: Iterator[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """One network's optimiser from its config section."""
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay, eps=cfg.eps)
    kind = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
    return kind(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, eps=cfg.eps)


def check_precision(device: torch.device, precision: str) -> None:
    """fp16 needs a gradient scaler, which only CUDA runs well; say so before any work."""
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            f"training.precision = 'fp16' needs a CUDA device (this run uses {device.type}); "
            "use 'bf16' on CPUs, or 'fp32'"
        )


def autocast_for(device: torch.device, precision: str) -> AutocastFactory:
    """A context factory running forward passes in bfloat16/float16 or as they are (``fp32``)."""
    if precision == "fp32":
        return contextlib.nullcontext
    check_precision(device, precision)
    dtype = AUTOCAST_DTYPES[precision]
    return lambda: torch.autocast(device_type=device.type, dtype=dtype)


def grad_scalers(device: torch.device, precision: str) -> dict[str, torch.amp.GradScaler] | None:
    """One loss scaler per network under fp16 (their gradients differ by orders of magnitude)."""
    if precision != "fp16":
        return None
    return {side: torch.amp.GradScaler(device.type) for side in ("generator", "critic")}


class WeightAverage:
    """Exponential moving average of a network's weights, for sampling.

    GAN generators oscillate around a good solution; the average is a smoother, usually
    better sampler (Karras et al. 2018; Yazici et al. 2019). Buffers (BatchNorm
    statistics) are copied, not averaged.
    """

    def __init__(self, network: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.network = copy.deepcopy(network).requires_grad_(False).eval()

    @torch.no_grad()
    def update(self, source: torch.nn.Module) -> None:
        torch._foreach_lerp_(list(self.network.parameters()), list(source.parameters()), 1.0 - self.decay)
        for mine, theirs in zip(self.network.buffers(), source.buffers(), strict=True):
            mine.copy_(theirs)
