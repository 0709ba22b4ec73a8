"""What every method shares: the contract between a method and the training loop.

A method is an `nn.Module` composed of an encoder (`backbone`), heads and a loss. The engine
makes the views, calls `training_step`, steps the optimizer, then calls `after_step`. Methods
hold no optimizer, logging or evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
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

    def after_backward(self, step: int, total_steps: int) -> None:
        """Called between backward (gradients unscaled, the loop's own clipping done) and the
        optimizer step, to edit gradients in place (DINO: clip, freeze a layer). Default: none."""

    def weight_decay(self, step: int, total_steps: int, base: float) -> float | None:
        """The weight decay for `step` of the decayed parameter groups (`base`: the configured
        one), or None to leave it as configured (the default). DINO: a cosine 0.04 -> 0.4."""
        return None

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) normalized images -> (N, num_features) backbone representation.

        Runs the backbone in eval mode (BatchNorm uses, and keeps, its running statistics;
        dropout is off) and then restores every sub-module's mode as the caller had it.
        """
        with eval_mode(self.backbone):
            return self.backbone(x)


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """`module` (and all its sub-modules) in eval mode inside the block; each sub-module's own
    train/eval flag is restored afterwards, so a caller's mixed modes survive."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training
