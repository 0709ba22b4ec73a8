"""Masked-image-modeling figure: original | masked | reconstruction, one row per image.

As in MAE's figures (He et al. 2022, Fig. 2-3): hidden patches are shown grey in the masked
column, and the reconstruction shows the prediction on hidden patches with the visible
patches pasted back (they were given to the model, not predicted).

In a run's report: `reconstruction_data` keeps the arrays of ~8 fixed test images with a
seeded mask at the end of `selfsup pretrain --method mae` (in report_data.npz), and
`reconstruction_figure` draws them when the report is (re)written. Other kinds of data (audio's
log-mels) pass their own model inputs to `reconstruction_arrays`, with a colormap and an origin
for one-channel pictures (`recon_cmap`, `recon_origin`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure

from selfsup.augment.normalize import normalize
from selfsup.augment.pipeline import EvalView
from selfsup.encoders.patches import unpatchify
from selfsup.engine.run_dir import write_atomic


def mask_to_pixels(mask: torch.Tensor, patch_size: int, grid_size: tuple[int, int]) -> torch.Tensor:
    """mask: (N, L), 1 = hidden -> (N, 1, gh * p, gw * p) float, 1 on hidden pixels."""
    per_patch = mask.float()[..., None].expand(-1, -1, patch_size * patch_size)
    return unpatchify(per_patch, patch_size, grid_size)


def _to_display(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(N, C, H, W) normalized -> (N, H, W, C) in [0, 1] for imshow."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x.float().cpu() * s + m).clamp(0, 1).permute(0, 2, 3, 1)


def _colour(x: torch.Tensor, cmap: str) -> torch.Tensor:
    """(N, H, W, 1) in [0, 1] -> (N, H, W, 3) RGB through the matplotlib colormap `cmap`."""
    rgb = matplotlib.colormaps[cmap](x[..., 0].numpy())[..., :3]
    return torch.from_numpy(rgb).float()


def save_reconstruction_grid(
    path: str | Path,
    images: torch.Tensor,
    pred_images: torch.Tensor,
    mask: torch.Tensor,
    patch_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    paste_visible: bool = True,
    cmap: str | None = None,
    origin: str = "upper",
) -> Path:
    """Write a PNG grid with rows (original | masked | reconstruction); return its path.

    images, pred_images: (N, C, H, W) in the normalized space given by mean and std (C values);
    mask: (N, L) with 1 where the patch was hidden; C = 1 is drawn in grey scale, or through
    the colormap `cmap` (e.g. "magma" for log-mels) with the hidden patches still grey.
    paste_visible: show the true visible patches in the reconstruction (MAE's figures).
    origin: "upper" (row 0 on top, images) or "lower" (row 0 at the bottom: a log-mel's low
    bands). A wide picture (W > H, a log-mel's frames) gets a wider column.
    """
    n, c, h, w = images.shape
    if cmap is not None and c != 1:
        raise ValueError(f"a colormap draws one-channel pictures, got {c} channels")
    hidden = mask_to_pixels(mask.cpu(), patch_size, (h // patch_size, w // patch_size))
    hidden = hidden.permute(0, 2, 3, 1)  # (N, H, W, 1)
    original = _to_display(images, mean, std)
    recon = _to_display(pred_images, mean, std)
    if cmap is not None:  # coloured before masking, so the grey of a hidden patch stands out
        original, recon = _colour(original, cmap), _colour(recon, cmap)
    masked = original * (1 - hidden) + 0.5 * hidden
    if paste_visible:
        recon = original * (1 - hidden) + recon * hidden
    columns = {"original": original, "masked": masked, "reconstruction": recon}
    width = 1.6 * min(max(w / h, 1.0), 3.0)  # 1.6 in for square images, as before
    fig = Figure(figsize=(3 * width, n * 1.6), layout="constrained")
    axes = fig.subplots(n, 3, squeeze=False)
    for col, (title, imgs) in enumerate(columns.items()):
        axes[0, col].set_title(title, fontsize=9)
        for row in range(n):
            ax = axes[row, col]
            img = imgs[row].numpy()
            img = img.squeeze(-1) if img.shape[-1] == 1 else img
            ax.imshow(img, cmap="gray", vmin=0, vmax=1, origin=origin)
            ax.set_axis_off()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()  # rendered in memory, then written whole and never through a link
    fig.savefig(buf, dpi=100, format="png")
    write_atomic(path, buf.getvalue())
    return path


@torch.no_grad()
def masked_reconstruction(
    method: torch.nn.Module, x: torch.Tensor, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (N, C, H, W) normalized -> (pred_images (N, C, H, W), mask (N, L)) in eval mode.

    `method` needs `reconstruct(images, generator) -> (pred_images, mask)`; the masks are
    drawn from `seed`, so figures are reproducible. The method's train/eval mode is restored.
    """
    was_training = method.training
    method.eval()
    gen = torch.Generator(device=x.device).manual_seed(seed)
    pred, mask = method.reconstruct(x, generator=gen)
    method.train(was_training)
    return pred, mask


def write_reconstructions(
    method: torch.nn.Module,
    images: torch.Tensor,
    path: str | Path,
    mean: Sequence[float],
    std: Sequence[float],
    seed: int = 0,
) -> Path:
    """Mask and reconstruct uint8 images (N, C, H, W) with an MAE-like `method`; save the grid.

    `method` needs `reconstruct` (see `masked_reconstruction`) and `backbone.patch_size`.
    """
    device = next(method.parameters()).device
    x = normalize(images.to(device).float() / 255.0, mean, std)
    pred, mask = masked_reconstruction(method, x, seed)
    return save_reconstruction_grid(
        path, x, pred, mask, method.backbone.patch_size, mean, std, paste_visible=True
    )


def reconstruction_data(
    method: torch.nn.Module,
    images: torch.Tensor,
    transform: EvalView,
    n: int = 8,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Arrays the report's reconstruction figure needs (saved in report_data.npz).

    images: (M, C, H, W) uint8; `n` of them (fixed by `seed`) go through the deterministic
    `transform` (e.g. `eval_view(size)`), then a seeded mask and `method`.
    Returns the arrays of `reconstruction_arrays`.
    """
    rows = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    device = next(method.parameters()).device
    x = transform(images[rows.sort().values].to(device))
    return reconstruction_arrays(method, x, transform.mean, transform.std, seed)


def reconstruction_arrays(
    method: torch.nn.Module,
    x: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    seed: int = 0,
    cmap: str | None = None,
    origin: str = "upper",
) -> dict[str, np.ndarray]:
    """The figure's arrays for model inputs x (n, C, H, W) on the method's device.

    mean, std (C values): x * std + mean is the picture in [0, 1] (images: the normalization
    the transform applied; other data picks a display range). cmap, origin: see
    `save_reconstruction_grid`; kept only when not the image defaults.
    Returns recon_images, recon_pred (n, C, H, W) float32 normalized, recon_mask (n, L),
    recon_patch_size (), recon_mean and recon_std (C,), and recon_cmap, recon_origin (0-d
    strings) when given.
    """
    pred, mask = masked_reconstruction(method, x, seed)
    out = {
        "recon_images": x.float().cpu().numpy(),
        "recon_pred": pred.float().cpu().numpy(),
        "recon_mask": mask.cpu().numpy().astype(np.uint8),
        "recon_patch_size": np.array(method.backbone.patch_size),
        "recon_mean": np.array(mean, dtype=np.float32),
        "recon_std": np.array(std, dtype=np.float32),
    }
    if cmap is not None:
        out["recon_cmap"] = np.array(cmap)
    if origin != "upper":
        out["recon_origin"] = np.array(origin)
    return out


def reconstruction_figure(data: dict[str, np.ndarray], path: str | Path) -> Path | None:
    """Draw the grid from `reconstruction_data`'s arrays; None when the run has none (not MAE)."""
    if "recon_images" not in data:
        return None
    cmap = str(data["recon_cmap"]) if "recon_cmap" in data else None
    origin = str(data.get("recon_origin", "upper"))
    if cmap is not None and cmap not in matplotlib.colormaps:
        raise ValueError(f"report_data.npz: recon_cmap {cmap[:40]!r} is not a matplotlib colormap")
    if origin not in ("upper", "lower"):
        raise ValueError(f"report_data.npz: recon_origin is upper or lower, not {origin[:40]!r}")
    return save_reconstruction_grid(
        path,
        torch.from_numpy(data["recon_images"]),
        torch.from_numpy(data["recon_pred"]),
        torch.from_numpy(data["recon_mask"]),
        int(data["recon_patch_size"]),
        data["recon_mean"].tolist(),
        data["recon_std"].tolist(),
        cmap=cmap,
        origin=origin,
    )
