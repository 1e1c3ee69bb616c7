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

from ssgan_core import CHANNELS, IMAGE_SIZE, AudioSpec, Generator

START_SIZE = 4
"""Side of the first feature map; doubled until it reaches ``IMAGE_SIZE``."""


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
    """Latent ``(B, latent_dim, 1, 1)`` -> image ``(B, 2, 256, 256)`` in ``[-1, 1]``."""

    def __init__(self, options: UpsampleGeneratorOptions) -> None:
        super().__init__()
        self.latent_dim = options.latent_dim
        self.width = options.width
        self.project = nn.Sequential(
            nn.Linear(options.latent_dim, options.width * START_SIZE * START_SIZE),
            nn.LeakyReLU(options.slope),
        )
        doublings = int(math.log2(IMAGE_SIZE // START_SIZE))
        widths = [max(options.width >> i, options.min_width) for i in range(doublings + 1)]
        self.blocks = nn.Sequential(*(_block(a, b, options.slope) for a, b in itertools.pairwise(widths)))
        self.to_image = nn.Sequential(nn.Conv2d(widths[-1], CHANNELS, kernel_size=3, padding=1), nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        x = self.project(z.flatten(1)).view(z.shape[0], self.width, START_SIZE, START_SIZE)
        return self.to_image(self.blocks(x))


def build_upsample_generator(options: UpsampleGeneratorOptions, audio: AudioSpec) -> UpsampleGenerator:
    """Upsample + conv generator (no transposed convolutions, so no checkerboard)."""
    return UpsampleGenerator(options)
