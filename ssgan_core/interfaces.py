"""The six kinds of part a run is assembled from, and the shapes they exchange.

Every tensor follows one layout: ``(batch, channel, freq, time)`` for images and
magnitudes, ``(batch, channel, samples)`` for audio. Audio is stereo
(``AUDIO_CHANNELS``); an image's shape ``(channels, freq, time)`` is whatever the
run's transform declares (:attr:`Transform.image_shape`), e.g. ``(2, 256, 256)`` for
the paper's ``stft-db`` or ``(4, 128, 128)`` for a magnitude + phase image. Images live
in ``[-1, 1]``. A plugin implements one of these protocols and registers a factory for
it (see ``ssgan_core.hookspecs``).

Every factory is called the same way: ``factory(options, context)`` where ``options``
is an instance of the pydantic model the plugin registered (already validated) and
``context`` is the run's :class:`BuildContext`: an :class:`AudioSpec` (so factories
written for ``factory(options, audio)`` keep working) that also carries the image
shape the transform declared. Generators and critics size themselves from
``context.image``; most other parts ignore the context.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

AUDIO_CHANNELS = 2
"""ssgan's audio is stereo: every clip is ``(2, samples)`` (left, right)."""


class ImageShape(NamedTuple):
    """The shape of one image, ``(channels, freq, time)``: a property of the transform."""

    channels: int
    freq: int
    time: int

    def describe(self) -> str:
        return f"({self.channels}, {self.freq}, {self.time})"


PAPER_IMAGE_SHAPE = ImageShape(2, 256, 256)
"""The paper's image (stereo, 256 bins x 256 frames). The documented default for a
context built from a bare :class:`AudioSpec` (old callers) and for sidecars and
checkpoints written before the image shape was recorded."""


@dataclass(frozen=True)
class AudioSpec:
    """Sample rate and fixed clip length every part of a run agrees on."""

    sample_rate: int = 44_100
    seconds: float = 0.6

    @property
    def num_samples(self) -> int:
        return int(self.seconds * self.sample_rate)


@dataclass(frozen=True)
class BuildContext(AudioSpec):
    """What a factory may size its part from: the run's audio and the transform's image.

    A subclass of :class:`AudioSpec`, so factories that read ``audio.num_samples`` work
    unchanged. ``image`` is the transform's :attr:`Transform.image_shape`; it is ``None``
    while the transform itself (and the dataset) is being built.
    """

    image: ImageShape | None = None

    @classmethod
    def of(cls, audio: AudioSpec, image: ImageShape | None = None) -> BuildContext:
        return cls(audio.sample_rate, audio.seconds, image)

    @property
    def audio(self) -> AudioSpec:
        """The bare audio spec (equal to the ones built without a context)."""
        return AudioSpec(self.sample_rate, self.seconds)


def image_shape_of(context: AudioSpec) -> ImageShape:
    """The image shape a generator or critic must serve; a bare :class:`AudioSpec` (a
    caller from before the context existed) means the paper's shape."""
    image = getattr(context, "image", None)
    return ImageShape(*image) if image is not None else PAPER_IMAGE_SHAPE


@dataclass(frozen=True)
class StftSpec:
    """How a linear magnitude was computed, so an inverter can undo it.

    ``window`` is a 1-D tensor of ``win_length`` samples. The STFT is
    ``torch.stft(x, n_fft, hop_length, win_length, window, center=center)`` and the
    waveform it came from had ``length`` samples.
    """

    n_fft: int
    hop_length: int
    win_length: int
    window: Tensor
    length: int
    center: bool = True

    def magnitude(self, audio: Tensor) -> Tensor:
        """``|STFT|`` of ``(B, C, samples)`` audio with this spec: ``(B, C, bins, frames)``.

        For measuring (round trips, spectral convergence); frames are not cut.
        """
        return self.stft(audio).abs()

    def stft(self, audio: Tensor) -> Tensor:
        """Complex STFT of ``(B, C, samples)`` audio with this spec: ``(B, C, bins, frames)``."""
        b, c, n = audio.shape
        stft = torch.stft(
            audio.reshape(b * c, n),
            self.n_fft,
            self.hop_length,
            self.win_length,
            self.window.to(audio.device, audio.dtype),
            center=self.center,
            return_complex=True,
        )
        return stft.reshape(b, c, *stft.shape[-2:])


def spectral_convergence(true: Tensor, estimate: Tensor) -> Tensor:
    """Per item ``||M - M'||_F / ||M||_F`` over every non-batch dimension: the one definition
    that metrics, inverters and benchmarks share (``(B, ...)`` magnitudes -> ``(B,)``)."""
    dims = tuple(range(1, true.dim()))
    num = torch.linalg.vector_norm(true - estimate, dim=dims)
    return num / torch.linalg.vector_norm(true, dim=dims).clamp_min(1e-12)


@dataclass
class Spectrogram:
    """What :meth:`Transform.decode` yields: a linear magnitude, its phase when the image
    carried one, and the STFT both belong to.

    ``magnitude`` is ``(B, C, n_fft // 2 + 1, frames)``; ``phase`` (radians, same shape)
    is ``None`` for representations that keep only magnitude, and then an
    :class:`Inverter` estimates it. With a phase, audio is one inverse STFT away.
    """

    magnitude: Tensor
    spec: StftSpec
    phase: Tensor | None = None

    def istft(self) -> Tensor:
        """Audio ``(B, C, spec.length)`` from magnitude and phase (which must be present)."""
        if self.phase is None:
            raise ValueError("this spectrogram has no phase; invert its magnitude with an Inverter")
        b, c = self.magnitude.shape[:2]
        complex_ = torch.polar(self.magnitude.float(), self.phase.float())
        spec = self.spec
        audio = torch.istft(
            complex_.reshape(b * c, *complex_.shape[-2:]),
            spec.n_fft,
            spec.hop_length,
            spec.win_length,
            spec.window.to(complex_.device),
            center=spec.center,
            length=spec.length,
        )
        return audio.reshape(b, c, -1)


class Transform(nn.Module, ABC):
    """Stereo audio <-> image in ``[-1, 1]`` of the shape :attr:`image_shape` declares.

    ``encode``: ``(B, 2, samples) -> (B, C, F, T)`` with ``(C, F, T) = image_shape``.
    ``decode``: ``(B, C, F, T) ->`` a :class:`Spectrogram`: the linear magnitude
    ``(B, 2, n_fft // 2 + 1, frames)`` of :attr:`stft_spec`, with the phase when the
    image carries one (then no inverter runs). Returning the bare magnitude tensor (the
    contract before ``Spectrogram`` existed) still works: it is read as a magnitude
    without phase. ``frames`` is the number of STFT frames for ``audio.num_samples``
    samples with ``stft_spec``'s hop; inverters read the count from the tensor.
    """

    audio: AudioSpec
    """The clip format (sample rate, seconds, so ``num_samples``) the transform was built
    for: the ``AudioSpec`` its factory received. Set it in ``__init__``."""

    layout: str = "freq rows run from low (row 0) to high frequencies"
    """One line for the encode sidecar: what the image's rows mean (``ssgan encode``)."""

    display_span: float | None = None
    """How far below an item's loudest pixel, in image units, a picture should reach
    (e.g. 80 dB worth): pictures then show each item from its peak down, the way
    spectrograms are usually drawn. ``None`` draws the whole ``[-1, 1]`` range."""

    @property
    def image_shape(self) -> ImageShape:
        """The image ``(channels, freq, time)`` that :meth:`encode` makes.

        Override it (a constant, no work). The default encodes one silent clip to find
        out, once, so transforms written before this property existed keep working.
        """
        cached = self.__dict__.get("_measured_image_shape")
        if cached is None:
            silence = torch.zeros(1, AUDIO_CHANNELS, self.audio.num_samples)
            with torch.no_grad():
                cached = ImageShape(*self.encode(silence.to(_device_of(self))).shape[1:])
            self.__dict__["_measured_image_shape"] = cached
        return cached  # type: ignore[no-any-return]

    @property
    @abstractmethod
    def stft_spec(self) -> StftSpec:
        """The STFT that :meth:`decode`'s magnitude belongs to."""

    @abstractmethod
    def encode(self, audio: Tensor) -> Tensor: ...

    @abstractmethod
    def decode(self, image: Tensor) -> Spectrogram | Tensor: ...

    def spectrogram(self, image: Tensor) -> Spectrogram:
        """:meth:`decode` as a :class:`Spectrogram`, whichever form the plugin returns."""
        decoded = self.decode(image)
        if isinstance(decoded, Spectrogram):
            return decoded
        return Spectrogram(decoded, self.stft_spec)

    def forward(self, audio: Tensor) -> Tensor:
        return self.encode(audio)


def _device_of(module: nn.Module) -> torch.device:
    tensor = next(iter(module.buffers()), None)
    if tensor is None:
        tensor = next(iter(module.parameters()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


class Generator(nn.Module, ABC):
    """Latent ``(B, latent_dim, 1, 1)`` -> image ``(B, C, F, T)`` in ``[-1, 1]``, where
    ``(C, F, T)`` is ``context.image`` (the transform's :attr:`~Transform.image_shape`)."""

    latent_dim: int

    def sample_latent(
        self, n: int, *, generator: torch.Generator | None = None, device: Any = None
    ) -> Tensor:
        """Standard normal latents; override for another prior."""
        return torch.randn(n, self.latent_dim, 1, 1, generator=generator, device=device)

    def start_from_data(self, mean_image: Tensor) -> None:
        """Called once as a fresh run starts (not on resume or fine-tuning) with the mean
        ``(C, F, T)`` of the training images. A generator that can begin at the data (an
        output bias) takes it here; by default nothing happens."""

    @abstractmethod
    def forward(self, z: Tensor) -> Tensor: ...


class Critic(nn.Module, ABC):
    """Image ``(B, C, F, T)`` (``context.image``) -> score ``(B,)``, plus named features.

    ``feature_layers`` names the intermediate activations that
    :meth:`forward_features` returns; feature-matching losses compare those.
    """

    feature_layers: tuple[str, ...] = ()

    @abstractmethod
    def forward_features(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Return ``(scores (B,), {layer_name: activation})``."""

    def forward(self, image: Tensor) -> Tensor:
        return self.forward_features(image)[0]


@dataclass
class LossContext:
    """What a loss term may read during one step; shared by all terms of that step.

    ``real`` and ``fake`` are image batches. Critic scores and features are computed
    at most once per step and cached here, so terms never repeat a critic pass.
    On the critic step ``fake`` is detached from the generator.
    """

    real: Tensor
    fake: Tensor
    critic: Critic
    joint: bool = False
    """Score real and fake in one critic call (``training.critic_batches = "joint"``), so
    batch statistics inside the critic are shared and cannot normalise away what sets
    the fake batch apart."""
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def _critic_pass(self, which: str) -> tuple[Tensor, dict[str, Tensor]]:
        if which not in self._cache:
            if self.joint:
                n = self.real.shape[0]
                scores, feats = self.critic.forward_features(torch.cat([self.real, self.fake]))
                self._cache["real"] = (scores[:n], {k: v[:n] for k, v in feats.items()})
                self._cache["fake"] = (scores[n:], {k: v[n:] for k, v in feats.items()})
            else:
                self._cache[which] = self.critic.forward_features(getattr(self, which))
        return self._cache[which]  # type: ignore[no-any-return]

    @property
    def real_scores(self) -> Tensor:
        return self._critic_pass("real")[0]

    @property
    def fake_scores(self) -> Tensor:
        return self._critic_pass("fake")[0]

    @property
    def real_features(self) -> dict[str, Tensor]:
        return self._critic_pass("real")[1]

    @property
    def fake_features(self) -> dict[str, Tensor]:
        return self._critic_pass("fake")[1]


class LossTerm:
    """One weighted term of the critic and/or generator objective.

    Return ``None`` from a side the term does not take part in. The trainer sums
    ``weight * value`` over terms and logs every unweighted value under the term's
    registered name. ``weight`` is set from the term's options (``LossOptions.weight``)
    when the registry builds it; a plugin need not store it.
    """

    weight: float = 1.0

    def critic_loss(self, ctx: LossContext) -> Tensor | None:
        return None

    def generator_loss(self, ctx: LossContext) -> Tensor | None:
        return None


class Inverter(nn.Module, ABC):
    """Linear magnitude ``(B, C, freq, frames)`` -> waveform ``(B, C, spec.length)``."""

    @abstractmethod
    def forward(self, magnitude: Tensor, spec: StftSpec) -> Tensor: ...


@dataclass(frozen=True)
class Clip:
    """One decoded clip: stereo float32 ``(2, num_samples)`` at the run's sample rate."""

    name: str
    audio: np.ndarray


@dataclass
class SkippedItem:
    """An input a dataset source could not use, and why."""

    name: str
    reason: str


class DatasetSource(ABC):
    """Yields fixed-length stereo clips for training and evaluation.

    Sources report unusable inputs into ``skipped`` and carry on; one bad file never
    ends a run. ``fingerprint`` identifies the content so encoded caches stay valid.
    """

    skipped: list[SkippedItem]

    @abstractmethod
    def clips(self) -> Iterator[Clip]: ...

    @abstractmethod
    def fingerprint(self) -> str:
        """A string that changes whenever the clips would change."""

    def size_hint(self) -> int | None:
        """How many clips to expect (for progress bars), or ``None`` if unknown."""
        return None


PART_KINDS: Mapping[str, type] = {
    "transform": Transform,
    "generator": Generator,
    "critic": Critic,
    "loss": LossTerm,
    "inverter": Inverter,
    "dataset": DatasetSource,
}
"""Kind name -> the base class a factory of that kind must return."""
