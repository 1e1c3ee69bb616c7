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

``--against REF`` instead times our step at git revision ``REF`` and in this checkout, in fresh
processes taking turns (how much faster the step became since ``REF``).

``--settings fp32,bf16,channels_last,compile`` instead compares our trainer's speed
options (``training.precision``, ``training.channels_last``, ``training.compile``) side by
side, each in its own subprocess: samples/s of the step, its ratio to eager fp32, and the
FD of the previews after a short real run with the same seed (``--fd-steps`` generator
updates on 64 built-in kicks), so a speed-up that breaks training shows.

Run: ``python benchmarks/bench_train.py [--batches 25] [--json]``. Numbers depend on
the machine and on what else runs on it. Workers run with
the ``GOMP_SPINCOUNT`` ``ssgan`` sets (``ssgan_cli.OPENMP_SPIN``) unless ``OMP_WAIT_POLICY`` or
``GOMP_SPINCOUNT`` is already set.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from ssgan_cli import OPENMP_SPIN

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


SETTINGS: dict[str, dict[str, object]] = {
    "fp32": {},
    "bf16": {"precision": "bf16"},
    "channels_last": {"channels_last": True},
    "compile": {"compile": True},
    "bf16+channels_last": {"precision": "bf16", "channels_last": True},
    "bf16+compile": {"precision": "bf16", "compile": True},
    "fp16": {"precision": "fp16"},
    "heap-default": {"heap": "default"},
}
"""Named combinations of the training fields ``--settings`` compares; ``fp32`` is main's eager default.
``fp16`` (with gradient scalers) runs on CUDA only. ``heap-default`` is fp32 with glibc's default
heap thresholds instead of the trainer's (:func:`~ssgan_core.memory.keep_freed_memory`)."""


def _ours(batches: int, setting: str = "fp32") -> float:
    step, device = _stepper(setting)
    for i in range(WARMUP):
        step(i)
    return _timed(step, batches, device)


def _timed(step: Callable[[int], object], batches: int, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    for i in range(batches):
        step(i)
    _sync(device)
    return time.perf_counter() - start


def _stepper(setting: str) -> tuple[Callable[[int], object], torch.device]:
    """One training step of the paper model under ``setting``, as a function of the batch index."""
    from ssgan_core.generation import build_losses
    from ssgan_core.memory import keep_freed_memory
    from ssgan_core.training import GanStepper, autocast_for
    from ssgan_core.training.distributed import World, replicas_for
    from ssgan_core.training.step import grad_scalers

    keep_freed_memory()  # as the trainer does
    fields = SETTINGS[setting]
    precision = str(fields.get("precision", "fp32"))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg, host, generator, critic, g_opt, c_opt = _parts(naive=False)
    generator.to(device)
    critic.to(device)
    terms, weights = build_losses(cfg, host)
    for term in terms.values():
        if isinstance(term, torch.nn.Module):
            term.to(device)
    real = torch.rand(BATCH, 2, 256, 256, device=device) * 2 - 1
    if fields.get("channels_last"):
        generator.to(memory_format=torch.channels_last)
        critic.to(memory_format=torch.channels_last)
        real = real.contiguous(memory_format=torch.channels_last)
    stepper = GanStepper(
        generator,
        critic,
        terms,
        weights,
        g_opt,
        c_opt,
        N_CRITIC,
        joint=cfg.training.critic_batches == "joint",
        autocast=autocast_for(device, precision),
        replicas=replicas_for(generator, critic, World(), device, compile=bool(fields.get("compile"))),
        scalers=grad_scalers(device, precision),
    )
    return (lambda i: stepper.step(real, i)), device


def _interleaved(names: list[str], batches: int, rounds: int) -> dict[str, list[float]]:
    """samples/s of each setting, ``rounds`` times, the settings taking turns in one process, so
    load from other work on the machine falls on all of them alike."""
    steppers = {name: _stepper(name) for name in names}
    for step, _ in steppers.values():  # compiles, allocates
        for i in range(WARMUP):
            step(i)
    speeds: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name, (step, device) in steppers.items():
            with _heap(SETTINGS[name].get("heap")):
                speeds[name].append(batches * BATCH / _timed(step, batches, device))
    return speeds


@contextlib.contextmanager
def _heap(policy: object) -> Iterator[None]:
    """glibc's default heap thresholds for the block (``policy == "default"``), then the trainer's."""
    from ssgan_core.memory import keep_freed_memory, release_free_memory

    if policy != "default":
        yield
        return
    keep_freed_memory(False)
    release_free_memory()
    try:
        yield
    finally:
        keep_freed_memory()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _short_run(setting: str, generator_steps: int, cache: str) -> dict[str, float | None]:
    """A real run of the paper model with ``setting``: FD of its previews and its samples/s."""
    import tempfile

    from ssgan_core.config import resolve_config
    from ssgan_core.training import Trainer

    fields = {f"training.{k}": json.dumps(v) for k, v in SETTINGS[setting].items() if k != "heap"}
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {
            "data.source.count": "64",
            "data.cache_dir": json.dumps(cache),
            "training.schedule": '"steps"',
            "training.steps": str(generator_steps),
            "training.eval_every": str(generator_steps),
            "training.checkpoint_every_steps": "0",
            "output.runs_dir": json.dumps(tmp),
            "output.preview_wavs": "0",
            **fields,
        }
        cfg = resolve_config("paper-kicks", overrides=[f"{k}={v}" for k, v in overrides.items()])
        metrics = Trainer.start(cfg, Path(tmp) / "run").fit().metrics
    return {"fd": metrics.get("fd"), "run_samples_per_s": metrics["samples_per_s"]}


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


def _worker(side: str, batches: int, fd_steps: int = 0, cache: str = "") -> None:
    if side.startswith("speed:"):
        print(json.dumps(_interleaved(side.split(":")[1].split(","), batches, fd_steps)))
        return
    if side.startswith("fd:"):
        print(json.dumps(_short_run(side.split(":")[1], fd_steps, cache)))
        return
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
    parser.add_argument(
        "--settings",
        help=f"Compare these speed settings instead (comma-separated, of {', '.join(SETTINGS)}).",
    )
    parser.add_argument("--fd-steps", type=int, default=8, help="Generator updates of each FD run (0: none).")
    parser.add_argument("--rounds", type=int, default=3, help="--settings, --against: timed turns per side.")
    parser.add_argument("--against", metavar="REF", help="Compare our step with git revision REF's instead.")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--cache", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.batches, args.fd_steps, args.cache)
        return
    if args.against:
        _compare_against(args.against, args.batches, args.rounds, args.json)
        return
    if args.settings:
        _compare_settings(args.settings.split(","), args.batches, args.rounds, args.fd_steps, args.json)
        return
    results = {side: _run_worker(side, args.batches) for side in ("ours", "baseline")}
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


def _run_worker(side: str, batches: int, *extra: str, tree: Path | None = None) -> dict:
    """Run a worker of this checkout or, with ``tree``, of another checkout's code."""
    env = dict(os.environ)
    if "OMP_WAIT_POLICY" not in env:  # the OpenMP setting `ssgan` uses (see ssgan_cli/__init__.py)
        env.setdefault("GOMP_SPINCOUNT", OPENMP_SPIN)
    script = Path(__file__).resolve()
    if tree is not None:
        script = tree / "benchmarks" / script.name
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    command = [sys.executable, str(script), "--worker", side, "--batches", str(batches)]
    out = subprocess.run([*command, *extra], check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _compare_against(ref: str, batches: int, rounds: int, as_json: bool) -> None:
    """Our step at git revision ``ref`` (a temporary worktree) and in this checkout, in fresh
    processes taking turns; the ratio is the median of each round's ratio."""
    import statistics
    import tempfile

    root = Path(__file__).resolve().parents[1]
    speeds: dict[str, list[float]] = {ref: [], "this checkout": []}
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "ref"
        git = ["git", "-C", str(root), "worktree"]
        subprocess.run([*git, "add", "--detach", "-q", str(tree), ref], check=True)
        try:
            for _ in range(rounds):
                speeds[ref].append(_run_worker("ours", batches, tree=tree)["samples_per_s"])
                speeds["this checkout"].append(_run_worker("ours", batches)["samples_per_s"])
        finally:
            subprocess.run([*git, "remove", "--force", str(tree)], check=True)
    ratios = [a / b for a, b in zip(speeds["this checkout"], speeds[ref], strict=True)]
    summary = {"samples_per_s": speeds, "ratio": statistics.median(ratios), "per_round_ratio": ratios}
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    print(f"paper model step, batch {BATCH}, n_critic {N_CRITIC}, {rounds} rounds of {batches} batches each")
    for name, values in speeds.items():
        rounds_text = " ".join(f"{v:.1f}" for v in values)
        print(f"  {name:<14} {statistics.median(values):7.2f} samples/s  (rounds: {rounds_text})")
    ratios_text = " ".join(f"{r:.2f}" for r in ratios)
    print(f"  this checkout / {ref}: {summary['ratio']:.2f}x (per round: {ratios_text})")


def _compare_settings(names: list[str], batches: int, rounds: int, fd_steps: int, as_json: bool) -> None:
    """Speeds of all settings in one process, taking turns; then one short real run per setting
    (its own process) for the FD. Ratios are the median over rounds of each round's ratio to fp32."""
    import statistics
    import tempfile

    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        raise SystemExit(f"unknown setting(s) {unknown}; choose from {', '.join(SETTINGS)}")
    names = ["fp32", *[n for n in names if n != "fp32"]]
    speeds = _run_worker(f"speed:{','.join(names)}", batches, "--fd-steps", str(rounds))
    results: dict[str, dict] = {}
    for name in names:
        ratios = [s / f for s, f in zip(speeds[name], speeds["fp32"], strict=True)]
        results[name] = {
            "samples_per_s": statistics.median(speeds[name]),
            "per_round": speeds[name],
            "ratio_vs_fp32": statistics.median(ratios),
        }
    if fd_steps:
        with tempfile.TemporaryDirectory() as cache:  # one encoding of the data for all FD runs
            for name in names:
                results[name].update(
                    _run_worker(f"fd:{name}", batches, "--fd-steps", str(fd_steps), "--cache", cache)
                )
    if as_json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"paper model, batch {BATCH}, n_critic {N_CRITIC}, {torch.get_num_threads()} threads, "
        f"{rounds} rounds of {batches} batches per setting, taking turns; "
        f"FD after {fd_steps} generator steps on 64 kicks"
    )
    for name, r in results.items():
        fd = "-" if r.get("fd") is None else f"{r['fd']:.0f}"
        rounds_text = " ".join(f"{s:.1f}" for s in r["per_round"])
        print(
            f"  {name:<20} {r['samples_per_s']:7.2f} samples/s  x{r['ratio_vs_fp32']:.2f}  FD {fd}"
            f"   (rounds: {rounds_text})"
        )


if __name__ == "__main__":
    main()
