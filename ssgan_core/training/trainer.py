"""The trainer: feeds batches to the step, runs the period-end callbacks, saves and resumes.

``Trainer.start(cfg)`` makes a run directory; ``Trainer.resume(run_dir)`` continues one
from ``checkpoints/last.ckpt``. ``trainer.fit()`` trains until the length the schedule
sets (``training.schedule``: epochs, or generator updates), early stopping, a Ctrl-C or
SIGTERM (saved, resumable) or a non-finite loss (stopped before the bad update, the last
good checkpoint kept). Validation, previews, checkpoints, LR decay and early stopping
happen once per *period*: an epoch, or ``training.eval_every`` generator updates.

The trainer is composed of small pieces: the step (:class:`~ssgan_core.training.step.GanStepper`),
a state registry that every component puts its part of the checkpoint in
(:mod:`~ssgan_core.training.state`), and period-end callbacks for validation, previews,
learning-rate decay, early stopping, health and the metrics log
(:mod:`~ssgan_core.training.callbacks`). Under ``torchrun`` it trains data-parallel
(:mod:`~ssgan_core.training.distributed`, docs/distributed.md): rank 0 alone writes.

Resume is exact: the checkpoint holds the weights, optimiser and scheduler states, the
global and data-order RNG states, and the position inside the epoch (its batch order
and index), so the step after a resume equals the step an uninterrupted run takes.
Validation and previews run under a forked RNG so they never shift the training stream.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

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
from ssgan_core.config import BUILT_WITH, RunConfig, dump_config, validate_config
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
)
from ssgan_core.health import image_stats
from ssgan_core.interfaces import AUDIO_CHANNELS, Critic, Generator
from ssgan_core.memory import keep_freed_memory
from ssgan_core.training.callbacks import (
    METRICS_FILE,
    PREVIEW_DIR,
    EarlyStopping,
    MetricsLog,
    PeriodCallback,
    default_callbacks,
)
from ssgan_core.training.distributed import World, join_world, replicas_for
from ssgan_core.training.state import (
    Attribute,
    GeneratorWeights,
    RngStates,
    RunProgress,
    StateGroup,
    StateRegistry,
    rank_seed,
)
from ssgan_core.training.step import (
    GanStepper,
    TrainingDiverged,
    WeightAverage,
    autocast_for,
    build_optimizer,
    grad_scalers,
)

CONFIG_FILE = "config.json"
REPORT_EVERY = 5
"""Steps between live-loss updates (each one reads running sums back from the device)."""
FD_REFERENCE_CLIPS = 1024
"""Validation clips (at most; a seeded choice) rendered as the per-epoch FD reference, so the
audio held for it stops growing with the folder (2,000 clips of 0.6 s would be 423 MB)."""
T = TypeVar("T")


class RankStopped(SsganError):
    """Rank 0 failed while the others waited for it; its own message says why.

    Its exit code differs from a failure's (2), so a launcher can tell the rank that
    failed from the ranks it stopped, whichever process ended first.
    """

    exit_code = 3


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


def main_first(world: World, work: Callable[[], T]) -> T:
    """``work`` on rank 0, then on the other ranks (they reuse what it cached or checked).

    A failure on rank 0 stops every rank: rank 0 raises its own error, the others a
    :class:`RankStopped` that the CLI does not print, so the user reads one message.
    """
    if world.size == 1:
        return work()
    error: SsganError | None = None
    result: Any = None
    if world.is_main:
        try:
            result = work()
        except SsganError as exc:
            error = exc
    failed = world.broadcast_object(None if error is None else str(error))
    if error is not None:
        raise error
    if failed is not None:
        raise RankStopped(f"rank 0 stopped the run: {failed}")
    return result if world.is_main else work()


def per_rank_batch(cfg: RunConfig, world: World) -> int:
    """``training.batch_size`` per rank, or divided among the ranks (``batch_scope = global``)."""
    t = cfg.training
    if t.batch_scope == "per-rank":
        return t.batch_size
    if t.batch_size % world.size:
        raise ConfigError(
            f"training.batch_size = {t.batch_size} with batch_scope = 'global' does not split over "
            f"{world.size} ranks; use a multiple of {world.size}"
        )
    return t.batch_size // world.size


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
        self.world, self.device = join_world(resolve_device(device or t.device))
        self.reporter = (reporter or Reporter()) if self.world.is_main else Reporter()
        self.autocast = autocast_for(self.device, t.precision)  # fp16 off CUDA fails here, before any work
        self.audio = cfg.audio.spec()
        self.batch_size = per_rank_batch(cfg, self.world)

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
        if t.channels_last:
            self.generator.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            self.critic.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.generator_opt = build_optimizer(t.generator_optimizer, self.generator.parameters())
        self.critic_opt = build_optimizer(t.critic_optimizer, self.critic.parameters())
        self.ema = WeightAverage(self.generator, t.ema_decay) if t.ema_decay > 0 else None
        self.schedulers = {
            "generator": torch.optim.lr_scheduler.ExponentialLR(self.generator_opt, gamma=t.lr_gamma),
            "critic": torch.optim.lr_scheduler.ExponentialLR(self.critic_opt, gamma=t.lr_gamma),
        }
        self.scalers = grad_scalers(self.device, t.precision)
        self.stepper = GanStepper(
            self.generator,
            self.critic,
            terms,
            weights,
            self.generator_opt,
            self.critic_opt,
            t.n_critic,
            joint=t.critic_batches == "joint",
            autocast=self.autocast,
            replicas=replicas_for(self.generator, self.critic, self.world, self.device, compile=t.compile),
            scalers=self.scalers,
        )
        self.data_rng = torch.Generator().manual_seed(cfg.seed)
        self.preview_latents = self.generator.sample_latent(
            t.preview_count, generator=torch.Generator().manual_seed(cfg.seed + 1)
        )
        extra = max((t.fd_clips or 0) - t.preview_count, 0)  # more fixed latents for a steadier FD
        self.fd_latents = torch.cat(
            [
                self.preview_latents,
                self.generator.sample_latent(extra, generator=torch.Generator().manual_seed(cfg.seed + 5)),
            ]
        )
        if self.world.rank > 0:  # each rank its own latents and noise; rank 0 draws as one process does
            torch.manual_seed(rank_seed(cfg.seed, self.world.rank))

        self.progress = RunProgress(self.device)
        self.callbacks: list[PeriodCallback] = default_callbacks(self)
        self.early_stopping = next(cb for cb in self.callbacks if isinstance(cb, EarlyStopping))
        self.metrics_log = next(cb for cb in self.callbacks if isinstance(cb, MetricsLog))
        self.data_key: str | None = None
        self.names: list[str] | None = None  # clip names of the prepared dataset
        self.state = self._register_state()
        self._interrupted = False
        self.stop_signal: int | None = None  # the signal that interrupted fit(), if any

    def _register_state(self) -> StateRegistry:
        """Every part of the checkpoint, each registered once by what owns it (format version 1 keys)."""
        registry = StateRegistry()
        registry.register_fields(GeneratorWeights(self.generator, self.ema))
        registry.register("critic", self.critic)
        registry.register(
            "optimizers", StateGroup({"generator": self.generator_opt, "critic": self.critic_opt})
        )
        registry.register("schedulers", StateGroup(self.schedulers))
        if self.scalers is not None:
            registry.register("scalers", StateGroup(self.scalers), optional=True)
        registry.register_fields(self.progress)  # before the RNG, whose reseed reads the step
        reseed = lambda: rank_seed(self.cfg.seed + self.progress.step, self.world.rank)  # noqa: E731
        registry.register("rng", RngStates(self.device, self.data_rng, self.world, reseed))
        registry.register_fields(Attribute(self, "data_key"))
        for callback in self.callbacks:
            callback.register_state(registry)
        return registry

    # ----------------------------------------------------------------- progress, as the CLI and tests read it

    @property
    def epoch(self) -> int:
        """Finished periods (epochs in the paper's schedule)."""
        return self.progress.epoch

    @property
    def step(self) -> int:
        """Finished batches, all periods."""
        return self.progress.step

    @property
    def batch(self) -> int:
        return self.progress.batch

    @property
    def history(self) -> list[dict[str, Any]]:
        """Metrics lines so far, for the health checks."""
        return self.metrics_log.history

    @property
    def last_metrics(self) -> dict[str, Any]:
        return self.metrics_log.last

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
        world, _ = join_world(resolve_device(device or cfg.training.device))
        chosen = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
        run_dir = Path(world.broadcast_object(str(chosen)))  # one timestamp for all ranks
        restart = main_first(world, lambda: _check_new_run_dir(run_dir))
        trainer = cls(cfg, run_dir, host=host, device=device, reporter=reporter)
        if restart and world.is_main:
            trainer.reporter.message(f"{run_dir} stopped before its first checkpoint; starting it over")
            trainer._clear_unstarted()
        if cfg.training.init_from is not None:
            trainer.initialise_from(cfg.training.init_from)
        trainer.prepare()  # data problems surface before anything is written
        if cfg.training.init_from is None:
            trainer.start_generator_at_data()  # every rank alike: the same images, the same sum
        if world.is_main:
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

        A run killed before its first checkpoint starts over from its saved config. A
        checkpoint saved by any number of ranks resumes on any number (docs/distributed.md).
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
        if trainer.world.is_main:
            for folder in (run_dir, run_dir / CHECKPOINT_DIR, run_dir / PREVIEW_DIR):
                remove_leftovers(folder)
        trainer.load_state(payload, path)
        trainer.metrics_log.trim(trainer.epoch)
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
            GeneratorWeights(self.generator, self.ema).load_state_dict(payload)
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

    def state_dict(self) -> dict[str, Any]:
        """A checkpoint payload of everything needed to continue exactly (a collective under torchrun)."""
        entries = self.state.state_dict()
        return new_payload(dump_config(self.cfg), **entries, built_with=self.built_with())

    def load_state(self, payload: dict[str, Any], path: Path | str = "checkpoint") -> None:
        try:
            self.state.load_state_dict(payload)
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
        """Every rank takes part (RNG states are gathered); rank 0 writes."""
        payload = self.state_dict()
        if not self.world.is_main:
            return
        folder = self.run_dir / CHECKPOINT_DIR
        save_checkpoint(folder / LAST, payload)
        if best:
            save_checkpoint(folder / BEST, payload)

    # ----------------------------------------------------------------- data

    def prepare(self) -> None:
        """Encode (or load from cache) the dataset and split it by source clip.

        Images stay in the cache file (:class:`~ssgan_core.data.ImageStore`); each batch
        is read when it is needed, so memory does not grow with the folder. Rank 0
        encodes first; the other ranks then read its cache.
        """
        if self.names is not None:
            return
        main_first(self.world, self._load_data)
        self._count_steps_in_this_world()
        with torch.no_grad():  # the data's side of the health checks, on as many clips as previews
            sample = self.images_at(self.val_idx[: max(self.cfg.training.preview_count, 2)]).cpu()
            stats = image_stats(sample)
            self.data_stats = {f"data_{k}": stats[k] for k in ("diversity", "channel_gap") if k in stats}
        self.val_audio: Tensor | None = None
        if self.cfg.training.fd_every_epoch and self.world.is_main:
            self._render_fd_reference()

    def _load_data(self) -> None:
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
        global_batch = self.batch_size * self.world.size
        if len(train_idx) < global_batch:
            ranks = f" x {self.world.size} ranks" if self.world.size > 1 else ""
            raise InputError(
                f"only {len(train_idx)} training images (of {len(data)}) for a batch of "
                f"{self.batch_size}{ranks} (training.batch_size); add data or lower the batch size"
            )
        self.names = data.names
        self.images = data.images
        self.train_idx, self.val_idx = train_idx.to(self.device), val_idx.to(self.device)
        self.batches_per_epoch = len(train_idx) // global_batch
        self.val_latents = self.generator.sample_latent(
            len(val_idx), generator=torch.Generator().manual_seed(self.cfg.seed + 2)
        )

    def _count_steps_in_this_world(self) -> None:
        """A checkpoint saved with another global batch (other ranks) continues in this one's steps."""
        p, new = self.progress, self.batch_size * self.world.size
        old, p.global_batch = p.global_batch, new
        if old is None or old == new:
            return
        old_epoch_batches = len(self.train_idx) // old
        p.rebatch(old, new, old_epoch_batches, self.batches_per_epoch, self.cfg.training.schedule == "epochs")
        self.reporter.message(
            f"resuming with a global batch of {new} (saved with {old}): the run continues at step {p.step}; "
            "see docs/distributed.md for the learning-rate rule"
        )

    def _render_fd_reference(self) -> None:
        reference = self.val_idx
        if len(reference) > FD_REFERENCE_CLIPS:
            pick = torch.randperm(len(reference), generator=torch.Generator().manual_seed(self.cfg.seed + 3))
            reference = reference[pick[:FD_REFERENCE_CLIPS].to(reference.device)].sort().values
        self.reporter.phase("rendering validation audio")
        chunk = 16 * self.cfg.training.batch_size  # whole batches: the inverter draws as in one call
        self.val_audio = torch.empty(len(reference), AUDIO_CHANNELS, self.audio.num_samples)  # filled below
        with self.side_rng():
            for begin in range(0, len(reference), chunk):
                images = self.images_at(reference[begin : begin + chunk])
                self.val_audio[begin : begin + chunk] = self.render(images)
            self.data_stats.update(self._data_fd(self.val_audio))

    def _data_fd(self, reference: Tensor) -> dict[str, float]:
        """FD of as many *training* clips as the per-period FD draws, rendered alike, against the
        validation audio: the per-period FD a generator that drew real clips would score."""
        from ssgan_core.metrics import frechet_distance_audio

        count = min(max(len(self.fd_latents), 2), len(self.train_idx))
        pick = torch.randperm(len(self.train_idx), generator=torch.Generator().manual_seed(self.cfg.seed + 4))
        audio = self.render(self.images_at(self.train_idx[pick[:count].to(self.train_idx.device)]))
        try:
            return {"data_fd": frechet_distance_audio(audio, reference, self.audio.sample_rate)}
        except InputError:  # silent clips: no floor, the far-from-data check stays quiet
            return {}

    def images_at(self, idx: Tensor) -> Tensor:
        """Dataset images at ``idx`` as a float32 batch on the device, read from the cache file."""
        return self.images.take(idx, self.device)

    def render(self, images: Tensor) -> Tensor:
        return render_audio(
            images, self.transform, self.inverter, device=self.device, batch_size=self.cfg.training.batch_size
        )

    @contextlib.contextmanager
    def side_rng(self) -> Iterator[None]:
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
        keep_freed_memory()  # the data is encoded by now; each step reuses the last one's blocks
        restore = self._catch_ctrl_c()
        try:
            while self.epoch < self.periods and not self.early_stopping.stopped:
                status = self._train_period(max_steps)
                if status is not None:
                    return self._result(status)
                self._end_period()
        except TrainingDiverged as exc:
            last = self.run_dir / CHECKPOINT_DIR / LAST
            kept = f"the last good checkpoint is {last}" if last.exists() else "no checkpoint was written yet"
            rank = f" on rank {self.world.rank}" if self.world.size > 1 else ""
            raise TrainingDiverged(
                f"training stopped{rank} at period {self.epoch + 1}, step {self.step + 1}: {exc}; {kept}. "
                "Try lower learning rates (training.critic_optimizer.lr, training.generator_optimizer.lr) "
                "or another seed"
            ) from None
        finally:
            restore()
        return self._result("early-stopped" if self.early_stopping.stopped else "finished")

    def _next_indices(self) -> Tensor:
        """This rank's dataset indices of the next batch; a new shuffled pass starts when one ends.

        Every rank draws the same order (the data stream is seeded by the run seed) and takes
        every ``world``-th item of the global batch, as ``DistributedSampler`` does.
        """
        p, world = self.progress, self.world
        if p.order is None or p.batch >= self.batches_per_epoch:
            p.order = torch.randperm(len(self.train_idx), generator=self.data_rng)
            p.batch = 0
        bs = self.batch_size * world.size
        mine = p.order[p.batch * bs : (p.batch + 1) * bs][world.rank :: world.size]
        return self.train_idx[mine.to(self.device)]

    def _real_batch(self, idx: Tensor) -> Tensor:
        real = self.images_at(idx)
        if self.cfg.training.channels_last and real.dim() == 4:
            real = real.contiguous(memory_format=torch.channels_last)
        return real

    def _train_period(self, max_steps: int | None) -> str | None:
        cfg, p = self.cfg.training, self.progress
        first = p.epoch * self.period_batches
        end = min(first + self.period_batches, self.total_batches)
        self.reporter.epoch_start(p.epoch + 1, self.periods, end - first, p.step - first)
        self.generator.train()
        self.critic.train()
        started = time.perf_counter()
        while p.step < end:
            idx = self._next_indices()
            # The paper's schedule counts generator turns within each epoch; the step schedule
            # counts them over the whole run, so `steps` is exactly the number of updates.
            turn = p.batch if cfg.schedule == "epochs" else p.step
            values = self.stepper.step(self._real_batch(idx), turn)
            if "generator_loss" in values:
                p.generator_steps += 1
                if self.ema is not None:
                    self.ema.update(self.generator)
            p.add(values)
            p.batch += 1
            p.step += 1
            self.after_step()
            if (p.step - first) % REPORT_EVERY == 0 or p.step == end:
                self.reporter.step(p.step - first, self._local_means())
            if max_steps is not None and p.step >= max_steps:
                return "paused"
            if self.world.any(self._interrupted):  # every rank stops at the same step
                p.seconds += time.perf_counter() - started
                self.save()
                return "interrupted"
            every = cfg.checkpoint_every_steps
            if every and p.step % every == 0 and p.step < end:
                p.seconds += time.perf_counter() - started
                started = time.perf_counter()
                self.save()
        p.seconds += time.perf_counter() - started
        return None

    def after_step(self) -> None:
        """Called after every step; tests hook it to look at the weights."""

    def _local_means(self) -> dict[str, float]:
        p = self.progress
        return {k: float(v) / p.counts[k] for k, v in p.sums.items()}

    def _means(self) -> dict[str, float]:
        """Loss means of the period over every rank's batches."""
        p = self.progress
        if self.world.size == 1 or not p.sums:
            return self._local_means()
        keys = sorted(p.sums)
        totals = self.world.sum_(torch.stack([p.sums[k].float() for k in keys]))
        return {k: float(v) / (p.counts[k] * self.world.size) for k, v in zip(keys, totals, strict=True)}

    def _end_period(self) -> None:
        p = self.progress
        period = p.epoch + 1
        batches = p.step - p.epoch * self.period_batches
        metrics: dict[str, Any] = {"epoch": period, "step": p.step, **self._means()}
        metrics["generator_steps"] = p.generator_steps
        metrics["data_epochs"] = round(p.step / self.batches_per_epoch, 3)
        metrics["lr_generator"] = self.generator_opt.param_groups[0]["lr"]
        metrics["lr_critic"] = self.critic_opt.param_groups[0]["lr"]
        metrics["seconds"] = round(p.seconds, 3)
        metrics["samples_per_s"] = batches * self.batch_size * self.world.size / max(p.seconds, 1e-9)
        if self.world.size > 1:
            metrics["ranks"] = self.world.size
        for callback in self.callbacks:
            if self.world.is_main or not callback.main_only:
                callback.on_period_end(self, period, metrics)
            if callback.main_only:  # every rank goes on with rank 0's numbers
                metrics = self.world.broadcast_object(metrics)
        p.epoch = period
        p.start_period()
        self.save(best=self.early_stopping.improved)
        self.reporter.epoch_end(metrics)

    def _result(self, status: str) -> TrainResult:
        stopping = self.early_stopping
        return TrainResult(
            status,
            self.run_dir,
            self.epoch,
            self.step,
            stopping.best_epoch,
            stopping.best_metric,
            self.last_metrics,
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


def _check_new_run_dir(run_dir: Path) -> bool:
    """Refuse a used run directory; ``True`` when it holds only a start killed before its first checkpoint."""
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"run directory {run_dir} is a file; choose another --name or --run-dir")
    restart = run_dir.exists() and any(run_dir.iterdir())
    if restart and not never_checkpointed(run_dir):
        raise InputError(
            f"run directory {run_dir} already exists; choose another --name, or continue it with "
            f"`ssgan train --resume {run_dir}`"
        )
    return restart


def _differences(theirs: Any, ours: dict[str, Any]) -> str:
    """``key: a != b`` for the top-level keys of two config sections that differ."""
    theirs = theirs if isinstance(theirs, dict) else {}
    keys = sorted(k for k in {*theirs, *ours} if theirs.get(k) != ours.get(k))
    return ", ".join(f"{k}: {theirs.get(k)!r} in the checkpoint, {ours.get(k)!r} here" for k in keys[:4])


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
