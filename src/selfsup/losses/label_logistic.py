"""Label-aware logistic (sigmoid) pairwise loss: SigLIP's loss with same-label pairs positive.

`functional.logistic_pairwise` labels pair (i, j) of two views by i == j; with class labels a
batch holds many positives per row, so here pair (i, j), i != j, of one set of embeddings is
positive when labels[i] == labels[j]. Each pair is an independent binary classification
(Zhai et al. 2023, "Sigmoid Loss for Language Image Pre-Training"), so no softmax couples the
batch and rows need no balancing of positives against negatives.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOG_10 = math.log(10.0)  # SigLIP's initial log-scale t' (Zhai et al. 2023)


def label_logistic(
    z: torch.Tensor,
    labels: torch.Tensor,
    log_scale: torch.Tensor | float = LOG_10,
    bias: torch.Tensor | float = -10.0,
) -> torch.Tensor:
    """-1/N sum_{i != j} log sigmoid(y_ij (exp(log_scale) cos(z_i, z_j) + bias)).

    z: (N, D), L2-normalized inside; labels: (N,) long. y_ij = +1 if labels[i] == labels[j]
    else -1; self-pairs (i == j) are left out (trivially positive). The sum over each row's
    pairs is averaged over rows, SigLIP's reduction (Algorithm 1). log_scale, bias: SigLIP's
    t' and b, learnable in `LabelLogisticLoss` (init log 10 and -10, the paper's values).
    One sample (no pair) returns 0.
    """
    if z.dim() != 2 or labels.shape != (z.shape[0],):
        raise ValueError(f"expected z (N, D) and labels (N,), got {tuple(z.shape)}, {labels.shape}")
    n = z.shape[0]
    z = F.normalize(z, dim=1)
    log_scale = torch.as_tensor(log_scale, dtype=z.dtype, device=z.device)
    logits = z @ z.T * log_scale.exp() + bias  # (N, N)
    signs = torch.where(labels[:, None] == labels[None, :], 1.0, -1.0).to(logits.dtype)
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=z.device)
    return -(F.logsigmoid(signs * logits) * off_diagonal).sum() / n


class LabelLogisticLoss(nn.Module):
    """`label_logistic` with SigLIP's learnable log-scale t' and bias b (init log 10, -10)."""

    def __init__(self, init_log_scale: float = LOG_10, init_bias: float = -10.0) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(float(init_log_scale)))
        self.bias = nn.Parameter(torch.tensor(float(init_bias)))

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return label_logistic(z, labels, self.log_scale, self.bias)
