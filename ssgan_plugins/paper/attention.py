"""Self-attention over the pixels of a feature map, as used in the paper's critic.

Two attention rules share one module layout (1x1 convs ``query``, ``key`` to
``C // 8`` channels, ``value`` to ``C``, and a scalar ``gamma`` starting at 0, so the
layer begins as the identity):

``paper``
    The original StereoSampleGAN rule. With tokens ``i`` (keys) and ``j`` (queries),
    ``A[i, j] = relu(k_i . q_j)`` normalised to unit L1 norm over the key axis ``i``
    (``F.normalize(p=1, dim=1)``, so a query with no positive score gets zeros), and
    ``out_j = gamma * sum_i v_i A[i, j] + x_j``. Written naively it is quadratic:
    an ``N x N`` matrix per item (``N = 1024`` at 32x32), and under the gradient
    penalty's double backward it dominated the original's training time.

``linear``
    Kernelised linear attention (Katharopoulos et al., 2020) with the feature map
    ``phi(x) = elu(x) + 1``: ``out_j = gamma * (sum_i v_i phi(k_i)^T) phi(q_j) /
    (sum_i phi(k_i)) . phi(q_j) + x_j``. ``O(N)`` in tokens, same parameters.

How the ``paper`` rule is computed (``impl``):

``naive``
    The literal ``N x N`` formulation, kept as the reference.
``sorted``
    Exact and ``O(N log N)`` when ``q`` and ``k`` have at most two channels (the
    paper's case: ``16 // 8 = 2``). ``relu(k_i . q_j)`` is non-zero only for keys in
    the open half-plane facing ``q_j``, i.e. keys whose angle lies within 90 degrees
    of ``q_j``'s. With keys sorted by angle, that half-plane is one circular
    interval, so ``sum_{i in H_j} v_i k_i^T`` and ``sum_{i in H_j} k_i`` are
    differences of prefix sums, and ``out_j = (sum v_i k_i^T) q_j / (sum k_i) . q_j``.
    The interval bounds are piecewise constant (no gradient, like ``relu'``), every
    differentiable step is a gather, cumsum or product, so first and second
    derivatives match the naive rule (they can differ only for keys exactly on a
    half-plane boundary, a set of measure zero). The prefix sums are of mean-centred
    terms, so their differences keep float32 precision (measured: closer to a float64
    reference than the naive rule in float32).
``auto``
    ``sorted`` when it applies, else ``naive``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssgan_plugins.paper.options import NORMALIZE_EPS, AttentionImpl, AttentionKind


def relu_attention_naive(q: Tensor, k: Tensor, v: Tensor, eps: float = NORMALIZE_EPS) -> Tensor:
    """The paper rule, literally. ``q, k: (B, d, N)``, ``v: (B, C, N)`` -> ``(B, C, N)``."""
    scores = torch.relu(torch.bmm(k.transpose(1, 2), q))  # (B, N_keys, N_queries)
    weights = F.normalize(scores, p=1, dim=1, eps=eps)
    return torch.bmm(v, weights)


def relu_attention_sorted(q: Tensor, k: Tensor, v: Tensor, eps: float = NORMALIZE_EPS) -> Tensor:
    """The paper rule in ``O(N log N)`` for ``d <= 2`` (see the module docstring)."""
    dims = k.shape[1]
    if dims > 2:
        raise ValueError(f"sorted attention needs q/k with at most 2 channels, got {dims}")
    if dims == 1:  # a 1-D key is a 2-D key on the x axis; the half-plane becomes a sign test
        q, k = F.pad(q, (0, 0, 0, 1)), F.pad(k, (0, 0, 0, 1))
    channels = v.shape[1]

    with torch.no_grad():  # which keys each query sees: piecewise constant, no gradient
        precise = torch.promote_types(k.dtype, torch.float32)  # half precision angles misplace keys
        angle_k, angle_q = k.to(precise), q.to(precise)
        key_angle = torch.atan2(angle_k[:, 1], angle_k[:, 0])  # (B, N) in [-pi, pi]
        key_angle, order = torch.sort(key_angle, dim=1)
        query_angle = torch.atan2(angle_q[:, 1], angle_q[:, 0])
        low = query_angle - math.pi / 2
        low = torch.where(low < -math.pi, low + 2 * math.pi, low)  # [-pi, pi)
        high = low + math.pi  # [0, 2 pi)
        wraps = high > math.pi
        high = torch.where(wraps, high - 2 * math.pi, high)
        # Keys in the half-plane: sorted positions [start, stop) or, when it wraps,
        # [start, N) plus [0, stop).
        start = torch.searchsorted(key_angle, low.contiguous(), right=True)
        stop = torch.searchsorted(key_angle, high.contiguous(), right=False)
        count = (stop - start + wraps * k.shape[2]).unsqueeze(1).to(precise)  # keys per interval

    k_sorted = k.gather(2, order.unsqueeze(1).expand(-1, 2, -1))
    v_sorted = v.gather(2, order.unsqueeze(1).expand(-1, channels, -1))
    # Per key: v k^T (2C values) and k (2 values), summed over each query's interval.
    terms = torch.cat([v_sorted * k_sorted[:, :1], v_sorted * k_sorted[:, 1:], k_sorted], dim=1)
    terms = terms.to(precise)
    # Prefix sums of the centred terms stay small, so differences of them keep their precision;
    # the mean is added back once per key in the interval.
    mean = terms.mean(dim=2, keepdim=True)
    prefix = F.pad((terms - mean).cumsum(dim=2), (1, 0))  # (B, 2C + 2, N + 1), prefix[..., 0] = 0
    width = prefix.shape[1]
    at_stop = prefix.gather(2, stop.unsqueeze(1).expand(-1, width, -1))
    at_start = prefix.gather(2, start.unsqueeze(1).expand(-1, width, -1))
    sums = at_stop - at_start + wraps.unsqueeze(1) * prefix[:, :, -1:] + count * mean  # (B, 2C + 2, N)

    qp = q.to(precise)
    numerator = sums[:, :channels] * qp[:, :1] + sums[:, channels : 2 * channels] * qp[:, 1:]
    denominator = sums[:, 2 * channels] * qp[:, 0] + sums[:, 2 * channels + 1] * qp[:, 1]
    return (numerator / denominator.clamp_min(eps).unsqueeze(1)).to(v.dtype)


def relu_attention(
    q: Tensor, k: Tensor, v: Tensor, impl: AttentionImpl = "auto", eps: float = NORMALIZE_EPS
) -> Tensor:
    """The paper rule with the chosen implementation; ``auto`` picks ``sorted`` when it applies."""
    if impl == "naive" or (impl == "auto" and k.shape[1] > 2):
        return relu_attention_naive(q, k, v, eps)
    return relu_attention_sorted(q, k, v, eps)


def kernel_linear_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Linear attention with ``phi = elu + 1``: ``(B, d, N), (B, d, N), (B, C, N) -> (B, C, N)``."""
    q, k = F.elu(q) + 1, F.elu(k) + 1
    context = torch.bmm(v, k.transpose(1, 2))  # (B, C, d): sum_i v_i phi(k_i)^T
    numerator = torch.bmm(context, q)  # (B, C, N)
    denominator = (k.sum(dim=2, keepdim=True) * q).sum(dim=1, keepdim=True)  # (B, 1, N), > 0
    return numerator / denominator


class SelfAttention2d(nn.Module):
    """``x + gamma * attention(x)`` over the ``H * W`` pixels of ``(B, C, H, W)``.

    ``C + 2 * (C * (C // 8) + C // 8) + C * C + 1`` parameters for either ``kind``
    (341 at ``C = 16``).
    """

    def __init__(
        self,
        channels: int,
        kind: AttentionKind = "paper",
        impl: AttentionImpl = "auto",
        eps: float = NORMALIZE_EPS,
    ) -> None:
        super().__init__()
        reduced = max(channels // 8, 1)
        self.kind, self.impl, self.eps = kind, impl, eps
        self.query = nn.Conv2d(channels, reduced, kernel_size=1)
        self.key = nn.Conv2d(channels, reduced, kernel_size=1)
        self.value = nn.Conv2d(channels, channels, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        q = self.query(x).flatten(2)
        k = self.key(x).flatten(2)
        v = self.value(x).flatten(2)
        if self.kind == "linear":
            out = kernel_linear_attention(q, k, v)
        else:
            out = relu_attention(q, k, v, self.impl, self.eps)
        return self.gamma * out.view_as(x) + x

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, impl={self.impl!r}, eps={self.eps}"
