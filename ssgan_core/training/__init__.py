"""Training: the step, the state registry, period-end callbacks, data-parallel ranks, the trainer.

Import from here (``from ssgan_core.training import Trainer``); the modules are
``step`` (one GAN update, optimisers, precision), ``state`` (what a checkpoint holds),
``callbacks`` (validation, previews, early stopping, health, metrics),
``distributed`` (torchrun, DDP, synchronised BatchNorm) and ``trainer``.
"""

from ssgan_core.training.callbacks import (
    METRICS_FILE,
    PREVIEW_DIR,
    EarlyStopping,
    Health,
    LearningRateDecay,
    MetricsLog,
    PeriodCallback,
    Previews,
    Validation,
)
from ssgan_core.training.distributed import SyncBatchNorm, World
from ssgan_core.training.state import StateRegistry
from ssgan_core.training.step import (
    GanStepper,
    Replicas,
    TrainingDiverged,
    WeightAverage,
    autocast_for,
    build_optimizer,
)
from ssgan_core.training.trainer import (
    CONFIG_FILE,
    RUN_ENTRIES,
    RankStopped,
    Reporter,
    Trainer,
    TrainResult,
    default_run_dir,
    never_checkpointed,
    run_dir_of,
    seed_everything,
)

__all__ = [
    "CONFIG_FILE",
    "METRICS_FILE",
    "PREVIEW_DIR",
    "RUN_ENTRIES",
    "EarlyStopping",
    "GanStepper",
    "Health",
    "LearningRateDecay",
    "MetricsLog",
    "PeriodCallback",
    "Previews",
    "RankStopped",
    "Replicas",
    "Reporter",
    "StateRegistry",
    "SyncBatchNorm",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "Validation",
    "WeightAverage",
    "World",
    "autocast_for",
    "build_optimizer",
    "default_run_dir",
    "never_checkpointed",
    "run_dir_of",
    "seed_everything",
]
