"""Speed and invertibility of the image transforms (``stft-db`` vs ``logfreq``) on the same kicks.

For each transform: encode and decode time per item (batch of ``--batch`` clips,
best of ``--repeats``), and the round-trip spectral convergence
``||S - S'||_F / ||S||_F`` of encode -> decode -> griffin-lim (``--iterations``) on
``--sc-clips`` of those clips, where ``S`` is the original's magnitude and ``S'``
the reconstruction's. SC is reported twice: in the transform's own STFT (what its
decode promises) and in one shared reference STFT (n_fft 2048, hop 256), the
comparable number. ``decode SC`` is the decoded magnitude against ``S`` before any
inversion (what the image format itself loses); ``exact-magnitude SC`` runs the same
griffin-lim on ``S`` itself (what the inverter loses at this STFT), in the own STFT.

    python benchmarks/bench_transforms.py [--batch 64] [--iterations 32] [--device cpu]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from ssgan_core import AudioSpec, StftSpec, Transform, spectral_convergence
from ssgan_core.plugins import registry

TRANSFORMS = ("stft-db", "logfreq")
REFERENCE = {"n_fft": 2048, "hop_length": 256}


def kicks(count: int, audio: AudioSpec) -> torch.Tensor:
    source = registry("dataset").create("synthetic-kicks", {"count": count, "seed": 0}, audio)
    return torch.from_numpy(np.stack([clip.audio for clip in source.clips()])).float()


def best_time(step: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Fastest of ``repeats`` runs after one warm-up, in seconds."""
    step()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def magnitude(x: torch.Tensor, spec: StftSpec) -> torch.Tensor:
    """``|STFT|`` of ``(B, 2, n)`` audio, zero-padded or cut to ``spec.length`` first."""
    x = torch.nn.functional.pad(x, (0, spec.length - x.shape[-1])) if x.shape[-1] < spec.length else x
    x = x[..., : spec.length]
    return spec.magnitude(x)


def convergence(true: torch.Tensor, estimate: torch.Tensor) -> float:
    """Mean over clips of per-clip spectral convergence."""
    frames = min(true.shape[-1], estimate.shape[-1])
    true, estimate = true[..., :frames], estimate[..., :frames]
    return float(spectral_convergence(true, estimate).mean())


def bench(name: str, clips: torch.Tensor, args: argparse.Namespace, audio: AudioSpec) -> dict[str, object]:
    device = torch.device(args.device)
    transform: Transform = registry("transform").create(name, {}, audio).to(device)
    inverter = registry("inverter").create("griffin-lim", {"iterations": args.iterations}, audio).to(device)
    x = clips[: args.batch].to(device)
    image = transform.encode(x)
    encode_s = best_time(lambda: transform.encode(x), args.repeats, device)
    decode_s = best_time(lambda: transform.decode(image), args.repeats, device)

    spec = transform.stft_spec
    reference = StftSpec(
        n_fft=REFERENCE["n_fft"],
        hop_length=REFERENCE["hop_length"],
        win_length=REFERENCE["n_fft"],
        window=torch.hann_window(REFERENCE["n_fft"], device=device),
        length=audio.num_samples,
    )
    own, ref, lossy, exact, invert_s = [], [], [], [], 0.0
    for start in range(0, args.sc_clips, args.batch):
        chunk = clips[start : min(start + args.batch, args.sc_clips)].to(device)
        decoded = transform.decode(transform.encode(chunk)).magnitude
        begin = time.perf_counter()
        rebuilt = inverter(decoded, spec)
        if device.type == "cuda":
            torch.cuda.synchronize()
        invert_s += time.perf_counter() - begin
        true = magnitude(chunk, spec)[..., : decoded.shape[-1]]  # the frames the transform keeps
        lossy.append(convergence(true, decoded) * len(chunk))
        own.append(convergence(true, magnitude(rebuilt, spec)) * len(chunk))
        exact.append(convergence(true, magnitude(inverter(true, spec), spec)) * len(chunk))
        ref.append(convergence(magnitude(chunk, reference), magnitude(rebuilt, reference)) * len(chunk))
    n = args.sc_clips
    return {
        "transform": name,
        "stft": f"{spec.n_fft}/{spec.hop_length}",
        "encode ms/item": 1000 * encode_s / len(x),
        "decode ms/item": 1000 * decode_s / len(x),
        f"griffin-lim x{args.iterations} ms/item": 1000 * invert_s / n,
        "decode SC": sum(lossy) / n,
        "round-trip SC (own STFT)": sum(own) / n,
        "round-trip SC (ref STFT)": sum(ref) / n,
        "exact-magnitude SC (own STFT)": sum(exact) / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="clips per timed batch")
    parser.add_argument("--sc-clips", type=int, default=16, help="clips inverted for the SC columns")
    parser.add_argument("--iterations", type=int, default=32, help="griffin-lim iterations")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best counts")
    parser.add_argument("--seconds", type=float, default=0.6, help="clip length")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    audio = AudioSpec(44_100, args.seconds)
    clips = kicks(max(args.batch, args.sc_clips), audio)
    rows = []
    with torch.inference_mode():
        for name in TRANSFORMS:
            if name not in registry("transform"):
                Console().print(f"[yellow]{name} is not installed; skipped[/]")
                continue
            rows.append(bench(name, clips, args, audio))
    table = Table(
        title=f"{len(clips)} synthetic kicks, {args.seconds:g} s, {args.device}, "
        f"{torch.get_num_threads()} thread(s), batch {args.batch}, SC on {args.sc_clips} clips"
    )
    for column in rows[0] if rows else ():
        table.add_column(column, justify="left" if column in {"transform", "stft"} else "right")
    for row in rows:
        table.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    Console(width=200).print(table)


if __name__ == "__main__":
    main()
