"""Small layers the paper's generator and critic share."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Dropout(nn.Dropout):
    """``nn.Dropout`` (same math: zero with probability ``p``, scale by ``1 / (1 - p)``).

    The mask is drawn with ``rand_like(x) >= p`` instead of ``bernoulli_``, which is
    about twice as fast on CPU, where dropout on the 256x256 layers was a tenth of a
    critic step. Twice differentiable (a product with a constant mask), as the
    gradient penalty needs.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        mask = torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))
        return x * mask
