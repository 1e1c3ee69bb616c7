"""Peak memory of the main job against the folder size: encode, prepare, a few training steps.

For each size ``N`` a fresh subprocess trains ``paper-kicks`` on ``N`` built-in kicks
(``data.source.count = N``) with an empty cache: it encodes the dataset, prepares the
run (split, validation audio when ``training.fd_every_epoch``) and trains ``--steps``
batches. It reports its peak resident set (``VmHWM``) after preparing and at the end.

``--code DIR`` runs the same job a second time per size with another checkout of ssgan
on ``PYTHONPATH`` (e.g. ``git archive <commit> | tar -x -C DIR``), for a before/after
table from one run.

Run: ``python benchmarks/bench_memory.py [--sizes 3000 10000] [--steps 10] [--code DIR]
[--set KEY=VALUE ...] [--json]``. Workers run with the
``GOMP_SPINCOUNT`` ``ssgan`` sets (``ssgan_cli.OPENMP_SPIN``) unless ``OMP_WAIT_POLICY`` or
``GOMP_SPINCOUNT`` is already set.
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

HERE = Path(__file__).resolve().parents[1]


def _peak_mib() -> float:
    """This process's peak resident set so far (``VmHWM``), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _worker(size: int, steps: int, overrides: list[str]) -> dict[str, float]:
    from ssgan_core.config import resolve_config
    from ssgan_core.training import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        cfg = resolve_config(
            "paper-kicks",
            overrides=[f"data.source.count={size}", f'output.runs_dir="{tmp}"', *overrides],
        )
        start = time.perf_counter()
        trainer = Trainer.start(cfg, Path(tmp) / "run")
        prepared = time.perf_counter()
        after_prepare = _peak_mib()
        trainer.fit(max_steps=steps)
        trained = time.perf_counter()
        return {
            "size": size,
            "prepare_s": prepared - start,
            "steps_s": trained - prepared,
            "peak_prepare_mib": after_prepare,
            "peak_mib": _peak_mib(),
        }


def _run(size: int, steps: int, overrides: list[str], code: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    if "OMP_WAIT_POLICY" not in env:
        env.setdefault("GOMP_SPINCOUNT", OPENMP_SPIN)
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(size), str(steps), *overrides]
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=code)
    if done.returncode:
        raise SystemExit(f"worker for N={size} with {code} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 10000])
    parser.add_argument("--steps", type=int, default=10, help="training batches after preparing")
    parser.add_argument("--code", type=Path, help="another ssgan checkout to measure beside this one")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sides = {"this": HERE, **({"other": args.code.resolve()} if args.code else {})}
    rows = []
    for size in args.sizes:
        for side, code in sides.items():
            rows.append({"side": side, **_run(size, args.steps, args.overrides, code)})
    if args.json:
        print(json.dumps({"steps": args.steps, "overrides": args.overrides, "rows": rows}, indent=2))
        return
    print(f"paper-kicks, built-in kicks, {args.steps} training steps, overrides {args.overrides or 'none'}")
    print(f"{'side':<6} {'N':>6} {'prepare s':>10} {'steps s':>8} {'peak after prepare':>19} {'peak MiB':>9}")
    for r in rows:
        print(
            f"{r['side']:<6} {r['size']:>6} {r['prepare_s']:>10.1f} {r['steps_s']:>8.1f} "
            f"{r['peak_prepare_mib']:>19.0f} {r['peak_mib']:>9.0f}"
        )


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--worker":
        print(json.dumps(_worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])))
    else:
        main()
