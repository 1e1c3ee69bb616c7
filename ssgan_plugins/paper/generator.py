"""The paper's generator: six transposed convolutions from a 128-d latent to 2x256x256.

Shapes (default options)::

    (B, 128, 1, 1) -> 128 x 4x4 -> 64 x 8x8 -> 32 x 16x16 -> 16 x 32x32
                   -> 8 x 128x128 -> 2 x 256x256 (tanh, in [-1, 1])

Every layer but the last is ConvTranspose2d -> BatchNorm2d -> LeakyReLU -> Dropout; the
last is computed as a :class:`~ssgan_plugins.paper.layers.SubPixelConvTranspose2d` (the
same weights and result, faster).
440,106 parameters (plus 131,072 with ``output_bias = "data-mean"``, not in the paper).
The layers sit in one flat ``nn.Sequential`` called ``deconv_blocks``, indexed exactly
like the original implementation's, so its public weights load key for key (see
:mod:`ssgan_plugins.paper.original`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ssgan_core import PAPER_IMAGE_SHAPE, AudioSpec, ConfigError, Generator, InputError, image_shape_of
from ssgan_plugins.paper.layers import Dropout, SubPixelConvTranspose2d
from ssgan_plugins.paper.options import PaperGeneratorOptions

LAYERS: tuple[tuple[int, int, int, int], ...] = (
    # (out_channels, kernel, stride, padding); the first layer's input is the latent
    (128, 4, 1, 0),  # 1 -> 4
    (64, 4, 2, 1),  # 4 -> 8
    (32, 4, 2, 1),  # 8 -> 16
    (16, 4, 2, 1),  # 16 -> 32
    (8, 6, 4, 1),  # 32 -> 128
    (PAPER_IMAGE_SHAPE.channels, 6, 2, 2),  # 128 -> 256
)


BIAS_LIMIT = 0.98
"""The data mean is clipped to +-0.98 before ``atanh`` (silent pixels at -1 would need -inf)."""


class PaperGenerator(Generator):
    """Latent ``(B, latent_dim, 1, 1)`` (or ``(B, latent_dim)``) -> the paper image ``(B, 2, 256, 256)``."""

    def __init__(self, options: PaperGeneratorOptions | None = None) -> None:
        super().__init__()
        options = options or PaperGeneratorOptions()
        self.latent_dim = options.latent_dim
        layers: list[nn.Module] = []
        in_channels = options.latent_dim
        for index, (out_channels, kernel, stride, padding) in enumerate(LAYERS):
            last = index == len(LAYERS) - 1
            # The last layer (to 2 x 256x256) is much faster as a sub-pixel convolution; the
            # others measured slower that way (SubPixelConvTranspose2d).
            deconv = SubPixelConvTranspose2d if last else nn.ConvTranspose2d
            layers.append(deconv(in_channels, out_channels, kernel, stride, padding))
            if not last:
                layers += [
                    nn.BatchNorm2d(out_channels),
                    nn.LeakyReLU(options.leaky_slope, inplace=True),  # BatchNorm backward reads its input
                    Dropout(options.dropout),
                ]
            else:
                layers.append(nn.Tanh())
            in_channels = out_channels
        self.deconv_blocks = nn.Sequential(*layers)
        self.output_bias = (
            nn.Parameter(torch.zeros(PAPER_IMAGE_SHAPE)) if options.output_bias != "none" else None
        )

    def forward(self, z: Tensor) -> Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        if z.dim() != 4 or z.shape[1:] != (self.latent_dim, 1, 1):
            raise InputError(
                f"generator expects latents of shape (B, {self.latent_dim}, 1, 1), got {tuple(z.shape)}"
            )
        if self.output_bias is None:
            return self.deconv_blocks(z)
        return torch.tanh(self.deconv_blocks[:-1](z) + self.output_bias)

    @torch.no_grad()
    def start_from_data(self, mean_image: Tensor) -> None:
        """Begin at the average training image: the bias is its pre-tanh value, so the first
        images are the data's mean and the updates go into variation around it."""
        if self.output_bias is not None:
            self.output_bias.copy_(torch.atanh(mean_image.clamp(-BIAS_LIMIT, BIAS_LIMIT)))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # Weights without the bias (the original ones, paper runs) load with a zero bias.
        key = prefix + "output_bias"
        if self.output_bias is not None and key not in state_dict:
            state_dict[key] = torch.zeros_like(self.output_bias)
        super()._load_from_state_dict(state_dict, prefix, *args)


def check_paper_shape(part: str, context: AudioSpec) -> None:
    """The paper's networks have fixed layer sizes: refuse another transform's image in one line."""
    image = image_shape_of(context)
    if image != PAPER_IMAGE_SHAPE:
        raise ConfigError(
            f"{part}: serves only the paper's {PAPER_IMAGE_SHAPE.describe()} images, but the transform "
            f"makes {image.describe()}; use a network sized from the transform (specgan-generator, "
            "specgan-critic) or a transform with the paper's shape"
        )


def build_paper_generator(options: PaperGeneratorOptions, context: AudioSpec) -> PaperGenerator:
    """Factory registered as ``paper-generator``; the clip length does not change the image size."""
    check_paper_shape("paper-generator", context)
    return PaperGenerator(options)
