"""One pydantic tree for a run, presets, files and ``a.b=value`` overrides.

A part section (``transform``, ``generator``, ``critic``, ``inverter``,
``data.source``) is ``{"name": plugin_name, **plugin_options}``; ``losses`` maps
loss plugin names to their options. Plugin options are validated by the model each
plugin registered, so ``ssgan config show`` prints every option with its default.

Resolution order: defaults < preset < config file < ``--set`` overrides.
Overriding a part's ``name`` starts that part from the new plugin's defaults.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ssgan_core.errors import ConfigError, SsganError
from ssgan_core.registry import UnknownPartError

MAX_SEED = 2**32 - 1
"""Largest seed: torch accepts up to 2**64 - 1, but ``seed + 2`` and numpy's legacy seeding
must fit too, and 2**32 seeds are plenty."""

if TYPE_CHECKING:
    from ssgan_core.interfaces import AudioSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PartConfig(BaseModel):
    """``name`` picks the plugin; every other key is that plugin's option."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="Registered plugin name (see `ssgan list-plugins`).")

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class LossOptions(BaseModel):
    """Base options for loss terms: every term has a weight."""

    model_config = ConfigDict(extra="forbid")

    weight: float = Field(1.0, ge=0, description="Multiplier of this term; 0 disables it.")


class AudioConfig(_Strict):
    sample_rate: int = Field(44_100, ge=8_000, le=192_000, description="Hz; inputs are resampled to it.")
    seconds: float = Field(0.6, gt=0, le=30, description="Fixed clip length; inputs are padded or cut.")

    def spec(self) -> AudioSpec:
        from ssgan_core.interfaces import AudioSpec  # torch: not needed to read a config

        return AudioSpec(self.sample_rate, self.seconds)


class AugmentConfig(_Strict):
    """Augmented copies encoded beside each clip (all off by default; see docs/training.md).

    Each range ``[low, high]`` is sampled uniformly per copy; ``[0, 0]`` (``[1, 1]`` for
    width) leaves that property alone. Copies are drawn from the run seed and the clip's
    index, so the same folder and settings give the same copies.
    """

    copies: int = Field(
        0, ge=0, le=1000, description="Augmented variants per clip; 0 turns augmentation off."
    )
    pitch_semitones: tuple[float, float] = Field(
        (0.0, 0.0),
        description="Pitch shift range [low, high] in semitones, by resampling: speed and pitch change "
        "together, as on tape.",
    )
    gain_db: tuple[float, float] = Field((0.0, 0.0), description="Gain range [low, high] in dB.")
    width: tuple[float, float] = Field(
        (1.0, 1.0),
        description="Stereo width range [low, high]: the side signal (L-R)/2 times this; 0 is mono.",
    )
    decay_db_per_s: tuple[float, float] = Field(
        (0.0, 0.0),
        description="Decay shaping range [low, high]: the clip times an exponential envelope falling this "
        "many dB per second (negative lengthens the tail).",
    )
    offset_ms: tuple[float, float] = Field(
        (0.0, 0.0),
        description="Onset offset range [low, high] in ms: positive starts the clip later (silence first), "
        "negative cuts its start.",
    )

    @model_validator(mode="after")
    def _ranges_are_ordered(self) -> AugmentConfig:
        for name in ("pitch_semitones", "gain_db", "width", "decay_db_per_s", "offset_ms"):
            low, high = getattr(self, name)
            if low > high:
                raise ValueError(f"{name}: low ({low}) is above high ({high})")
        if self.width[0] < 0:
            raise ValueError(f"width: {self.width[0]} is negative; 0 is mono, 1 leaves the clip alone")
        if max(abs(v) for v in self.pitch_semitones) > 24:
            raise ValueError(f"pitch_semitones: {self.pitch_semitones} goes beyond two octaves")
        return self


class DataConfig(_Strict):
    source: PartConfig = Field(
        default_factory=lambda: PartConfig(name="synthetic-kicks"),
        description="Dataset source plugin and its options (`folder` reads audio files).",
    )
    val_fraction: float = Field(0.2, gt=0, lt=1, description="Share held out for validation (paper: 20%).")
    cache_dir: Path | None = Field(
        None, description="Where encoded datasets are cached; default: <runs_dir>/.cache."
    )
    augment: AugmentConfig = Field(default_factory=AugmentConfig)


class EarlyStoppingConfig(_Strict):
    metric: Literal["abs_w", "fd"] = Field(
        "abs_w", description="Validation metric to minimise: |Wasserstein estimate| (paper) or FD."
    )
    warmup: int = Field(4, ge=0, description="Periods (epochs) before early stopping may trigger.")
    patience: int = Field(3, ge=1, description="Periods (epochs) without improvement before stopping.")


class OptimizerConfig(_Strict):
    """One network's optimiser: any of torch's RMSprop, Adam, AdamW."""

    name: Literal["rmsprop", "adam", "adamw"] = Field("rmsprop", description="torch.optim class.")
    lr: float = Field(0.0015, gt=0, description="Learning rate.")
    betas: tuple[float, float] = Field(
        (0.0, 0.9), description="Adam/AdamW betas (WGAN-GP paper: 0, 0.9); unused by RMSprop."
    )
    weight_decay: float = Field(0.0, ge=0, description="Weight decay (AdamW: decoupled).")
    eps: float = Field(1e-8, gt=0, description="Denominator floor.")


class HealthConfig(_Strict):
    """Thresholds of the run-health checks (docs/training.md, run health)."""

    runaway_auc: float = Field(
        0.995, gt=0.5, le=1, description="Critic ranks almost every real above every fake (AUC) ..."
    )
    runaway_periods: int = Field(3, ge=1, description="... while |val W| grew this many periods in a row.")
    frozen_auc: float = Field(0.5, ge=0, lt=1, description="Critic ranks fakes above reals (AUC below).")
    collapse_ratio: float = Field(
        0.35, gt=0, lt=1, description="Preview diversity below this share of the data's: mode collapse."
    )
    channel_gap: float = Field(
        0.1, gt=0, description="Image-space mean |L-R| of previews above this (and 5x the data's)."
    )
    far_ratio: float = Field(
        20.0,
        gt=1,
        description="Previews' FD above this multiple of as many training clips' FD: far from the data.",
    )


class TrainingConfig(_Strict):
    batch_size: int = Field(16, ge=1, description="Paper: 16. Per rank or in all, as batch_scope says.")
    batch_scope: Literal["per-rank", "global"] = Field(
        "per-rank",
        description="Under torchrun: batch_size is each rank's batch (the global batch grows with the "
        "ranks) or the global batch, split among them (docs/distributed.md, the learning-rate rule).",
    )
    schedule: Literal["epochs", "steps"] = Field(
        "epochs",
        description="What the run's length and period count in: epochs (paper; length grows with the "
        "folder) or generator steps (the same length for any folder size).",
    )
    epochs: int = Field(14, ge=1, description="schedule = epochs: number of epochs; one period = one epoch.")
    steps: int = Field(
        2000, ge=1, description="schedule = steps: generator updates in all (steps x n_critic batches)."
    )
    eval_every: int = Field(
        200,
        ge=1,
        description="schedule = steps: generator updates per period (validation, previews, "
        "checkpoint, LR decay, early stopping).",
    )
    n_critic: int = Field(5, ge=1, description="Critic steps per generator step (paper: 5).")
    generator_optimizer: OptimizerConfig = Field(
        default_factory=lambda: OptimizerConfig(name="rmsprop", lr=0.0015, weight_decay=0.05),
        description="Generator optimiser.",
    )
    critic_optimizer: OptimizerConfig = Field(
        default_factory=lambda: OptimizerConfig(name="rmsprop", lr=0.002, weight_decay=0.05),
        description="Critic optimiser.",
    )
    lr_gamma: float = Field(0.9, gt=0, le=1, description="Learning rates decay by this per period.")
    ema_decay: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Exponential moving average of the generator's weights (0: off). Previews, "
        "validation and generation use the average.",
    )
    init_from: Path | None = Field(
        None,
        description="Start from this checkpoint or run folder (fine-tuning): its generator, and its critic "
        "when it has one of the same kind. Its transform and audio settings must equal this run's.",
    )
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32",
        description="Arithmetic of the forward passes (torch.autocast). Weights, optimiser state and "
        "the gradient penalty stay float32. fp16 (with a gradient scaler) needs CUDA.",
    )
    channels_last: bool = Field(
        False, description="Keep the networks' weights and image batches in channels-last memory order."
    )
    compile: bool = Field(
        False,
        description="torch.compile the generator (the critic stays eager: the gradient penalty "
        "differentiates it twice). The first steps compile.",
    )
    critic_batches: Literal["joint", "separate"] = Field(
        "joint",
        description="Critic scores a step's real and fake images as one batch (shared batch-norm "
        "statistics) or in two calls (the original code).",
    )
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    device: str = Field("auto", description="auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps.")
    preview_count: int = Field(16, ge=1, le=256, description="Fixed-latent previews per period.")
    fd_clips: int | None = Field(
        None,
        ge=2,
        le=1024,
        description="Generated clips the per-period FD is computed on (the previews first); null: the "
        "previews alone. More clips: a steadier FD for early stopping and the health check.",
    )
    fd_every_epoch: bool = Field(True, description="Log FD of previews vs validation each period.")
    checkpoint_every_steps: int = Field(
        25, ge=0, description="Also save last.ckpt every N batches inside a period (0: only at period ends)."
    )


class OutputConfig(_Strict):
    runs_dir: Path = Field(Path("runs"), description="Parent folder of run directories.")
    run_name: str | None = Field(None, description="Run folder name; default: preset + timestamp.")
    wav_subtype: Literal["PCM_16", "PCM_24", "FLOAT"] = Field("PCM_24", description="WAV sample format.")
    preview_wavs: int = Field(4, ge=0, description="Preview WAVs written per epoch.")


class RunConfig(_Strict):
    """Everything that defines a run. Saved as ``config.json`` beside every checkpoint."""

    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seeds data split, init, latents and noise.")
    preset: str | None = Field(None, description="Preset this config started from (informational).")
    audio: AudioConfig = Field(default_factory=AudioConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    transform: PartConfig = Field(
        default_factory=lambda: PartConfig(name="stft-db"),
        description="Transform plugin name and options (see below).",
    )
    generator: PartConfig = Field(
        default_factory=lambda: PartConfig(name="paper-generator"),
        description="Generator plugin name and options (see below).",
    )
    critic: PartConfig = Field(
        default_factory=lambda: PartConfig(name="paper-critic"),
        description="Critic plugin name and options (see below).",
    )
    losses: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {
            "wasserstein": {"weight": 1.0},
            "gradient-penalty": {"weight": 5.0},
            "spectral-difference": {"weight": 0.15},
            "spectral-convergence": {"weight": 0.15},
            "feature-matching": {"weight": 0.35},
        },
        description="Loss plugin name -> its options (each has a weight).",
    )
    inverter: PartConfig = Field(
        default_factory=lambda: PartConfig(name="griffin-lim"),
        description="Inverter plugin name and options (see below).",
    )
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)


PART_SECTIONS: dict[str, str] = {
    "transform": "transform",
    "generator": "generator",
    "critic": "critic",
    "inverter": "inverter",
    "data.source": "dataset",
}
"""Config path of each single-part section -> the registry kind it names."""


# --------------------------------------------------------------------------- files


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or JSON config file into a dict."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    is_json = path.suffix.lower() == ".json"
    try:
        data = json.loads(text) if is_json else tomllib.loads(text.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid {'JSON' if is_json else 'TOML'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table/object at the top level")
    return data


load_preset_file = load_config_file


def register_preset_folder(register: Any, package: str, presets: Mapping[str, str]) -> None:
    """For a plugin's ``register_presets`` hook: each ``<package>/presets/<name>.toml``,
    with its one-line description from ``presets``."""
    from importlib.resources import files

    folder = files(package) / "presets"
    for name, description in presets.items():
        register(name, load_preset_file(str(folder / f"{name}.toml")), description)


# --------------------------------------------------------------------------- merging


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; a section whose ``name`` changes is replaced, not merged."""
    out = dict(base)
    for key, value in top.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            if "name" in value and "name" in old and value["name"] != old["name"]:
                out[key] = dict(value)
            else:
                out[key] = deep_merge(old, value)
        else:
            out[key] = value
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"a.b=3"`` -> (["a", "b"], 3). Values are JSON when they parse, else strings."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {item!r} must look like section.field=value")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.split("."), value


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    out = dict(data)
    for item in overrides:
        path, value = parse_override(item)
        nested: Any = value
        for part in reversed(path):
            nested = {part: nested}
        out = deep_merge(out, nested)
    return out


# --------------------------------------------------------------------------- validation


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per problem: ``field.path: what was expected (got X)``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (*([prefix] if prefix else []), *err["loc"]))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        got = err.get("input")
        shown = "" if err["type"] in {"missing"} or isinstance(got, dict) else f" (got {got!r})"
        parts.append(f"{loc}: {msg}{shown}")
    return "; ".join(parts)


def _get_path(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        node = node[part]
    return node


BUILT_WITH = "built_with"
"""Key of the record ``config.json`` (and checkpoints, sidecars) keep of what built a run:
image shape, part packages and versions. Informational: a config read back ignores it."""


def validate_config(data: Mapping[str, Any], host: Any = None) -> RunConfig:
    """Validate a raw dict into a :class:`RunConfig`, plugin options included.

    Plugin options are filled with their defaults so the saved config is complete. A
    ``built_with`` record (``config.json`` of a run) is dropped: it describes, not configures.
    """
    try:
        cfg = RunConfig.model_validate({k: v for k, v in data.items() if k != BUILT_WITH})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    if host is None:
        from ssgan_core.plugins import get_host

        host = get_host()
    raw = cfg.model_dump()
    for path, kind in PART_SECTIONS.items():
        section = _get_path(raw, path)
        name, options = section.pop("name"), section
        resolved = _validate_part(host, kind, name, options, path)
        parent, _, leaf = path.rpartition(".")
        target = _get_path(raw, parent) if parent else raw
        target[leaf] = {"name": name, **resolved}
    losses = {}
    for name, options in raw["losses"].items():
        losses[name] = _validate_part(host, "loss", name, dict(options or {}), f"losses.{name}")
    raw["losses"] = losses
    return RunConfig.model_validate(raw)


def _validate_part(host: Any, kind: str, name: str, options: dict[str, Any], path: str) -> dict[str, Any]:
    registry = host.registry(kind)
    try:
        model = registry.validate(name, options)
    except UnknownPartError as exc:
        raise ConfigError(f"{path}.name: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, prefix=path)) from None
    return model.model_dump(mode="json")


def part_options(host: Any, kind: str, section: PartConfig) -> BaseModel:
    """The validated options model instance of a part section."""
    return host.registry(kind).validate(section.name, section.options)


def resolve_config(
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: Iterable[str] = (),
    host: Any = None,
    default_preset: str | None = None,
) -> RunConfig:
    """Defaults < preset < file < overrides, validated. A file may name a ``preset``;
    ``default_preset`` (when installed) applies when neither the caller nor the file does."""
    if host is None:
        from ssgan_core.plugins import get_host

        host = get_host()
    file_data = load_config_file(config_file) if config_file else {}
    fallback = default_preset if default_preset in host.presets else None
    preset = preset or file_data.get("preset") or fallback
    if preset is not None and not isinstance(preset, str):
        raise ConfigError(f"{config_file}: preset: expected a preset name (a string), got {preset!r}")
    data: dict[str, Any] = RunConfig().model_dump(mode="json")
    if preset:
        if preset not in host.presets:
            failed = host.failure_notes() if hasattr(host, "failure_notes") else []
            raise ConfigError(str(UnknownPartError("preset", preset, list(host.presets), failed)))
        data = deep_merge(data, host.presets[preset].config)
        data["preset"] = preset
    data = deep_merge(data, file_data)
    data = apply_overrides(data, overrides)
    return validate_config(data, host)


def dump_config(cfg: RunConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="json")


__all__ = [
    "AudioConfig",
    "ConfigError",
    "DataConfig",
    "LossOptions",
    "OutputConfig",
    "PartConfig",
    "RunConfig",
    "SsganError",
    "TrainingConfig",
    "apply_overrides",
    "deep_merge",
    "dump_config",
    "load_config_file",
    "resolve_config",
    "validate_config",
]


class FolderOptions(BaseModel):
    """Options of the ``folder`` dataset (here, not in :mod:`ssgan_core.data`: validating a
    config must not import torch)."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Field(description="Folder of audio files (wav, flac, ogg, aiff, ...).")
    recursive: bool = Field(True, description="Also read files in sub-folders.")
    downmix: bool = Field(
        False,
        description="Average all channels to mono, then duplicate (needed for files with > 2 channels).",
    )
