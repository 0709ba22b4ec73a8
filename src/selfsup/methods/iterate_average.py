"""The equal-weight average of every iterate of a network's weights (Polyak & Juditsky 1992).

TS2Vec evaluates this average rather than the last weights (its official code wraps the encoder
in torch's AveragedModel and updates it after every optimizer step). Held as buffers of the
method, one per parameter: checkpoints carry it (a resumed run averages on exactly), and the
optimizer, DDP's gradient reduction and the parameter count never see it.
"""

from __future__ import annotations

import torch
from torch import nn


class IterateAverage(nn.Module):
    """Buffers `p0, p1, ...`: the running mean of `module`'s parameters, in their order."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        for i, p in enumerate(module.parameters()):
            self.register_buffer(f"p{i}", p.detach().clone())

    @torch.no_grad()
    def update(self, module: nn.Module, count: int) -> None:
        """Fold in the `count`-th iterate (1 for the first): avg += (w - avg) / count."""
        for avg, w in zip(self.buffers(), module.parameters(), strict=True):
            avg.lerp_(w.detach().to(avg.dtype), 1.0 / count)

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Write the averaged parameters into `module` (its buffers are left as trained)."""
        for avg, w in zip(self.buffers(), module.parameters(), strict=True):
            w.copy_(avg)
