"""ST-DIM's losses (Anand, Racah, Ozair, Bengio, Cote & Hjelm 2019, "Unsupervised State
Representation Learning in Atari", arXiv:1906.08226): InfoNCE between consecutive frames, one
spatial location at a time. The pure functions and a thin module holding the two linear maps.

Inputs, as the official code (mila-iqia/atari-representation-learning, atariari/methods/stdim.py,
`InfoNCESpatioTemporalTrainer`): y = the encoder's global feature vector (N, D) of the later
frame x_{t+1}; f = the feature map of an intermediate conv layer (their `f5`), channels last
(N, H, W, C) as their `f5.permute(0, 2, 3, 1)` (permute an (N, C, H, W) map before calling).

  - global-local:  score_hw(i, j) = g(y(x_{t+1})_i)^T f(x_t)_j[h, w]
  - local-local:   score_hw(i, j) = h(f(x_{t+1})_i[h, w])^T f(x_t)_j[h, w]

g: Linear(D -> C), h: Linear(C -> C), each shared by every location. At each location,
cross-entropy of anchor i (a sample's later frame) over the candidates j (every sample's earlier
frame at that same location), the positive being j = i; averaged over anchors and locations.
The loss is the sum of the two terms.

`gather=True` takes the candidates f(x_t) from every rank through
`selfsup.dist.gather_with_grad`, each rank averaging over its local anchors, so DDP's gradient
average equals the single-process full-batch gradient (as `selfsup.losses.bilinear`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from selfsup import dist


def _check_map(name: str, x: torch.Tensor) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name} must be a channels-last (N, H, W, C) map, got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"empty batch: {name} is {tuple(x.shape)}")


def _location_infonce(logits: torch.Tensor, n: int, offset: int) -> torch.Tensor:
    """logits (H, W, N, M): anchor i's scores against the M candidates at each location; the
    positive of anchor i is candidate i + offset. Mean over the H * W * N cross-entropies, i.e.
    the mean over locations of each location's mean over anchors (the official code's
    `loss / (sx * sy)` of per-location `F.cross_entropy` means)."""
    m = logits.shape[-1]
    target = (torch.arange(n, device=logits.device) + offset).repeat(
        logits.shape[0] * logits.shape[1]
    )
    return F.cross_entropy(logits.reshape(-1, m), target)


def global_local_infonce(
    anchors: torch.Tensor, local: torch.Tensor, gather: bool = False
) -> torch.Tensor:
    """ST-DIM's global-local term, on already-projected anchors.

    anchors: (N, C) g(y(x_{t+1})), the later frames' global vectors through the linear map g
    (D -> C); local: (N, H, W, C) f(x_t), the earlier frames' local map, channels last.
    At every location (h, w): logits[i, j] = anchors[i] . local[j, h, w], (N, M) with M the
    candidates (N, or world_size * N with `gather`), target column i (+ rank * N). Raw dot
    products: no normalization, no temperature (the official code's `torch.matmul`).
    Returns the mean over locations and local anchors, 0-dim; N = 1 on one process gives 0.
    """
    _check_map("local", local)
    n, _, _, c = local.shape
    if anchors.shape != (n, c):
        raise ValueError(
            f"anchors must be (N, C) = ({n}, {c}) for a local map of shape {tuple(local.shape)}, "
            f"got {tuple(anchors.shape)}"
        )
    keys, offset = (dist.gather_with_grad(local), dist.rank() * n) if gather else (local, 0)
    logits = torch.einsum("nc,mhwc->hwnm", anchors, keys)  # (H, W, N, M)
    return _location_infonce(logits, n, offset)


def local_local_infonce(
    anchors: torch.Tensor, local: torch.Tensor, gather: bool = False
) -> torch.Tensor:
    """ST-DIM's local-local term, on already-projected anchors.

    anchors: (N, H, W, C) h(f(x_{t+1})), the later frames' local map through the linear map h
    (C -> C, applied at every location); local: (N, H, W, C) f(x_t), channels last.
    At every location (h, w): logits[i, j] = anchors[i, h, w] . local[j, h, w], target
    column i (+ rank * N): only the same location of other samples are negatives.
    Returns the mean over locations and local anchors, 0-dim; N = 1 on one process gives 0.
    """
    _check_map("local", local)
    if anchors.shape != local.shape:
        raise ValueError(
            f"anchors and local must be (N, H, W, C) maps of equal shape, "
            f"got {tuple(anchors.shape)}, {tuple(local.shape)}"
        )
    n = local.shape[0]
    keys, offset = (dist.gather_with_grad(local), dist.rank() * n) if gather else (local, 0)
    logits = torch.einsum("nhwc,mhwc->hwnm", anchors, keys)  # (H, W, N, M)
    return _location_infonce(logits, n, offset)


class STDIMLoss(nn.Module):
    """ST-DIM's loss: global-local + local-local InfoNCE (the official `loss = loss1 + loss2`).

    Holds the two linear maps of the official trainer, both with a bias, PyTorch's default
    init: `global_local` = their `classifier1`, Linear(global_dim -> local_dim); `local_local` =
    their `classifier2`, Linear(local_dim -> local_dim). The bias is not a no-op: it adds b . f_j
    to candidate j's score, which differs between candidates.
    Official defaults (their argparser, Nature CNN): global_dim 256 (`--feature-size`),
    local_dim 128 (the third conv layer, their `f5`: an 11 x 8 map for 210 x 160 frames).
    gather: candidates from every rank under torchrun (one global batch).
    """

    def __init__(
        self, global_dim: int, local_dim: int, bias: bool = True, gather: bool = False
    ) -> None:
        super().__init__()
        self.global_local = nn.Linear(global_dim, local_dim, bias=bias)
        self.local_local = nn.Linear(local_dim, local_dim, bias=bias)
        self.gather = gather

    def terms(
        self, global_next: torch.Tensor, local_next: torch.Tensor, local_now: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(global-local, local-local), each 0-dim, for logging (their `loss1`, `loss2`).

        global_next: (N, global_dim) y(x_{t+1}); local_next, local_now: (N, H, W, local_dim)
        f(x_{t+1}), f(x_t), channels last.
        """
        if global_next.dim() != 2 or global_next.shape[-1] != self.global_local.in_features:
            raise ValueError(
                f"global_next must be (N, {self.global_local.in_features}), "
                f"got {tuple(global_next.shape)}"
            )
        _check_map("local_next", local_next)
        if local_next.shape[-1] != self.local_local.in_features:
            raise ValueError(
                f"local maps must have {self.local_local.in_features} channels (last dim), "
                f"got {tuple(local_next.shape)}"
            )
        global_local = global_local_infonce(self.global_local(global_next), local_now, self.gather)
        local_local = local_local_infonce(self.local_local(local_next), local_now, self.gather)
        return global_local, local_local

    def forward(
        self, global_next: torch.Tensor, local_next: torch.Tensor, local_now: torch.Tensor
    ) -> torch.Tensor:
        """global_next (N, global_dim), local_next / local_now (N, H, W, local_dim) -> 0-dim."""
        global_local, local_local = self.terms(global_next, local_next, local_now)
        return global_local + local_local

    def extra_repr(self) -> str:
        return (
            f"global_dim={self.global_local.in_features}, "
            f"local_dim={self.local_local.in_features}, gather={self.gather}"
        )
