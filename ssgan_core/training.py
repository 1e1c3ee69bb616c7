"""The trainer: WGAN steps over encoded data, validation, previews, checkpoints, resume.

``Trainer.start(cfg)`` makes a run directory; ``Trainer.resume(run_dir)`` continues one
from ``checkpoints/last.ckpt``. ``trainer.fit()`` trains until the length the schedule
sets (``training.schedule``: epochs, or generator updates), early stopping, a Ctrl-C or
SIGTERM (saved, resumable) or a non-finite loss (stopped before the bad update, the last
good checkpoint kept). Validation, previews, checkpoints, LR decay and early stopping
happen once per *period*: an epoch, or ``training.eval_every`` generator updates. Run
state keeps the historical name ``epoch`` for the number of finished periods (metrics
lines, checkpoints, ``TrainResult.epochs``), so older runs still resume.

Resume is exact: the checkpoint holds the weights, optimiser and scheduler states, the
global and data-order RNG states, and the position inside the epoch (its batch order
and index), so the step after a resume equals the step an uninterrupted run takes.
Validation and previews run under a forked RNG so they never shift the training stream.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
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

from ssgan_core.checkpoint import (
    BEST,
    CHECKPOINT_DIR,
    LAST,
    find_checkpoint,
    load_checkpoint,
    new_payload,
    save_checkpoint,
)
from ssgan_core.config import BUILT_WITH, OptimizerConfig, RunConfig, dump_config, validate_config
from ssgan_core.data import load_dataset, split_indices
from ssgan_core.device import resolve_device
from ssgan_core.errors import CheckpointError, ConfigError, InputError, SsganError
from ssgan_core.files import ensure_folder, is_temp_name, remove_leftovers, write_text
from ssgan_core.generation import (
    build_losses,
    build_run_parts,
    built_with,
    render_audio,
    warn_version_changes,
    write_wavs,
)
from ssgan_core.health import check_period, image_stats, ranking_auc
from ssgan_core.interfaces import AUDIO_CHANNELS, Critic, Generator, LossContext, LossTerm

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
PREVIEW_DIR = "previews"
REPORT_EVERY = 5
"""Steps between live-loss updates (each one reads running sums back from the device)."""
AutocastFactory = Callable[[], contextlib.AbstractContextManager[Any]]
FD_REFERENCE_CLIPS = 1024
"""Validation clips (at most; a seeded choice) rendered as the per-epoch FD reference, so the
audio held for it stops growing with the folder (2,000 clips of 0.6 s would be 423 MB)."""


class TrainingDiverged(SsganError):
    """A loss became NaN or infinite; the update was not applied."""

    exit_code = 1


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
        autocast: AutocastFactory = contextlib.nullcontext,
    ) -> None:
        self.generator, self.critic = generator, critic
        self.joint = joint
        self.autocast = autocast
        self.terms, self.weights = terms, weights
        self.generator_opt, self.critic_opt = generator_opt, critic_opt
        self.n_critic = n_critic

    def step(self, real: Tensor, batch: int) -> dict[str, Tensor]:
        """Train on the epoch's ``batch``-th real batch; return detached unweighted term values."""
        z = self.generator.sample_latent(real.shape[0], device=real.device)
        with torch.no_grad(), self.autocast():
            fake = self.generator(z)
        with self.autocast():
            total, values = self._objective("critic", LossContext(real, fake, self.critic, self.joint))
        self.critic_opt.zero_grad(set_to_none=True)
        total.backward()
        self.critic_opt.step()
        if batch % self.n_critic == 0:
            self.critic.requires_grad_(False)
            try:
                with self.autocast():
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


def _differences(theirs: Any, ours: dict[str, Any]) -> str:
    """``key: a != b`` for the top-level keys of two config sections that differ."""
    theirs = theirs if isinstance(theirs, dict) else {}
    keys = sorted(k for k in {*theirs, *ours} if theirs.get(k) != ours.get(k))
    return ", ".join(f"{k}: {theirs.get(k)!r} in the checkpoint, {ours.get(k)!r} here" for k in keys[:4])


def _diverged_message(side: str, bad: list[str], values: dict[str, Tensor]) -> str:
    shown = ", ".join(f"{k.split('/', 1)[-1]}={float(v):.4g}" for k, v in values.items() if "/" in k)
    which = f"loss term {', '.join(repr(b) for b in bad)}" if bad else "the weighted sum of the loss terms"
    return f"{which} became non-finite in the {side} update ({shown})"


# --------------------------------------------------------------------------- optimisers, weight average


def build_optimizer(cfg: OptimizerConfig, params: Iterator[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """One network's optimiser from its config section."""
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay, eps=cfg.eps)
    kind = torch.optim.Adam if cfg.name == "adam" else torch.optim.AdamW
    return kind(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, eps=cfg.eps)


def autocast_for(device: torch.device, precision: str) -> AutocastFactory:
    """A context factory running forward passes in bfloat16 (``bf16``) or as they are (``fp32``)."""
    if precision == "fp32":
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


class WeightAverage:
    """Exponential moving average of a network's weights, for sampling.

    GAN generators oscillate around a good solution; the average is a smoother, usually
    better sampler (Karras et al. 2018; Yazici et al. 2019). Buffers (BatchNorm
    statistics) are copied, not averaged.
    """

    def __init__(self, network: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.network = copy.deepcopy(network).requires_grad_(False).eval()

    @torch.no_grad()
    def update(self, source: torch.nn.Module) -> None:
        torch._foreach_lerp_(list(self.network.parameters()), list(source.parameters()), 1.0 - self.decay)
        for mine, theirs in zip(self.network.buffers(), source.buffers(), strict=True):
            mine.copy_(theirs)


# --------------------------------------------------------------------------- reporting


class Reporter:
    """Progress callbacks; the CLI shows them as rich progress bars. All are optional."""

    def encoding(self, done: int, total: int | None) -> None: ...

    def epoch_start(self, epoch: int, epochs: int, batches: int, start_batch: int) -> None:
        """A period begins: an epoch, or ``eval_every`` generator updates (``training.schedule``)."""

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
        parts = build_run_parts(cfg, host)
        self.image_shape = parts.context.image
        self.transform = parts.transform.to(self.device)
        self.generator: Generator = parts.generator.to(self.device)  # type: ignore[union-attr]
        self.critic: Critic = parts.critic.to(self.device)  # type: ignore[union-attr]
        self.inverter = parts.inverter.to(self.device)  # type: ignore[union-attr]
        terms, weights = build_losses(cfg, host)
        for term in terms.values():
            if isinstance(term, torch.nn.Module):
                term.to(self.device)
        self.generator_opt = build_optimizer(t.generator_optimizer, self.generator.parameters())
        self.critic_opt = build_optimizer(t.critic_optimizer, self.critic.parameters())
        self.ema = WeightAverage(self.generator, t.ema_decay) if t.ema_decay > 0 else None
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
            autocast=autocast_for(self.device, t.precision),
        )
        self.data_rng = torch.Generator().manual_seed(cfg.seed)
        self.preview_latents = self.generator.sample_latent(
            t.preview_count, generator=torch.Generator().manual_seed(cfg.seed + 1)
        )

        # Progress; all of it goes into checkpoints.
        self.epoch = 0  # finished periods (epochs in the paper's schedule)
        self.step = 0  # finished batches, all periods
        self.generator_steps = 0  # finished generator updates
        self.batch = 0  # next batch of the current pass over the data
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
        self.history: list[dict[str, Any]] = []  # metrics lines, for the health checks
        self._interrupted = False
        self.stop_signal: int | None = None  # the signal that interrupted fit(), if any

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
        if run_dir.exists() and not run_dir.is_dir():
            raise InputError(f"run directory {run_dir} is a file; choose another --name or --run-dir")
        restart = run_dir.exists() and any(run_dir.iterdir())
        if restart and not never_checkpointed(run_dir):
            raise InputError(
                f"run directory {run_dir} already exists; choose another --name, or continue it with "
                f"`ssgan train --resume {run_dir}`"
            )
        trainer = cls(cfg, run_dir, host=host, device=device, reporter=reporter)
        if restart:
            trainer.reporter.message(f"{run_dir} stopped before its first checkpoint; starting it over")
            trainer._clear_unstarted()
        if cfg.training.init_from is not None:
            trainer.initialise_from(cfg.training.init_from)
        trainer.prepare()  # data problems surface before anything is written
        if cfg.training.init_from is None:
            trainer.start_generator_at_data()
        ensure_folder(run_dir / CHECKPOINT_DIR, "run directory")
        text = json.dumps({**dump_config(cfg), BUILT_WITH: trainer.built_with()}, indent=2)
        write_text(run_dir / CONFIG_FILE, text)
        write_text(run_dir / CHECKPOINT_DIR / CONFIG_FILE, text)
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
        """Continue a run from its ``checkpoints/last.ckpt``, exactly where it was saved.

        A run killed before its first checkpoint starts over from its saved config.
        """
        run_dir = run_dir_of(Path(run_dir))
        path = run_dir / CHECKPOINT_DIR / LAST
        if not path.exists():
            saved = run_dir / CONFIG_FILE
            if not saved.is_file():
                raise CheckpointError(
                    f"{run_dir}: no {CHECKPOINT_DIR}/{LAST} and no {CONFIG_FILE}; not an ssgan run directory"
                )
            try:
                cfg = validate_config(json.loads(saved.read_text()), host)
            except (ValueError, OSError) as exc:
                raise CheckpointError(f"{saved}: unreadable run config ({exc})") from None
            return cls.start(cfg, run_dir, host=host, device=device, reporter=reporter)
        for folder in (run_dir, run_dir / CHECKPOINT_DIR, run_dir / PREVIEW_DIR):
            remove_leftovers(folder)
        payload = load_checkpoint(path)
        if payload.get("critic") is None or "position" not in payload:
            raise CheckpointError(
                f"{path}: holds only a generator (an imported checkpoint); it cannot be resumed"
            )
        try:
            cfg = validate_config(payload["config"], host)
        except ConfigError as exc:
            raise CheckpointError(f"{path}: its saved config no longer validates: {exc}") from None
        warn_version_changes(payload.get(BUILT_WITH), str(path), host)
        trainer = cls(cfg, run_dir, host=host, device=device, reporter=reporter)
        trainer.load_state(payload, path)
        trainer._trim_metrics()
        return trainer

    def initialise_from(self, path: str | Path) -> None:
        """Fine-tuning: take the generator (and a critic of the same kind) from a checkpoint.

        The images must mean the same thing, so the transform and audio settings have to be
        equal; the generator's weights have to fit (options such as dropout may differ, and
        weights without an output bias load with a zero one). The optimisers, schedule and
        data start fresh."""
        ckpt = find_checkpoint(path)
        payload = load_checkpoint(ckpt)
        theirs, ours = payload.get("config") or {}, dump_config(self.cfg)
        for section in ("audio", "transform"):  # the generator only has to fit (below)
            if theirs.get(section) != ours[section]:
                raise InputError(
                    f"--init-from {ckpt}: its {section} settings differ from this run's "
                    f"({_differences(theirs.get(section), ours[section])}); use a preset with the same "
                    f"{section}, or --set them to the checkpoint's values"
                )
        try:
            self.generator.load_state_dict(payload.get("generator_train", payload["generator"]))
            if self.ema is not None:
                self.ema.network.load_state_dict(payload["generator"])
            same_critic = (theirs.get("critic") or {}).get("name") == self.cfg.critic.name
            if payload.get("critic") is not None and same_critic:
                self.critic.load_state_dict(payload["critic"])
                self.reporter.message(f"initialised generator and critic from {ckpt}")
            else:
                self.reporter.message(f"initialised the generator from {ckpt}; the critic starts fresh")
        except (KeyError, RuntimeError) as exc:
            raise CheckpointError(
                f"--init-from {ckpt}: weights do not fit this run's parts: {str(exc).splitlines()[0]}"
            ) from None

    @torch.no_grad()
    def start_generator_at_data(self) -> None:
        """Hand the generator the training images' mean (:meth:`Generator.start_from_data`)."""
        total = torch.zeros((), device=self.device)
        for chunk in self.train_idx.split(256):  # images per read: not an image size
            total = total + self.images_at(chunk).sum(0)
        self.generator.start_from_data(total / len(self.train_idx))
        if self.ema is not None:
            self.ema.network.load_state_dict(self.generator.state_dict())

    # ----------------------------------------------------------------- state

    def built_with(self) -> dict[str, Any]:
        """The image shape and each part's package and version, for checkpoints and config.json."""
        return built_with(self.cfg, self.image_shape, self.host)  # type: ignore[arg-type]

    def state(self) -> dict[str, Any]:
        """A checkpoint payload of everything needed to continue exactly."""
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "data": self.data_rng.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        elif self.device.type == "mps":
            rng["mps"] = torch.mps.get_rng_state()
        extra: dict[str, Any] = {}
        if self.ema is not None:  # "generator" is what generation samples with: the average
            extra["generator_train"] = self.generator.state_dict()
        return new_payload(
            dump_config(self.cfg),
            self.sampler.state_dict(),
            **extra,
            critic=self.critic.state_dict(),
            optimizers={"generator": self.generator_opt.state_dict(), "critic": self.critic_opt.state_dict()},
            schedulers={k: s.state_dict() for k, s in self.schedulers.items()},
            epoch=self.epoch,
            step=self.step,
            generator_steps=self.generator_steps,
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
            built_with=self.built_with(),
        )

    def load_state(self, payload: dict[str, Any], path: Path | str = "checkpoint") -> None:
        try:
            self.generator.load_state_dict(payload.get("generator_train", payload["generator"]))
            if self.ema is not None:
                self.ema.network.load_state_dict(payload["generator"])
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
            self.generator_steps = int(payload.get("generator_steps", 0))
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

    def _clear_unstarted(self) -> None:
        """Remove what a run killed before its first checkpoint wrote (metrics, previews)."""
        (self.run_dir / METRICS_FILE).unlink(missing_ok=True)
        remove_leftovers(self.run_dir)
        for folder in (self.run_dir / PREVIEW_DIR, self.run_dir / CHECKPOINT_DIR):
            if folder.is_dir():
                for entry in folder.iterdir():
                    if entry.is_file():
                        entry.unlink()

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
        with torch.no_grad():  # the data's side of the health checks, on as many clips as previews
            sample = self.images_at(self.val_idx[: max(self.cfg.training.preview_count, 2)]).cpu()
            stats = image_stats(sample)
            self.data_stats = {f"data_{k}": stats[k] for k in ("diversity", "channel_gap") if k in stats}
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
            self.val_audio = torch.empty(
                len(reference), AUDIO_CHANNELS, self.audio.num_samples
            )  # filled later
            with self._side_rng():
                for begin in range(0, len(reference), chunk):
                    images = self.images_at(reference[begin : begin + chunk])
                    self.val_audio[begin : begin + chunk] = self._render(images)
                self.data_stats.update(self._data_fd(self.val_audio))

    def _data_fd(self, reference: Tensor) -> dict[str, float]:
        """FD of as many *training* clips as previews, rendered as previews are, against the
        validation audio: the per-period FD a generator that drew real clips would score."""
        from ssgan_core.metrics import frechet_distance_audio

        count = min(max(self.cfg.training.preview_count, 2), len(self.train_idx))
        pick = torch.randperm(len(self.train_idx), generator=torch.Generator().manual_seed(self.cfg.seed + 4))
        audio = self._render(self.images_at(self.train_idx[pick[:count].to(self.train_idx.device)]))
        try:
            return {"data_fd": frechet_distance_audio(audio, reference, self.audio.sample_rate)}
        except InputError:  # silent clips: no floor, the far-from-data check stays quiet
            return {}

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

    @property
    def sampler(self) -> Generator:
        """The generator previews, validation and checkpoints sample with (the average if kept)."""
        return self.ema.network if self.ema is not None else self.generator  # type: ignore[return-value]

    @property
    def period_batches(self) -> int:
        """Batches per period: an epoch, or ``eval_every`` generator updates."""
        t = self.cfg.training
        return self.batches_per_epoch if t.schedule == "epochs" else t.eval_every * t.n_critic

    @property
    def total_batches(self) -> int:
        t = self.cfg.training
        return t.epochs * self.batches_per_epoch if t.schedule == "epochs" else t.steps * t.n_critic

    @property
    def periods(self) -> int:
        return math.ceil(self.total_batches / self.period_batches)

    def fit(self, *, max_steps: int | None = None) -> TrainResult:
        """Train to the end. ``max_steps`` pauses after that many total steps without saving
        (as if the process were killed there); tests use it to check resuming."""
        self.prepare()
        restore = self._catch_ctrl_c()
        try:
            while self.epoch < self.periods and not self.stopped_early:
                status = self._train_period(max_steps)
                if status is not None:
                    return self._result(status)
                self._end_period()
        except TrainingDiverged as exc:
            last = self.run_dir / CHECKPOINT_DIR / LAST
            kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written yet"
            raise TrainingDiverged(
                f"training stopped at period {self.epoch + 1}, step {self.step + 1}: {exc}; {kept}. "
                "Try lower learning rates (training.critic_optimizer.lr, training.generator_optimizer.lr) "
                "or another seed"
            ) from None
        finally:
            restore()
        return self._result("early-stopped" if self.stopped_early else "finished")

    def _next_indices(self) -> Tensor:
        """Dataset indices of the next batch; a new shuffled pass starts when one ends."""
        if self.order is None or self.batch >= self.batches_per_epoch:
            self.order = torch.randperm(len(self.train_idx), generator=self.data_rng)
            self.batch = 0
        bs = self.cfg.training.batch_size
        return self.train_idx[self.order[self.batch * bs : (self.batch + 1) * bs].to(self.device)]

    def _train_period(self, max_steps: int | None) -> str | None:
        cfg = self.cfg.training
        first = self.epoch * self.period_batches
        end = min(first + self.period_batches, self.total_batches)
        self.reporter.epoch_start(self.epoch + 1, self.periods, end - first, self.step - first)
        self.generator.train()
        self.critic.train()
        started = time.perf_counter()
        while self.step < end:
            idx = self._next_indices()
            # The paper's schedule counts generator turns within each epoch; the step schedule
            # counts them over the whole run, so `steps` is exactly the number of updates.
            turn = self.batch if cfg.schedule == "epochs" else self.step
            values = self.stepper.step(self.images_at(idx), turn)
            if "generator_loss" in values:
                self.generator_steps += 1
                if self.ema is not None:
                    self.ema.update(self.generator)
            for key, value in values.items():
                self.sums[key] = self.sums[key] + value if key in self.sums else value.clone()
                self.counts[key] = self.counts.get(key, 0) + 1
            self.batch += 1
            self.step += 1
            if (self.step - first) % REPORT_EVERY == 0 or self.step == end:
                self.reporter.step(self.step - first, self._means())
            if max_steps is not None and self.step >= max_steps:
                return "paused"
            if self._interrupted:
                self.epoch_seconds += time.perf_counter() - started
                self.save()
                return "interrupted"
            every = cfg.checkpoint_every_steps
            if every and self.step % every == 0 and self.step < end:
                self.epoch_seconds += time.perf_counter() - started
                started = time.perf_counter()
                self.save()
        self.epoch_seconds += time.perf_counter() - started
        return None

    def _means(self) -> dict[str, float]:
        return {k: float(v) / self.counts[k] for k, v in self.sums.items()}

    def _end_period(self) -> None:
        period = self.epoch + 1
        cfg = self.cfg.training
        means = self._means()
        batches = self.step - self.epoch * self.period_batches
        metrics: dict[str, Any] = {"epoch": period, "step": self.step, **means}
        metrics["generator_steps"] = self.generator_steps
        metrics["data_epochs"] = round(self.step / self.batches_per_epoch, 3)
        metrics["lr_generator"] = self.generator_opt.param_groups[0]["lr"]
        metrics["lr_critic"] = self.critic_opt.param_groups[0]["lr"]
        metrics["seconds"] = round(self.epoch_seconds, 3)
        metrics["samples_per_s"] = batches * cfg.batch_size / max(self.epoch_seconds, 1e-9)

        started = time.perf_counter()
        with self._side_rng():
            self.reporter.phase("validating")
            metrics.update(self.validate())
            self.reporter.phase("writing previews")
            metrics.update(self.write_previews(period))
        metrics["val_seconds"] = round(time.perf_counter() - started, 3)

        with warnings.catch_warnings():  # decay per period even if a period had no generator step
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
            for scheduler in self.schedulers.values():
                scheduler.step()
        improved = self._update_early_stopping(period, metrics)
        metrics["best_epoch"] = self.best_epoch
        findings = check_period([*self.history, metrics], cfg.health)
        metrics["health"] = [f.kind for f in findings]
        metrics["health_advice"] = [f"{f.kind}: {f.advice}" for f in findings]
        for finding in findings:
            self.reporter.message(f"run health, period {period}: {finding}")
        self.epoch = period
        self.sums, self.counts, self.epoch_seconds = {}, {}, 0.0
        self.last_metrics = metrics
        self.history.append(metrics)
        self._append_metrics(metrics)  # before the checkpoint: a resume trims lines it has not reached
        self.save(best=improved)
        self.reporter.epoch_end(metrics)

    def _update_early_stopping(self, epoch: int, metrics: dict[str, Any]) -> bool:
        """Track the best period from period ``warmup`` on; stop after ``patience`` periods with no gain."""
        rule = self.cfg.training.early_stopping
        value = metrics["val_abs_w"] if rule.metric == "abs_w" else metrics.get("fd")
        metrics["early_stopping_metric"] = value
        if epoch < rule.warmup or value is None:  # as the original: period `warmup` is the first compared
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
        """Critic scores on validation data in eval mode: the Wasserstein estimate
        ``mean D(real) - mean D(fake)`` and how well the critic ranks real above fake (AUC)."""
        self.sampler.eval()
        self.critic.eval()
        bs = self.cfg.training.batch_size
        real_scores, fake_scores = [], []
        for start in range(0, len(self.val_idx), bs):
            real = self.images_at(self.val_idx[start : start + bs])
            fake = self.sampler(self.val_latents[start : start + bs].to(self.device))
            real_scores.append(self.critic(real).float())
            fake_scores.append(self.critic(fake).float())
        real_all, fake_all = torch.cat(real_scores), torch.cat(fake_scores)
        val_w = float(real_all.sum() - fake_all.sum()) / len(self.val_idx)
        self.generator.train()
        self.critic.train()
        return {"val_w": val_w, "val_abs_w": abs(val_w), "val_auc": ranking_auc(real_all, fake_all)}

    def write_previews(self, epoch: int) -> dict[str, float]:
        """Fixed-latent previews: a PNG grid, some WAVs, their FD against validation audio,
        and the image statistics the health checks compare with the data's."""
        from ssgan_core.png import save_spectrogram_png

        cfg = self.cfg
        folder = self.run_dir / PREVIEW_DIR
        folder.mkdir(parents=True, exist_ok=True)
        self.sampler.eval()
        with torch.no_grad():
            images = torch.cat(
                [
                    self.sampler(z.to(self.device)).float().cpu()
                    for z in self.preview_latents.split(cfg.training.batch_size)
                ]
            )
        self.generator.train()
        save_spectrogram_png(images, folder / f"epoch_{epoch:03d}.png", span=self.transform.display_span)
        out: dict[str, float] = {**image_stats(images), **self.data_stats}
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
                self.reporter.message(f"FD not computed this period: {exc}")
        return out

    def _append_metrics(self, metrics: dict[str, Any]) -> None:
        with open(self.run_dir / METRICS_FILE, "a") as fh:
            fh.write(json.dumps(metrics) + "\n")

    def _trim_metrics(self) -> None:
        """Keep only whole lines of epochs the checkpoint holds: a kill can leave a line of a
        later epoch, or half a line, at the end."""
        path = self.run_dir / METRICS_FILE
        if not path.exists():
            return
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        epochs = [_metrics_epoch(ln) for ln in lines]
        kept = [
            ln for ln, epoch in zip(lines, epochs, strict=True) if epoch is not None and epoch <= self.epoch
        ]
        self.history = [json.loads(ln) for ln in kept]
        if len(kept) != len(lines):
            write_text(path, "".join(ln + "\n" for ln in kept))

    def _result(self, status: str) -> TrainResult:
        return TrainResult(
            status, self.run_dir, self.epoch, self.step, self.best_epoch, self.best_metric, self.last_metrics
        )

    def _catch_ctrl_c(self) -> Callable[[], None]:
        """First Ctrl-C or SIGTERM (what schedulers send): finish the current step, save,
        return. A second one aborts at once."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        caught = (signal.SIGINT, signal.SIGTERM)
        previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in caught}

        def handler(signum: int, frame: Any) -> None:
            self._interrupted = True
            self.stop_signal = signum
            signal.signal(signum, previous[signum])
            name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
            self.reporter.message(f"stopping after this step ({name} again to abort without saving)")

        for sig in caught:
            signal.signal(sig, handler)

        def restore() -> None:
            for sig in caught:
                signal.signal(sig, previous[sig])

        return restore


def _metrics_epoch(line: str) -> int | None:
    """The epoch of one metrics.jsonl line, or ``None`` for a half-written or foreign line."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    epoch = record.get("epoch") if isinstance(record, dict) else None
    return epoch if isinstance(epoch, int) else None


RUN_ENTRIES = frozenset({CONFIG_FILE, METRICS_FILE, PREVIEW_DIR, CHECKPOINT_DIR})
"""What a run directory holds; a folder with anything else is never cleared."""


def never_checkpointed(run_dir: Path) -> bool:
    """A run folder written by a start that was killed before its first checkpoint."""
    if not (run_dir / CONFIG_FILE).is_file():
        return False
    if any(entry.name not in RUN_ENTRIES and not is_temp_name(entry.name) for entry in run_dir.iterdir()):
        return False
    folder = run_dir / CHECKPOINT_DIR
    return not folder.is_dir() or not any(folder.glob("*.ckpt"))


def run_dir_of(path: Path) -> Path:
    """The run directory of ``--resume PATH``: the folder itself, or the run a checkpoint is in."""
    if path.is_file() and path.parent.name == CHECKPOINT_DIR:
        return path.parent.parent
    if path.is_file():
        raise InputError(f"--resume {path}: expected a run directory (the folder holding {CHECKPOINT_DIR}/)")
    if not path.is_dir():
        raise InputError(f"--resume {path}: no such run directory")
    return path
