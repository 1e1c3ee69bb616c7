"""Small layers the paper's generator and critic share."""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CHANNELS_LAST = torch.channels_last
WORD_VALUES = 1 << 16
"""Values of a 16-bit random word; the dropout probability's resolution is one in this."""


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same math: zero with probability ``p``, scale by ``1 / (1 - p)``).

    On the CPU the mask comes from 16-bit random words, four to each 64-bit draw, so
    ``p`` is taken to the nearest multiple of 2^-16 (0.2 becomes 0.199997) and the scale
    uses that value, keeping the expectation exact. torch's CPU generator is serial; the
    mask drew a float per element and took a tenth of a paper-model step, a quarter of
    its forward passes (docs/benchmarks.md). Twice differentiable (a product with a
    constant mask), as the gradient penalty needs. Other devices draw ``rand_like``.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return x * torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))
        drop = min(round(self.p * WORD_VALUES), WORD_VALUES - 1)
        n = x.numel()
        words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None)
        keep = words.view(torch.int16)[:n].view(x.shape) >= drop - WORD_VALUES // 2
        return x * keep.to(x.dtype).mul_(WORD_VALUES / (WORD_VALUES - drop))


class SubPixelConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` computed as a stride-1 convolution to ``stride**2`` times the
    channels, then a depth-to-space shuffle: the same weights, keys and result (to float
    rounding).

    A transposed convolution with stride ``s`` writes each output phase (``y mod s``) from
    its own subset of the kernel taps; gathered into one ordinary convolution per phase
    and stacked as channels, the whole layer is one dense convolution. On the CPU that
    measured 1.5x to 2x faster than oneDNN's transposed kernel for the paper
    generator's last layer (8 -> 2 channels to 256x256; docs/benchmarks.md). Layers
    whose output is not ``stride`` times the input (other padding) fall back.
    """

    def forward(self, input: Tensor, output_size: list[int] | None = None) -> Tensor:
        geometry = _exact_stride_geometry(self)
        if geometry is None or output_size is not None or any(self.output_padding):
            return super().forward(input, output_size)
        return sub_pixel_conv_transpose(input, self.weight, self.bias, *geometry)


def _exact_stride_geometry(layer: nn.Conv2d | nn.ConvTranspose2d) -> tuple[int, int] | None:
    """``(stride, padding)`` of a square, undilated, ungrouped, zero-padded layer whose output
    is exactly ``stride`` times (transposed) or ``1/stride`` of its input; else ``None``."""
    (s, s2), (k, k2) = layer.stride, layer.kernel_size
    p, p2 = cast(tuple[int, int], layer.padding)  # a tuple here: no 'same' padding
    exact = (s, k, p) == (s2, k2, p2) and k - 2 * p == s and layer.padding_mode == "zeros"
    return (s, p) if exact and layer.dilation == (1, 1) and layer.groups == 1 else None


def sub_pixel_conv_transpose(
    input: Tensor, weight: Tensor, bias: Tensor | None, stride: int, padding: int
) -> Tensor:
    """``F.conv_transpose2d(input, weight, bias, stride, padding)`` for a square kernel with
    ``kernel - 2 * padding == stride`` (output exactly ``stride`` times the input), as one
    stride-1 convolution and a depth-to-space shuffle (:class:`SubPixelConvTranspose2d`)."""
    in_c, out_c, kernel = weight.shape[0], weight.shape[1], weight.shape[-1]
    taps, low = _phase_taps(stride, kernel, padding)
    taps = taps.to(weight.device)
    phased = weight[:, :, taps][..., taps]  # (in, out, s, n, s, n); -1 picks a tap masked below
    mask = (taps >= 0).to(weight.dtype)
    phased = phased * mask[:, :, None, None] * mask[None, None]
    n = taps.shape[1]
    dense = phased.permute(1, 2, 4, 0, 3, 5).reshape(out_c * stride * stride, in_c, n, n)
    bias = None if bias is None else bias.repeat_interleave(stride * stride)
    if low == n - 1 - low:  # the convolution pads: one copy of the input fewer
        return depth_to_space(F.conv2d(input, dense, bias, padding=low), stride)
    return depth_to_space(F.conv2d(F.pad(input, (low, n - 1 - low) * 2), dense, bias), stride)


def depth_to_space(x: Tensor, factor: int) -> Tensor:
    """``F.pixel_shuffle(x, factor)`` as a view, a permute and one copy: 2.4x faster on the
    CPU for the paper generator's last layer (2.8 against 1.2 ms, batch 16)."""
    b, c, h, w = x.shape
    c //= factor * factor
    return x.view(b, c, factor, factor, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c, h * factor, w * factor)


class FewChannelConv2d(nn.Conv2d):
    """``nn.Conv2d`` with stride ``s``, ``kernel - 2 * padding == s`` (output exactly ``1/s``
    of the input), whose gradients use faster kernels on the CPU: the same weights, keys
    and results (to float rounding), to any order of differentiation.

    oneDNN is slow on strided convolutions with few channels in the default layout: for
    the paper critic's first layer (2 -> 4 channels at 256x256, batch 32) its weight
    gradient took 33 ms against 2 ms with the tensors channels-last, and its input
    gradient (a transposed convolution, which the gradient penalty needs) 38 ms against 11
    as a sub-pixel convolution. Here the layer is three autograd functions that are each
    other's derivatives (convolution, its transpose, its weight gradient), each computed
    the fastest way measured; the gradient penalty's double backward runs through them
    too. For the critic's first two blocks forward + backward measured 1.04x to 3.5x
    faster, with the gradient penalty 1.3x to 1.4x; wider blocks were slower
    (docs/benchmarks.md), so only those two use it. Other geometries and devices fall back to ``nn.Conv2d``.
    """

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        geometry = _exact_stride_geometry(self)
        s, p = geometry or (1, 0)
        fits = input.dim() == 4 and input.shape[-1] % s == 0 and input.shape[-2] % s == 0
        if geometry is None or not fits or input.device.type != "cpu":
            return super()._conv_forward(input, weight, bias)
        # Channels-last once, outside the functions, so the forward and the weight gradient
        # share the copy and autograd still links it to ``input``.
        out = _StridedConv.apply(input.contiguous(memory_format=CHANNELS_LAST), weight, s, p)
        return out if bias is None else out + bias[:, None, None]


def _strided_conv(input: Tensor, weight: Tensor, stride: int, padding: int) -> Tensor:
    return F.conv2d(input.contiguous(memory_format=CHANNELS_LAST), weight, None, stride, padding).contiguous()


def _strided_conv_weight_grad(
    input: Tensor, grad: Tensor, shape: torch.Size, stride: int, padding: int
) -> Tensor:
    like = torch.empty(shape, dtype=grad.dtype, device=grad.device, memory_format=CHANNELS_LAST)
    grads = torch.ops.aten.convolution_backward(
        grad.contiguous(memory_format=CHANNELS_LAST),
        input.contiguous(memory_format=CHANNELS_LAST),
        like,
        None,
        [stride] * 2,
        [padding] * 2,
        [1, 1],
        False,
        [0, 0],
        1,
        [False, True, False],
    )
    return grads[1].contiguous()


class _StridedConv(torch.autograd.Function):
    """``conv2d(x, w)``; derivatives: ``x`` <- its transpose, ``w`` <- its weight gradient."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, w: Tensor, stride: int, padding: int) -> Tensor:
        ctx.save_for_backward(x, w)
        ctx.geometry = stride, padding
        return _strided_conv(x, w, stride, padding)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, w = ctx.saved_tensors
        gx = _StridedConvTranspose.apply(grad, w, *ctx.geometry) if ctx.needs_input_grad[0] else None
        gw = (
            _StridedConvWeightGrad.apply(x, grad, w.shape, *ctx.geometry) if ctx.needs_input_grad[1] else None
        )
        return gx, gw, None, None


class _StridedConvTranspose(torch.autograd.Function):
    """``conv_transpose2d(g, w)``, the input gradient of :class:`_StridedConv`."""

    @staticmethod
    def forward(ctx: Any, g: Tensor, w: Tensor, stride: int, padding: int) -> Tensor:
        ctx.save_for_backward(g, w)
        ctx.geometry = stride, padding
        return sub_pixel_conv_transpose(g, w, None, stride, padding)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        g, w = ctx.saved_tensors
        gg = _StridedConv.apply(grad, w, *ctx.geometry) if ctx.needs_input_grad[0] else None
        gw = (
            _StridedConvWeightGrad.apply(grad, g, w.shape, *ctx.geometry) if ctx.needs_input_grad[1] else None
        )
        return gg, gw, None, None


class _StridedConvWeightGrad(torch.autograd.Function):
    """The weight gradient of :class:`_StridedConv` for input ``x`` and output gradient ``g``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, g: Tensor, shape: torch.Size, stride: int, padding: int) -> Tensor:
        ctx.save_for_backward(x, g)
        ctx.geometry = stride, padding
        return _strided_conv_weight_grad(x, g, shape, stride, padding)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, g = ctx.saved_tensors
        gx = _StridedConvTranspose.apply(g, grad, *ctx.geometry) if ctx.needs_input_grad[0] else None
        gg = _StridedConv.apply(x, grad, *ctx.geometry) if ctx.needs_input_grad[1] else None
        return gx, gg, None, None, None


def _phase_taps(stride: int, kernel: int, padding: int) -> tuple[Tensor, int]:
    """For each output phase ``r`` and window position ``t``, the kernel tap that links them.

    Output ``y = stride * Y + r`` takes input ``i`` through tap ``k`` where ``y + padding =
    stride * i + k``, so ``i = Y + d`` with ``d = (r + padding - k) / stride`` whole.
    Returns ``(stride, n)`` tap indices for window positions ``d = -low .. n - 1 - low``
    (-1 where a phase has no tap there; the caller masks it), and ``low``.
    """
    pairs = [
        (r, (r + padding - k) // stride, k)
        for r in range(stride)
        for k in range(kernel)
        if (r + padding - k) % stride == 0
    ]
    offsets = [d for _, d, _ in pairs]
    low, n = -min(offsets), max(offsets) - min(offsets) + 1
    taps = torch.full((stride, n), -1, dtype=torch.long)
    for r, d, k in pairs:
        taps[r, d + low] = k
    return taps, low
