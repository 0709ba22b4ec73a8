"""Masked-token prediction loss (BERT, Devlin et al. 2019): cross-entropy on chosen positions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100  # label of positions that were not chosen for prediction


def masked_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over positions whose label is not IGNORE_INDEX -> 0-dim.

    logits: (N, L, V) or (M, V) float; labels: (N, L) or (M,) long, IGNORE_INDEX where not
    chosen. Unchosen positions contribute nothing (not even to the mean's denominator); with no
    chosen position at all the loss is 0 (and still differentiable), not NaN.
    """
    logits = logits.reshape(-1, logits.shape[-1]).float()
    labels = labels.reshape(-1)
    total = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (labels != IGNORE_INDEX).sum().clamp_min(1)


class MaskedTokenLoss(nn.Module):
    """Module wrapper of `masked_token_loss` (no hyper-parameters)."""

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return masked_token_loss(logits, labels)
