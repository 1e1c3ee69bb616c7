"""Training throughput and peak memory: our trainer vs the same model written the obvious way.

Both sides train the exact paper model (440,106 + 177,858 parameters) with the paper's
losses and optimisers on batches of 16: a critic update every batch, a generator update
every 5th. Each side runs in its own subprocess so peak RSS is its own.

``ours``      ``ssgan_core.training.GanStepper`` with the registered parts: exact
              O(N log N) attention, critic passes cached per update (LossContext, so
              scores and features come from one pass), the critic step's fake made
              without a graph, critic weights frozen during the generator update.
``baseline``  a plain eager loop as in the original implementation: N x N attention,
              separate critic calls for scores and for each feature set, the critic
              step's fake made with a graph, critic gradients computed in the
              generator update too.

Run: ``python benchmarks/bench_train.py [--batches 25] [--json]``. Numbers depend on
the machine and on what else runs on it. Workers run with ``GOMP_SPINCOUNT=30000`` (as
``ssgan`` sets it) unless ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is already set.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

BATCH = 16
N_CRITIC = 5
WARMUP = 2
ORIGINAL_SAMPLES_PER_S = 4.9
"""The original implementation on 2 CPU cores (issue 4)."""


def _parts(naive: bool):
    from ssgan_core.config import resolve_config
    from ssgan_core.generation import build_run_parts
    from ssgan_core.plugins import get_host

    overrides = ['critic.attention_impl="naive"'] if naive else []
    cfg = resolve_config("paper-kicks", overrides=overrides)
    host = get_host()
    torch.manual_seed(0)
    parts = build_run_parts(cfg, host, kinds=("generator", "critic"))  # as the trainer builds them
    generator, critic = parts.generator, parts.critic
    from ssgan_core.training import build_optimizer

    t = cfg.training
    g_opt = build_optimizer(t.generator_optimizer, generator.parameters())
    c_opt = build_optimizer(t.critic_optimizer, critic.parameters())
    return cfg, host, generator, critic, g_opt, c_opt


def _ours(batches: int) -> float:
    from ssgan_core.generation import build_losses
    from ssgan_core.training import GanStepper

    cfg, host, generator, critic, g_opt, c_opt = _parts(naive=False)
    terms, weights = build_losses(cfg, host)
    stepper = GanStepper(generator, critic, terms, weights, g_opt, c_opt, N_CRITIC)
    real = torch.rand(BATCH, 2, 256, 256) * 2 - 1
    for i in range(WARMUP):
        stepper.step(real, i)
    start = time.perf_counter()
    for i in range(batches):
        stepper.step(real, i)
    return time.perf_counter() - start


def _baseline_step(generator, critic, g_opt, c_opt, real, step: int) -> None:
    """One batch as the original code wrote it."""
    z = torch.randn(real.shape[0], generator.latent_dim, 1, 1)
    fake = generator(z)
    c_opt.zero_grad()
    wasserstein = critic(fake.detach()).mean() - critic(real).mean()
    eps = torch.rand(real.shape[0], 1, 1, 1)
    mixed = (eps * real + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    penalty = ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    difference = (real - fake.detach()).abs().mean()
    convergence = torch.norm(fake.detach() - real) / torch.norm(real)
    (wasserstein + 5 * penalty + 0.15 * difference + 0.15 * convergence).backward()
    c_opt.step()
    if step % N_CRITIC:
        return
    g_opt.zero_grad()
    fake = generator(z)
    adversarial = -critic(fake).mean()
    real_features = critic.forward_features(real)[1]
    fake_features = critic.forward_features(fake)[1]
    matching = torch.stack(
        [(real_features[k].mean(0) - fake_features[k].mean(0)).abs().mean() for k in fake_features]
    ).mean()
    (adversarial + 0.35 * matching).backward()
    g_opt.step()


def _baseline(batches: int) -> float:
    _, _, generator, critic, g_opt, c_opt = _parts(naive=True)
    generator.train()
    critic.train()
    real = torch.rand(BATCH, 2, 256, 256) * 2 - 1
    for i in range(WARMUP):
        _baseline_step(generator, critic, g_opt, c_opt, real, i)
    start = time.perf_counter()
    for i in range(batches):
        _baseline_step(generator, critic, g_opt, c_opt, real, i)
    return time.perf_counter() - start


def _openmp_wait() -> str:
    if "OMP_WAIT_POLICY" in os.environ:
        return f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}"
    return f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT', 'default')}"


def _worker(side: str, batches: int) -> None:
    seconds = (_ours if side == "ours" else _baseline)(batches)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(
        json.dumps(
            {
                "side": side,
                "batches": batches,
                "seconds": seconds,
                "samples_per_s": batches * BATCH / seconds,
                "peak_rss_mib": peak_kib / 1024,
                "threads": torch.get_num_threads(),
                "openmp": _openmp_wait(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=25, help="Timed batches per side (25 = 400 samples).")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    parser.add_argument("--worker", choices=("ours", "baseline"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.batches)
        return
    results = {}
    env = dict(os.environ)
    if "OMP_WAIT_POLICY" not in env:  # the OpenMP setting `ssgan` uses (see ssgan_cli/__init__.py)
        env.setdefault("GOMP_SPINCOUNT", "30000")
    for side in ("ours", "baseline"):
        out = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--worker", side, "--batches", str(args.batches)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        results[side] = json.loads(out.stdout.strip().splitlines()[-1])
    ours, base = results["ours"], results["baseline"]
    summary = {
        **results,
        "speedup_vs_baseline": ours["samples_per_s"] / base["samples_per_s"],
        "speedup_vs_original_4_9": ours["samples_per_s"] / ORIGINAL_SAMPLES_PER_S,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(
        f"training epoch, batch {BATCH}, generator every {N_CRITIC}th batch, {ours['threads']} threads, "
        f"OpenMP wait: {ours['openmp']}"
    )
    for side in ("ours", "baseline"):
        r = results[side]
        print(f"  {side:<9} {r['samples_per_s']:7.2f} samples/s   peak RSS {r['peak_rss_mib']:7.0f} MiB")
    print(f"  speed-up vs baseline: {summary['speedup_vs_baseline']:.2f}x")
    print(f"  vs original ({ORIGINAL_SAMPLES_PER_S} samples/s): {summary['speedup_vs_original_4_9']:.2f}x")


if __name__ == "__main__":
    main()
