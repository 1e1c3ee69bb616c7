"""Seconds to evaluate N generated one-shots against N reference ones (default 1,000 each).

End to end from waveforms in memory (0.6 s stereo at 44.1 kHz, the built-in synthetic
kicks with two seeds): features of both sets, then every set metric. The optional
inversion round trip (``--roundtrip``, paper transform + Griffin-Lim) is timed apart,
because it is dominated by the inverter, not by the metrics.

    python benchmarks/bench_evaluate.py [--count 1000] [--threads 2] [--roundtrip 64]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from ssgan_core import AudioSpec
from ssgan_core.features import extract_features
from ssgan_core.metrics import evaluate_features, inversion_round_trip
from ssgan_core.plugins import get_host


def synthetic_kicks(count: int, seed: int, audio: AudioSpec) -> np.ndarray:
    source = get_host().registry("dataset").create("synthetic-kicks", {"count": count, "seed": seed}, audio)
    return np.stack([clip.audio for clip in source.clips()])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1000, help="clips per set")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument(
        "--roundtrip", type=int, default=0, help="also time the round trip on this many clips"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    audio = AudioSpec(44_100, 0.6)
    generated = synthetic_kicks(args.count, 1, audio)
    reference = synthetic_kicks(args.count, 2, audio)

    rows: list[tuple[str, float]] = []
    start = time.perf_counter()
    gen_features, names = extract_features(generated, audio.sample_rate)
    ref_features, _ = extract_features(reference, audio.sample_rate)
    rows.append(("features (both sets)", time.perf_counter() - start))
    mark = time.perf_counter()
    scores = evaluate_features(gen_features, ref_features, names)
    rows.append(("metrics (FD, KID, NDB/JSD, diversity, P/R)", time.perf_counter() - mark))
    rows.append((f"total: {args.count} vs {args.count} clips", time.perf_counter() - start))
    if args.roundtrip:
        registry = get_host()
        transform = registry.registry("transform").create("stft-db", {}, audio)
        inverter = registry.registry("inverter").create("griffin-lim", {}, audio)
        mark = time.perf_counter()
        scores |= inversion_round_trip(reference[: args.roundtrip], transform, inverter)
        rows.append(
            (f"round trip, {args.roundtrip} clips (stft-db + griffin-lim)", time.perf_counter() - mark)
        )

    table = Table(title=f"bench_evaluate ({args.threads} torch threads)", header_style="bold")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for stage, seconds in rows:
        table.add_row(stage, f"{seconds:.2f}")
    console = Console()
    console.print(table)
    console.print({k: round(v, 4) for k, v in scores.items()})


if __name__ == "__main__":
    main()
