"""``example-stereo-balance``: match the fake batch's left/right statistics to the real one's.

A generator can get the overall spectrum right and still place sounds off-centre or
make them too wide or too narrow. This term compares, per frequency band, the mean
side signal ``L - R`` (balance: which way the image leans) and the mean ``|L - R|``
(width) of the real and the fake batch. Images are dB-scaled, so ``L - R`` is a
level difference between the channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from ssgan_core import AudioSpec, LossContext, LossOptions, LossTerm


class StereoBalanceOptions(LossOptions):
    """Options of ``example-stereo-balance`` (``weight`` comes from ``LossOptions``)."""

    bands: int = Field(16, ge=1, le=256, description="Frequency bands the statistics are pooled into.")


def stereo_statistics(images: Tensor, bands: int) -> Tensor:
    """``(B, 2, F, T)`` -> ``(2 * bands,)``: batch mean of ``L - R`` and of ``|L - R|`` per band."""
    side = images[:, 0] - images[:, 1]
    balance = side.mean(dim=-1)
    width = side.abs().mean(dim=-1)
    pooled = F.adaptive_avg_pool1d(torch.stack([balance, width], dim=1), bands)
    return pooled.mean(dim=0).flatten()


class StereoBalanceLoss(LossTerm):
    """Generator-side penalty: squared error between real and fake stereo statistics."""

    def __init__(self, options: StereoBalanceOptions) -> None:
        self.weight = options.weight
        self.bands = options.bands

    def generator_loss(self, ctx: LossContext) -> Tensor | None:
        real = stereo_statistics(ctx.real.detach(), self.bands)
        fake = stereo_statistics(ctx.fake, self.bands)
        return F.mse_loss(fake, real)


def build_stereo_balance(options: StereoBalanceOptions, audio: AudioSpec) -> StereoBalanceLoss:
    """Penalise left/right balance and width mismatches between real and fake batches."""
    return StereoBalanceLoss(options)
