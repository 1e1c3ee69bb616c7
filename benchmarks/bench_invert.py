"""Phase reconstruction: ours (griffin-lim, pghi) vs ``librosa.griffinlim``, same magnitudes, one run.

Settings: the paper's kick clips (0.6 s, hop 103) and instrument clips (1.5 s, hop 259),
batch 1 and 64. Magnitudes go through the real pipeline (``stft-db`` encode -> decode):
recorded kicks from ``--kicks DIR`` (64 files spread evenly over its sorted audio files),
else synthetic kicks; synthetic tones for the instrument setting.

Methods (momentum 0.99, no noise gate: librosa has none):
  librosa xN          ``librosa.griffinlim``, one call per item, random start
  griffin-lim xN      ours, from the same random start as librosa (per item)
  griffin-lim linked  ours, one phase per item for both channels (the plugin default)
  pghi                PGHI's phase alone (per channel)
  pghi + FGLA xN      fast Griffin-Lim from PGHI's phase (per channel)
  pghi linked + xN    PGHI from the summed channels, linked iterations (the plugin default)
  pghi ... r1.2       the window's time-frequency ratio times 1.2 (option ratio_scales)
  pghi ... r1/1.2/1.44  each item starts from the most consistent of three ratios (the default)

SC = ||S - |STFT(x)||_F / ||S||_F per item (both channels), averaged, in dB; lower is
better. "vs librosa x10": SC difference in dB (negative = better) and speed ratio
(>1 = faster) against librosa x10 of the same row group. Wall ms per item is the median
of ``--repeats`` timed calls after one warm-up; cpu ms counts all threads (the work
done, robust to other load).

    python benchmarks/bench_invert.py [--kicks DIR] [--threads 2] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssgan_core.audio import find_audio_files, read_audio
from ssgan_core.interfaces import AudioSpec, StftSpec
from ssgan_plugins.paper.griffin_lim import griffin_lim, spectral_convergence
from ssgan_plugins.paper.stft_db import StftDbOptions, build_stft_db
from ssgan_plugins.pghi.options import RATIO_SCALES
from ssgan_plugins.pghi.pghi import pghi, pghi_griffin_lim
from tests.librosa_ref import librosa_griffinlim, start_phase
from tests.synth import synth_kick, synth_tone

MOMENTUM = 0.99
BATCH = 64


def clips(kind: str, count: int, kicks: Path | None) -> tuple[np.ndarray, str]:
    """``(count, 2, samples)`` float32 clips and where they came from."""
    seconds = 0.6 if kind == "kick" else 1.5
    if kind == "kick" and kicks is not None:
        files = find_audio_files([kicks])
        if len(files) < count:
            raise SystemExit(f"--kicks {kicks}: {len(files)} audio files, need {count}")
        files = files[:: len(files) // count][:count]  # spread over the folder's kits
        audio = AudioSpec(44_100, seconds)
        return np.stack([read_audio(f, audio) for f in files]), f"recorded ({kicks.name})"
    rng = np.random.default_rng(0)
    out = []
    for i in range(count):
        if kind == "kick":
            pan = rng.uniform(-0.5, 0.5)
            clip = synth_kick(seconds, f0=rng.uniform(40, 70), decay=rng.uniform(0.05, 0.4), pan=pan, seed=i)
        else:
            clip = synth_tone(seconds, f0=rng.uniform(80, 600), decay=rng.uniform(0.2, 1.0), seed=i)
        out.append(clip + rng.normal(0, 1e-3, clip.shape).astype(np.float32))
    return np.stack(out), "synthetic"


def magnitudes(kind: str, kicks: Path | None) -> tuple[torch.Tensor, StftSpec, str]:
    seconds = 0.6 if kind == "kick" else 1.5
    transform = build_stft_db(StftDbOptions(), AudioSpec(44_100, seconds))
    audio, source = clips(kind, BATCH, kicks)
    with torch.no_grad():
        mag = transform.decode(transform.encode(torch.from_numpy(audio))).magnitude
    return mag, transform.stft_spec, source


def timed(fn: Callable[[], torch.Tensor], repeats: int) -> tuple[float, float, torch.Tensor]:
    """Median wall and CPU (all threads) seconds of ``repeats`` calls after a warm-up, and the result."""
    result = fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu), result


def methods(
    mag: torch.Tensor, spec: StftSpec, iteration_counts: list[int]
) -> dict[str, Callable[[], torch.Tensor]]:
    """Name -> a call that inverts the whole batch ``mag``."""
    batch = mag.shape[0]
    phase = torch.from_numpy(np.stack([start_phase(tuple(mag.shape[1:]), i) for i in range(batch)])).float()
    out: dict[str, Callable[[], torch.Tensor]] = {}
    for n in iteration_counts:
        out[f"librosa x{n}"] = lambda n=n: torch.stack(
            [librosa_griffinlim(mag[i], spec, n, MOMENTUM, seed=i) for i in range(batch)]
        )
        out[f"griffin-lim x{n}"] = lambda n=n: griffin_lim(mag, spec, n, MOMENTUM, phase=phase)
    out["griffin-lim linked x10"] = lambda: griffin_lim(mag, spec, 10, MOMENTUM, phase=phase, linked=True)
    out["pghi"] = lambda: griffin_lim(mag, spec, 0, phase=pghi(mag, spec))
    for n in iteration_counts:
        out[f"pghi + FGLA x{n}"] = lambda n=n: pghi_griffin_lim(
            mag, spec, n, MOMENTUM, gate_db=None, channel_phase="independent"
        )
    for mode in ("linked", "shared-start"):
        for scales in ([1.0], [1.2], list(RATIO_SCALES)):
            label = "r" + "/".join(f"{x:g}" for x in scales)
            out[f"pghi {mode} {label} + FGLA x10"] = lambda mode=mode, scales=scales: pghi_griffin_lim(
                mag, spec, 10, MOMENTUM, gate_db=None, channel_phase=mode, ratio_scales=scales
            )
    return out


def run_case(
    mag: torch.Tensor, spec: StftSpec, label: str, batch: int, iteration_counts: list[int], repeats: int
) -> list[dict[str, float | str]]:
    mag = mag[:batch].contiguous()
    rows: list[dict[str, float | str]] = []
    for name, fn in methods(mag, spec, iteration_counts).items():
        wall, cpu, audio = timed(fn, repeats if batch == 1 or "librosa" not in name else max(1, repeats // 2))
        sc = spectral_convergence(mag, audio.to(mag.dtype), spec).mean().item()
        rows.append(
            {
                "setting": label,
                "batch": batch,
                "method": name,
                "ms": wall / batch * 1e3,
                "cpu_ms": cpu / batch * 1e3,
                "sc_db": 20 * math.log10(sc),
            }
        )
    reference = next(r for r in rows if r["method"] == "librosa x10")
    for r in rows:
        r["d_sc"] = float(r["sc_db"]) - float(reference["sc_db"])
        r["speed"] = float(reference["ms"]) / float(r["ms"])
    return rows


def show(rows: list[dict[str, float | str]], threads: int) -> None:
    print(f"Phase reconstruction, ms per item, momentum {MOMENTUM}, torch threads {threads}")
    headers = ["setting", "batch", "method", "ms/item", "cpu ms", "SC dB", "vs librosa x10: SC", "speed"]
    cells = [
        [
            str(r["setting"]),
            str(r["batch"]),
            str(r["method"]),
            f"{r['ms']:.1f}",
            f"{r['cpu_ms']:.1f}",
            f"{r['sc_db']:.1f}",
            f"{r['d_sc']:+.1f} dB",
            f"{r['speed']:.1f}x",
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kicks", type=Path, help="folder of recorded kicks (at least 64 audio files)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per case (median)")
    parser.add_argument("--quick", action="store_true", help="only the kick setting at 10 iterations")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kinds = ["kick"] if args.quick else ["kick", "instrument"]
    iteration_counts = [10] if args.quick else [10, 32]
    rows = []
    for kind in kinds:
        mag, spec, source = magnitudes(kind, args.kicks)
        label = f"{kind} {source}, hop {spec.hop_length}"
        for batch in (1, BATCH):
            rows += run_case(mag, spec, label, batch, iteration_counts, args.repeats)
    show(rows, args.threads)


if __name__ == "__main__":
    main()
