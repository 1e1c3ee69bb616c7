"""How fast the built-in kicks are made, and how close they are to recorded ones.

Times the synthesis of ``--count`` kicks (``synthetic-kicks``, paper-kicks clip length)
alone and with the paper transform's encoding (what the main job does before training).
With ``--reference DIR`` (e.g. the held-out kicks of ``benchmarks/data/build_devset.py``)
it also prints the FD of ``--fd-count`` kicks against every clip of that folder (the
numbers ``ssgan evaluate`` gives for the same sets), and with ``--png`` it
draws spectrograms of 8 of each side (left and right channel of each) for a look.

    python benchmarks/bench_synthetic.py [--count 3000] [--layers recorded|sine] \\
        [--reference /work/devset/kicks/heldout] [--fd-count 512] [--png kicks.png]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ssgan_core import AudioSpec
from ssgan_core.audio import find_audio_files, read_audio
from ssgan_core.metrics import evaluate_sets
from ssgan_core.plugins import registry
from ssgan_core.png import save_spectrogram_png


def synthesise(count: int, options: dict[str, object], audio: AudioSpec) -> np.ndarray:
    source = registry("dataset").create("synthetic-kicks", {"count": count, **options}, audio)
    return np.stack([clip.audio for clip in source.clips()])


def read_folder(folder: str, audio: AudioSpec) -> np.ndarray:
    """Every audio file under ``folder``, as ``ssgan evaluate`` reads a reference folder."""
    return np.stack([read_audio(path, audio) for path in sorted(find_audio_files([folder]))])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=3000, help="kicks to time")
    parser.add_argument("--layers", default="recorded", help="synthetic-kicks layers option")
    parser.add_argument("--variety", default="curated", help="synthetic-kicks variety option")
    parser.add_argument("--reference", help="folder of recorded kicks for the FD")
    parser.add_argument("--fd-count", type=int, default=512, help="kicks on each side of the FD")
    parser.add_argument("--png", help="write spectrograms of 8 synthetic (top) and 8 reference kicks")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    audio = AudioSpec(44_100, 0.6)
    options = {"layers": args.layers, "variety": args.variety}

    start = time.perf_counter()
    kicks = synthesise(args.count, options, audio)
    synth_s = time.perf_counter() - start
    transform = registry("transform").create("stft-db", {}, audio)
    start = time.perf_counter()
    with torch.no_grad():
        images = torch.cat(
            [transform.encode(torch.from_numpy(b)) for b in np.array_split(kicks, len(kicks) // 64 + 1)]
        )
    encode_s = time.perf_counter() - start
    print(f"{args.count} kicks ({options}): synthesis {synth_s:.1f} s, encoding {encode_s:.1f} s")

    if args.reference:
        reference = read_folder(args.reference, audio)
        scores = evaluate_sets(kicks[: args.fd_count], reference, audio.sample_rate)
        print(
            f"FD {scores['fd']:.1f}  KID {scores['kid']:.3f}  vs {len(reference)} clips of {args.reference}"
        )
        if args.png:
            with torch.no_grad():
                ref_images = transform.encode(torch.from_numpy(reference[:: max(1, len(reference) // 8)][:8]))
            save_spectrogram_png(
                torch.cat([images[:8], ref_images]), args.png, columns=4, span=transform.display_span
            )
    elif args.png:
        save_spectrogram_png(images[:8], args.png, columns=4, span=transform.display_span)


if __name__ == "__main__":
    main()
