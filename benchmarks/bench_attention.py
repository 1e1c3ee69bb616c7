"""Time of the critic's attention under the gradient penalty: naive N x N vs sorted vs linear.

Two measurements at batch ``--batch`` (paper: 16), median of ``--repeats`` after one
warm-up, on the paper critic's attention input (16 channels at 32x32, N = 1024):

``layer``   attention layer alone: forward, input gradient with ``create_graph``, then
            backward of a gradient penalty on it (the double backward).
``critic``  one critic update of the paper objective's critic side: scores on real
            and fake, the gradient penalty on interpolates, backward.

``naive`` and ``sorted`` compute the same function (the paper rule); ``linear`` is the
kernel-attention variant, shown for scale. CPU timings on a shared machine are noisy.

    python benchmarks/bench_attention.py [--batch 16] [--repeats 5] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from rich.console import Console
from rich.table import Table

from ssgan_core import LossContext
from ssgan_plugins.paper.attention import SelfAttention2d
from ssgan_plugins.paper.critic import PaperCritic, PaperCriticOptions
from ssgan_plugins.paper.losses import GradientPenalty, Wasserstein

VARIANTS = {"naive": ("paper", "naive"), "sorted": ("paper", "sorted"), "linear": ("linear", "auto")}


def median_time(step: Callable[[], object], repeats: int, device: torch.device) -> float:
    step()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def layer_step(layer: SelfAttention2d, x: torch.Tensor, weights: torch.Tensor) -> Callable[[], None]:
    def step() -> None:
        inp = x.detach().requires_grad_(True)
        score = (layer(inp) * weights).sum()
        (grad,) = torch.autograd.grad(score, inp, create_graph=True)
        penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        layer.zero_grad(set_to_none=True)
        penalty.backward()

    return step


def critic_step(critic: PaperCritic, real: torch.Tensor, fake: torch.Tensor) -> Callable[[], None]:
    terms = [(1.0, Wasserstein()), (5.0, GradientPenalty())]

    def step() -> None:
        ctx = LossContext(real, fake, critic)
        loss = sum(weight * term.critic_loss(ctx) for weight, term in terms)
        critic.zero_grad(set_to_none=True)
        loss.backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, 16, 32, 32, generator=gen).to(device)
    weights = torch.randn(args.batch, 16, 32, 32, generator=gen).to(device)
    real = (torch.rand(args.batch, 2, 256, 256, generator=gen) * 2 - 1).to(device)
    fake = (torch.rand(args.batch, 2, 256, 256, generator=gen) * 2 - 1).to(device)

    title = f"attention under gradient penalty, batch {args.batch}, {torch.get_num_threads()} threads"
    table = Table(title=title)
    for col in ("variant", "layer fwd+GP (ms)", "vs naive", "critic step (ms)", "vs naive"):
        table.add_column(col, justify="right")
    rows = {}
    for name, (kind, impl) in VARIANTS.items():
        torch.manual_seed(0)
        layer = SelfAttention2d(16, kind=kind, impl=impl).to(device)
        with torch.no_grad():
            layer.gamma.fill_(1.0)  # a trained layer: attention actually contributes
        critic = PaperCritic(PaperCriticOptions(attention=kind, attention_impl=impl)).to(device)
        with torch.no_grad():
            critic.attention.gamma.fill_(1.0)
        layer_s = median_time(layer_step(layer, x, weights), args.repeats, device)
        critic_s = median_time(critic_step(critic, real, fake), args.repeats, device)
        rows[name] = (layer_s, critic_s)
    base_layer, base_critic = rows["naive"]
    for name, (layer_s, critic_s) in rows.items():
        table.add_row(
            name,
            f"{layer_s * 1e3:.1f}",
            f"{base_layer / layer_s:.1f}x",
            f"{critic_s * 1e3:.0f}",
            f"{base_critic / critic_s:.2f}x",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
