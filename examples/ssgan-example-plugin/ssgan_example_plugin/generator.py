"""``example-upsample-generator``: nearest-neighbour upsampling + 3x3 convolutions.

Transposed convolutions whose kernel size is not a multiple of their stride overlap
unevenly and print a checkerboard into the image (Odena et al., Distill 2016); in a
spectrogram that is a comb of false partials. Resizing first and convolving after
spreads every input pixel evenly, so the pattern cannot arise.
"""

from __future__ import annotations

import itertools
import math

from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from ssgan_core import AudioSpec, ConfigError, Generator, ImageShape, image_shape_of

START_SIZE = 4
"""Shorter side of the first feature map; doubled until it reaches the image's size."""


class UpsampleGeneratorOptions(BaseModel):
    """Options of ``example-upsample-generator``."""

    model_config = ConfigDict(extra="forbid")

    latent_dim: int = Field(128, ge=1, le=4096, description="Size of the latent vector.")
    width: int = Field(64, ge=1, le=2048, description="Channels of the 4x4 map; halved at every doubling.")
    min_width: int = Field(8, ge=1, le=512, description="Channel count never drops below this.")
    slope: float = Field(0.2, ge=0, lt=1, description="Leaky ReLU negative slope.")


def _block(c_in: int, c_out: int, slope: float) -> nn.Sequential:
    """Double the resolution, then mix with a 3x3 convolution."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(slope),
    )


class UpsampleGenerator(Generator):
    """Latent ``(B, latent_dim, 1, 1)`` -> image ``(B, C, F, T)`` in ``[-1, 1]``, the
    transform's image shape (``(2, 256, 256)`` for the paper's transform)."""

    def __init__(self, options: UpsampleGeneratorOptions, image: ImageShape) -> None:
        super().__init__()
        self.latent_dim = options.latent_dim
        self.width = options.width
        doublings = int(math.log2(min(image.freq, image.time) // START_SIZE))
        self.start = (image.freq >> doublings, image.time >> doublings)
        if (self.start[0] << doublings, self.start[1] << doublings) != (image.freq, image.time):
            raise ConfigError(
                f"example-upsample-generator: image {image.describe()} is not reached by doubling "
                f"from {START_SIZE} rows or columns; use power-of-two sizes"
            )
        self.project = nn.Sequential(
            nn.Linear(options.latent_dim, options.width * self.start[0] * self.start[1]),
            nn.LeakyReLU(options.slope),
        )
        widths = [max(options.width >> i, options.min_width) for i in range(doublings + 1)]
        self.blocks = nn.Sequential(*(_block(a, b, options.slope) for a, b in itertools.pairwise(widths)))
        self.to_image = nn.Sequential(
            nn.Conv2d(widths[-1], image.channels, kernel_size=3, padding=1), nn.Tanh()
        )

    def forward(self, z: Tensor) -> Tensor:
        x = self.project(z.flatten(1)).view(z.shape[0], self.width, *self.start)
        return self.to_image(self.blocks(x))


def build_upsample_generator(options: UpsampleGeneratorOptions, context: AudioSpec) -> UpsampleGenerator:
    """Upsample + conv generator (no transposed convolutions, so no checkerboard), sized from
    the image shape in the build context."""
    return UpsampleGenerator(options, image_shape_of(context))
