"""Semantic textual similarity: Spearman correlation between cosine similarity and gold scores.

The SentEval / SimCSE convention for STS-B (Conneau & Kiela 2018; Gao et al. 2021, "all"
setting): embed both sentences of every test pair, score each pair by the cosine similarity of
its embeddings, report Spearman's rank correlation with the human scores (x100 in tables). No
parameters are fit on STS labels.

Whitening (Su et al. 2021, "Whitening sentence representations"), an explicit option: subtract
the mean and decorrelate with W = U diag(1/sqrt(s)) from the SVD of the covariance, fit on
sentences you choose (e.g. the unlabeled corpus), never on the test scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def average_ranks(x: torch.Tensor) -> torch.Tensor:
    """x: (N,) -> (N,) float64 ranks 1..N, ties sharing their average rank (as scipy's rankdata)."""
    _, inverse, counts = torch.unique(x, return_inverse=True, return_counts=True)
    last = counts.cumsum(0).double()  # rank of the last member of each group of ties
    return (last - (counts.double() - 1) / 2)[inverse]


def spearman(x: torch.Tensor, y: torch.Tensor) -> float:
    """Spearman's rho of two (N,) tensors: Pearson correlation of their average ranks."""
    rx, ry = average_ranks(x.flatten()), average_ranks(y.flatten())
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx * ry).sum() / (rx.norm() * ry.norm()).clamp_min(1e-12))


@dataclass
class Whitening:
    """x -> (x - mean) @ transform: (N, D) -> (N, k). Fit with `fit_whitening`."""

    mean: torch.Tensor  # (D,)
    transform: torch.Tensor  # (D, k)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x.double() - self.mean) @ self.transform


def fit_whitening(x: torch.Tensor, dim: int | None = None, eps: float = 1e-8) -> Whitening:
    """Fit on sentence embeddings x: (N, D); keep the top `dim` components (Su et al.: all, or
    fewer for speed; None keeps all D). eps guards directions of zero variance."""
    x = x.double()
    mean = x.mean(0)
    cov = torch.cov((x - mean).T)
    u, s, _ = torch.linalg.svd(cov)
    transform = u / (s + eps).sqrt()
    return Whitening(mean, transform[:, :dim] if dim else transform)


def cosine_scores(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a, b: (N, D) -> (N,) cosine similarity of matching rows."""
    return F.cosine_similarity(a.double(), b.double(), dim=-1)


def sts_spearman(
    a: torch.Tensor, b: torch.Tensor, scores: torch.Tensor, whitening: Whitening | None = None
) -> float:
    """Spearman's rho in [-1, 1] between cos(a_i, b_i) and scores_i; a, b: (N, D), scores: (N,)."""
    if whitening is not None:
        a, b = whitening(a), whitening(b)
    return spearman(cosine_scores(a, b), scores)
