"""The six kinds of part a run is assembled from, and the shapes they exchange.

Every tensor follows one layout: ``(batch, channel, freq, time)`` for images and
magnitudes, ``(batch, channel, samples)`` for audio, with ``channel == 2`` (left,
right). Images live in ``[-1, 1]``. A plugin implements one of these protocols and
registers a factory for it (see ``ssgan_core.hookspecs``).

Every factory is called the same way: ``factory(options, audio)`` where ``options``
is an instance of the pydantic model the plugin registered (already validated) and
``audio`` is the run's :class:`AudioSpec`. Most parts ignore ``audio``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

IMAGE_SIZE = 256
"""Images are ``IMAGE_SIZE x IMAGE_SIZE`` (frequency x time) per channel, as in the paper."""
CHANNELS = 2


@dataclass(frozen=True)
class AudioSpec:
    """Sample rate and fixed clip length every part of a run agrees on."""

    sample_rate: int = 44_100
    seconds: float = 0.6

    @property
    def num_samples(self) -> int:
        return int(self.seconds * self.sample_rate)


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
        return stft.abs().reshape(b, c, *stft.shape[-2:])


class Transform(nn.Module, ABC):
    """Stereo audio <-> image in ``[-1, 1]``.

    ``encode``: ``(B, 2, samples) -> (B, 2, 256, 256)``.
    ``decode``: ``(B, 2, 256, 256) -> (B, 2, n_fft // 2 + 1, frames)`` linear magnitude
    matching :attr:`stft_spec`, ready for any :class:`Inverter`. ``frames`` is the
    number of STFT frames the inverter expects for ``audio.num_samples`` samples with
    ``stft_spec``'s hop (the built-ins return 256: one per image column); an inverter
    reads the count from the tensor, so any count consistent with ``stft_spec`` works.
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
    @abstractmethod
    def stft_spec(self) -> StftSpec:
        """The STFT that :meth:`decode`'s magnitude belongs to."""

    @abstractmethod
    def encode(self, audio: Tensor) -> Tensor: ...

    @abstractmethod
    def decode(self, image: Tensor) -> Tensor: ...

    def forward(self, audio: Tensor) -> Tensor:
        return self.encode(audio)


class Generator(nn.Module, ABC):
    """Latent ``(B, latent_dim, 1, 1)`` -> image ``(B, 2, 256, 256)`` in ``[-1, 1]``."""

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
    """Image ``(B, 2, 256, 256)`` -> score ``(B,)``, plus named features for matching.

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
    """Linear magnitude ``(B, 2, freq, frames)`` -> waveform ``(B, 2, spec.length)``."""

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
