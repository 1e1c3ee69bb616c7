"""The paper's critic: spectral-norm conv blocks with self-attention at 32x32.

Shapes (``(B, 2, 256, 256)`` in)::

    block1  2 -> 4    128x128   conv, LeakyReLU, Dropout  (no BatchNorm)
    block2  4 -> 8     64x64    conv, LeakyReLU, BatchNorm, Dropout
    block3  8 -> 16    32x32    "
    attention  16      32x32    x + gamma * attention(x), N = 1024 tokens
    block4 16 -> 32    16x16    "
    block5 32 -> 64     8x8     "
    block6 64 -> 128    4x4     "
    (minibatch_std > 0: one more channel, each group's standard deviation; off in the paper)
    final 128 -> 1      1x1     spectral-norm conv k4 s1 p0, flattened to (B,)

Block convs are spectral-norm Conv2d k4 s2 p1 (block1's and block2's gradients computed
by :class:`~ssgan_plugins.paper.layers.FewChannelConv2d`: the same weights and results,
faster). 177,858 parameters (spectral norm's ``u``/``v`` vectors are buffers). Weights
use PyTorch's default init.

Features for matching (``feature_layers``): the paper takes them "from the critic's
attention layer and the second to last convolution block". With the paper's six
convolution blocks before the final convolution, those are

``attention``  the attention layer's output ``x + gamma * attention(x)``, ``(B, 16, 32, 32)``;
``block5``     the output of the fifth block (after its Dropout), ``(B, 64, 8, 8)``.

Any of ``block1`` .. ``block6`` and ``attention`` may be named instead, and ``input``
(the image itself), which turns feature matching into a pixel loss.

Attention (``attention`` option, see :mod:`ssgan_plugins.paper.attention`): the
paper presets use ``paper``, the original implementation's ``relu(k^T q)``
L1-normalised rule, because that is the model the paper measured and the one its
parameter count and behaviour describe. The paper calls it "linear attention",
but the rule is not linear in cost when written directly (``N x N``); computed with
``attention_impl = "sorted"`` (the default via ``auto``) it is exact and
``O(N log N)``, so it is no longer the bottleneck. ``linear`` is a true
linear-complexity kernel attention with the same parameters, offered as a variant.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from ssgan_core import PAPER_IMAGE_SHAPE, AudioSpec, Critic, InputError
from ssgan_plugins.paper.attention import SelfAttention2d
from ssgan_plugins.paper.generator import check_paper_shape
from ssgan_plugins.paper.layers import Dropout, FewChannelConv2d
from ssgan_plugins.paper.options import PaperCriticOptions

BLOCK_CHANNELS = (4, 8, 16, 32, 64, 128)
FEW_CHANNELS = 4
"""Blocks with at most this many input channels use :class:`FewChannelConv2d` (block1, block2)."""
ATTENTION_AFTER = 3
"""Attention follows this block (16 channels at 32x32)."""

LAYER_ORDER: tuple[str, ...] = ("block1", "block2", "block3", "attention", "block4", "block5", "block6")


def _norm(kind: str, channels: int) -> list[nn.Module]:
    if kind == "batch":
        return [nn.BatchNorm2d(channels)]
    return [nn.GroupNorm(1, channels)] if kind == "layer" else []


def _block(in_channels: int, out_channels: int, options: PaperCriticOptions, norm: bool) -> nn.Sequential:
    # The first two blocks' gradients are faster computed another way (FewChannelConv2d);
    # wider blocks measured slower that way.
    conv = FewChannelConv2d if in_channels <= FEW_CHANNELS else nn.Conv2d
    layers: list[nn.Module] = [
        spectral_norm(conv(in_channels, out_channels, kernel_size=4, stride=2, padding=1)),
        nn.LeakyReLU(options.leaky_slope, inplace=True),  # on a fresh tensor no backward reads
    ]
    if norm:
        layers.extend(_norm(options.norm, out_channels))
    layers.append(Dropout(options.dropout))
    return nn.Sequential(*layers)


class PaperCritic(Critic):
    """Image ``(B, 2, 256, 256)`` -> Wasserstein score ``(B,)`` and named features."""

    def __init__(self, options: PaperCriticOptions | None = None) -> None:
        super().__init__()
        options = options or PaperCriticOptions()
        self.feature_layers = tuple(dict.fromkeys(options.feature_layers))
        in_channels = PAPER_IMAGE_SHAPE.channels
        for index, out_channels in enumerate(BLOCK_CHANNELS, start=1):
            self.add_module(f"block{index}", _block(in_channels, out_channels, options, norm=index > 1))
            in_channels = out_channels
        self.attention = SelfAttention2d(
            BLOCK_CHANNELS[ATTENTION_AFTER - 1],
            kind=options.attention,
            impl=options.attention_impl,
            eps=options.attention_eps,
        )
        self.minibatch_std = options.minibatch_std
        extra = 1 if self.minibatch_std else 0
        self.final = spectral_norm(nn.Conv2d(in_channels + extra, 1, kernel_size=4, stride=1, padding=0))

    def forward_features(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        if image.dim() != 4 or image.shape[1:] != PAPER_IMAGE_SHAPE:
            c, f, t = PAPER_IMAGE_SHAPE
            raise InputError(f"critic expects images of shape (B, {c}, {f}, {t}), got {tuple(image.shape)}")
        features: dict[str, Tensor] = {"input": image} if "input" in self.feature_layers else {}
        x = image
        for name in LAYER_ORDER:
            x = getattr(self, name)(x)
            if name in self.feature_layers:
                features[name] = x
        if self.minibatch_std:
            x = with_group_std(x, self.minibatch_std)
        return self.final(x).flatten(), features


def with_group_std(x: Tensor, group: int) -> Tensor:
    """``x`` with one more channel: the mean standard deviation of each group of ``group``
    consecutive items (every feature, every position), the same for the items of a group.

    Groups never straddle the halves of a joint real + fake batch when both halves are
    multiples of ``group``; a batch not divisible by ``group`` uses its largest divisor
    below it.
    """
    batch = x.shape[0]
    size = next(g for g in range(min(group, batch), 0, -1) if batch % g == 0)
    grouped = x.view(batch // size, size, *x.shape[1:])
    std = grouped.var(dim=1, unbiased=False).add(1e-8).sqrt().mean(dim=(1, 2, 3))
    channel = std.repeat_interleave(size).view(batch, 1, 1, 1).expand(batch, 1, *x.shape[2:])
    return torch.cat([x, channel], dim=1)


def build_paper_critic(options: PaperCriticOptions, context: AudioSpec) -> PaperCritic:
    """Factory registered as ``paper-critic``."""
    check_paper_shape("paper-critic", context)
    return PaperCritic(options)


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters (spectral norm's power-iteration vectors are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters())
