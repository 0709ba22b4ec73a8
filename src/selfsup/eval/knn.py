"""Weighted k-nearest-neighbour classification on frozen features (Wu et al. 2018, InstDisc).

Each of the k nearest training samples (cosine similarity s) votes for its class with weight
exp(s / t); k=200, t=0.1 are InstDisc's values, used by MoCo, lightly and solo-learn for CIFAR.
Similarities are computed in chunks of test rows, so memory stays O(chunk x N_train).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.1,
    chunk_size: int = 1024,
) -> torch.Tensor:
    """Class scores (N_test, num_classes) from train (N, D)/(N,) and test (M, D) features."""
    train = F.normalize(train_features.float(), dim=1)
    test = F.normalize(test_features.float(), dim=1)
    k = min(k, len(train))
    scores = []
    for chunk in test.split(chunk_size):
        sim, idx = (chunk @ train.T).topk(k, dim=1)  # (m, k)
        weights = (sim / temperature).exp()
        votes = torch.zeros(len(chunk), num_classes, device=chunk.device)
        votes.scatter_add_(1, train_labels[idx], weights)
        scores.append(votes)
    return torch.cat(scores)


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    k: int = 200,
    temperature: float = 0.1,
    num_classes: int | None = None,
) -> dict[str, float]:
    """{"top1", "top5"} accuracy in [0, 1] of the weighted kNN classifier."""
    c = num_classes or int(max(train_labels.max(), test_labels.max())) + 1
    scores = knn_predict(train_features, train_labels, test_features, c, k, temperature)
    top = scores.topk(min(5, c), dim=1).indices
    hit = top == test_labels[:, None]
    return {"top1": hit[:, 0].float().mean().item(), "top5": hit.any(1).float().mean().item()}
