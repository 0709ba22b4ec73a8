"""Momentum (EMA) targets: a frozen copy of the online network that trails it.

Used by MoCo (key encoder), BYOL (target network) and DINO (teacher). The target is never
optimized: its parameters have `requires_grad=False`, so no optimizer or DDP sees them, and it
moves only through `update_momentum` after each optimizer step.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def frozen_copy(online: nn.Module) -> nn.Module:
    """A deep copy of `online` whose parameters take no gradient (the initial target: BYOL and
    MoCo start the target equal to the online network)."""
    target = copy.deepcopy(online)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def update_momentum(online: nn.Module, target: nn.Module, m: float) -> None:
    """target <- m * target + (1 - m) * online, parameter by parameter (BYOL eq. 1, MoCo eq. 2).

    Buffers (BatchNorm running statistics) are not averaged: the target runs its own
    training-mode forwards, which keep its statistics current (as the BYOL and MoCo code).
    """
    for p_o, p_t in zip(online.parameters(), target.parameters(), strict=True):
        p_t.lerp_(p_o.detach(), 1.0 - m)


def cosine_momentum(step: int, total_steps: int, base: float = 0.996, final: float = 1.0) -> float:
    """EMA momentum rising from `base` at step 0 to `final` at `total_steps` along a cosine:
    m = final - (final - base) * (cos(pi * step / total) + 1) / 2 (BYOL, Grill et al. 2020,
    Sec. 3.2: base 0.996, final 1). The same formula as engine.schedule.cosine_momentum,
    repeated here because methods sit below the engine."""
    progress = min(step / max(1, total_steps), 1.0)
    return final - (final - base) * 0.5 * (1.0 + math.cos(math.pi * progress))
