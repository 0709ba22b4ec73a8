"""Linear probe: a multinomial logistic regression on frozen, precomputed features.

Features are extracted once (no augmentation), standardized with the training statistics,
and the classifier is fit full-batch with L-BFGS, which converges in ~100 iterations and
needs no learning-rate tuning (the solver scikit-learn's LogisticRegression uses).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def fit_linear(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    weight_decay: float = 1e-4,
    max_iter: int = 200,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(W (D, C), b (C,), mean (D,), std (D,)) of an L2-regularized softmax classifier."""
    x = features.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    x = (x - mean) / std
    w = torch.zeros(x.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, labels) + weight_decay * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach(), mean, std


def linear_probe(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    weight_decay: float = 1e-4,
    num_classes: int | None = None,
) -> float:
    """Test accuracy in [0, 1] of a linear classifier fit on the training features."""
    c = num_classes or int(max(train_labels.max(), test_labels.max())) + 1
    w, b, mean, std = fit_linear(train_features, train_labels, c, weight_decay)
    pred = (((test_features.double() - mean) / std) @ w + b).argmax(1)
    return (pred == test_labels).double().mean().item()
