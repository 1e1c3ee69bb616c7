"""Data-parallel training under ``torchrun``: the process group, replicas, synchronised BatchNorm.

``torchrun`` starts one process per rank and sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; :func:`join_world` turns that into a :class:`World` (``gloo`` on CPU,
``nccl`` on CUDA). Without those variables the world is one process and nothing here
changes what a run computes. docs/distributed.md explains what is synchronised.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ssgan_core.errors import ConfigError
from ssgan_core.interfaces import Critic
from ssgan_core.training.step import Replicas

TIMEOUT = timedelta(minutes=10)
"""How long a rank waits for the others in a collective before it fails (torch's default is 30 min)."""


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of one run; ``World()`` is a single process."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: str = "cpu"
    """Where collectives put their tensors (nccl needs them on the rank's GPU)."""

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and talks to the console."""
        return self.rank == 0

    def all_gather_object(self, obj: Any) -> list[Any]:
        if self.size == 1:
            return [obj]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if self.size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on one (a stop request, a Ctrl-C)."""
        if self.size == 1:
            return flag
        return bool(self.sum_(torch.tensor([int(flag)], device=self.device)).item())

    def sum_(self, tensor: Tensor) -> Tensor:
        """Sum ``tensor`` over the ranks, in place."""
        if self.size > 1:
            dist.all_reduce(tensor)
        return tensor


def world_from_env() -> World:
    """The world ``torchrun`` describes in the environment, without joining it."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return World(rank, size, int(os.environ.get("LOCAL_RANK", str(rank))))


def join_world(device: torch.device) -> tuple[World, torch.device]:
    """Join the process group ``torchrun`` set up (once) and pick this rank's device.

    A CUDA run uses one GPU per rank, ``cuda:LOCAL_RANK``; ranks on CPU share the cores.
    """
    world = world_from_env()
    if world.size == 1:
        return world, device
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", world.local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        raise ConfigError(f"distributed training runs on cuda or cpu, not {device.type}")
    if not dist.is_initialized():
        _init_process_group(device, world)
    return World(world.rank, world.size, world.local_rank, str(device)), device


def _init_process_group(device: torch.device, world: World) -> None:
    """The process group over torchrun's store, its keys prefixed by the restart count.

    After ``--max-restarts`` restarts a worker group, the agent's store still holds the
    previous group's addresses under the same keys, and the new ranks dial dead ports
    (measured: "Gloo connectFullMesh failed ... Connection refused"); a prefix per attempt
    keeps each group to its own keys.
    """
    from torch.distributed.rendezvous import rendezvous

    store, rank, size = next(rendezvous("env://", timeout=TIMEOUT))
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    dist.init_process_group(
        "nccl" if device.type == "cuda" else "gloo",
        store=dist.PrefixStore(f"ssgan/attempt_{attempt}", store),
        rank=rank,
        world_size=size,
        timeout=TIMEOUT,
        device_id=device if device.type == "cuda" else None,
    )


def leave_world() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


# --------------------------------------------------------------------------- replicas


class SumOverRanks(torch.autograd.Function):
    """``all_reduce(SUM)`` as a differentiable function: its backward is the same sum over ranks
    (each rank's loss depends on every rank's input), and so on for every derivative order."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        return SumOverRanks.apply(grad)  # type: ignore[no-any-return]


def sum_over_ranks(tensor: Tensor) -> Tensor:
    return SumOverRanks.apply(tensor)  # type: ignore[no-any-return]


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics cover the batch of every rank.

    torch's own ``nn.SyncBatchNorm`` runs on GPUs only and its backward is not itself
    differentiable, which the gradient penalty's double backward needs. This one is
    built from :class:`SumOverRanks`, whose backward is again an all-reduce,
    so every derivative order is exact, on CPU (gloo) and CUDA (nccl) alike. Statistics
    are computed in float32 in two passes (mean, then the squared deviations), as plain
    BatchNorm does, so 2 ranks of batch B match one process of batch 2B to float precision.
    Eval mode is plain BatchNorm. State dict keys are BatchNorm's: checkpoints load either way.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        x = input.float()
        dims = [0, *range(2, x.dim())]
        shape = [1, -1, *[1] * (x.dim() - 2)]
        local = torch.cat([x.sum(dims), x.new_tensor([x.numel() / x.shape[1]])])
        total = sum_over_ranks(local)
        count = total[-1]
        mean = total[:-1] / count
        centred = x - mean.view(shape)
        var = sum_over_ranks(centred.pow(2).sum(dims)) / count
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            self._track(mean.detach(), var.detach() * count / (count - 1).clamp(min=1))
        return out.to(input.dtype)

    @torch.no_grad()
    def _track(self, mean: Tensor, unbiased_var: Tensor) -> None:
        assert self.running_mean is not None and self.running_var is not None
        assert self.num_batches_tracked is not None
        self.num_batches_tracked.add_(1)
        momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
        self.running_var.lerp_(unbiased_var.to(self.running_var.dtype), momentum)


def synchronise_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm layer for :class:`SyncBatchNorm` that holds the very same parameter
    and buffer tensors, so optimisers built before the swap still update them."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, SyncBatchNorm):
            synced = SyncBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            )
            synced._parameters, synced._buffers = child._parameters, child._buffers
            synced.train(child.training)
            setattr(module, name, synced)
        else:
            synchronise_batchnorm(child)
    return module


class _ScoresAndFeatures(nn.Module):
    """DDP wraps ``forward``; the losses need ``forward_features``."""

    def __init__(self, critic: Critic) -> None:
        super().__init__()
        self.critic = critic

    def forward(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return self.critic.forward_features(image)


class ReplicatedCritic(Critic):
    """A critic whose passes go through DDP, so the critic update averages gradients over ranks."""

    def __init__(self, critic: Critic, device: torch.device) -> None:
        super().__init__()
        self.feature_layers = critic.feature_layers
        self.replica = replicate(_ScoresAndFeatures(critic), device)

    def forward_features(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return self.replica(image)  # type: ignore[no-any-return]


def replicate(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` in DDP: rank 0's weights broadcast now, gradients averaged in every backward.

    Buffers are synchronised once, here, and not per forward: synchronised BatchNorm keeps
    its running statistics equal on every rank. Gradients live in DDP's buckets (no copy).
    """
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    # A (1, C, k, k) weight's gradient may come back with another (equivalent) stride for its
    # size-1 dimension; DDP copies it into its bucket and warns on every step. Harmless.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    return DistributedDataParallel(
        module, device_ids=ids, forward_sync_buffers=False, gradient_as_bucket_view=True
    )


def replicas_for(
    generator: nn.Module, critic: Critic, world: World, device: torch.device, *, compile: bool = False
) -> Replicas | None:
    """What the step runs forward passes through: DDP replicas with synchronised BatchNorm when
    there are several ranks, a compiled generator when asked; ``None`` when that is the networks.

    The networks themselves keep the weights (checkpoints hold no wrapper). The critic is
    never compiled: the gradient penalty differentiates it twice, which compiled graphs
    do not support.
    """
    run_generator: nn.Module = generator
    run_critic: Critic = critic
    if world.size > 1:
        synchronise_batchnorm(generator)
        synchronise_batchnorm(critic)
        run_generator, run_critic = replicate(generator, device), ReplicatedCritic(critic, device)
    if compile:
        run_generator = torch.compile(run_generator)  # type: ignore[assignment]
    if run_generator is generator and run_critic is critic:
        return None
    return Replicas(run_generator, run_critic)
