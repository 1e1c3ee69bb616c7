"""``hinge``: the hinge GAN loss (Lim and Ye 2017; SNGAN, SAGAN, BigGAN).

Critic: ``mean relu(1 - D(real)) + mean relu(1 + D(fake))``: real scores are pushed
above +1 and fake ones below -1, and nothing is gained beyond the margins, so the
critic's scores stay bounded without a gradient penalty. Generator: ``-mean D(fake)``.
Use it instead of ``wasserstein`` (set that term's weight to 0).
"""

from __future__ import annotations

from torch import Tensor
from torch.nn.functional import relu

from ssgan_core import AudioSpec, LossContext, LossTerm
from ssgan_plugins.specgan.options import HingeOptions


class Hinge(LossTerm):
    """Both sides of the hinge objective, from the shared critic pass."""

    def critic_loss(self, ctx: LossContext) -> Tensor:
        return relu(1.0 - ctx.real_scores).mean() + relu(1.0 + ctx.fake_scores).mean()

    def generator_loss(self, ctx: LossContext) -> Tensor:
        return -ctx.fake_scores.mean()


def build_hinge(options: HingeOptions, audio: AudioSpec) -> Hinge:
    """Factory registered as ``hinge``."""
    return Hinge()
