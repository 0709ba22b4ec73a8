"""Images <-> sequences of flattened patches, for any channel count.

A patch is flattened in (row, column, channel) order, as in MAE's `models_mae.py`
(He et al. 2022), so `patchify(imgs)[n, l]` is the `l`-th patch in raster order (left to right,
top to bottom) laid out as p * p pixels of C channels each.
"""

from __future__ import annotations

import torch


def patchify(imgs: torch.Tensor, patch_size: int) -> torch.Tensor:
    """imgs: (N, C, H, W) -> (N, L, p * p * C), L = (H / p) * (W / p), patches in raster order.

    H and W must be multiples of `patch_size`.
    """
    n, c, h, w = imgs.shape
    p = patch_size
    if h % p or w % p:
        raise ValueError(f"image size {h}x{w} is not a multiple of patch size {p}")
    gh, gw = h // p, w // p
    x = imgs.reshape(n, c, gh, p, gw, p)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(n, gh * gw, p * p * c)


def unpatchify(
    x: torch.Tensor, patch_size: int, grid_size: tuple[int, int] | None = None
) -> torch.Tensor:
    """x: (N, L, p * p * C) -> imgs (N, C, gh * p, gw * p); the inverse of `patchify`.

    grid_size: (gh, gw) patches per column and row; None means a square grid (L = gh * gh).
    The channel count C is read from the last dimension.
    """
    n, length, dim = x.shape
    p = patch_size
    if grid_size is None:
        side = round(length**0.5)
        grid_size = (side, side)
    gh, gw = grid_size
    if gh * gw != length or dim % (p * p):
        raise ValueError(
            f"cannot unpatchify (N, {length}, {dim}) with patch size {p} and grid {gh}x{gw}"
        )
    c = dim // (p * p)
    x = x.reshape(n, gh, gw, p, p, c)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(n, c, gh * p, gw * p)
