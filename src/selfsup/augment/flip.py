"""Random horizontal flip, one coin per sample."""

from __future__ import annotations

import torch
from torch import Tensor


def sample_flips(
    n: int, p: float = 0.5, device=None, generator: torch.Generator | None = None
) -> Tensor:
    """(n,) bool: which samples to mirror, each with probability `p`."""
    return torch.rand(n, device=device, generator=generator) < p


def random_horizontal_flip(
    x: Tensor, p: float = 0.5, generator: torch.Generator | None = None
) -> Tensor:
    """Mirror each image left-right with probability `p` (0.5 in SimCLR/BYOL/MoCo).

    x: (N, C, H, W) any dtype -> same shape and dtype. (The view pipelines fold the flip into
    the crop's column taps instead, see `resized_crop(hflip=...)`.)
    """
    flip = sample_flips(x.shape[0], p, x.device, generator)
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
