"""Frozen-feature extraction: run an encoder over a dataset once, keep (N, D) features."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from selfsup import dist
from selfsup.data.memory import InMemoryDataset
from selfsup.engine.loop import autocast


@torch.no_grad()
def extract_features(
    encoder: nn.Module | Callable[[torch.Tensor], torch.Tensor],
    data: InMemoryDataset,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 512,
    device: str | torch.device = "cpu",
    precision: str = "bf16",
) -> torch.Tensor:
    """Features (N, D) float32 on the CPU for every sample of `data`, in order.

    transform: deterministic batch transform (e.g. `EvalView`), applied on `device`.
    With a process group, each rank encodes a strided shard and the shards are gathered,
    so every rank returns the full (N, D) matrix.
    """
    device = torch.device(device)
    was_training = getattr(encoder, "training", False)
    if isinstance(encoder, nn.Module):
        encoder.eval()
    n, r, w = len(data), dist.rank(), dist.world_size()
    per_rank = -(-n // w)
    mine = torch.arange(r, n, w)
    chunks = []
    for start in range(0, per_rank, batch_size):
        idx = mine[start : start + batch_size]
        x = data.inputs[idx].to(device)
        if transform is not None:
            x = transform(x)
        with autocast(device, precision):
            chunks.append(encoder(x).float().cpu())
    feats = torch.cat(chunks) if chunks else torch.empty(0)
    if w > 1:
        feats = _gather_strided(feats, per_rank, n, device)
    if isinstance(encoder, nn.Module) and was_training:
        encoder.train()
    return feats


def _gather_strided(feats: torch.Tensor, per_rank: int, n: int, device) -> torch.Tensor:
    padded = torch.zeros(per_rank, feats.shape[1], device=device)
    padded[: len(feats)] = feats.to(device)
    full = dist.gather(padded).view(dist.world_size(), per_rank, -1).transpose(0, 1)
    return full.reshape(-1, feats.shape[1])[:n].cpu()
