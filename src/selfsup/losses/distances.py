"""Distance and similarity matrices shared by the metric-learning losses and miners."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Squared distances at or below this are treated as exactly zero: sqrt has an infinite slope
# at 0, so we never differentiate it there (see `pairwise_distance`).
_SQRT_EPS = 1e-12


def pairwise_distance(
    x: torch.Tensor, y: torch.Tensor | None = None, squared: bool = False
) -> torch.Tensor:
    """Euclidean distance between every row of `x` and every row of `y`.

    x: (N, D) float; y: (M, D) float or None (then y = x and the diagonal is exactly 0).
    Returns (N, M) float: ||x_i - y_j||_2, or its square when `squared`.

    Uses ||x||^2 + ||y||^2 - 2 x.y (one matmul, O(NM) memory instead of O(NMD)); rounding can
    make that slightly negative, so it is clamped at 0. For the unsquared distance the value
    is clamped *before* sqrt and zeroed afterwards where it was ~0, so the gradient at zero
    distance is 0, never NaN (FaceNet's reference implementation does the same).
    """
    same = y is None
    y = x if y is None else y
    sq = (x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1) - 2.0 * x @ y.T).clamp_min(0.0)
    if same:
        # The expansion leaves rounding noise on the diagonal; self-distance is exactly 0.
        eye = torch.eye(sq.shape[0], dtype=torch.bool, device=sq.device)
        sq = sq.masked_fill(eye, 0.0)
    if squared:
        return sq
    zero = sq <= _SQRT_EPS
    return torch.where(zero, torch.zeros_like(sq), sq.clamp_min(_SQRT_EPS).sqrt())


def cosine_similarity_matrix(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Cosine similarity of every row of `x` with every row of `y`.

    x: (N, D) float; y: (M, D) float or None (then y = x). Returns (N, M) in [-1, 1].
    A zero row has similarity 0 with everything (F.normalize's eps), not NaN.
    """
    x = F.normalize(x, dim=1)
    y = x if y is None else F.normalize(y, dim=1)
    return x @ y.T
