"""Schedules as pure functions of the step: resuming at step s gives the same value."""

from __future__ import annotations

import math


def warmup_cosine(
    step: int, total_steps: int, peak: float, warmup_steps: int = 0, final: float = 0.0
) -> float:
    """Linear warmup from 0 to `peak` over `warmup_steps`, then cosine decay to `final`.

    SimCLR (Chen et al. 2020) and MoCo v2 use 10 epochs of warmup then cosine without restarts
    (Loshchilov & Hutter 2017).
    """
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    progress = min(progress, 1.0)
    return final + (peak - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def cosine_momentum(step: int, total_steps: int, base: float = 0.996, final: float = 1.0) -> float:
    """EMA momentum rising from `base` to `final` along a cosine.

    BYOL (Grill et al. 2020): 0.996 -> 1.
    """
    progress = min(step / max(1, total_steps), 1.0)
    return final - (final - base) * 0.5 * (1.0 + math.cos(math.pi * progress))
