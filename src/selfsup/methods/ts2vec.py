"""TS2Vec (Yue et al. 2022, "TS2Vec: Towards Universal Representation of Time Series", AAAI,
arXiv:2106.10466): two overlapping random crops of each series, encoded per timestep; the
hierarchical contrastive loss on the overlap (same timestamps, different contexts).

The pieces that make it TS2Vec live elsewhere: the crops in the `ts2vec_views` recipe, the
random timestamp masking in the `ts2vec_encoder` (as the official TSEncoder, training mode
only), the loss in `selfsup.losses.hierarchical`. This module only cuts the overlap out of the
two per-timestep encodings and applies the loss.
"""

from __future__ import annotations

import torch
import torch.distributed as torch_dist
from torch import nn

from selfsup import dist
from selfsup.losses.hierarchical import HierarchicalContrastiveLoss
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.iterate_average import IterateAverage
from selfsup.methods.registry import register_method


def _smallest_over_ranks(overlap: int, device: torch.device) -> int:
    """The smallest overlap of all ranks (itself with one process).

    Each rank draws its crops with its own generator, so overlaps differ; the gathered
    instance term needs the same number of timesteps on every rank.
    """
    if dist.world_size() == 1:
        return overlap
    t = torch.tensor(overlap, device=device)
    torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MIN)
    return int(t)


def _full_precision(t: torch.Tensor) -> torch.Tensor:
    """fp16 / bf16 -> fp32; fp32 and fp64 unchanged."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class TS2Vec(Method):
    """backbone (per-timestep series encoder) -> hierarchical contrastive loss on the overlap.

    backbone: `forward_features(x (N, C, L)) -> (N, L, D)` (one vector per input timestep) and
    `forward(x) -> (N, D)` (max-pooled, what `encode` returns, as TS2Vec's full-series
    encoding). No projection head: TS2Vec contrasts the encoder's output directly.
    alpha, temporal_unit: see `selfsup.losses.hierarchical.hierarchical_contrastive_loss`.
    gather: the instance term's negatives from every rank under torchrun (the global batch).
    average: keep the equal-weight average of every iterate and leave it in the backbone after
    the last step (the official code evaluates its AveragedModel, not the last weights).
    """

    def __init__(
        self,
        backbone: nn.Module,
        alpha: float = 0.5,
        temporal_unit: int = 0,
        gather: bool = True,
        average: bool = True,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.loss = HierarchicalContrastiveLoss(alpha, temporal_unit, gather)
        self.iterates = IterateAverage(backbone) if average else None

    def after_step(self, step: int, total_steps: int) -> None:
        """Fold this step's weights into the average; after the last, the backbone holds it."""
        if self.iterates is None:
            return
        self.iterates.update(self.backbone, step + 1)
        if step + 1 == total_steps:
            self.iterates.copy_to(self.backbone)

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        """views: [x1 (N, C, L1), x2 (N, C, L2), overlap (0-d long) o], from `ts2vec_views`.

        The last o steps of x1 and the first o steps of x2 are the same timestamps (the
        official code's out1[:, -crop_l:] and out2[:, :crop_l]). Under torchrun every rank
        uses the first min-over-ranks o steps of its overlap (still the same timestamps).
        """
        if len(views) != 3:
            raise ValueError(
                f"TS2Vec takes 3 views [x1 (N, C, L1), x2 (N, C, L2), overlap], got {len(views)}"
            )
        x1, x2, overlap = views
        if x1.dim() != 3 or x2.dim() != 3 or x2.shape[:2] != x1.shape[:2]:
            raise ValueError(
                f"TS2Vec views must be (N, C, L) series of the same N and C, got "
                f"{tuple(x1.shape)} and {tuple(x2.shape)}"
            )
        o = int(overlap)  # a host sync, but slicing needs the number on the host
        n, l1, l2 = x1.shape[0], x1.shape[-1], x2.shape[-1]
        if not 1 <= o <= min(l1, l2):
            raise ValueError(
                f"TS2Vec overlap {o} does not fit the crops: it must be between 1 and the "
                f"shorter crop's length (x1 has {l1} steps, x2 has {l2}); the last o steps of "
                "x1 and the first o steps of x2 must be the same timestamps"
            )
        o = _smallest_over_ranks(o, x1.device)
        h1, h2 = self.backbone.forward_features(x1), self.backbone.forward_features(x2)
        if h1.shape[:2] != (n, l1) or h2.shape[:2] != (n, l2):
            raise ValueError(
                f"TS2Vec needs one representation per input timestep: the encoder gave "
                f"{tuple(h1.shape)} for {l1} steps and {tuple(h2.shape)} for {l2} steps"
            )
        # The overlap: x1's last o steps (its first o of them, after the cross-rank min) and
        # x2's first o steps.
        start = l1 - int(overlap)
        z1, z2 = h1[:, start : start + o], h2[:, :o]  # (N, o, D) each
        # Raw dot products of unnormalized features (tens to hundreds): bf16's 8-bit mantissa
        # would move the logits by whole units, so the loss runs outside autocast, in fp32.
        with torch.autocast(z1.device.type, enabled=False):
            loss = self.loss(_full_precision(z1), _full_precision(z2))
        # Health metrics see the series-level vectors: max over the overlap, as `encode`.
        return StepOutput(loss=loss, z=(z1.amax(1), z2.amax(1)))


@register_method("ts2vec", views="ts2vec_views")
def build_ts2vec(
    encoder: nn.Module, alpha: float = 0.5, temporal_unit: int = 0, average: bool = True
) -> TS2Vec:
    """TS2Vec with the official code's defaults (github.com/yuezhihan/ts2vec).

    alpha: 0.5, `hierarchical_contrastive_loss`'s default (instance and temporal terms weighted
    equally). temporal_unit: 0 (temporal contrast at every scale; `TS2Vec.__init__` default).
    Training recipe of the official train.py, for the modality's defaults: AdamW (torch's
    default weight decay 0.01), lr 1e-3, batch 8 (train.py; the TS2Vec class defaults to 16),
    200 iterations when the training array holds <= 100,000 values (N x T x C), else 600;
    series longer than 3,000 steps are split into sections (max_train_length); a 320-d
    representation from a 10-block dilated CNN of width 64 (the `ts2vec_encoder`); features
    for evaluation come from an equal-weight average of all iterates (torch's AveragedModel,
    updated every step), not from the last weights: `average` (True) does the same.
    """
    return TS2Vec(encoder, alpha=alpha, temporal_unit=temporal_unit, average=average)
