"""``specgan-generator`` and ``specgan-critic``: the DCGAN / SpecGAN shape family.

SpecGAN (Donahue, McAuley and Puckette, "Adversarial Audio Synthesis", ICLR 2019)
generates 128 x 128 spectrograms with DCGAN's stack: a dense layer to a 4 x 4 map, then
stride-2 transposed convolutions with 5 x 5 kernels, each doubling the map and halving
the width; the critic mirrors it with stride-2 convolutions and a dense score.

Here the stack is sized from the build context's image ``(C, F, T)``: one doubling per
power of two between the start map and the image, so one class serves 128 x 128,
256 x 256, non-square images (256 x 128) and any channel count (2 magnitudes, or 4 for
magnitude + instantaneous frequency). ``F`` and ``T`` must be powers of two.

Shapes, for ``(2, 128, 128)`` and ``width = 32``::

    z (B, 100) -> dense -> (B, 512, 4, 4) -> 256 x 8 -> 128 x 16 -> 64 x 32 -> 32 x 64
              -> (B, 2, 128, 128) tanh
    image (B, 2, 128, 128) -> 32 x 64 -> 64 x 32 -> 128 x 16 -> 256 x 8 -> 512 x 4 -> dense -> (B,)
"""

from __future__ import annotations

import itertools
import math

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from ssgan_core import AudioSpec, ConfigError, Critic, Generator, ImageShape, image_shape_of
from ssgan_plugins.specgan.options import SpecGanCriticOptions, SpecGanGeneratorOptions

START = 4
"""Side of the smaller dimension of the first (generator) / last (critic) feature map."""
KERNEL = 5
"""SpecGAN's kernel size."""


def doublings(image: ImageShape, part: str) -> int:
    """How many stride-2 layers lie between the ``START`` map and the image; refuses sizes
    the stack cannot reach in one line."""
    for name, size in (("freq", image.freq), ("time", image.time)):
        if size < START or size & (size - 1):
            raise ConfigError(
                f"{part}: image {image.describe()} has {name} size {size}; SpecGAN networks need powers "
                f"of two of at least {START} (e.g. transform.n_mels=128, transform.frames=128)"
            )
    return int(math.log2(min(image.freq, image.time) // START))


def layer_widths(width: int, max_width: int, layers: int) -> list[int]:
    """Channels after each of ``layers`` layers, the widest first: ``width * 2**k``, capped."""
    return [min(width << (layers - 1 - i), max_width) for i in range(layers)]


class SpecGanGenerator(Generator):
    """Latent ``(B, latent_dim, 1, 1)`` -> image ``(B, C, F, T)`` in ``[-1, 1]``."""

    def __init__(self, options: SpecGanGeneratorOptions, image: ImageShape) -> None:
        super().__init__()
        self.latent_dim = options.latent_dim
        n = doublings(image, "specgan-generator")
        self.start = (image.freq >> n, image.time >> n)
        widths = layer_widths(options.width, options.max_width, n) or [options.width]
        self.first_width = widths[0]
        self.project = nn.Linear(options.latent_dim, widths[0] * self.start[0] * self.start[1])
        layers: list[nn.Module] = self._hidden(widths[0], options.norm)
        for c_in, c_out in itertools.pairwise(widths):
            layers += [nn.ConvTranspose2d(c_in, c_out, KERNEL, 2, KERNEL // 2, output_padding=1)]
            layers += self._hidden(c_out, options.norm)
        if n:  # the last doubling goes straight to the image's channels
            layers.append(
                nn.ConvTranspose2d(widths[-1], image.channels, KERNEL, 2, KERNEL // 2, output_padding=1)
            )
        else:  # the image is the start map: one convolution to its channels
            layers.append(nn.Conv2d(widths[0], image.channels, KERNEL, 1, KERNEL // 2))
        self.body = nn.Sequential(*layers, nn.Tanh())

    @staticmethod
    def _hidden(channels: int, norm: str) -> list[nn.Module]:
        return [nn.BatchNorm2d(channels), nn.ReLU()] if norm == "batch" else [nn.ReLU()]

    def forward(self, z: Tensor) -> Tensor:
        x = self.project(z.flatten(1)).view(z.shape[0], self.first_width, *self.start)
        return self.body(x)


class SpecGanCritic(Critic):
    """Image ``(B, C, F, T)`` -> score ``(B,)``; features of the last two conv layers."""

    def __init__(self, options: SpecGanCriticOptions, image: ImageShape) -> None:
        super().__init__()
        n = doublings(image, "specgan-critic")
        widths = layer_widths(options.width, options.max_width, n)[::-1]  # narrowest first
        wrap = spectral_norm if options.spectral_norm else (lambda m: m)
        self.blocks = nn.ModuleList()
        for c_in, c_out in zip([image.channels, *widths], widths, strict=False):
            conv = nn.Conv2d(c_in, c_out, KERNEL, 2, KERNEL // 2)
            self.blocks.append(nn.Sequential(wrap(conv), nn.LeakyReLU(options.leaky_slope)))
        end = (image.freq >> n) * (image.time >> n) * (widths[-1] if widths else image.channels)
        self.score = wrap(nn.Linear(end, 1))
        self.feature_layers = tuple(f"block{i}" for i in range(max(1, n - 1), n + 1))

    def forward_features(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        features: dict[str, Tensor] = {}
        x = image
        for index, block in enumerate(self.blocks, start=1):
            x = block(x)
            if f"block{index}" in self.feature_layers:
                features[f"block{index}"] = x
        return self.score(x.flatten(1)).squeeze(1), features


def build_specgan_generator(options: SpecGanGeneratorOptions, context: AudioSpec) -> SpecGanGenerator:
    """Factory registered as ``specgan-generator``: sized from ``context.image``."""
    return SpecGanGenerator(options, image_shape_of(context))


def build_specgan_critic(options: SpecGanCriticOptions, context: AudioSpec) -> SpecGanCritic:
    """Factory registered as ``specgan-critic``: sized from ``context.image``."""
    return SpecGanCritic(options, image_shape_of(context))
