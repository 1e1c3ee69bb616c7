"""Kill -9 soak: train a tiny run, SIGKILL it at chosen moments, resume, and check nothing is lost.

Each life of the run is one ``ssgan train`` process (``--resume`` once the run has a
``config.json``, else the start command again). The script picks a phase per life, in
turn, and kills the process the moment it sees that phase on disk:

``startup``     the dataset cache was deleted first; killed while encoding, before the
                cache is complete (or while its temporary file is being written)
``training``    a random moment 0-0.6 s after a step checkpoint was written
``checkpoint``  while a checkpoint's temporary file exists (mid ``torch.save``)
``previews``    while a preview file is being written, or between the preview PNG and
                the epoch's metrics line (validation, preview WAVs, FD)
``random``      a uniform random moment 0.5-8 s after start

After every kill: every ``*.ckpt`` loads (weight hashes verified) and every
``metrics.jsonl`` line but the last parses. At the end of each run: no temporary
files anywhere, one metrics line per epoch with consistent steps, and the final
generator weights are bit-identical to an uninterrupted reference run (one CPU thread).
A run that finishes before enough kills starts a new round in a new folder.

Run: ``python benchmarks/soak_kill.py --kills 20 [--seed 0] [--dir /tmp/soak] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ssgan_core.checkpoint import load_checkpoint, state_dict_digest
from ssgan_core.files import TEMP_SUFFIX

PHASES = ("startup", "training", "checkpoint", "previews", "random")
TINY = [
    "data.source.count=12",
    "training.batch_size=4",
    "training.epochs=4",
    "training.preview_count=2",
    "training.checkpoint_every_steps=1",
    "output.preview_wavs=1",
    "inverter.iterations=2",
]
POLL_S = 0.002
LIFE_TIMEOUT_S = 240.0


@dataclass
class Soak:
    root: Path
    rng: random.Random
    kills: list[dict] = field(default_factory=list)
    leftovers_seen: int = 0
    rounds: list[dict] = field(default_factory=list)

    @property
    def cache(self) -> Path:
        return self.root / "cache"


def train_command(run: Path, cache: Path, resume: bool) -> list[str]:
    base = [sys.executable, "-m", "ssgan_cli", "train"]
    if resume:
        return [*base, "--resume", str(run), "--device", "cpu"]
    sets = [arg for item in [f"data.cache_dir={cache}", *TINY] for arg in ("--set", item)]
    return [*base, "--preset", "paper-kicks", "--run-dir", str(run), "--device", "cpu", *sets]


def environment() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", COLUMNS="120")
    env.pop("SSGAN_DEBUG", None)
    return env


def temp_files(folder: Path) -> list[Path]:
    """Temporary files of ssgan writers (current and older naming) under ``folder``."""
    if not folder.exists():
        return []
    return [
        p
        for p in folder.rglob(".*")
        if p.is_file() and (p.name.endswith((TEMP_SUFFIX, ".tmp", ".partial.npy")) or ".tmp-" in p.name)
    ]


def metrics_lines(run: Path) -> list[str]:
    path = run / "metrics.jsonl"
    return path.read_text(errors="replace").splitlines() if path.exists() else []


def phase_seen(phase: str, run: Path, cache: Path, started: float, state: dict) -> str | None:
    """The phase label when the moment to kill has come, else ``None``."""
    elapsed = time.monotonic() - started
    if phase == "startup":
        if temp_files(cache):
            return "startup: cache being written"
        if not any(cache.glob("*.npy")) and elapsed > state.setdefault("at", 1.0 + 3.0 * state["u"]):
            return "startup: encoding"
        return None
    if phase == "checkpoint":
        return "checkpoint: mid-save" if temp_files(run / "checkpoints") else None
    if phase == "previews":
        if temp_files(run / "previews"):
            return "previews: file being written"
        pngs = len(list((run / "previews").glob("epoch_*.png"))) if (run / "previews").exists() else 0
        if pngs > len(metrics_lines(run)) and pngs > state.setdefault("pngs0", pngs):
            return "previews: validation/preview WAVs/FD"
        return None
    if phase == "training":
        last = run / "checkpoints" / "last.ckpt"
        mtime = last.stat().st_mtime if last.exists() else None
        if "mtime0" not in state:
            state["mtime0"] = mtime
            return None
        if mtime != state["mtime0"]:
            state.setdefault("fire", time.monotonic() + 0.6 * state["u"])
            if time.monotonic() >= state["fire"]:
                return "training: steps"
        return None
    if elapsed >= 0.5 + 7.5 * state["u"]:
        return "random: " + describe(run, cache)
    return None


def describe(run: Path, cache: Path) -> str:
    """What the disk says the run was doing (for random kills)."""
    if temp_files(run / "checkpoints"):
        return "checkpoint save"
    if temp_files(run / "previews"):
        return "previews"
    if not (run / "checkpoints" / "last.ckpt").exists():
        return "startup/encoding or first steps"
    return "training/validation"


def check_after_kill(run: Path) -> None:
    """Whatever a kill interrupted, the files a resume reads are whole."""
    for ckpt in sorted((run / "checkpoints").glob("*.ckpt")) if (run / "checkpoints").exists() else []:
        load_checkpoint(ckpt)  # raises on a damaged file or a hash mismatch
    lines = metrics_lines(run)
    for line in lines[:-1]:
        json.loads(line)


def check_finished(run: Path, epochs: int) -> dict:
    left = temp_files(run)
    assert not left, f"leftover temporary files after the run finished: {left}"
    records = [json.loads(line) for line in metrics_lines(run)]
    assert [r["epoch"] for r in records] == list(range(1, epochs + 1)), [r["epoch"] for r in records]
    steps = [r["step"] for r in records]
    per_epoch = steps[0]
    assert steps == [per_epoch * e for e in range(1, epochs + 1)], steps
    last = load_checkpoint(run / "checkpoints" / "last.ckpt")
    assert last["epoch"] == epochs and last["step"] == steps[-1]
    return {"generator": state_dict_digest(last["generator"]), "critic": state_dict_digest(last["critic"])}


def life(soak: Soak, run: Path, phase: str, may_kill: bool, log: Path) -> tuple[str, int | None]:
    """One process; returns (what happened, exit code or None when killed)."""
    if phase == "startup":
        shutil.rmtree(soak.cache, ignore_errors=True)
    resume = (run / "config.json").exists()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            train_command(run, soak.cache, resume), stdout=out, stderr=out, env=environment()
        )
        started, state = time.monotonic(), {"u": soak.rng.random()}
        while proc.poll() is None:
            if time.monotonic() - started > LIFE_TIMEOUT_S:
                proc.kill()
                raise RuntimeError(f"a training process ran over {LIFE_TIMEOUT_S} s; see {log}")
            seen = phase_seen(phase, run, soak.cache, started, state) if may_kill else None
            if seen is not None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return seen, None
            time.sleep(POLL_S)
    return "finished", proc.returncode


def reference(soak: Soak) -> dict:
    """The same run without interruptions."""
    run = soak.root / "reference"
    log = soak.root / "reference.log"
    with open(log, "wb") as out:
        done = subprocess.run(
            train_command(run, soak.cache, resume=False),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment(),
        )
    assert done.returncode == 0, f"reference run failed; see {log}"
    return check_finished(run, epochs_of_tiny())


def epochs_of_tiny() -> int:
    return int(next(item for item in TINY if item.startswith("training.epochs=")).split("=")[1])


def soak_rounds(soak: Soak, wanted_kills: int, expected: dict) -> None:
    cycle = 0
    while len(soak.kills) < wanted_kills:
        run = soak.root / f"round{len(soak.rounds)}"
        kills_before = len(soak.kills)
        log = soak.root / f"{run.name}.log"
        while True:
            phase = PHASES[cycle % len(PHASES)]
            cycle += 1
            leftovers = temp_files(run) + temp_files(soak.cache)
            soak.leftovers_seen += len(leftovers)
            seen, code = life(soak, run, phase, len(soak.kills) < wanted_kills, log)
            if code is None:
                check_after_kill(run)
                soak.kills.append(
                    {"round": run.name, "target": phase, "seen": seen, "leftovers_before": len(leftovers)}
                )
                print(f"kill {len(soak.kills):>3}: {seen}", flush=True)
                continue
            assert code == 0, f"{run.name}: training exited {code}; see {log}"
            digests = check_finished(run, epochs_of_tiny())
            same = digests == expected
            killed = len(soak.kills) - kills_before
            soak.rounds.append({"run": run.name, "kills": killed, "identical": same})
            print(f"{run.name}: finished after {killed} kills; weights identical: {same}", flush=True)
            assert same, f"{run.name}: final weights differ from the uninterrupted run"
            break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None, help="Work folder (default: a new temp folder).")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = args.dir or Path(subprocess.check_output(["mktemp", "-d"], text=True).strip())
    root.mkdir(parents=True, exist_ok=True)
    soak = Soak(root, random.Random(args.seed))
    started = time.monotonic()
    expected = reference(soak)
    print(f"reference run done ({time.monotonic() - started:.0f} s)", flush=True)
    soak_rounds(soak, args.kills, expected)
    left = temp_files(root)
    assert not left, f"leftovers at the end: {left}"
    summary = {
        "kills": len(soak.kills),
        "by_phase": dict(Counter(k["seen"].split(":")[0] for k in soak.kills)),
        "by_moment": dict(Counter(k["seen"] for k in soak.kills)),
        "rounds": soak.rounds,
        "leftover_temp_files_found_before_a_life_and_cleaned": soak.leftovers_seen,
        "seconds": round(time.monotonic() - started, 1),
        "folder": str(root),
    }
    print(json.dumps(summary, indent=2) if args.json else summary)


if __name__ == "__main__":
    main()
