"""How far the generator the critic trains against is from the one that is sampled.

    python benchmarks/bench_sampling_modes.py RUN/checkpoints/best.ckpt --heldout DEVSET/kicks/heldout

A checkpoint of a run with a weight average holds two generators: ``generator`` (the
average, what previews, ``best.ckpt`` and ``ssgan generate`` sample) and
``generator_train`` (the trained weights). ``ssgan generate`` samples the average in
eval mode: no dropout, BatchNorm's running statistics, which the average copies from
the trained generator. The critic sees the trained generator in train mode: dropout on,
each batch's own statistics. This script renders the same latents through each pairing
and scores each set against a held-out folder with ``ssgan evaluate`` (FD and feature
diversity against the reference's), so a gap between what is trained and what is
sampled shows as numbers. Modes:

  average-eval   the average, eval mode (what ``ssgan generate`` does)
  average-train  the average, train mode (its own batch statistics, dropout on)
  trained-eval   the trained weights, eval mode
  trained-train  the trained weights, train mode (what the critic trains against)
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from ssgan_core.audio import AudioWriter
from ssgan_core.checkpoint import load_checkpoint
from ssgan_core.generation import GenerationModel, load_generation_model, render_audio

MODES = ("average-eval", "average-train", "trained-eval", "trained-train")
BATCH = 64


def generators(checkpoint: Path) -> tuple[GenerationModel, dict[str, torch.nn.Module]]:
    """The checkpoint's generation model and its generator in each mode."""
    model = load_generation_model(checkpoint, device="cpu")
    payload = load_checkpoint(checkpoint)
    trained = copy.deepcopy(model.generator)
    trained.load_state_dict(payload.get("generator_train", payload["generator"]))
    average = model.generator
    return model, {
        "average-eval": average.eval(),
        "average-train": copy.deepcopy(average).train(),
        "trained-eval": trained.eval(),
        "trained-train": copy.deepcopy(trained).train(),
    }


@torch.no_grad()
def write_clips(
    model: GenerationModel, generator: torch.nn.Module, latents: torch.Tensor, folder: Path
) -> None:
    folder.mkdir(parents=True)
    with AudioWriter(model.config.audio.sample_rate, "PCM_24") as writer:
        for start in range(0, len(latents), BATCH):
            images = generator(latents[start : start + BATCH])
            audio = render_audio(
                images, model.transform, model.inverter, device=model.device, batch_size=BATCH
            )
            writer.write([folder / f"{start + i:04d}.wav" for i in range(len(audio))], audio.numpy())


def score(folder: Path, heldout: Path) -> dict[str, float]:
    cmd = [sys.executable, "-m", "ssgan_cli", "evaluate", str(folder), "--reference", str(heldout)]
    done = subprocess.run([*cmd, "--json", "--no-roundtrip"], capture_output=True, text=True, check=True)
    metrics = json.loads(done.stdout)["metrics"]
    return {"fd": metrics["fd"], "diversity": metrics["diversity_gen"] / metrics["diversity_ref"]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--heldout", type=Path, required=True, help="Reference folder (held-out kits).")
    parser.add_argument("-n", type=int, default=256, help="Clips per mode.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = parser.parse_args()

    model, nets = generators(args.checkpoint)
    latents = nets["average-eval"].sample_latent(args.n, generator=torch.Generator().manual_seed(args.seed))
    print(f"{args.checkpoint}: {args.n} clips per mode against {args.heldout}")
    print("| mode | FD | feature diversity (x reference's) |")
    print("|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes:
            torch.manual_seed(args.seed)  # dropout masks in train mode
            write_clips(model, nets[mode], latents, Path(tmp) / mode)
            result = score(Path(tmp) / mode, args.heldout)
            print(f"| {mode} | {result['fd']:.1f} | {result['diversity']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
