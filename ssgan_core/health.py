"""Run health: name the ways GAN training fails, from numbers every run already logs.

Each period the trainer adds a few scale-free statistics to its metrics line:

- ``val_auc``: the share of (real, fake) validation pairs the critic ranks the right
  way round. Near 1 the critic separates the sets outright; below 0.5 it ranks fakes
  above reals, which a working critic never does for long.
- ``diversity`` / ``data_diversity``: mean pairwise distance of the preview images and
  of validation images (both pooled 4x4, so the figures are cheap and comparable).
- ``channel_gap`` / ``data_channel_gap``: image-space mean ``|channel 0 - channel 1|``.
- ``fd`` / ``data_fd``: FD of the previews against validation audio, and of as many
  training clips rendered the same way (so inversion and the small sample cost both
  sides alike): a generator that drew real clips would score ``data_fd``.

:func:`check_period` turns the history into findings; :func:`summarise` gives the
end-of-run verdict. The thresholds are ``training.health`` fields.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ssgan_core.config import HealthConfig


@dataclass(frozen=True)
class Finding:
    kind: str
    """``runaway-critic``, ``frozen-critic``, ``mode-collapse``, ``noisy-channel`` or ``far-from-data``."""
    message: str
    advice: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}; {self.advice}"


def ranking_auc(real: Tensor, fake: Tensor) -> float:
    """P(score(real) > score(fake)) over all pairs, ties counted half (the Mann-Whitney AUC)."""
    diff = real.reshape(-1, 1).double() - fake.reshape(1, -1).double()
    return float((diff > 0).double().mean() + 0.5 * (diff == 0).double().mean())


def image_stats(images: Tensor) -> dict[str, float]:
    """Diversity and channel gap of ``(B, C, F, T)`` images, pooled 4x4 first."""
    pooled = torch.nn.functional.avg_pool2d(images.float(), 4)
    flat = pooled.reshape(len(pooled), -1)
    n = len(flat)
    pair_sum = float(torch.cdist(flat, flat).sum()) if n > 1 else 0.0
    stats = {"diversity": pair_sum / max(n * (n - 1), 1)}
    if images.shape[1] >= 2:
        gap = (pooled[:, 0] - pooled[:, 1]).abs()
        stats["channel_gap"] = float(gap.mean())
        stats["louder_channel"] = int(pooled[:, 1].mean() > pooled[:, 0].mean())
    return stats


def check_period(history: Sequence[dict[str, Any]], cfg: HealthConfig) -> list[Finding]:
    """Findings for the latest period of ``history`` (one metrics line per period)."""
    m = history[-1]
    found: list[Finding] = []
    auc = m.get("val_auc")
    if auc is not None and auc >= cfg.runaway_auc and _growing(history, "val_abs_w", cfg.runaway_periods):
        found.append(
            Finding(
                "runaway-critic",
                f"the critic separates real from fake outright (AUC {auc:.3f}) and |val W| has grown "
                f"{cfg.runaway_periods} periods in a row",
                "lower training.critic_optimizer.lr, raise the gradient-penalty weight, or add data "
                "(data.augment.copies)",
            )
        )
    if auc is not None and auc < cfg.frozen_auc:
        found.append(
            Finding(
                "frozen-critic",
                f"the critic ranks fakes above reals (AUC {auc:.3f}): its updates have stalled",
                "resume from an earlier checkpoint with a lower critic learning rate, or train with "
                "Adam (preset `recommended`)",
            )
        )
    div, ref = m.get("diversity"), m.get("data_diversity")
    if div is not None and ref and div < cfg.collapse_ratio * ref:
        found.append(
            Finding(
                "mode-collapse",
                f"previews vary {div / ref:.0%} as much as the data",
                "try another seed, a lower generator learning rate, or more data",
            )
        )
    gap, ref_gap = m.get("channel_gap"), m.get("data_channel_gap")
    if gap is not None and ref_gap is not None and gap > max(cfg.channel_gap, 5 * ref_gap):
        side = "right" if m.get("louder_channel") else "left"
        found.append(
            Finding(
                "noisy-channel",
                f"the {side} channel differs from the other by {gap:.3f} (data: {ref_gap:.3f})",
                "train longer or with another seed",
            )
        )
    fd, floor = m.get("fd"), m.get("data_fd")
    if fd is not None and floor and fd > cfg.far_ratio * floor:
        found.append(
            Finding(
                "far-from-data",
                f"the previews score FD {fd:,.0f}, {fd / floor:.1f}x what as many training clips score "
                f"({floor:,.0f})",
                _far_advice(history, float(fd)),
            )
        )
    return found


def _far_advice(history: Sequence[dict[str, Any]], fd: float) -> str:
    """What to try for ``far-from-data``: more training, unless the run was nearer the data
    before and has moved away (then more of the same makes it worse)."""
    earlier = [
        (m.get("epoch", n), float(m["fd"])) for n, m in enumerate(history[:-1], 1) if m.get("fd") is not None
    ]
    if earlier:
        period, nearest = min(earlier, key=lambda pair: pair[1])
        if 2 * nearest < fd:
            return (
                f"its previews were nearest the data at period {period} (FD {nearest:,.0f}) and have moved "
                "away since: use the best period's checkpoint (best.ckpt), or try another seed or lower "
                "learning rates (training.*_optimizer.lr)"
            )
    return "train longer (training.steps), or fine-tune from a checkpoint (--init-from)"


def _growing(history: Sequence[dict[str, Any]], key: str, periods: int) -> bool:
    recent = [m.get(key) for m in history[-(periods + 1) :]]
    if len(recent) < periods + 1 or any(v is None for v in recent):
        return False
    return all(b > a for a, b in itertools.pairwise(float(v) for v in recent if v is not None))


def summarise(history: Sequence[dict[str, Any]]) -> tuple[bool, str]:
    """``(healthy, one paragraph)`` for the end of a run: healthy means its last period had no finding."""
    if not history:
        return True, "no period finished, so nothing to judge yet"
    last = history[-1].get("health") or []
    earlier = sorted({k for m in history[:-1] for k in m.get("health") or []} - set(last))
    if not last:
        note = f" (earlier periods showed: {', '.join(earlier)})" if earlier else ""
        return True, f"healthy: no finding (critic, collapse, channels, distance to data) at the end{note}"
    advice = history[-1].get("health_advice") or []
    return False, f"unhealthy: {', '.join(last)}. " + " ".join(advice)
