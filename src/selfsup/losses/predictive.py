"""Predictive coding losses: score the true future latent of a sequence among others (CPC).

van den Oord, Li & Vinyals 2018 ("Representation Learning with Contrastive Predictive Coding"):
a context c_t predicts the latents k steps ahead through W_k; InfoNCE picks the true z_{t+k}
among the latents at t + k of every sequence of the batch. The method is `methods/cpc.py`.
"""

from __future__ import annotations

import torch

from selfsup import dist


def cpc_info_nce(
    predictions: torch.Tensor, z: torch.Tensor, valid: torch.Tensor, gather: bool = True
) -> torch.Tensor:
    """CPC's InfoNCE (van den Oord et al. 2018, eq. 4), averaged over the K prediction steps.

    predictions: (N, T, K, D) W_k c_t for k = 1..K; z: (N, T, D) latents; valid: (N, T) bool.
    For each k and each anchor (i, t) with valid[i, t] and valid[i, t + k]: cross-entropy of
    the score z_{i, t+k} . W_k c_{i, t} among the scores of z_{j, t+k} for every series j of
    the batch whose step t + k is valid (all ranks' with `gather`). Raw bilinear scores, no
    temperature, as the paper's f_k. Returns the mean over k of the mean over that k's valid
    anchors (a k without any valid anchor in the global batch is left out; none at all: an
    exact 0 kept in the graph). Under torchrun each rank returns world_size x its anchors' sum
    / the global count, so the ranks' mean (and DDP's gradient average) is the full batch's.
    """
    n, t, k_max, _ = predictions.shape
    keys, keys_valid, offset = z, valid, 0
    if gather:  # once for every k: the future latents of every rank are negatives
        keys, offset = dist.gather_with_grad(z), dist.rank() * n
        keys_valid = dist.gather(valid.to(torch.uint8)).bool()  # gloo: no bool all_gather
    world = dist.world_size() if gather else 1
    own = (torch.arange(n, device=z.device) + offset)[:, None, None]  # (N, 1, 1)
    total = (predictions.sum() + z.sum()) * 0.0  # an exact 0 kept in the graph
    steps = torch.zeros((), dtype=torch.long, device=z.device)
    for k in range(1, k_max + 1):
        # (N, T-k, M): anchor (i, s) against every series' latent at s + k.
        scores = torch.einsum("nsd,msd->nsm", predictions[:, : t - k, k - 1], keys[:, k:])
        # Padded targets are no candidates, except each anchor's own positive, so no row is
        # all -inf (its log-softmax would be NaN, and NaN * 0 in the backward stays NaN).
        is_own = torch.arange(keys.shape[0], device=z.device) == own  # (N, 1, M)
        scores = scores.masked_fill(~keys_valid[:, k:].T[None] & ~is_own, float("-inf"))
        nll = -scores.log_softmax(-1).gather(-1, own.expand(-1, t - k, 1))[..., 0]  # (N, T-k)
        anchors = valid[:, : t - k] & valid[:, k:]
        count = (keys_valid[:, : t - k] & keys_valid[:, k:]).sum()  # over the global batch
        present = count > 0  # a tensor: no host sync in the step
        mean = nll.masked_fill(~anchors, 0.0).sum() * world / count.clamp_min(1)
        total = total + torch.where(present, mean, 0.0)
        steps = steps + present.long()
    return total / steps.clamp_min(1)
