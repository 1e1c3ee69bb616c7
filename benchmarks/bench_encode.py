"""Encoding a folder of one-shots: ssgan (in-process and the ``ssgan encode`` CLI) vs a librosa loop.

Three sides, each in its own subprocess (so peak RSS is its own), on the same folder:

``ssgan``       ``FolderSource`` + ``encode_clips`` with the ``paper-kicks`` transform: files
                decoded in parallel threads (``ssgan_core.audio.read_many``), batches of
                16 clips encoded on one thread per core (``encode_workers``), images
                written to a file as they are made.
                Timed from the first file read to the last image written (imports and
                part construction excluded), wall and CPU (all threads).
``cli``         ``ssgan encode FOLDER -o out.npy --preset paper-kicks``, end to end: wall
                time of the whole command, Python start-up and imports included.
``librosa``     what the original code did, one file at a time in one process:
                ``librosa.load`` at 44.1 kHz (only the clip's 0.6 s, which favours it),
                ``librosa.stft`` with the same window and hop, ``librosa.amplitude_to_db``.

Run: ``python benchmarks/bench_encode.py [--folder DIR] [--json]``. Without ``--folder``
it uses ``/work/devset/kicks/train`` when that exists, else it writes 1,220 WAVs
(44.1, 48, 22.05 and 96 kHz; 0.2 to 1.5 s; mono and stereo; 16-bit, 24-bit and float)
to a temporary folder. Numbers depend on the machine and on what else runs on it: on a
shared machine the wall-clock ratio follows the load, and the CPU time per file (user +
system, every thread; the CLI's includes its start-up) says how much work each side does.
Workers run with the ``GOMP_SPINCOUNT`` ``ssgan`` sets (``ssgan_cli.OPENMP_SPIN``) unless
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` is already set.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ssgan_cli import OPENMP_SPIN

DEVSET = Path("/work/devset/kicks/train")
GENERATED_FILES = 1220


def make_folder(root: Path, count: int = GENERATED_FILES) -> Path:
    """``count`` kick-like WAVs at several rates, lengths, channel counts and sample formats."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    rates, subtypes = (44_100, 48_000, 22_050, 96_000), ("PCM_16", "PCM_24", "FLOAT")
    for i in range(count):
        rate = rates[i % len(rates)]
        t = np.arange(int(rate * rng.uniform(0.2, 1.5))) / rate
        freq = 50 + 60 * np.exp(-t * 20)
        body = np.sin(2 * np.pi * np.cumsum(freq) / rate) * np.exp(-t * 6)
        mono = 0.8 * body + 0.01 * rng.standard_normal(len(t))
        data = np.stack([mono, mono * 0.9], axis=1) if i % 2 else mono
        path = root / f"kit{i % 7}" / f"kick_{i:05d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, data, rate, subtype=subtypes[i % len(subtypes)])
    return root


def _ssgan(folder: str) -> dict[str, float]:
    from ssgan_core.config import resolve_config
    from ssgan_core.data import FolderOptions, FolderSource, encode_clips
    from ssgan_core.generation import build_part
    from ssgan_core.plugins import get_host

    cfg = resolve_config("paper-kicks")
    audio = cfg.audio.spec()
    transform = build_part("transform", cfg.transform, audio, get_host())
    source = FolderSource(FolderOptions(path=Path(folder)), audio)
    files = len(source.files)
    start, cpu = time.perf_counter(), time.process_time()
    data = encode_clips(source, transform, audio)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"files": files, "encoded": len(data), "seconds": seconds, "cpu_s": cpu}


def _librosa(folder: str) -> dict[str, float]:
    import librosa
    import numpy as np

    from ssgan_core.audio import find_audio_files
    from ssgan_core.config import resolve_config

    cfg = resolve_config("paper-kicks")
    audio, options = cfg.audio.spec(), cfg.transform.options
    n_fft = options["n_fft"]
    hop = audio.num_samples // 255
    window = ("kaiser", options["kaiser_beta"])
    files = find_audio_files([folder])
    start, cpu = time.perf_counter(), time.process_time()
    for path in files:
        y, _ = librosa.load(path, sr=audio.sample_rate, mono=False, duration=audio.seconds)
        y = librosa.util.fix_length(np.atleast_2d(y), size=audio.num_samples)
        spectrum = librosa.stft(y, n_fft=n_fft, hop_length=hop, window=window)
        librosa.amplitude_to_db(np.abs(spectrum[..., :256, :256]), ref=1.0, top_db=options["top_db"])
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"files": len(files), "encoded": len(files), "seconds": seconds, "cpu_s": cpu}


def _worker(side: str, folder: str) -> None:
    result = {"ssgan": _ssgan, "librosa": _librosa}[side](folder)
    print(json.dumps(result))


def _run(command: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds (all threads), peak RSS (MiB) and stdout of one child process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.PIPE, env=env, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        stderr = proc.stderr.read() if proc.stderr else ""
        if proc.returncode:
            raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{stderr}")
        out.seek(0)
        text = out.read()
    per_mib = 1024 * 1024 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / per_mib, text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--folder", type=Path, help="folder of audio files (default: the dev set or generated)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    if "OMP_WAIT_POLICY" not in env:
        env.setdefault("GOMP_SPINCOUNT", OPENMP_SPIN)  # as ``ssgan`` sets it
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or (DEVSET if DEVSET.is_dir() else make_folder(Path(tmp) / "folder"))
        rows = {}
        for side in ("librosa", "ssgan"):
            _, _, rss, text = _run([sys.executable, __file__, "--worker", side, str(folder)], env)
            rows[side] = {**json.loads(text.strip().splitlines()[-1]), "rss_mib": rss}
        ssgan = Path(sys.executable).with_name("ssgan")
        cli = [str(ssgan)] if ssgan.exists() else [sys.executable, "-m", "ssgan_cli"]
        out = Path(tmp) / "out.npy"
        wall, cpu, rss, _ = _run(
            [*cli, "encode", str(folder), "-o", str(out), "--preset", "paper-kicks"], env
        )
        files = rows["ssgan"]["files"]
        encoded = rows["ssgan"]["encoded"]
        rows["cli"] = {"files": files, "encoded": encoded, "seconds": wall, "cpu_s": cpu, "rss_mib": rss}
    base = rows["librosa"]["files"] / rows["librosa"]["seconds"]
    base_cpu = rows["librosa"]["cpu_s"] / rows["librosa"]["files"]
    for row in rows.values():
        row["files_per_s"] = row["files"] / row["seconds"]
        row["vs_librosa"] = row["files_per_s"] / base
        row["cpu_ms_per_file"] = 1000 * row["cpu_s"] / row["files"]
        row["cpu_vs_librosa"] = base_cpu / (row["cpu_s"] / row["files"])
    if args.json:
        print(json.dumps({"folder": str(folder), "cpus": os.cpu_count(), "rows": rows}, indent=2))
        return
    print(f"folder {folder}: {files} files, {os.cpu_count()} CPUs")
    head = f"{'side':<8} {'seconds':>8} {'files/s':>8} {'x librosa':>10}"
    print(f"{head} {'CPU ms/file':>12} {'x less CPU':>11} {'RSS MiB':>8}")
    for side in ("librosa", "ssgan", "cli"):
        r = rows[side]
        rate, ratio = f"{r['files_per_s']:>8.0f}", f"{r['vs_librosa']:>9.2f}x"
        cpu = f"{r['cpu_ms_per_file']:>12.2f} {r['cpu_vs_librosa']:>10.2f}x"
        print(f"{side:<8} {r['seconds']:>8.2f} {rate} {ratio} {cpu} {r['rss_mib']:>8.0f}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], sys.argv[3])
    else:
        main()
