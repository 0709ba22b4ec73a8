"""COLA's bilinear contrastive loss (Saeed, Grangier & Zeghidour 2021, "Contrastive learning of
general-purpose audio representations", arXiv:2010.10915): the pure function and a thin module
holding the learned matrix W.

Conventions as `selfsup.losses.functional`: a pair loss on `(z_a, z_b)`, row i of one the positive
of row i of the other, a 0-dim mean; `gather=True` uses every rank's positives as candidates
through `selfsup.dist.gather_with_grad`, each rank averaging over its local anchors, so DDP's
gradient average equals the single-process full-batch gradient (W included).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup import dist


def bilinear_contrastive_loss(
    z_a: torch.Tensor, z_b: torch.Tensor, w: torch.Tensor, gather: bool = False
) -> torch.Tensor:
    """COLA's loss: multi-class cross-entropy over bilinear similarities s(x, y) = g(x)^T W g(y).

    z_a: (N, D) anchors g(x_i); z_b: (N, D) positives g(x_i+) (a segment of the same clip);
    w: (D, D) the learned bilinear matrix. For anchor i the candidates are every positive of the
    batch (all ranks' with `gather`): logits[i, j] = z_a[i] @ w @ z_b[j], (N, M), and the
    target is its own positive, column i (+ rank * N). No normalization and no temperature:
    COLA's bilinear similarity is used raw (its code divides only the cosine variant by a
    temperature). One direction, anchors -> positives, as the official `train_step`.
    Returns the mean over the N (local) anchors; N = 1 on one process gives 0.
    """
    if z_a.dim() != 2 or z_a.shape != z_b.shape:
        raise ValueError(f"expected two (N, D) views of equal shape, got {z_a.shape}, {z_b.shape}")
    n, d = z_a.shape
    if n == 0:
        raise ValueError("empty batch")
    if w.shape != (d, d):
        raise ValueError(f"w must be ({d}, {d}) for {d}-d embeddings, got {tuple(w.shape)}")
    keys, offset = (dist.gather_with_grad(z_b), dist.rank() * n) if gather else (z_b, 0)
    logits = (z_a @ w) @ keys.T  # (N, M): s(anchor i, positive j)
    target = torch.arange(n, device=z_a.device) + offset
    return F.cross_entropy(logits, target)


class BilinearContrastiveLoss(nn.Module):
    """Holds COLA's learned (dim, dim) matrix W; see `bilinear_contrastive_loss`.

    init_std: W starts as N(0, init_std^2); 0.05 is Keras' "random_normal", the initializer of
    the official `BilinearProduct` layer (google-research/cola/network.py). init="uniform"
    draws W from U[0, 1) instead, as CURL's `torch.rand` (MishaLaskin/curl, curl_sac.py).
    gather: candidates from every rank under torchrun (one global batch).
    """

    def __init__(
        self, dim: int, init_std: float = 0.05, gather: bool = False, init: str = "normal"
    ) -> None:
        super().__init__()
        if init not in ("normal", "uniform"):
            raise ValueError(f"init must be 'normal' or 'uniform', got {init!r}")
        self.weight = nn.Parameter(torch.empty(dim, dim))
        if init == "uniform":
            nn.init.uniform_(self.weight, 0.0, 1.0)
        else:
            nn.init.normal_(self.weight, mean=0.0, std=init_std)
        self.gather = gather

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """z_a, z_b: (N, dim) -> 0-dim loss."""
        return bilinear_contrastive_loss(z_a, z_b, self.weight, self.gather)

    def extra_repr(self) -> str:
        return f"dim={self.weight.shape[0]}, gather={self.gather}"
