"""Random resized crops for a whole batch, with one box per sample.

The crop is the view's most important augmentation (SimCLR, Chen et al. 2020, Fig. 5). Boxes are
drawn as torchvision's `RandomResizedCrop.get_params` draws them (Szegedy et al. 2015,
"Inception" crops), but for all samples at once; the resize is bilinear with
`align_corners=False` and no antialiasing, i.e. the same numbers as
`torchvision.transforms.functional.resized_crop(img, top, left, h, w, size, antialias=False)`
(and as SimCLR's own `tf.image.crop_and_resize`, which does not antialias either).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

ATTEMPTS = 10  # torchvision tries 10 boxes before falling back to a centre crop


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def sample_crop_boxes(
    n: int,
    h: int,
    w: int,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw one Inception-style crop box per sample, for images of size (h, w).

    Per sample: area fraction ~ U(scale), aspect ratio ~ log-U(ratio); the first of 10 attempts
    that fits the image is kept, else torchvision's fallback (the centre crop with the aspect
    ratio clamped into `ratio`). Defaults (0.08, 1.0) and (3/4, 4/3) are Inception's and SimCLR's.
    Returns (n, 4) long: [top, left, height, width].
    """
    u = torch.rand(n, ATTEMPTS, 2, device=device, generator=generator)
    area = (h * w) * (scale[0] + (scale[1] - scale[0]) * u[..., 0])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + (log_hi - log_lo) * u[..., 1])
    cw = torch.sqrt(area * aspect).round().long()  # (n, attempts)
    ch = torch.sqrt(area / aspect).round().long()
    fits = (cw > 0) & (cw <= w) & (ch > 0) & (ch <= h)
    first = fits.int().argmax(dim=1, keepdim=True)  # index of the first fitting attempt
    cw = cw.gather(1, first).squeeze(1)
    ch = ch.gather(1, first).squeeze(1)
    fall_h, fall_w = _fallback_size(h, w, ratio)
    found = fits.any(dim=1)
    ch = torch.where(found, ch, fall_h)
    cw = torch.where(found, cw, fall_w)
    # Offsets uniform over the valid integer range, like torch.randint(0, h - ch + 1).
    off = torch.rand(n, 2, device=device, generator=generator)
    top = (off[:, 0] * (h - ch + 1)).long().clamp_max(h - ch)
    left = (off[:, 1] * (w - cw + 1)).long().clamp_max(w - cw)
    top = torch.where(found, top, (h - ch) // 2)
    left = torch.where(found, left, (w - cw) // 2)
    return torch.stack((top, left, ch, cw), dim=1)


def sample_crop_box(
    h: int, w: int, scale: tuple[float, float], ratio: tuple[float, float], u: list[float]
) -> tuple[int, int, int, int]:
    """One box (top, left, height, width) from 2 x 10 + 2 uniforms in [0, 1): the scalar twin of
    `sample_crop_boxes` (u[2a], u[2a + 1]: attempt a's area and ratio; u[-2], u[-1]: offsets),
    for per-image work in DataLoader workers, where that function's ~20 tensor ops cost
    128 us per box and this ~5 us. Python floats: a box may differ by a pixel where float32
    rounds the other way (tests/augment/test_split.py checks the agreement).
    """
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    for a in range(ATTEMPTS):
        area = h * w * (scale[0] + (scale[1] - scale[0]) * u[2 * a])
        aspect = math.exp(log_lo + (log_hi - log_lo) * u[2 * a + 1])
        cw, ch = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top = min(int(u[-2] * (h - ch + 1)), h - ch)
            left = min(int(u[-1] * (w - cw + 1)), w - cw)
            return top, left, ch, cw
    ch, cw = _fallback_size(h, w, ratio)
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def _fallback_size(h: int, w: int, ratio: tuple[float, float]) -> tuple[int, int]:
    """torchvision's fallback box (height, width) when no attempt fits."""
    in_ratio = w / h
    if in_ratio < min(ratio):
        return int(round(w / min(ratio))), w
    if in_ratio > max(ratio):
        return h, int(round(h * max(ratio)))
    return h, w


def _source_coords(start: Tensor, length: Tensor, out: int, full: int) -> Tensor:
    """Bilinear sample positions along one axis, in grid_sample's normalized coordinates.

    start, length: (N,) long box edges; full: the image side; returns (N, out) float.
    `F.interpolate(align_corners=False)` on the cut-out box reads position
    step * (o + 0.5) - 0.5, clamped into [0, length - 1] (its taps never leave the box):
    sampling the whole image at the clamped position gives the same numbers.
    """
    o = torch.arange(out, device=start.device, dtype=torch.float32)
    step = (length.float() / out).unsqueeze(1)
    src = (step * (o + 0.5) - 0.5).clamp_min(0.0)
    src = torch.minimum(src, (length - 1).unsqueeze(1).float()) + start.unsqueeze(1)
    return (2.0 * src + 1.0) / full - 1.0  # pixel -> [-1, 1], align_corners=False


def resized_crop(
    x: Tensor, boxes: Tensor, size: int | tuple[int, int], hflip: Tensor | None = None
) -> Tensor:
    """Cut box `boxes[i]` out of image `x[i]` and resize it bilinearly to `size`.

    x: (N, C, H, W) float in [0, 1] or uint8 (converted once to float / 255);
    boxes: (N, 4) long [top, left, height, width]; hflip: optional (N,) bool, mirror those
    outputs (exactly equal to flipping afterwards, at no cost: the columns are read reversed).
    Returns (N, C, s_h, s_w) float (float32 for uint8 input), a new tensor.
    One `grid_sample` for the batch: every sample has its own box.
    """
    n, _, h, w = x.shape
    out_h, out_w = _pair(size)
    if not x.is_floating_point():
        x = x.float().div_(255.0)
    gy = _source_coords(boxes[:, 0], boxes[:, 2], out_h, h).to(x.dtype)
    gx = _source_coords(boxes[:, 1], boxes[:, 3], out_w, w).to(x.dtype)
    if hflip is not None:
        gx = torch.where(hflip.view(n, 1), gx.flip(1), gx)
    grid = torch.stack(
        (
            gx.view(n, 1, out_w).expand(n, out_h, out_w),
            gy.view(n, out_h, 1).expand(n, out_h, out_w),
        ),
        dim=3,
    )  # (N, out_h, out_w, 2) as (x, y)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_resized_crop(
    x: Tensor,
    size: int | tuple[int, int],
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
) -> Tensor:
    """Inception-style random resized crop with one random box per sample.

    x: (N, C, H, W) float in [0, 1] or uint8 -> (N, C, s_h, s_w) float (see `resized_crop`).
    Defaults: scale (0.08, 1.0), ratio (3/4, 4/3) (SimCLR, Chen et al. 2020, App. A).
    """
    n, _, h, w = x.shape
    boxes = sample_crop_boxes(n, h, w, scale, ratio, x.device, generator)
    return resized_crop(x, boxes, size)


def center_crop_resize(
    x: Tensor, size: int | tuple[int, int], crop_fraction: float = 1.0
) -> Tensor:
    """Deterministic evaluation view: centred square crop, then resize to `size`.

    The crop side is `crop_fraction * min(H, W)` (0.875 = the usual ImageNet 224/256 "resize
    256, centre-crop 224"; 1.0 keeps the whole short side). Unlike the random crop this resize
    antialiases (like torchvision's Resize), since evaluation images are often downscaled a lot.
    x: (N, C, H, W) float in [0, 1] or uint8 -> (N, C, s_h, s_w) float; for float input that
    needs no resize the result is a view of `x`.
    """
    _, _, h, w = x.shape
    side = max(1, int(round(crop_fraction * min(h, w))))
    top, left = (h - side) // 2, (w - side) // 2
    x = x[:, :, top : top + side, left : left + side]
    x = x.float().div_(255.0) if not x.is_floating_point() else x
    out_hw = _pair(size)
    if (side, side) == out_hw:
        return x  # may be (a view of) the float input itself: callers must not write into it
    return F.interpolate(x, size=out_hw, mode="bilinear", align_corners=False, antialias=True)
