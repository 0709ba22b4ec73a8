"""Which pairs and triplets of a labelled batch a metric-learning loss looks at.

Every function here is index bookkeeping: it runs without gradient and returns boolean masks
or long index tensors; the losses then index their differentiable distance matrices with them.
Labels are `(N,)` long; samples with equal labels are positives of each other, a sample is
never its own positive.
"""

from __future__ import annotations

import torch

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@torch.no_grad()
def pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """labels: (N,) -> (pos_mask, neg_mask), each (N, N) bool, both False on the diagonal.

    pos_mask[i, j]: i != j and labels equal; neg_mask[i, j]: labels differ.
    """
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


@torch.no_grad()
def all_triplets(labels: torch.Tensor) -> Triplets:
    """Every (anchor, positive, negative) of the batch: labels[a] == labels[p] != labels[n], a != p.

    labels: (N,). Returns three (T,) long tensors, sorted by (a, p, n). Memory is O(N^3) bools
    (16 M for N = 256), fine for metric-learning batch sizes.
    """
    pos, neg = pair_masks(labels)
    a, p, n = torch.nonzero(pos[:, :, None] & neg[:, None, :], as_tuple=True)
    return a, p, n


@torch.no_grad()
def batch_hard(dist: torch.Tensor, labels: torch.Tensor) -> Triplets:
    """Batch-hard mining (Hermans, Beyer & Leibe 2017): per anchor, its farthest positive and
    its closest negative.

    dist: (N, N) distances (smaller = closer); labels: (N,). Returns (a, p, n), each (T,) long,
    one triplet for every anchor that has at least one positive and one negative (others are
    skipped). Ties go to the lowest index.
    """
    pos, neg = pair_masks(labels)
    keep = pos.any(1) & neg.any(1)
    hardest_pos = dist.masked_fill(~pos, float("-inf")).argmax(1)
    hardest_neg = dist.masked_fill(~neg, float("inf")).argmin(1)
    a = torch.nonzero(keep, as_tuple=True)[0]
    return a, hardest_pos[a], hardest_neg[a]


@torch.no_grad()
def semi_hard(dist: torch.Tensor, labels: torch.Tensor, margin: float) -> Triplets:
    """Semi-hard mining as FaceNet (Schroff, Kalenichenko & Philbin 2015, Sec. 3.2) defines it.

    FaceNet uses *all* anchor-positive pairs and, for each, a negative that is farther than
    the positive yet inside the margin: d(a, p) < d(a, n) < d(a, p) + margin. Among those we
    take the closest (the hardest semi-hard one); a pair with no such negative is dropped.
    (TensorFlow Addons' `TripletSemiHardLoss` instead falls back to the farthest negative for
    such pairs and keeps them; every triplet mined here has a strictly positive hinge loss.)

    dist: (N, N) distances in the units the loss uses (FaceNet: squared); labels: (N,);
    margin: float. Returns (a, p, n), each (T,) long, sorted by (a, p). Ties: lowest index.
    """
    pos, neg = pair_masks(labels)
    a, p = torch.nonzero(pos, as_tuple=True)
    d_ap = dist[a, p][:, None]  # (P, 1)
    d_an = dist[a]  # (P, N)
    band = neg[a] & (d_an > d_ap) & (d_an < d_ap + margin)
    n = d_an.masked_fill(~band, float("inf")).argmin(1)
    keep = band.any(1)
    return a[keep], p[keep], n[keep]


@torch.no_grad()
def first_pairs(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One (anchor, positive) pair per class: its first and second sample in index order.

    labels: (N,). Returns (anchor, positive), each (C,) long, one entry per class that has at
    least two samples, ordered by label value. This is the N-pair batch (Sohn 2016) read off a
    labelled batch; it picks the same pairs as pytorch-metric-learning's NPairsLoss.
    """
    order = torch.argsort(labels, stable=True)
    sorted_labels = labels[order]
    starts = torch.ones_like(sorted_labels, dtype=torch.bool)
    starts[1:] = sorted_labels[1:] != sorted_labels[:-1]
    first = torch.nonzero(starts, as_tuple=True)[0]
    second = first + 1
    has_pair = second < len(labels)
    first, second = first[has_pair], second[has_pair]
    has_pair = sorted_labels[second] == sorted_labels[first]
    return order[first[has_pair]], order[second[has_pair]]
