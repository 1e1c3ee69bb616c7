"""``ssgan train``: a thin layer over :class:`ssgan_core.training.Trainer` with live progress."""

from __future__ import annotations

import json
import os
import shlex
import signal
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import Progress, TaskID

from ssgan_cli.common import (
    ConfigOption,
    PresetOption,
    SetOption,
    console,
    err_console,
    fail,
    handle_errors,
    load_config,
)
from ssgan_core.config import RunConfig
from ssgan_core.errors import InputError

if TYPE_CHECKING:
    from ssgan_core.training import Trainer, TrainResult

LIVE_KEYS = {
    "critic_loss": "D",
    "generator_loss": "G",
    "critic/wasserstein": "W",
    "critic/gradient-penalty": "GP",
}


def _live(stats: dict[str, float]) -> str:
    return "  ".join(f"{label} {stats[key]:+.3f}" for key, label in LIVE_KEYS.items() if key in stats)


class RichReporter:
    """Shows encoding and each epoch as progress bars, and one summary line per epoch.

    Implements every method of :class:`ssgan_core.training.Reporter` (not subclassed:
    importing the trainer loads torch, which ``ssgan --help`` should not wait for).
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.label = "epoch"  # "period" under the step schedule
        self.encode_task: TaskID | None = None
        self.epoch_task: TaskID | None = None
        self.started = time.monotonic()

    def encoding(self, done: int, total: int | None) -> None:
        if self.encode_task is None:
            self.encode_task = self.progress.add_task("encoding data", total=total, status="")
        self.progress.update(self.encode_task, completed=done, total=total)

    def epoch_start(self, epoch: int, epochs: int, batches: int, start_batch: int) -> None:
        if self.epoch_task is not None:
            self.progress.remove_task(self.epoch_task)
        self.epoch_task = self.progress.add_task(
            f"{self.label} {epoch}/{epochs}", total=batches, completed=start_batch, status=""
        )

    def step(self, batch: int, stats: dict[str, float]) -> None:
        if self.epoch_task is not None:
            self.progress.update(self.epoch_task, completed=batch, status=_live(stats))

    def phase(self, text: str) -> None:
        if self.epoch_task is not None:
            self.progress.update(self.epoch_task, status=f"[dim]{text}[/]")

    def epoch_end(self, m: dict[str, Any]) -> None:
        parts = [f"{self.label} {m['epoch']:>2}", _live(m), f"val W {m['val_w']:+.3f}"]
        if m.get("fd") is not None:
            parts.append(f"FD {m['fd']:.2f}")
        parts.append(f"{m['seconds']:.0f} s ({m['samples_per_s']:.1f} samples/s)")
        if m.get("best_epoch") == m["epoch"]:
            parts.append("[green]best[/]")
        self.progress.console.print("  ".join(parts), highlight=False)

    def message(self, text: str) -> None:
        self.progress.console.print(f"[yellow]{text}[/]", highlight=False)


def _overrides(
    data: Path | None, device: str | None, name: str | None, run_dir: Path | None, init_from: Path | None
) -> list[str]:
    out = []
    if init_from is not None:
        out.append(f"training.init_from={json.dumps(str(init_from))}")
    if data is not None:
        out.append("data.source=" + json.dumps({"name": "folder", "path": str(data)}))
    if device is not None:
        out.append(f"training.device={json.dumps(device)}")
    if run_dir is not None:
        out.append(f"output.runs_dir={json.dumps(str(run_dir.parent))}")
        out.append(f"output.run_name={json.dumps(run_dir.name)}")
    elif name is not None:
        out.append(f"output.run_name={json.dumps(name)}")
    return out


def _summary(result: TrainResult, seconds: float, label: str, history: list[dict[str, Any]]) -> None:
    from ssgan_core.health import summarise
    from ssgan_core.training import PREVIEW_DIR

    run = result.run_dir
    m = result.metrics
    console.print()
    stopped = {
        "finished": "reached the epoch limit",
        "early-stopped": "stopped early (no improvement within patience)",
    }.get(result.status, result.status)
    stopped = stopped.replace("epoch limit", f"{label} limit")
    count = f"{result.epochs} {label}{'' if result.epochs == 1 else 's'}"
    console.print(f"[bold]Training {stopped}[/] after {count} ({seconds / 60:.1f} min).")
    if result.best_epoch is not None:
        console.print(f"best {label}: {result.best_epoch} (early-stopping metric {result.best_metric:.4f})")
    else:
        console.print(f"best {label}: none yet (warm-up); the last checkpoint is used")
    if m:
        keys = [k for k in ("critic_loss", "generator_loss", "val_w", "fd") if m.get(k) is not None]
        console.print("final: " + ", ".join(f"{k} {m[k]:.4f}" for k in keys), highlight=False)
    healthy, verdict = summarise(history)
    console.print(f"run health: {'[green]' if healthy else '[yellow]'}{verdict}[/]", highlight=False)
    console.print(f"run directory: {run}")
    console.print(f"  checkpoint: {result.checkpoint}")
    console.print(f"  metrics:    {run / 'metrics.jsonl'}")
    console.print(f"  previews:   {run / PREVIEW_DIR}")
    cmd = f"ssgan generate {shlex.quote(str(run))} -n 16 -o {shlex.quote(str(run / 'generated'))} --png"
    console.print(f"generate: [bold]{cmd}[/]", highlight=False, soft_wrap=True)


@handle_errors
def train(
    preset: str | None = PresetOption,
    config: Path | None = ConfigOption,
    set_: list[str] | None = SetOption,
    data: Path | None = typer.Option(None, "--data", help="Folder of audio files to train on (recursive)."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N or mps."),
    name: str | None = typer.Option(None, "--name", help="Run folder name under output.runs_dir."),
    run_dir: Path | None = typer.Option(None, "--run-dir", help="Full path of the run folder."),
    resume: Path | None = typer.Option(None, "--resume", help="Continue a stopped run from its folder."),
    init_from: Path | None = typer.Option(
        None, "--init-from", help="Fine-tune: start from this run folder or checkpoint's weights."
    ),
    nproc_per_node: int = typer.Option(
        1,
        "--nproc-per-node",
        min=1,
        help="Train data-parallel on N processes of this machine (torchrun; docs/distributed.md).",
    ),
    max_restarts: int = typer.Option(
        0,
        "--max-restarts",
        min=0,
        help="With --nproc-per-node: after a rank fails, restart all ranks up to N times; they resume "
        "from the last checkpoint.",
    ),
) -> None:
    """Train a GAN: encode the data (cached), train, validate, write previews and checkpoints."""
    if resume is not None and (preset or config or set_ or data or name or run_dir or init_from):
        raise InputError(
            "--resume continues a run with its saved config; only --device may be combined with it"
        )
    cfg = None
    if resume is None:
        overrides = _overrides(data, device, name, run_dir, init_from)
        cfg = load_config(preset, config, [*overrides, *(set_ or [])])
    if nproc_per_node > 1 and "WORLD_SIZE" not in os.environ:
        if resume is not None:
            worker = ["--resume", str(resume)]
        else:
            from ssgan_core.training import default_run_dir

            assert cfg is not None  # named here, so every rank and every restart use the same folder
            worker = [*_option("--preset", preset), *_option("--config", config), *_option("--data", data)]
            worker += [*_option("--init-from", init_from), "--run-dir", str(run_dir or default_run_dir(cfg))]
            worker += [arg for value in set_ or [] for arg in ("--set", value)]
        _launch(nproc_per_node, max_restarts, [*worker, *_option("--device", device)])
        return
    from ssgan_core.training import RankStopped  # torch: loaded by the command, not at start-up
    from ssgan_core.training.distributed import leave_world

    try:
        _train_here(cfg, resume, device)
    except RankStopped:  # rank 0 printed why; the other ranks stay quiet
        # Ending first would make torchrun stop rank 0 (SIGTERM) before it exits with its own
        # code; wait for torchrun to stop this rank instead, or give up after a while.
        time.sleep(STOPPED_RANK_WAIT)
        raise typer.Exit(RankStopped.exit_code) from None
    except RuntimeError as exc:  # under torchrun mostly a peer that died mid-collective: one line
        if int(os.environ.get("WORLD_SIZE", "1")) == 1 or os.environ.get("SSGAN_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        from rich.markup import escape

        why = f"{escape(first)} (another rank failed or was stopped?)"
        raise fail(f"rank {os.environ.get('RANK')} stopped: {why}") from None
    finally:
        leave_world()


STOPPED_RANK_WAIT = 30.0
"""Seconds a rank stopped by rank 0's failure waits for torchrun to end it (it does so as
soon as rank 0 exits), so rank 0's exit code is the one the launcher reports."""


def _train_here(cfg: RunConfig | None, resume: Path | None, device: str | None) -> None:
    """One process's training: the whole run, or one rank of it under torchrun (rank 0 prints)."""
    from ssgan_core.training import Trainer, default_run_dir

    main = int(os.environ.get("RANK", "0")) == 0
    if not main:  # rank 0 speaks for the run; the others print errors only
        warnings.filterwarnings("ignore")
    if cfg is not None and cfg.output.run_name and int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")):
        restarted = default_run_dir(cfg)  # torchrun --max-restarts started this rank again: continue
        resume = restarted if restarted.is_dir() else None
    started = time.monotonic()
    with _progress(quiet=not main) as progress:
        reporter = RichReporter(progress)
        if resume is not None:
            trainer = Trainer.resume(resume, device=device, reporter=reporter)
        else:
            assert cfg is not None
            trainer = Trainer.start(cfg, reporter=reporter)
        label = reporter.label = "epoch" if trainer.cfg.training.schedule == "epochs" else "period"
        if resume is not None:
            where = f"resuming {resume} at {label} {trainer.epoch + 1}, step {trainer.step}"
        else:
            where = f"run directory: {trainer.run_dir}  (device: {trainer.device})"
        if trainer.world.size > 1:
            where += f"  ({trainer.world.size} ranks, batch {trainer.batch_size} each)"
        if main:
            progress.console.print(where, highlight=False)
        result = trainer.fit()
    if main:
        _report(trainer, result, label, time.monotonic() - started)


def _report(trainer: Trainer, result: TrainResult, label: str, seconds: float) -> None:
    if result.status == "interrupted":
        run = result.run_dir
        err_console.print(
            f"[yellow]interrupted[/]: saved {run}/checkpoints/last.ckpt at {label} {result.epochs + 1}, "
            f"step {result.step}. Continue with: [bold]ssgan train --resume {shlex.quote(str(run))}[/]",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(128 + (trainer.stop_signal or 2))  # 130 after Ctrl-C, 143 after SIGTERM
    _summary(result, seconds, label, trainer.history)


def _option(flag: str, value: object) -> list[str]:
    return [] if value is None else [flag, str(value)]


def _launch(nproc: int, max_restarts: int, worker: list[str]) -> None:
    """``torchrun --standalone --nproc-per-node N -m ssgan_cli train WORKER...`` from this process.

    A failed rank stops the others; its own error line is above, and this adds one line.
    """
    import logging

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # we say what failed
    if "OMP_NUM_THREADS" not in os.environ:  # share the cores out (torchrun would set 1, with a warning)
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    launch = [
        "--standalone",
        f"--nproc-per-node={nproc}",
        f"--max-restarts={max_restarts}",
        "-m",
        "ssgan_cli",
    ]
    try:
        run(get_args_parser().parse_args([*launch, "train", *worker]))
    except ChildFailedError as exc:
        rank, failure = _cause(exc.failures)
        err_console.print(
            f"[bold red]error:[/] rank {rank} of {nproc} ended with exit code {failure.exitcode}; the other "
            "ranks were stopped (its message is above)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(failure.exitcode if failure.exitcode > 0 else 1) from None


def _cause(failures: dict[int, Any]) -> tuple[int, Any]:
    """The first rank that failed of itself: ranks stopped by rank 0 (RankStopped) may end first."""
    from ssgan_core.training import RankStopped

    stopped = (RankStopped.exit_code, -signal.SIGTERM)  # stopped by rank 0, or by torchrun after a failure
    causes = {rank: f for rank, f in failures.items() if f.exitcode not in stopped} or failures
    rank = min(causes, key=lambda r: causes[r].timestamp)
    return rank, causes[rank]


def _progress(quiet: bool = False) -> Progress:
    from ssgan_cli.common import progress

    bars = progress()
    bars.disable = quiet
    return bars
