"""The whole ``ssgan invert`` command vs librosa's per-item loop, process start to WAVs written, one run.

Input: 256 kick spectrograms, made by ``ssgan encode`` of a folder of kicks (``--kicks
DIR``: 256 files spread over it, tiled if fewer; synthetic kicks without it), with their
sidecar. Each side is
a fresh process, timed from spawn to exit, writing one 24-bit WAV per item:

  ssgan invert (griffin-lim)  ``ssgan invert X.npy -o DIR/ --set inverter.name=griffin-lim`` (10 iterations)
  ssgan invert (pghi)         the same with ``--set inverter.name=pghi`` (PGHI + 10 iterations; the
                              ``recommended`` preset's options: channel_phase shared-start)
  ssgan invert (pghi, linked) the same with ``channel_phase=linked`` (iterations on one mid signal)
  librosa loop                one Python process: load X.npy, decode with the same transform,
                              ``librosa.griffinlim`` (10 iterations, momentum 0.99) item by item,
                              ``soundfile.write`` each

Both sides use 2 threads (``--threads``) and read the same array. Also prints the
start-up times of ``ssgan --version``, ``--help``, ``config show`` and ``list-plugins``.

    python benchmarks/bench_invert_e2e.py [--kicks DIR] [--items 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssgan_core.audio import find_audio_files
from tests.synth import synth_kick

ROOT = Path(__file__).resolve().parents[1]

LIBROSA_LOOP = """
import sys, json
from pathlib import Path
import numpy as np, soundfile as sf, torch, librosa
from ssgan_core.plugins import registry
from ssgan_core.interfaces import AudioSpec
array, out = Path(sys.argv[1]), Path(sys.argv[2])
sidecar = json.loads(Path(str(array) + ".json").read_text())
audio = AudioSpec(sidecar["audio"]["sample_rate"], sidecar["audio"]["seconds"])
options = {k: v for k, v in sidecar["transform"].items() if k != "name"}
transform = registry("transform").create(sidecar["transform"]["name"], options, audio)
spec = transform.stft_spec
with torch.no_grad():
    mags = transform.decode(torch.from_numpy(np.load(array))).magnitude.numpy()
window = spec.window.numpy()
out.mkdir(parents=True, exist_ok=True)
for i, mag in enumerate(mags):
    wav = librosa.griffinlim(mag, n_iter=10, hop_length=spec.hop_length, win_length=spec.win_length,
                             n_fft=spec.n_fft, window=window, center=True, pad_mode="reflect",
                             momentum=0.99, random_state=np.random.default_rng(i))
    wav = np.pad(wav, [(0, 0), (0, spec.length - wav.shape[-1])])
    sf.write(out / f"item_{i:03d}.wav", np.clip(wav.T, -1, 1), audio.sample_rate, subtype="PCM_24")
"""


def make_input(folder: Path, kicks: Path | None, items: int) -> Path:
    """``ssgan encode`` the kicks into ``folder/kicks.npy`` (+ sidecar), tiled to ``items``."""
    if kicks is None:
        kicks = folder / "kicks"
        kicks.mkdir()
        for i in range(32):
            sf.write(kicks / f"k{i:02d}.wav", synth_kick(f0=40 + i, decay=0.1 + i / 100, seed=i).T, 44_100)
    files = find_audio_files([kicks])
    files = files[:: max(1, len(files) // items)][:items]  # spread over the folder's kits
    array = folder / "kicks.npy"
    argv = [*ssgan(), "encode", *map(str, files), "-o", str(array)]
    subprocess.run(argv, check=True, capture_output=True)
    images = np.load(array)
    np.save(array, np.resize(images, (items, *images.shape[1:])))
    return array


def ssgan() -> list[str]:
    return [sys.executable, "-m", "ssgan_cli"]


def timed_process(argv: list[str], env: dict[str, str], repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds (user + system, all threads) of ``repeats`` fresh processes.

    One warm-up run first (numba's compiled cache, the OS file cache). CPU seconds say
    how much work a run did even when other jobs share the cores.
    """
    wall, cpu = [], []
    for attempt in range(repeats + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=env)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if attempt:
            wall.append(elapsed)
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kicks", type=Path, help="folder of recorded kicks")
    parser.add_argument("--items", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        array = make_input(folder, args.kicks, args.items)
        runs = {
            "ssgan --version": [*ssgan(), "--version"],
            "ssgan --help": [*ssgan(), "--help"],
            "ssgan config show": [*ssgan(), "config", "show", "--json"],
            "ssgan list-plugins": [*ssgan(), "list-plugins"],
            "ssgan invert (griffin-lim)": [
                *ssgan(),
                "invert",
                str(array),
                "-o",
                str(folder / "gl"),
                "--set",
                "inverter.name=griffin-lim",
            ],
            "ssgan invert (pghi)": [
                *ssgan(),
                "invert",
                str(array),
                "-o",
                str(folder / "pghi"),
                "--set",
                "inverter.name=pghi",
            ],
            "ssgan invert (pghi, linked)": [
                *ssgan(),
                "invert",
                str(array),
                "-o",
                str(folder / "pghi-linked"),
                "--set",
                "inverter.name=pghi",
                "--set",
                "inverter.channel_phase=linked",
            ],
            "librosa loop": [sys.executable, "-c", LIBROSA_LOOP, str(array), str(folder / "librosa")],
        }
        seconds = {name: timed_process(argv, env, args.repeats) for name, argv in runs.items()}
        for name in ("gl", "pghi", "pghi-linked", "librosa"):
            written = sorted((folder / name).glob("*.wav"))
            assert len(written) == args.items, (name, len(written))
    wall0, cpu0 = seconds["librosa loop"]
    print(f"{args.items} items, {args.threads} threads, median of {args.repeats} fresh processes")
    print("| command | wall s | cpu s | wall: librosa loop / this | cpu: librosa loop / this |")
    print("|---|---|---|---|---|")
    for name, (wall, cpu) in seconds.items():
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {wall0 / wall:.1f}x | {cpu0 / cpu:.1f}x |")


if __name__ == "__main__":
    main()
