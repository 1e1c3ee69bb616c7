"""The trainer: WGAN steps over encoded data, validation, previews, checkpoints, resume.

``Trainer.start(cfg)`` makes a run directory; ``Trainer.resume(run_dir)`` continues one
from ``checkpoints/last.ckpt``. ``trainer.fit()`` trains until the epoch limit, early
stopping, a Ctrl-C (saved, resumable) or a non-finite loss (stopped before the bad
update, the last good checkpoint kept).

Resume is exact: the checkpoint holds the weights, optimiser and scheduler states, the
global and data-order RNG states, and the position inside the epoch (its batch order
and index), so the step after a resume equals the step an uninterrupted run takes.
Validation and previews run under a forked RNG so they never shift the training stream.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ssgan_core.checkpoint import BEST, CHECKPOINT_DIR, LAST, load_checkpoint, new_payload, save_checkpoint
from ssgan_core.config import RunConfig, dump_config, validate_config
from ssgan_core.data import load_dataset, split_indices
from ssgan_core.device import resolve_device
from ssgan_core.errors import CheckpointError, ConfigError, InputError, SsganError
from ssgan_core.generation import build_losses, build_part, render_audio, write_wavs
from ssgan_core.interfaces import Critic, Generator, LossContext, LossTerm

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
PREVIEW_DIR = "previews"
REPORT_EVERY = 5
"""Steps between live-loss updates (each one reads running sums back from the device)."""
FD_REFERENCE_CLIPS = 1024
"""Validation clips (at most; a seeded choice) rendered as the per-epoch FD reference, so the
audio held for it stops growing with the folder (2,000 clips of 0.6 s would be 423 MB)."""


class TrainingDiverged(SsganError):
    """A loss became NaN or infinite; the update was not applied."""


# --------------------------------------------------------------------------- one step


class GanStepper:
    """One critic update per batch and, every ``n_critic``-th batch, one generator update.

    As in the original implementation, the generator updates on batches ``0, n_critic,
    2 n_critic, ...`` of each epoch (so it moves from the first batch on), re-running the
    generator on the same latents after the critic update. The critic's forward passes
    are cached per update (``LossContext``); during the generator update its weights are
    frozen, so only the generator's gradients are computed. Each update checks its total
    for NaN/inf before stepping, so bad values never reach the weights. With ``joint`` the
    critic scores real and fake in one call (``training.critic_batches``, docs/training.md).
    """

    def __init__(
        self,
        generator: Generator,
        critic: Critic,
        terms: dict[str, LossTerm],
        weights: dict[str, float],
        generator_opt: torch.optim.Optimizer,
        critic_opt: torch.optim.Optimizer,
        n_critic: int,
        joint: bool = False,
    ) -> None:
        self.generator, self.critic = generator, critic
        self.joint = joint
        self.terms, self.weights = terms, weights
        self.generator_opt, self.critic_opt = generator_opt, critic_opt
        self.n_critic = n_critic

    def step(self, real: Tensor, batch: int) -> dict[str, Tensor]:
        """Train on the epoch's ``batch``-th real batch; return detached unweighted term values."""
        z = self.generator.sample_latent(real.shape[0], device=real.device)
        with torch.no_grad():
            fake = self.generator(z)
        total, values = self._objective("critic", LossContext(real, fake, self.critic, self.joint))
        self.critic_opt.zero_grad(set_to_none=True)
        total.backward()
        self.critic_opt.step()
        if batch % self.n_critic == 0:
            self.critic.requires_grad_(False)
            try:
                fake = self.generator(z)
                total_g, values_g = self._objective(
                    "generator", LossContext(real, fake, self.critic, self.joint)
                )
                self.generator_opt.zero_grad(set_to_none=True)
                total_g.backward()
            finally:
                self.critic.requires_grad_(True)
            self.generator_opt.step()
            values.update(values_g)
        return values

    def _objective(self, side: str, ctx: LossContext) -> tuple[Tensor, dict[str, Tensor]]:
        total: Tensor | None = None
        values: dict[str, Tensor] = {}
        for name, term in self.terms.items():
            value = term.critic_loss(ctx) if side == "critic" else term.generator_loss(ctx)
            if value is None:
                continue
            values[f"{side}/{name}"] = value.detach()
            weighted = value * self.weights[name]
            total = weighted if total is None else total + weighted
        if total is None:
            raise ConfigError(
                f"losses: no configured loss term acts on the {side}; add one (e.g. wasserstein)"
            )
        values[f"{side}_loss"] = total.detach()
        if not bool(torch.isfinite(total)):
            bad = [
                k.split("/", 1)[1]
                for k, v in values.items()
                if "/" in k and not bool(torch.isfinite(v).all())
            ]
            raise TrainingDiverged(_diverged_message(side, bad, values))
        return total, values


def _diverged_message(side: str, bad: list[str], values: dict[str, Tensor]) -> str:
    shown = ", ".join(f"{k.split('/', 1)[-1]}={float(v):.4g}" for k, v in values.items() if "/" in k)
    which = f"loss term {', '.join(repr(b) for b in bad)}" if bad else "the weighted sum of the loss terms"
    return f"{which} became non-finite in the {side} update ({shown})"


# --------------------------------------------------------------------------- reporting


class Reporter:
    """Progress callbacks; the CLI shows them as rich progress bars. All are optional."""

    def encoding(self, done: int, total: int | None) -> None: ...

    def epoch_start(self, epoch: int, epochs: int, batches: int, start_batch: int) -> None: ...

    def step(self, batch: int, stats: dict[str, float]) -> None: ...

    def phase(self, text: str) -> None: ...

    def epoch_end(self, metrics: dict[str, Any]) -> None: ...

    def message(self, text: str) -> None: ...


@dataclass
class TrainResult:
    status: str
    """``finished`` (epoch limit), ``early-stopped``, ``interrupted`` (saved) or ``paused`` (step limit)."""
    run_dir: Path
    epochs: int
    step: int
    best_epoch: int | None
    best_metric: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    """The last finished epoch's metrics line."""

    @property
    def checkpoint(self) -> Path:
        folder = self.run_dir / CHECKPOINT_DIR
        return folder / BEST if (folder / BEST).exists() else folder / LAST


# --------------------------------------------------------------------------- trainer


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_run_dir(cfg: RunConfig) -> Path:
    name = cfg.output.run_name or f"{cfg.preset or 'run'}-{datetime.now():%Y%m%d-%H%M%S}"
    return cfg.output.runs_dir / name


class Trainer:
    """Trains one run; usable from Python exactly as the CLI uses it."""

    def __init__(
        self,
        cfg: RunConfig,
        run_dir: str | Path,
        *,
        host: Any = None,
        device: str | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        if host is None:
            from ssgan_core.plugins import get_host

            host = get_host()
        t = cfg.training
        if t.early_stopping.metric == "fd" and not t.fd_every_epoch:
            raise ConfigError("training.early_stopping.metric = 'fd' needs training.fd_every_epoch = true")
        self.cfg, self.host, self.run_dir = cfg, host, Path(run_dir)
        self.reporter = reporter or Reporter()
        self.device = resolve_device(device or t.device)
        self.audio = cfg.audio.spec()

        seed_everything(cfg.seed)
        self.transform = build_part("transform", cfg.transform, self.audio, host).to(self.device)
        self.generator: Generator = build_part("generator", cfg.generator, self.audio, host).to(self.device)
        self.critic: Critic = build_part("critic", cfg.critic, self.audio, host).to(self.device)
        self.inverter = build_part("inverter", cfg.inverter, self.audio, host).to(self.device)
        terms, weights = build_losses(cfg, host)
        for term in terms.values():
            if isinstance(term, torch.nn.Module):
                term.to(self.device)
        self.generator_opt = torch.optim.RMSprop(
            self.generator.parameters(), lr=t.generator_lr, weight_decay=t.weight_decay
        )
        self.critic_opt = torch.optim.RMSprop(
            self.critic.parameters(), lr=t.critic_lr, weight_decay=t.weight_decay
        )
        self.schedulers = {
            "generator": torch.optim.lr_scheduler.ExponentialLR(self.generator_opt, gamma=t.lr_gamma),
            "critic": torch.optim.lr_scheduler.ExponentialLR(self.critic_opt, gamma=t.lr_gamma),
        }
        self.stepper = GanStepper(
            self.generator,
            self.critic,
            terms,
            weights,
            self.generator_opt,
            self.critic_opt,
            t.n_critic,
            joint=t.critic_batches == "joint",
        )
        self.data_rng = torch.Generator().manual_seed(cfg.seed)
        self.preview_latents = self.generator.sample_latent(
            t.preview_count, generator=torch.Generator().manual_seed(cfg.seed + 1)
        )

        # Progress; all of it goes into checkpoints.
        self.epoch = 0  # finished epochs
        self.step = 0  # finished batches, all epochs
        self.batch = 0  # next batch of the current epoch
        self.order: Tensor | None = None  # the current epoch's sample order
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}
        self.epoch_seconds = 0.0
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.stopped_early = False
        self.last_metrics: dict[str, Any] = {}
        self.data_key: str | None = None
        self.names: list[str] | None = None  # clip names of the prepared dataset
        self._interrupted = False

    # ----------------------------------------------------------------- construction

    @classmethod
    def start(
        cls,
        cfg: RunConfig,
        run_dir: str | Path | None = None,
        *,
        host: Any = None,
        device: str | None = None,
        reporter: Reporter | None = None,
    ) -> Trainer:
        """A new run in ``run_dir`` (default ``<runs_dir>/<run_name or preset-timestamp>``)."""
        run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
        if run_dir.exists() and any(run_dir.iterdir()):
            raise InputError(
                f"run directory {run_dir} already exists; choose another --name, or continue it with "
                f"`ssgan train --resume {run_dir}`"
            )
        trainer = cls(cfg, run_dir, host=host, device=device, reporter=reporter)
        trainer.prepare()  # data problems surface before anything is written
        (run_dir / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
        text = json.dumps(dump_config(cfg), indent=2)
        (run_dir / CONFIG_FILE).write_text(text)
        (run_dir / CHECKPOINT_DIR / CONFIG_FILE).write_text(text)
        return trainer

    @classmethod
    def resume(
        cls,
        run_dir: str | Path,
        *,
        host: Any = None,
        device: str | None = None,
        reporter: Reporter | None = None,
    ) -> Trainer:
        """Continue a run from its ``checkpoints/last.ckpt``, exactly where it was saved."""
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise InputError(f"--resume {run_dir}: no such run directory")
        path = run_dir / CHECKPOINT_DIR / LAST
        if not path.exists():
            raise CheckpointError(
                f"{run_dir}: no {CHECKPOINT_DIR}/{LAST} to resume from (the run stopped before its first "
                "checkpoint); start it again"
            )
        payload = load_checkpoint(path)
        if payload.get("critic") is None or "position" not in payload:
            raise CheckpointError(
                f"{path}: holds only a generator (an imported checkpoint); it cannot be resumed"
            )
        try:
            cfg = validate_config(payload["config"], host)
        except ConfigError as exc:
            raise CheckpointError(f"{path}: its saved config no longer validates: {exc}") from None
        trainer = cls(cfg, run_dir, host=host, device=device, reporter=reporter)
        trainer.load_state(payload, path)
        trainer._trim_metrics()
        return trainer

    # ----------------------------------------------------------------- state

    def state(self) -> dict[str, Any]:
        """A checkpoint payload of everything needed to continue exactly."""
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "data": self.data_rng.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        elif self.device.type == "mps":
            rng["mps"] = torch.mps.get_rng_state()
        return new_payload(
            dump_config(self.cfg),
            self.generator.state_dict(),
            critic=self.critic.state_dict(),
            optimizers={"generator": self.generator_opt.state_dict(), "critic": self.critic_opt.state_dict()},
            schedulers={k: s.state_dict() for k, s in self.schedulers.items()},
            epoch=self.epoch,
            step=self.step,
            rng=rng,
            best={"epoch": self.best_epoch, "metric": self.best_metric},
            early_stopping={"bad_epochs": self.bad_epochs, "stopped": self.stopped_early},
            position={
                "batch": self.batch,
                "order": self.order,
                "sums": {k: v.detach().cpu() for k, v in self.sums.items()},
                "counts": dict(self.counts),
                "seconds": self.epoch_seconds,
            },
            data_key=self.data_key,
            metrics=self.last_metrics,
        )

    def load_state(self, payload: dict[str, Any], path: Path | str = "checkpoint") -> None:
        try:
            self.generator.load_state_dict(payload["generator"])
            self.critic.load_state_dict(payload["critic"])
            self.generator_opt.load_state_dict(payload["optimizers"]["generator"])
            self.critic_opt.load_state_dict(payload["optimizers"]["critic"])
            for name, scheduler in self.schedulers.items():
                scheduler.load_state_dict(payload["schedulers"][name])
            rng = payload["rng"]
            torch.set_rng_state(rng["torch"])
            self.data_rng.set_state(rng["data"])
            if self.device.type == "cuda" and "cuda" in rng:
                torch.cuda.set_rng_state(rng["cuda"], self.device)
            elif self.device.type == "mps" and "mps" in rng:
                torch.mps.set_rng_state(rng["mps"])
            position = payload["position"]
            self.epoch, self.step = int(payload["epoch"]), int(payload["step"])
            self.batch, self.order = int(position["batch"]), position["order"]
            self.sums = {k: v.to(self.device) for k, v in position["sums"].items()}
            self.counts = {k: int(v) for k, v in position["counts"].items()}
            self.epoch_seconds = float(position["seconds"])
            self.best_epoch, self.best_metric = payload["best"]["epoch"], payload["best"]["metric"]
            self.bad_epochs = int(payload["early_stopping"]["bad_epochs"])
            self.stopped_early = bool(payload["early_stopping"]["stopped"])
            self.data_key = payload.get("data_key")
            self.last_metrics = dict(payload.get("metrics") or {})
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"{path}: cannot restore training state: {type(exc).__name__}: {exc}"
            ) from None

    def save(self, *, best: bool = False) -> None:
        payload = self.state()
        folder = self.run_dir / CHECKPOINT_DIR
        save_checkpoint(folder / LAST, payload)
        if best:
            save_checkpoint(folder / BEST, payload)

    # ----------------------------------------------------------------- data

    def prepare(self) -> None:
        """Encode (or load from cache) the dataset and split it by source clip.

        Images stay in the cache file (:class:`~ssgan_core.data.ImageStore`); each batch
        is read when it is needed, so memory does not grow with the folder.
        """
        if self.names is not None:
            return
        data = load_dataset(self.cfg, self.host, device=self.device, progress=self.reporter.encoding)
        for item in data.skipped:
            self.reporter.message(f"skipped {item.name}: {item.reason}")
        if self.data_key is not None and data.key != self.data_key:
            raise CheckpointError(
                f"{self.run_dir}: the dataset changed since this run started (files or settings differ), so "
                "it cannot be resumed exactly; start a new run"
            )
        self.data_key = data.key
        train_idx, val_idx = split_indices(
            data.groups, self.cfg.data.val_fraction, self.cfg.seed, data.augmented
        )
        batch_size = self.cfg.training.batch_size
        if len(train_idx) < batch_size:
            raise InputError(
                f"only {len(train_idx)} training images (of {len(data)}) for training.batch_size = "
                f"{batch_size}; add data or lower the batch size"
            )
        self.names = data.names
        self.images = data.images
        self.train_idx, self.val_idx = train_idx.to(self.device), val_idx.to(self.device)
        self.batches_per_epoch = len(train_idx) // batch_size
        self.val_latents = self.generator.sample_latent(
            len(val_idx), generator=torch.Generator().manual_seed(self.cfg.seed + 2)
        )
        self.val_audio: Tensor | None = None
        if self.cfg.training.fd_every_epoch:
            reference = self.val_idx
            if len(reference) > FD_REFERENCE_CLIPS:
                pick = torch.randperm(
                    len(reference), generator=torch.Generator().manual_seed(self.cfg.seed + 3)
                )
                reference = reference[pick[:FD_REFERENCE_CLIPS].to(reference.device)].sort().values
            self.reporter.phase("rendering validation audio")
            chunk = 16 * batch_size  # whole batches, so the inverter draws its numbers as in one call
            self.val_audio = torch.empty(len(reference), 2, self.audio.num_samples)  # filled in place
            with self._side_rng():
                for begin in range(0, len(reference), chunk):
                    images = self.images_at(reference[begin : begin + chunk])
                    self.val_audio[begin : begin + chunk] = self._render(images)

    def images_at(self, idx: Tensor) -> Tensor:
        """Dataset images at ``idx`` as a float32 batch on the device, read from the cache file."""
        return self.images.take(idx, self.device)

    def _render(self, images: Tensor) -> Tensor:
        return render_audio(
            images, self.transform, self.inverter, device=self.device, batch_size=self.cfg.training.batch_size
        )

    @contextlib.contextmanager
    def _side_rng(self) -> Iterator[None]:
        """Forked, seeded RNG: side work (validation, previews) is repeatable and leaves the
        training stream untouched, so resumed and uninterrupted runs draw the same numbers."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, device_type=self.device.type):
            torch.manual_seed(self.cfg.seed)
            yield

    # ----------------------------------------------------------------- training

    def fit(self, *, max_steps: int | None = None) -> TrainResult:
        """Train to the end. ``max_steps`` pauses after that many total steps without saving
        (as if the process were killed there); tests use it to check resuming."""
        self.prepare()
        epochs = self.cfg.training.epochs
        restore = self._catch_ctrl_c()
        try:
            while self.epoch < epochs and not self.stopped_early:
                status = self._train_epoch(max_steps)
                if status is not None:
                    return self._result(status)
                self._end_epoch()
        except TrainingDiverged as exc:
            last = self.run_dir / CHECKPOINT_DIR / LAST
            kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written yet"
            raise TrainingDiverged(
                f"training stopped at epoch {self.epoch + 1}, step {self.step + 1}: {exc}; {kept}. "
                "Try lower learning rates (training.critic_lr, training.generator_lr) or another seed"
            ) from None
        finally:
            restore()
        return self._result("early-stopped" if self.stopped_early else "finished")

    def _train_epoch(self, max_steps: int | None) -> str | None:
        cfg = self.cfg.training
        if self.order is None:
            self.order = torch.randperm(len(self.train_idx), generator=self.data_rng)
            self.batch, self.sums, self.counts, self.epoch_seconds = 0, {}, {}, 0.0
        self.reporter.epoch_start(self.epoch + 1, cfg.epochs, self.batches_per_epoch, self.batch)
        self.generator.train()
        self.critic.train()
        bs = cfg.batch_size
        started = time.perf_counter()
        while self.batch < self.batches_per_epoch:
            idx = self.train_idx[self.order[self.batch * bs : (self.batch + 1) * bs].to(self.device)]
            values = self.stepper.step(self.images_at(idx), self.batch)
            for key, value in values.items():
                self.sums[key] = self.sums[key] + value if key in self.sums else value.clone()
                self.counts[key] = self.counts.get(key, 0) + 1
            self.batch += 1
            self.step += 1
            if self.batch % REPORT_EVERY == 0 or self.batch == self.batches_per_epoch:
                self.reporter.step(self.batch, self._means())
            if max_steps is not None and self.step >= max_steps:
                return "paused"
            if self._interrupted:
                self.epoch_seconds += time.perf_counter() - started
                self.save()
                return "interrupted"
            every = cfg.checkpoint_every_steps
            if every and self.step % every == 0 and self.batch < self.batches_per_epoch:
                self.epoch_seconds += time.perf_counter() - started
                started = time.perf_counter()
                self.save()
        self.epoch_seconds += time.perf_counter() - started
        return None

    def _means(self) -> dict[str, float]:
        return {k: float(v) / self.counts[k] for k, v in self.sums.items()}

    def _end_epoch(self) -> None:
        epoch = self.epoch + 1
        cfg = self.cfg.training
        means = self._means()
        samples = self.batches_per_epoch * cfg.batch_size
        metrics: dict[str, Any] = {"epoch": epoch, "step": self.step, **means}
        metrics["lr_generator"] = self.generator_opt.param_groups[0]["lr"]
        metrics["lr_critic"] = self.critic_opt.param_groups[0]["lr"]
        metrics["seconds"] = round(self.epoch_seconds, 3)
        metrics["samples_per_s"] = samples / max(self.epoch_seconds, 1e-9)

        started = time.perf_counter()
        with self._side_rng():
            self.reporter.phase("validating")
            metrics.update(self.validate())
            self.reporter.phase("writing previews")
            metrics.update(self.write_previews(epoch))
        metrics["val_seconds"] = round(time.perf_counter() - started, 3)

        with warnings.catch_warnings():  # decay per epoch even if an epoch had no generator step
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
            for scheduler in self.schedulers.values():
                scheduler.step()
        improved = self._update_early_stopping(epoch, metrics)
        metrics["best_epoch"] = self.best_epoch
        self.epoch, self.batch, self.order = epoch, 0, None
        self.sums, self.counts, self.epoch_seconds = {}, {}, 0.0
        self.last_metrics = metrics
        self._append_metrics(metrics)  # before the checkpoint: a resume trims lines it has not reached
        self.save(best=improved)
        self.reporter.epoch_end(metrics)

    def _update_early_stopping(self, epoch: int, metrics: dict[str, Any]) -> bool:
        """Track the best epoch from epoch ``warmup`` on; stop after ``patience`` epochs with no gain."""
        rule = self.cfg.training.early_stopping
        value = metrics["val_abs_w"] if rule.metric == "abs_w" else metrics.get("fd")
        metrics["early_stopping_metric"] = value
        if epoch < rule.warmup or value is None:  # as the original: epoch `warmup` is the first compared
            return False
        if self.best_metric is None or value < self.best_metric:
            self.best_metric, self.best_epoch, self.bad_epochs = float(value), epoch, 0
            return True
        self.bad_epochs += 1
        if self.bad_epochs >= rule.patience:
            self.stopped_early = True
        return False

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Critic's Wasserstein estimate ``mean D(real) - mean D(fake)`` on validation data, eval mode."""
        self.generator.eval()
        self.critic.eval()
        bs = self.cfg.training.batch_size
        real_sum = fake_sum = torch.zeros((), device=self.device)
        for start in range(0, len(self.val_idx), bs):
            real = self.images_at(self.val_idx[start : start + bs])
            fake = self.generator(self.val_latents[start : start + bs].to(self.device))
            real_sum = real_sum + self.critic(real).float().sum()
            fake_sum = fake_sum + self.critic(fake).float().sum()
        n = len(self.val_idx)
        val_w = float(real_sum - fake_sum) / n
        self.generator.train()
        self.critic.train()
        return {"val_w": val_w, "val_abs_w": abs(val_w)}

    def write_previews(self, epoch: int) -> dict[str, float]:
        """Fixed-latent previews: a PNG grid, some WAVs, and their FD against validation audio."""
        from ssgan_core.png import save_spectrogram_png

        cfg = self.cfg
        folder = self.run_dir / PREVIEW_DIR
        folder.mkdir(parents=True, exist_ok=True)
        self.generator.eval()
        with torch.no_grad():
            images = torch.cat(
                [
                    self.generator(z.to(self.device)).float().cpu()
                    for z in self.preview_latents.split(cfg.training.batch_size)
                ]
            )
        self.generator.train()
        save_spectrogram_png(images, folder / f"epoch_{epoch:03d}.png", span=self.transform.display_span)
        out: dict[str, float] = {}
        need_audio = cfg.output.preview_wavs > 0 or self.val_audio is not None
        if not need_audio:
            return out
        rendered = images if self.val_audio is not None else images[: cfg.output.preview_wavs]
        audio = self._render(rendered)
        if cfg.output.preview_wavs:
            write_wavs(
                audio[: cfg.output.preview_wavs],
                folder,
                self.audio.sample_rate,
                cfg.output.wav_subtype,
                prefix=f"epoch_{epoch:03d}",
            )
        if self.val_audio is not None:
            from ssgan_core.metrics import frechet_distance_audio

            try:
                out["fd"] = frechet_distance_audio(audio, self.val_audio, self.audio.sample_rate)
            except InputError as exc:  # e.g. silent previews early on; FD is informational
                self.reporter.message(f"FD not computed this epoch: {exc}")
        return out

    def _append_metrics(self, metrics: dict[str, Any]) -> None:
        with open(self.run_dir / METRICS_FILE, "a") as fh:
            fh.write(json.dumps(metrics) + "\n")

    def _trim_metrics(self) -> None:
        """Drop lines of epochs after the checkpoint (written just before a kill)."""
        path = self.run_dir / METRICS_FILE
        if not path.exists():
            return
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
        kept = [ln for ln in lines if json.loads(ln).get("epoch", 0) <= self.epoch]
        if len(kept) != len(lines):
            path.write_text("".join(ln + "\n" for ln in kept))

    def _result(self, status: str) -> TrainResult:
        return TrainResult(
            status, self.run_dir, self.epoch, self.step, self.best_epoch, self.best_metric, self.last_metrics
        )

    def _catch_ctrl_c(self) -> Callable[[], None]:
        """First Ctrl-C: finish the current step, save, return. A second one aborts at once."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum: int, frame: Any) -> None:
            self._interrupted = True
            signal.signal(signal.SIGINT, previous)
            self.reporter.message("stopping after this step (Ctrl-C again to abort without saving)")

        signal.signal(signal.SIGINT, handler)

        def restore() -> None:
            signal.signal(signal.SIGINT, previous)

        return restore
