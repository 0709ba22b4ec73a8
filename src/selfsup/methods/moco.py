"""MoCo v2 (He et al. 2020, arXiv:1911.05722; Chen et al. 2020, arXiv:2003.04297) and the
MoCo v3 variant (Chen, Xie & He 2021, arXiv:2104.02057).

v2: a query encoder (backbone + MLP head) and a momentum key encoder (its EMA copy); InfoNCE of
each query against its key (positive) and a FIFO queue of past keys (negatives). The keys are
enqueued after the loss, so a batch's keys are never its own negatives.
v3 (`predictor` given, `queue_size=0`): no queue; the other keys of the (global) batch are the
negatives; a prediction head on the query side; symmetric loss scaled by 2T (official code).

Shuffle-BN (v2): MoCo shuffles the key batch across GPUs so that BN statistics cannot leak
which key matches which query (Sec. 3.3). The leak exists on one GPU too; as MoCo's CIFAR-10
demo, BN statistics are taken over 8 sub-batches in both encoders (`shuffle_bn.py`) and the key
batch is permuted before the key forward and restored after. Under torchrun each process does
the same on its own batch (keep `train.sync_bn: false`: SyncBatchNorm replaces the split layers
and normalizes a query and its key with the same global statistics, the leak).
v3 has no shuffle-BN: its negatives are the batch's own keys, which share the positive's
statistics, and the official code uses SyncBN (arXiv:2104.02057, Sec. 4 / main_moco.py).
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.heads import presets
from selfsup.losses.functional import info_nce
from selfsup.methods.base import Method, StepOutput
from selfsup.methods.momentum import cosine_momentum, frozen_copy, update_momentum
from selfsup.methods.queue import MemoryQueue
from selfsup.methods.registry import register_method
from selfsup.methods.shuffle_bn import DEMO_GROUPS, split_batchnorm_


class MoCo(Method):
    """MoCo v2 (queue) or v3 (predictor, no queue).

    backbone: encoder with `num_features`; projector: (N, num_features) -> (N, d);
    predictor: (N, d) -> (N, d) or None (v2); queue_size: negatives kept (0: in-batch
    negatives, v3); temperature: 0.2 (MoCo v2; v3 uses 1.0 for ResNet, 0.2 for ViT);
    momentum -> final_momentum: EMA of the key encoder along a cosine (v2: constant 0.999;
    v3: 0.99 -> 1); symmetric: also swap the views (MoCo's CIFAR-10 demo and v3).
    shuffle_bn_groups: BatchNorm statistics over this many sub-batches in both encoders, the
    key batch shuffled first (MoCo's CIFAR-10 demo: 8); 0 or 1: plain BatchNorm.
    """

    def __init__(
        self,
        backbone: nn.Module,
        projector: nn.Module,
        predictor: nn.Module | None = None,
        queue_size: int = 65536,
        temperature: float = 0.2,
        momentum: float = 0.999,
        final_momentum: float = 0.999,
        symmetric: bool = False,
        shuffle_bn_groups: int = DEMO_GROUPS,
    ) -> None:
        super().__init__()
        split = shuffle_bn_groups > 1  # before the key copies, which then split too
        self.shuffle_bn = (
            split and split_batchnorm_(nn.ModuleList([backbone, projector]), shuffle_bn_groups) > 0
        )
        self.backbone, self.projector, self.predictor = backbone, projector, predictor
        self.key_backbone, self.key_projector = frozen_copy(backbone), frozen_copy(projector)
        self.temperature, self.symmetric = temperature, symmetric
        self.momentum, self.final_momentum = momentum, final_momentum
        dim = _out_dim(projector, backbone.num_features)
        self.queue = MemoryQueue(queue_size, dim) if queue_size > 0 else None

    def _query(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (N, C, H, W) -> (projection z, query q), both (N, d)."""
        z = self.projector(self.backbone(x))
        return z, (self.predictor(z) if self.predictor is not None else z)

    @torch.no_grad()
    def _key(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) -> keys (N, d), no gradient. With shuffle-BN the batch is permuted
        first, so key i's BN sub-batch is a random one, not its query's."""
        if not (self.shuffle_bn and self.training):
            return self.key_projector(self.key_backbone(x))
        perm = torch.randperm(x.shape[0], device=x.device)
        k = self.key_projector(self.key_backbone(x[perm]))
        return k[torch.argsort(perm)]  # back in the order of the queries

    def _contrast(self, q: torch.Tensor, k: torch.Tensor, negatives) -> torch.Tensor:
        if self.queue is None:  # v3: in-batch keys of all ranks, loss scaled by 2T
            return 2 * self.temperature * info_nce(q, k, self.temperature, gather=True)
        return info_nce(q, k, self.temperature, negatives, in_batch_negatives=False)

    def training_step(
        self, views: list[torch.Tensor], targets: torch.Tensor | None = None
    ) -> StepOutput:
        """views: [x_a, x_b], each (N, C, H, W)."""
        x_a, x_b = views
        n = x_a.shape[0]
        z, q = self._query(torch.cat([x_a, x_b]) if self.symmetric else x_a)
        k_b = self._key(x_b)
        negatives = self.queue.items() if self.queue is not None else None
        loss = self._contrast(q[:n], k_b, negatives)
        keys = k_b
        if self.symmetric:
            k_a = self._key(x_a)
            loss = loss + self._contrast(q[n:], k_a, negatives)
            loss = loss if self.queue is None else 0.5 * loss  # v3 sums the two terms
            keys = torch.cat([k_b, k_a])
        if self.queue is not None and self.training:
            self.queue.enqueue(nn.functional.normalize(keys.float(), dim=1))  # after the loss
        z_b = z[n:] if self.symmetric else k_b
        return StepOutput(loss=loss, z=(z[:n], z_b))

    def after_step(self, step: int, total_steps: int) -> None:
        m = cosine_momentum(step, total_steps, self.momentum, self.final_momentum)
        update_momentum(self.backbone, self.key_backbone, m)
        update_momentum(self.projector, self.key_projector, m)


def _out_dim(head: nn.Module, in_dim: int) -> int:
    """The head's output width, found with a 2-sample dry run (heads have no common attribute)."""
    was = head.training
    head.eval()
    with torch.no_grad():
        d = head(torch.zeros(2, in_dim)).shape[1]
    head.train(was)
    return d


@register_method("moco", views="moco_v2_views")
def build_moco(
    encoder: nn.Module,
    queue_size: int = 65536,
    temperature: float = 0.2,
    proj_hidden_dim: int | None = None,
    proj_dim: int = 128,
    momentum: float = 0.999,
    final_momentum: float = 0.999,
    symmetric: bool = False,
    shuffle_bn_groups: int = 8,
) -> MoCo:
    """MoCo v2: queue 65,536, T=0.2, m=0.999 constant, 2-layer MLP head (hidden = encoder
    width) to 128-d (Chen et al. 2020, arXiv:2003.04297); 4,096 is the CIFAR-10 queue.
    shuffle_bn_groups: shuffle-BN emulated with BN over 8 sub-batches per process (MoCo's
    CIFAR-10 demo, `bn_splits=8`; `selfsup.methods.shuffle_bn`); 0: plain BatchNorm."""
    head = presets.moco_v2_head(encoder.num_features, proj_hidden_dim, proj_dim)
    return MoCo(
        encoder, head, None, queue_size, temperature, momentum, final_momentum, symmetric,
        shuffle_bn_groups,
    )  # fmt: skip


@register_method("mocov3", views="byol_views")
def build_moco_v3(
    encoder: nn.Module,
    temperature: float = 1.0,
    proj_hidden_dim: int = 4096,
    proj_dim: int = 256,
    proj_layers: int = 2,
    pred_hidden_dim: int = 4096,
    momentum: float = 0.99,
    final_momentum: float = 1.0,
) -> MoCo:
    """MoCo v3, ResNet recipe (Chen, Xie & He 2021, arXiv:2104.02057): T=1.0, 2-layer 4096-d
    projector to 256-d, 4096-d predictor without output BN, m 0.99 -> 1 cosine, no queue."""
    proj = presets.moco_v3_projector(encoder.num_features, proj_hidden_dim, proj_dim, proj_layers)
    pred = presets.moco_v3_predictor(proj_dim, pred_hidden_dim, proj_dim, last_norm=False)
    # No shuffle-BN in v3: in-batch negatives share the positive's BN statistics (SyncBN there).
    return MoCo(
        encoder, proj, pred, 0, temperature, momentum, final_momentum, True, shuffle_bn_groups=0
    )
