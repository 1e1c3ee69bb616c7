"""Train on a folder for several seeds and score each run against held-out kits.

    python benchmarks/bench_quality.py --data DEVSET/kicks/train-300 --heldout DEVSET/kicks/heldout \\
        --preset recommended --seeds 0 1 2 3 4 [--set training.steps=400 ...]

Everything runs through the `ssgan` command, as a user would run it. Per seed it prints
the periods and generator steps trained, wall time, FD of 256 clips generated from the
best and from the last checkpoint against the held-out folder, their feature diversity
(against the held-out set's), the image-space |L-R| and diversity ratio of the last
previews, and the run's health verdict. The real-vs-real floor (training folder against
the held-out folder) is measured in the same run, so the ratio column needs no other
source. Build the development set with benchmarks/data/build_devset.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

GENERATED = 256


def ssgan(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "ssgan_cli", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done


def evaluate(generated: Path, heldout: Path, *extra: str) -> dict[str, float]:
    out = ssgan("evaluate", str(generated), "--reference", str(heldout), "--json", "--no-roundtrip", *extra)
    return json.loads(out.stdout)["metrics"]


def score_run(run: Path, heldout: Path) -> dict[str, object]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    last = lines[-1]
    ckpts = run / "checkpoints"
    row: dict[str, object] = {
        "periods": last["epoch"],
        "train_minutes": sum(x.get("seconds", 0) + x.get("val_seconds", 0) for x in lines) / 60,
        "generator_steps": last.get("generator_steps"),
        "best_period": last.get("best_epoch"),
        "lr_gap": last.get("channel_gap"),
        "data_lr_gap": last.get("data_channel_gap"),
        "div_ratio": (last.get("diversity") or 0) / max(last.get("data_diversity") or 1e-9, 1e-9),
        "health": ",".join(last.get("health") or []) or "healthy",
    }
    for name in ("best", "last"):
        path = ckpts / f"{name}.ckpt"
        if path.exists():
            m = evaluate(path, heldout, "-n", str(GENERATED))
            row[f"fd_{name}"] = m["fd"]
            row[f"div_{name}"] = m["diversity_gen"] / m["diversity_ref"]
            row[f"precision_{name}"], row[f"recall_{name}"] = m["precision"], m["recall"]
    return row


def _runs(args: argparse.Namespace) -> list[tuple[int, Path]]:
    """(seed, run folder) pairs: new runs per seed, or the finished folders given to --score."""
    if args.score:
        return [(json.loads((run / "config.json").read_text())["seed"], run) for run in args.score]
    return [(seed, args.runs / f"{args.preset}{args.tag}-{args.data.name}-seed{seed}") for seed in args.seeds]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, required=True, help="Training folder.")
    parser.add_argument("--heldout", type=Path, required=True, help="Held-out kits.")
    parser.add_argument("--preset", default="recommended")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="Extra --set.")
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-quality"), help="Run folders go here.")
    parser.add_argument("--tag", default="", help="Suffix of the run folder names.")
    parser.add_argument("--json", type=Path, help="Also write the rows here.")
    parser.add_argument(
        "--score", type=Path, nargs="+", help="Only score these finished run folders (e.g. after a resume)."
    )
    args = parser.parse_args()

    floor = evaluate(args.data, args.heldout)["fd"]
    print(f"real-vs-real floor: FD {floor:.1f} ({args.data} against {args.heldout})", flush=True)
    rows = []
    for seed, run in _runs(args):
        started = time.monotonic()
        if not args.score:
            sets = [x for o in args.overrides for x in ("--set", o)]
            ssgan(
                "train", "--preset", args.preset, "--data", str(args.data), "--run-dir", str(run),
                "--set", f"seed={seed}", *sets,
            )  # fmt: skip
        row = {"seed": seed, "minutes": (time.monotonic() - started) / 60, **score_run(run, args.heldout)}
        row["fd_best_x_floor"] = row.get("fd_best", float("nan")) / floor  # type: ignore[operator]
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print(f"preset {args.preset} {' '.join(args.overrides)} on {args.data} (floor FD {floor:.1f})")
    print("seed  min  periods  G-steps  FD best (x floor)  FD last  div best  |L-R| (data)  health")
    for r in rows:
        print(
            f"{r['seed']:>4} {r['minutes']:>4.1f} {r['periods']:>8} {r['generator_steps']:>8} "
            f"{r.get('fd_best', float('nan')):>8.1f} ({r['fd_best_x_floor']:.2f}) "
            f"{r.get('fd_last', float('nan')):>8.1f} {r.get('div_best', float('nan')):>9.2f} "
            f"{r['lr_gap']:.3f} ({r['data_lr_gap']:.3f})  {r['health']}"
        )
    if args.json:
        args.json.write_text(json.dumps({"floor": floor, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
