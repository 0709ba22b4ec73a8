"""What every method shares: the contract between a method and the training loop.

A method is an `nn.Module` composed of an encoder (`backbone`), heads and a loss. The engine
makes the views, calls `training_step`, steps the optimizer, then calls `after_step`. Methods
hold no optimizer, logging or evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class StepOutput:
    """What one training step returns.

    loss: 0-dim tensor to back-propagate.
    z: two (N, D) embeddings of the two views of the same N samples (for health metrics:
       std, rank, alignment, uniformity); None when a method has no pair of embeddings.
    logs: extra 0-dim tensors to log (e.g. loss terms); kept as tensors so the step never
       syncs with the host.
    """

    loss: torch.Tensor
    z: tuple[torch.Tensor, torch.Tensor] | None = None
    logs: dict[str, torch.Tensor] = field(default_factory=dict)


class Method(nn.Module):
    """Base of all methods. Subclasses set `self.backbone` and implement `training_step`."""

    backbone: nn.Module

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        """views: list of (N, C, H, W) tensors (the same N samples, augmented differently)."""
        raise NotImplementedError

    def forward(self, views: list[torch.Tensor], targets: torch.Tensor | None = None) -> StepOutput:
        """Same as `training_step`; lets DistributedDataParallel wrap a method directly."""
        return self.training_step(views, targets)

    def after_step(self, step: int, total_steps: int) -> None:
        """Called after each optimizer step (momentum targets, schedules). Default: nothing."""

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) normalized images -> (N, num_features) backbone representation."""
        return self.backbone(x)
