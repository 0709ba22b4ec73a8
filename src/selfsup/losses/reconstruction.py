"""Masked reconstruction: mean squared error on the hidden patches only (MAE, He et al. 2022)."""

from __future__ import annotations

import torch
from torch import nn


def normalize_patches(patches: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """patches: (N, L, P) -> each patch standardized over its P values (MAE's norm_pix_loss).

    Uses the unbiased variance and eps = 1e-6, as MAE's `forward_loss`.
    """
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + eps).sqrt()


def masked_reconstruction_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, norm_pix: bool = False
) -> torch.Tensor:
    """Mean over masked patches of the per-patch mean squared error; a 0-dim tensor.

    pred, target: (N, L, P) patch values; mask: (N, L), 1 (or True) where the patch was hidden.
    Visible patches do not contribute at all: MAE reports that also reconstructing visible
    patches lowers accuracy (He et al. 2022, sec. 3). norm_pix: regress per-patch standardized
    pixels (paper default for its best results: True; plain pixels: False).
    """
    pred, target = pred.float(), target.float()  # bf16 autocast: keep the squared error in fp32
    if norm_pix:
        target = normalize_patches(target)
    per_patch = (pred - target).pow(2).mean(dim=-1)  # (N, L)
    mask = mask.to(per_patch.dtype)
    return (per_patch * mask).sum() / mask.sum().clamp_min(1.0)


class MaskedReconstructionLoss(nn.Module):
    """`masked_reconstruction_loss` holding `norm_pix`."""

    def __init__(self, norm_pix: bool = False) -> None:
        super().__init__()
        self.norm_pix = norm_pix

    def forward(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_reconstruction_loss(pred, target, mask, self.norm_pix)
