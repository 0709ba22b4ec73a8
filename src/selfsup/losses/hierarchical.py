"""TS2Vec's hierarchical contrastive loss (Yue et al. 2022, "TS2Vec: Towards Universal
Representation of Time Series", AAAI, arXiv:2106.10466, Sec. 3.2, eq. 1-3).

Two views of the same B series, encoded per timestep on their overlap: z1, z2 (B, T, D),
row t of z1 and row t of z2 are the same timestamp. At every scale both terms are computed,
then both views are max-pooled by 2 over time, until one timestep is left:
- instance term: at each timestep, sample i of one view against the 2B samples of both views
  at that timestep; the positive is sample i of the other view;
- temporal term: in each sample, timestep t of one view against the 2T timesteps of both views
  of that sample; the positive is timestep t of the other view.
Scores are raw dot products (no normalization, no temperature), the anchor's own entry removed
from the softmax, as in the official code (github.com/yuezhihan/ts2vec, models/losses.py),
which these functions reproduce: the same terms, the same means, the same edge cases (B = 1:
instance term 0; the last scale, T = 1: instance term only; the loss is divided by the number
of scales). Computed as -log_softmax with the own entry at -inf (stable; never log(a / b)).

`gather=True` (under torchrun): the instance term's candidates are the global batch
(`selfsup.dist.gather_with_grad`, gathered once before pooling: pooling acts per sample, so it
commutes with the gather). Each rank's anchors are its own rows and every term is a mean over
an equal number of anchors per rank (B each, T the same on every rank), so the mean of the
ranks' losses, and DDP's gradient average, equal one process on the full batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup import dist


def _two_view_contrast(
    q1: torch.Tensor, q2: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor, offset: int
) -> torch.Tensor:
    """Mean -log p(positive) of the anchors cat([q1, q2]) among the candidates cat([k1, k2]).

    q1, q2: (G, n, D) anchors of view 1 and view 2, in G independent groups (timesteps or
    samples); k1, k2: (G, m, D) candidates, where the anchors are rows [offset, offset + n)
    of k1 / k2. Anchor j of view 1 has its positive at row offset + j of k2, and vice versa;
    its own row is left out of its softmax. Returns the 0-dim mean over the G * 2n anchors.
    """
    n, m = q1.shape[1], k1.shape[1]
    logits = torch.cat([q1, q2], 1) @ torch.cat([k1, k2], 1).transpose(1, 2)  # (G, 2n, 2m)
    rows = torch.arange(n, device=q1.device) + offset
    own = torch.cat([rows, rows + m])  # (2n,) the anchor's own column
    positive = torch.cat([rows + m, rows])  # (2n,) its other view
    own_mask = torch.zeros(2 * n, 2 * m, dtype=torch.bool, device=q1.device)
    own_mask[torch.arange(2 * n, device=q1.device), own] = True
    # -inf, not a large constant: exactly the official code's "diagonal removed" softmax.
    log_p = logits.masked_fill(own_mask, float("-inf")).log_softmax(-1)
    index = positive.expand(logits.shape[0], -1)[..., None]  # (G, 2n, 1)
    return -log_p.gather(-1, index).mean()


def _check_views(z1: torch.Tensor, z2: torch.Tensor) -> None:
    if z1.dim() != 3 or z1.shape != z2.shape:
        raise ValueError(
            f"expected two (B, T, D) views of equal shape (the overlap of the two crops), "
            f"got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    if z1.shape[0] == 0 or z1.shape[1] == 0:
        raise ValueError(f"empty batch or overlap: z of shape {tuple(z1.shape)}")


def _instance_term(
    z1: torch.Tensor, z2: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor, offset: int
) -> torch.Tensor:
    """Local anchors z1, z2 (B, T, D) against candidates k1, k2 (M, T, D) (the global batch,
    local rows at offset), per timestep. 0 (in the graph) when M = 1: no negative, as TS2Vec."""
    if k1.shape[0] == 1:
        return (z1.sum() + z2.sum()) * 0.0
    # (N, T, D) -> (T, N, D): the timesteps are the groups
    q1, q2, c1, c2 = (z.transpose(0, 1) for z in (z1, z2, k1, k2))
    return _two_view_contrast(q1, q2, c1, c2, offset)


def instance_contrastive_loss(
    z1: torch.Tensor, z2: torch.Tensor, gather: bool = False
) -> torch.Tensor:
    """TS2Vec's instance-wise contrastive loss (Yue et al. 2022, eq. 2), one scale.

    z1, z2: (B, T, D) the two views' per-timestep representations. At each timestep t, sample
    i of view 1 is scored (dot product) against the 2B - 1 other representations at t (all
    ranks' with `gather`); its positive is sample i of view 2 (and vice versa). Returns the
    mean over the 2B anchors and T timesteps; 0 when the (global) batch holds one sample.
    """
    _check_views(z1, z2)
    if not gather:
        return _instance_term(z1, z2, z1, z2, 0)
    k1, k2 = dist.gather_with_grad(z1), dist.gather_with_grad(z2)
    return _instance_term(z1, z2, k1, k2, dist.rank() * z1.shape[0])


def temporal_contrastive_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """TS2Vec's temporal contrastive loss (Yue et al. 2022, eq. 1), one scale.

    z1, z2: (B, T, D). In each sample, timestep t of view 1 is scored (dot product) against
    the 2T - 1 other timesteps of both views; its positive is timestep t of view 2 (and vice
    versa). Returns the mean over the B samples and 2T anchors; 0 when T = 1. Per sample, so
    it needs no gather: under DDP each rank's mean covers B equal-length samples.
    """
    _check_views(z1, z2)
    if z1.shape[1] == 1:
        return (z1.sum() + z2.sum()) * 0.0
    return _two_view_contrast(z1, z2, z1, z2, 0)


def _pool(z: torch.Tensor) -> torch.Tensor:
    """(N, T, D) -> (N, T // 2, D): max over pairs of timesteps (TS2Vec's max_pool1d, k=2)."""
    return F.max_pool1d(z.transpose(1, 2), kernel_size=2).transpose(1, 2)


def hierarchical_contrastive_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    alpha: float = 0.5,
    temporal_unit: int = 0,
    gather: bool = False,
) -> torch.Tensor:
    """TS2Vec's hierarchical contrastive loss (Yue et al. 2022, Sec. 3.2, Algorithm 1).

    z1, z2: (B, T, D) per-timestep representations of the two crops on their overlap.
    Scale d = 0, 1, ...: alpha * instance + (1 - alpha) * temporal (the temporal term only
    for d >= temporal_unit), then max-pool both views by 2 over time, while T > 1; the last
    scale (T = 1) adds the instance term only. Returns the sum divided by the number of scales.
    alpha: 0.5, the official code's default (equal weight to both terms, paper Sec. 3.2).
    temporal_unit: 0, the official default (temporal contrast from the finest scale; larger
    values skip the finest scales to save memory on very long series).
    gather: instance candidates from every rank (module docstring); per-rank mean otherwise.
    """
    _check_views(z1, z2)
    if not 0.0 <= alpha <= 1.0 or temporal_unit < 0:
        raise ValueError(
            f"need 0 <= alpha <= 1 and temporal_unit >= 0, got {alpha} and {temporal_unit}"
        )
    b = z1.shape[0]
    k1, k2, offset = z1, z2, 0
    if gather:  # once, before pooling: pooling is per sample, so it commutes with the gather
        k1, k2, offset = dist.gather_with_grad(z1), dist.gather_with_grad(z2), dist.rank() * b
    loss, scales = (z1.sum() + z2.sum()) * 0.0, 0  # an exact 0 kept in the graph
    while True:
        # The local rows are a slice of the gathered tensors: their gradient reaches this
        # rank through gather_with_grad's backward, as the other ranks' key gradients do.
        q1, q2 = k1[offset : offset + b], k2[offset : offset + b]
        if alpha != 0:  # skipped, not multiplied by 0, as the official code (no inf * 0)
            loss = loss + alpha * _instance_term(q1, q2, k1, k2, offset)
        if k1.shape[1] > 1 and scales >= temporal_unit and alpha != 1:
            loss = loss + (1 - alpha) * temporal_contrastive_loss(q1, q2)
        scales += 1
        if k1.shape[1] == 1:
            return loss / scales
        k1, k2 = _pool(k1), _pool(k2)


class HierarchicalContrastiveLoss(nn.Module):
    """TS2Vec's loss on (z1, z2), each (B, T, D); see `hierarchical_contrastive_loss`.
    alpha 0.5 and temporal_unit 0: the official code's defaults (Yue et al. 2022)."""

    def __init__(self, alpha: float = 0.5, temporal_unit: int = 0, gather: bool = False) -> None:
        super().__init__()
        self.alpha, self.temporal_unit, self.gather = alpha, temporal_unit, gather

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        return hierarchical_contrastive_loss(z1, z2, self.alpha, self.temporal_unit, self.gather)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, temporal_unit={self.temporal_unit}, gather={self.gather}"
