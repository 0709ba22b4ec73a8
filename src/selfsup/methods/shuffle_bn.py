"""Shuffle-BN on one process: BatchNorm statistics over G sub-batches (MoCo, He et al. 2020).

MoCo (Sec. 3.3) found that BatchNorm lets a query and its key "cheat": normalized with the
same batch's statistics, the positive is recognizable by the statistics alone, and the loss
falls without a good representation. Its fix, shuffle-BN, computes BN per GPU and shuffles the
key batch across GPUs, so a key is normalized with other samples than its query. One GPU has
the same leak; MoCo's own CIFAR-10 demo (facebookresearch/moco, colab/moco_cifar10_demo.ipynb)
emulates 8 GPUs with `SplitBatchNorm` (statistics over 8 sub-batches, `--bn-splits 8`) in both
encoders and shuffles the key batch before its forward. This module is that emulation.

`split_batchnorm_(module, groups)` turns a module's BatchNorm1d/2d layers into split ones in
place (same parameters, buffers and state_dict keys; eval mode is plain BatchNorm).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# MoCo's CIFAR-10 demo: `bn_splits=8` ("simulate multi-gpu behavior of BatchNorm in one gpu").
DEMO_GROUPS = 8


def group_count(n: int, groups: int) -> int:
    """The largest g <= groups that splits n samples into equal sub-batches of >= 2 (BN needs
    two samples); 1 (no split) when there is none, e.g. an odd n."""
    for g in range(min(groups, n // 2), 1, -1):
        if n % g == 0:
            return g
    return 1


class _SplitForward:
    """Training-mode forward with statistics per sub-batch: sample i is in group i mod g."""

    groups: int = DEMO_GROUPS

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, ...) -> (N, C, ...); running statistics get the mean over the groups."""
        bn: nn.modules.batchnorm._BatchNorm = self  # type: ignore[assignment]
        n, c = x.shape[:2]
        g = group_count(n, self.groups)
        if not bn.training or g == 1:
            return super().forward(x)  # type: ignore[misc]
        # (N, C, ...) -> (N / g, g * C, ...): row r holds samples r*g .. r*g+g-1, one per group,
        # so channel j*C + k is channel k of group j (the demo's view, no copy).
        xs = x.reshape(n // g, g * c, *x.shape[2:])
        stats = bn.track_running_stats and bn.running_mean is not None
        mean = bn.running_mean.repeat(g) if stats else None
        var = bn.running_var.repeat(g) if stats else None
        weight = bn.weight.repeat(g) if bn.weight is not None else None
        bias = bn.bias.repeat(g) if bn.bias is not None else None
        out = F.batch_norm(xs, mean, var, weight, bias, True, _momentum(bn), bn.eps)
        if stats:
            with torch.no_grad():
                bn.running_mean.copy_(mean.view(g, c).mean(0))
                bn.running_var.copy_(var.view(g, c).mean(0))
        return out.reshape(x.shape)


def _momentum(bn: nn.modules.batchnorm._BatchNorm) -> float:
    """BatchNorm's own update factor (counts the batch; momentum None: cumulative average)."""
    if bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
        if bn.momentum is None:
            return 1.0 / float(bn.num_batches_tracked)
    return bn.momentum if bn.momentum is not None else 0.0


class SplitBatchNorm1d(_SplitForward, nn.BatchNorm1d):
    """BatchNorm1d whose training statistics are per sub-batch (`groups`)."""


class SplitBatchNorm2d(_SplitForward, nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are per sub-batch (`groups`)."""


_SPLIT = {nn.BatchNorm1d: SplitBatchNorm1d, nn.BatchNorm2d: SplitBatchNorm2d}


def split_batchnorm_(module: nn.Module, groups: int = DEMO_GROUPS) -> int:
    """Make every plain BatchNorm1d/2d of `module` a split one, in place; return how many.

    In place (the class changes, the object stays): parameters, buffers, state_dict keys and
    optimizer references are untouched. Subclasses (SyncBatchNorm, timm's BatchNormAct2d) are
    left as they are.
    """
    count = 0
    for m in module.modules():
        split = _SPLIT.get(type(m))
        if split is not None:
            m.__class__ = split
            m.groups = groups  # type: ignore[assignment]
            count += 1
    return count
