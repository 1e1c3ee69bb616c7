"""``ssgan train``: a thin layer over :class:`ssgan_core.training.Trainer` with live progress."""

from __future__ import annotations

import json
import shlex
import time
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
    handle_errors,
    load_config,
)
from ssgan_core.errors import InputError

if TYPE_CHECKING:
    from ssgan_core.training import TrainResult

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
) -> None:
    """Train a GAN: encode the data (cached), train, validate, write previews and checkpoints."""
    from ssgan_core.training import Trainer  # torch: loaded by the command, not at start-up

    started = time.monotonic()
    with _progress() as progress:
        reporter = RichReporter(progress)
        if resume is not None:
            if preset or config or set_ or data or name or run_dir or init_from:
                raise InputError(
                    "--resume continues a run with its saved config; only --device may be combined with it"
                )
            trainer = Trainer.resume(resume, device=device, reporter=reporter)
        else:
            overrides = _overrides(data, device, name, run_dir, init_from)
            cfg = load_config(preset, config, [*overrides, *(set_ or [])])
            trainer = Trainer.start(cfg, reporter=reporter)
        label = reporter.label = "epoch" if trainer.cfg.training.schedule == "epochs" else "period"
        if resume is not None:
            where = f"resuming {resume} at {label} {trainer.epoch + 1}, step {trainer.step}"
        else:
            where = f"run directory: {trainer.run_dir}  (device: {trainer.device})"
        progress.console.print(where, highlight=False)
        result = trainer.fit()
    if result.status == "interrupted":
        run = result.run_dir
        err_console.print(
            f"[yellow]interrupted[/]: saved {run}/checkpoints/last.ckpt at {label} {result.epochs + 1}, "
            f"step {result.step}. Continue with: [bold]ssgan train --resume {shlex.quote(str(run))}[/]",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(128 + (trainer.stop_signal or 2))  # 130 after Ctrl-C, 143 after SIGTERM
    _summary(result, time.monotonic() - started, label, trainer.history)


def _progress() -> Progress:
    from ssgan_cli.common import progress

    return progress()
