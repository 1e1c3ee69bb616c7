"""What happens at the end of each period, one callback per job.

The trainer builds the period's metrics line from the training side (loss means,
throughput, learning rates) and hands it to each callback in order; each adds its
numbers or acts on them. Callbacks that touch files or render audio run on rank 0
only (``main_only``); the trainer then sends rank 0's line to every rank, so decisions
made from it (early stopping, learning-rate decay) are the same everywhere.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ssgan_core.config import EarlyStoppingConfig, HealthConfig
from ssgan_core.errors import InputError
from ssgan_core.files import write_text
from ssgan_core.generation import write_wavs
from ssgan_core.health import check_period, image_stats, ranking_auc

if TYPE_CHECKING:
    from ssgan_core.training.state import StateRegistry
    from ssgan_core.training.trainer import Trainer

METRICS_FILE = "metrics.jsonl"
PREVIEW_DIR = "previews"
EARLY_STOPPING_KEYS = {"abs_w": "val_abs_w", "fd": "fd"}
"""``training.early_stopping.metric`` -> the metrics-line entry it compares."""


class PeriodCallback:
    """One job at the end of every period. ``main_only``: runs on rank 0 alone."""

    main_only = False

    def on_period_end(self, trainer: Trainer, period: int, metrics: dict[str, Any]) -> None: ...

    def register_state(self, registry: StateRegistry) -> None:
        """Register what the callback must carry across a resume (most carry nothing)."""


class Validation(PeriodCallback):
    """The critic's view of held-out data: the Wasserstein estimate ``mean D(real) - mean D(fake)``
    and how well the critic ranks real above fake (AUC), over every rank's share of the set."""

    def on_period_end(self, trainer: Trainer, period: int, metrics: dict[str, Any]) -> None:
        trainer.reporter.phase("validating")
        started = time.perf_counter()
        with trainer.side_rng():
            metrics.update(validate(trainer))
        metrics["val_seconds"] = metrics.get("val_seconds", 0.0) + time.perf_counter() - started


@torch.no_grad()
def validate(trainer: Trainer) -> dict[str, float]:
    """Critic scores in eval mode on this rank's share of the validation set, gathered from all."""
    world, bs = trainer.world, trainer.cfg.training.batch_size
    trainer.sampler.eval()
    trainer.critic.eval()
    idx, latents = trainer.val_idx[world.rank :: world.size], trainer.val_latents[world.rank :: world.size]
    real_scores, fake_scores = [torch.empty(0)], [torch.empty(0)]
    for start in range(0, len(idx), bs):
        real = trainer.images_at(idx[start : start + bs])
        fake = trainer.sampler(latents[start : start + bs].to(trainer.device))
        real_scores.append(trainer.critic(real).float().cpu())
        fake_scores.append(trainer.critic(fake).float().cpu())
    trainer.generator.train()
    trainer.critic.train()
    gathered = world.all_gather_object((torch.cat(real_scores), torch.cat(fake_scores)))
    real_all = torch.cat([real for real, _ in gathered])
    fake_all = torch.cat([fake for _, fake in gathered])
    val_w = float(real_all.sum() - fake_all.sum()) / len(trainer.val_idx)
    return {"val_w": val_w, "val_abs_w": abs(val_w), "val_auc": ranking_auc(real_all, fake_all)}


class Previews(PeriodCallback):
    """Fixed-latent previews: a PNG grid, some WAVs, their FD against validation audio,
    and the image statistics the health checks compare with the data's."""

    main_only = True

    def on_period_end(self, trainer: Trainer, period: int, metrics: dict[str, Any]) -> None:
        trainer.reporter.phase("writing previews")
        started = time.perf_counter()
        with trainer.side_rng():
            metrics.update(write_previews(trainer, period))
        metrics["val_seconds"] = round(metrics.get("val_seconds", 0.0) + time.perf_counter() - started, 3)


def write_previews(trainer: Trainer, epoch: int) -> dict[str, float]:
    from ssgan_core.png import save_spectrogram_png

    cfg = trainer.cfg
    folder = trainer.run_dir / PREVIEW_DIR
    folder.mkdir(parents=True, exist_ok=True)
    trainer.sampler.eval()
    with torch.no_grad():  # images stay on the device for rendering; the PNG and statistics get a copy
        batches = trainer.fd_latents.split(cfg.training.batch_size)  # the previews, then any FD extras
        generated = torch.cat([trainer.sampler(z.to(trainer.device)).float() for z in batches])
    trainer.generator.train()
    images = generated[: len(trainer.preview_latents)]
    on_cpu = images.cpu()
    save_spectrogram_png(on_cpu, folder / f"epoch_{epoch:03d}.png", span=trainer.transform.display_span)
    out: dict[str, float] = {**image_stats(on_cpu), **trainer.data_stats}
    if cfg.output.preview_wavs == 0 and trainer.val_audio is None:
        return out
    rendered = generated if trainer.val_audio is not None else images[: cfg.output.preview_wavs]
    audio = trainer.render(rendered)
    if cfg.output.preview_wavs:
        write_wavs(
            audio[: cfg.output.preview_wavs],
            folder,
            trainer.audio.sample_rate,
            cfg.output.wav_subtype,
            prefix=f"epoch_{epoch:03d}",
        )
    if trainer.val_audio is not None:
        from ssgan_core.metrics import frechet_distance_audio

        try:
            out["fd"] = frechet_distance_audio(audio, trainer.val_audio, trainer.audio.sample_rate)
        except InputError as exc:  # e.g. silent previews early on; FD is informational
            trainer.reporter.message(f"FD not computed this period: {exc}")
    return out


class LearningRateDecay(PeriodCallback):
    """Each network's learning rate times ``training.lr_gamma`` per period."""

    def on_period_end(self, trainer: Trainer, period: int, metrics: dict[str, Any]) -> None:
        with warnings.catch_warnings():  # decay per period even if a period had no generator step
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
            for scheduler in trainer.schedulers.values():
                scheduler.step()


class EarlyStopping(PeriodCallback):
    """Track the best period from period ``warmup`` on; stop after ``patience`` periods with no gain.

    It compares one number of the metrics line, the one ``training.early_stopping.metric``
    names (``EARLY_STOPPING_KEYS``); whatever callback or loss produced it.
    """

    def __init__(self, rule: EarlyStoppingConfig) -> None:
        self.rule, self.key = rule, EARLY_STOPPING_KEYS[rule.metric]
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.stopped = False
        self.improved = False
        """Whether the last period was a new best (its checkpoint becomes best.ckpt)."""

    def on_period_end(self, trainer: Trainer, period: int, metrics: dict[str, Any]) -> None:
        self.improved = self.update(period, metrics)
        metrics["best_epoch"] = self.best_epoch

    def update(self, epoch: int, metrics: dict[str, Any]) -> bool:
        value = metrics.get(self.key)
        metrics["early_stopping_metric"] = value
        # As the original: period `warmup` is the first one compared.
        if epoch < self.rule.warmup or value is None:
            return False
        if self.best_metric is None or value < self.best_metric:
            self.best_metric, self.best_epoch, self.bad_epochs = float(value), epoch, 0
            return True
        self.bad_epochs += 1
        if self.bad_epochs >= self.rule.patience:
            self.stopped = True
        return False

    def register_state(self, registry: StateRegistry) -> None:
        registry.register_fields(self)

    def state_dict(self) -> dict[str, Any]:
        return {
            "best": {"epoch": self.best_epoch, "metric": self.best_metric},
            "early_stopping": {"bad_epochs": self.bad_epochs, "stopped": self.stopped},
        }

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        self.best_epoch, self.best_metric = payload["best"]["epoch"], payload["best"]["metric"]
        self.bad_epochs = int(payload["early_stopping"]["bad_epochs"])
        self.stopped = bool(payload["early_stopping"]["stopped"])


class Health(PeriodCallback):
    """Run-health findings (docs/training.md) over the metrics so far, with advice."""

    def __init__(self, cfg: HealthConfig) -> None:
        self.cfg = cfg

    def on_period_end(self, trainer: Trainer, period: int, metrics: dict[str, Any]) -> None:
        findings = check_period([*trainer.history, metrics], self.cfg)
        metrics["health"] = [f.kind for f in findings]
        metrics["health_advice"] = [f"{f.kind}: {f.advice}" for f in findings]
        for finding in findings:
            trainer.reporter.message(f"run health, period {period}: {finding}")


class MetricsLog(PeriodCallback):
    """``metrics.jsonl``: one line per period, written before that period's checkpoint,
    so a resume trims only lines of periods its checkpoint has not reached."""

    def __init__(self, run_dir: Path, write: bool) -> None:
        self.path, self.write = run_dir / METRICS_FILE, write
        self.history: list[dict[str, Any]] = []
        self.last: dict[str, Any] = {}

    def on_period_end(self, trainer: Trainer, period: int, metrics: dict[str, Any]) -> None:
        self.last = metrics
        self.history.append(metrics)
        if self.write:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(metrics) + "\n")

    def trim(self, epoch: int) -> None:
        """Keep only whole lines of periods up to ``epoch``: a kill can leave a line of a
        later period, or half a line, at the end."""
        if not self.path.exists():
            return
        lines = [ln for ln in self.path.read_text(errors="replace").splitlines() if ln.strip()]
        epochs = [_metrics_epoch(ln) for ln in lines]
        kept = [ln for ln, e in zip(lines, epochs, strict=True) if e is not None and e <= epoch]
        self.history = [json.loads(ln) for ln in kept]
        if self.write and len(kept) != len(lines):
            write_text(self.path, "".join(ln + "\n" for ln in kept))

    def register_state(self, registry: StateRegistry) -> None:
        registry.register_fields(self)

    def state_dict(self) -> dict[str, Any]:
        return {"metrics": self.last}

    def load_state_dict(self, payload: dict[str, Any]) -> None:
        self.last = dict(payload.get("metrics") or {})


def _metrics_epoch(line: str) -> int | None:
    """The epoch of one metrics.jsonl line, or ``None`` for a half-written or foreign line."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    epoch = record.get("epoch") if isinstance(record, dict) else None
    return epoch if isinstance(epoch, int) else None


def default_callbacks(trainer: Trainer) -> list[PeriodCallback]:
    """The order matters: measure, decay, judge, log (the log line holds every number)."""
    t = trainer.cfg.training
    return [
        Validation(),
        Previews(),
        LearningRateDecay(),
        EarlyStopping(t.early_stopping),
        Health(t.health),
        MetricsLog(trainer.run_dir, write=trainer.world.is_main),
    ]
