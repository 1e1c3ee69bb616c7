"""Our fast Griffin-Lim vs ``librosa.griffinlim`` on the same magnitudes, in one run.

Settings: the paper's kick clips (0.6 s, hop 103) and instrument clips (1.5 s, hop 259),
batch 1 and 64, 10 and 32 iterations, momentum 0.99, random initial phase, no noise
gate (librosa has none), same window, hop and reflect padding. Magnitudes are real
pipeline inputs: synthetic stereo kicks/tones through ``stft-db`` encode -> decode.

Both start from the same random phase (librosa's seeded draw per item), so the
spectral convergence (SC) columns compare implementations, not luck of the draw.
SC = ||S - |STFT(x)||_F / ||S||_F per item (both channels), averaged; lower is better.
librosa is timed one item at a time and, for batches, also as one multichannel call
over the whole batch ("1 call", wall ms); "speedup" is against the faster of the two.
"cpu ratio" compares CPU time (all threads): the work done, robust to other load.

    python benchmarks/bench_invert.py [--threads 2] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import librosa

from ssgan_core.interfaces import AudioSpec, StftSpec
from ssgan_plugins.paper.griffin_lim import griffin_lim, spectral_convergence
from ssgan_plugins.paper.stft_db import StftDbOptions, build_stft_db
from tests.synth import synth_kick, synth_tone

MOMENTUM = 0.99


def magnitudes(kind: str, count: int) -> tuple[torch.Tensor, StftSpec]:
    seconds = 0.6 if kind == "kick" else 1.5
    transform = build_stft_db(StftDbOptions(), AudioSpec(44_100, seconds))
    rng = np.random.default_rng(0)
    clips = []
    for i in range(count):
        if kind == "kick":
            clip = synth_kick(
                seconds,
                f0=rng.uniform(40, 70),
                decay=rng.uniform(0.05, 0.4),
                pan=rng.uniform(-0.5, 0.5),
                seed=i,
            )
        else:
            clip = synth_tone(seconds, f0=rng.uniform(80, 600), decay=rng.uniform(0.2, 1.0), seed=i)
        clips.append(clip + rng.normal(0, 1e-3, clip.shape).astype(np.float32))
    with torch.no_grad():
        return transform.decode(transform.encode(torch.from_numpy(np.stack(clips)))), transform.stft_spec


def start_phase(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """The phase ``librosa.griffinlim(init="random", random_state=default_rng(seed))`` draws."""
    return 2 * np.pi * np.random.default_rng(seed).random(shape)


def librosa_gl(mag: np.ndarray, spec: StftSpec, iterations: int, seed: int) -> np.ndarray:
    out = librosa.griffinlim(
        mag,
        n_iter=iterations,
        hop_length=spec.hop_length,
        win_length=spec.win_length,
        n_fft=spec.n_fft,
        window=spec.window.numpy(),
        center=True,
        pad_mode="reflect",
        momentum=MOMENTUM,
        init="random",
        random_state=np.random.default_rng(seed),
    )
    return np.pad(out, [(0, 0)] * (out.ndim - 1) + [(0, spec.length - out.shape[-1])])


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """Median wall and CPU (all threads) seconds of ``repeats`` calls after a warm-up, and the result.

    CPU time says how much work a call did even when other processes share the cores.
    """
    result = fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu), result


def run_case(kind: str, batch: int, iterations: int, repeats: int) -> dict[str, float | str]:
    mag, spec = magnitudes(kind, batch)
    mag_np = mag.numpy()

    phase = torch.from_numpy(np.stack([start_phase(mag_np.shape[1:], i) for i in range(batch)])).float()
    ours_t, ours_cpu, ours = timed(lambda: griffin_lim(mag, spec, iterations, MOMENTUM, phase=phase), repeats)
    # The plugin's default links the channels' phase (inverter.channel_phase); librosa has no such mode.
    linked_t, _, linked = timed(
        lambda: griffin_lim(mag, spec, iterations, MOMENTUM, phase=phase, linked=True), repeats
    )

    def per_item() -> np.ndarray:
        return np.stack([librosa_gl(mag_np[i], spec, iterations, i) for i in range(batch)])

    lib_t, lib_cpu, lib = timed(per_item, repeats)
    joint_t = float("inf")
    if batch > 1:
        joint_t, _, _ = timed(lambda: librosa_gl(mag_np, spec, iterations, 0), max(1, repeats // 2))
    sc_ours = spectral_convergence(mag, ours, spec).mean().item()
    sc_lib = spectral_convergence(mag, torch.from_numpy(lib), spec).mean().item()
    return {
        "setting": f"{kind} (hop {spec.hop_length})",
        "batch": batch,
        "iterations": iterations,
        "ours_ms": ours_t / batch * 1e3,
        "ours_cpu_ms": ours_cpu / batch * 1e3,
        "librosa_ms": lib_t / batch * 1e3,
        "librosa_cpu_ms": lib_cpu / batch * 1e3,
        "librosa_joint_ms": joint_t / batch * 1e3,
        "speedup": min(lib_t, joint_t) / ours_t,
        "cpu_ratio": lib_cpu / ours_cpu,
        "sc_ours": sc_ours,
        "sc_librosa": sc_lib,
        "linked_ms": linked_t / batch * 1e3,
        "sc_linked": spectral_convergence(mag, linked, spec).mean().item(),
    }


def show(rows: list[dict[str, float | str]], threads: int) -> None:
    title = f"Griffin-Lim, ms per item (wall, cpu), momentum {MOMENTUM}, torch threads {threads}"
    headers = [
        "setting",
        "batch",
        "iters",
        "ours ms (cpu)",
        "librosa ms (cpu)",
        "librosa 1 call",
        "speedup",
        "cpu ratio",
        "SC ours",
        "SC librosa",
        "linked ms",
        "SC linked",
    ]
    cells = [
        [
            str(r["setting"]),
            str(r["batch"]),
            str(r["iterations"]),
            f"{r['ours_ms']:.1f} ({r['ours_cpu_ms']:.1f})",
            f"{r['librosa_ms']:.1f} ({r['librosa_cpu_ms']:.1f})",
            "" if r["batch"] == 1 else f"{r['librosa_joint_ms']:.1f}",
            f"{r['speedup']:.1f}x",
            f"{r['cpu_ratio']:.1f}x",
            f"{r['sc_ours']:.4f}",
            f"{r['sc_librosa']:.4f}",
            f"{r['linked_ms']:.1f}",
            f"{r['sc_linked']:.4f}",
        ]
        for r in rows
    ]
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, header_style="bold")
        for h in headers:
            table.add_column(h, justify="left" if h == "setting" else "right")
        for row in cells:
            table.add_row(*row)
        Console(width=170).print(table)
    except ImportError:
        print(title)
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
        for row in [headers, *cells]:
            print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per case (median)")
    parser.add_argument("--quick", action="store_true", help="only the kick setting at 10 iterations")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kinds = ["kick"] if args.quick else ["kick", "instrument"]
    iteration_counts = [10] if args.quick else [10, 32]
    rows = [
        run_case(kind, batch, iterations, args.repeats)
        for kind in kinds
        for iterations in iteration_counts
        for batch in (1, 64)
    ]
    show(rows, args.threads)


if __name__ == "__main__":
    main()
