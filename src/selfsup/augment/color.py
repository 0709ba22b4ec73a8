"""Colour augmentations for a batch, with per-sample random parameters.

Every deterministic op here matches `torchvision.transforms.functional.adjust_*` on float images
in [0, 1] (same formulas, same clamping), but takes one factor per sample. `color_jitter` is
torchvision's `ColorJitter` applied per sample: its own apply-coin, four factors and a random
order of the four ops for every image (torchvision draws one permutation per call; called on a
batch tensor that is one order and one set of factors for the whole batch).

Speed notes (CPU): fresh allocations and bool masks cost more than the arithmetic here, so the
ops work in place on scratch planes and select per sample with 0/1 float weights (`lerp` with
weight exactly 0 or 1 returns start or end exactly).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from selfsup.augment.constants import device_constant

BRIGHTNESS, CONTRAST, SATURATION, HUE = 0, 1, 2, 3  # op ids used in `JitterParams.order`


def rgb_to_grayscale(x: Tensor) -> Tensor:
    """ITU-R 601-2 luma, torchvision's weights. x: (N, 3, H, W) float -> (N, 1, H, W)."""
    r, g, b = x.unbind(1)
    gray = torch.mul(r, 0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114)
    return gray.unsqueeze(1)


def _per_sample(v: Tensor) -> Tensor:
    return v.view(-1, 1, 1, 1)


def _blend_(x: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    """In place, torchvision's `_blend`: x <- clamp(f * x + (1 - f) * other, 0, 1).

    factor: (N,) per sample; other broadcasts against x. f = 1 leaves x exactly as it is
    (1 * x + 0 * other), which the jitter uses as "do nothing".
    """
    f = _per_sample(factor.to(x.dtype))
    return x.mul_(f).add_((1.0 - f) * other).clamp_(0.0, 1.0)


def adjust_brightness(x: Tensor, factor: Tensor) -> Tensor:
    """x: (N, C, H, W) float in [0, 1]; factor: (N,) >= 0 -> clamp(factor * x), a new tensor."""
    return _blend_(x.clone(), torch.zeros((), dtype=x.dtype, device=x.device), factor)


def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    """Blend each image with the mean of its own grayscale. x: (N, 3, H, W); factor: (N,)."""
    mean = rgb_to_grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    return _blend_(x.clone(), mean, factor)


def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    """Blend each image with its grayscale version. x: (N, 3, H, W); factor: (N,)."""
    return _blend_(x.clone(), rgb_to_grayscale(x), factor)


def _hue_sixths(x: Tensor, maxc: Tensor, chroma: Tensor, scratch: Tensor) -> Tensor:
    """Hue in sixths of the circle, in [-1, 5], measured from the largest channel as Pillow
    and torchvision do: max r: (g-b)/C, max g: 2 + (b-r)/C, max b: 4 + (r-g)/C (ties: r, g, b).

    Written as (r-g)/C + 4 + is_r * ((g-b) - (r-g))/C - 4 is_r + is_g * ((b-r) - (r-g))/C - 2 is_g
    with 0/1 float indicators; maxc, chroma: (N, H, W); scratch: (N, H, W), overwritten.
    """
    r, g, b = x.unbind(1)
    is_r = torch.sub(r, maxc).sign_().add_(1.0)  # 1 where r is the max, else 0
    is_g = torch.sub(g, maxc).sign_().add_(1.0)
    is_g.addcmul_(is_g, is_r, value=-1.0)  # g counts only where r is not the max
    h = torch.sub(r, g)
    torch.sub(g, b, out=scratch).sub_(h)
    h.addcmul_(is_r, scratch)
    torch.sub(b, r, out=scratch).sub_(r).add_(g)  # (b - r) - (r - g)
    h.addcmul_(is_g, scratch)
    h.div_(torch.clamp_min(chroma, 1e-12, out=scratch))  # chroma 0: h is 0/1e-12 = 0
    return h.add_(is_r, alpha=-4.0).add_(is_g, alpha=-2.0).add_(4.0)


# (center, slope, offset) of the pure-colour ramps of R, G, B over the hue in sixths.
_PURE_RAMPS = ((3.0, 1.0, -1.0), (2.0, -1.0, 2.0), (4.0, -1.0, 2.0))


def adjust_hue(x: Tensor, shift: Tensor, inplace: bool = False) -> Tensor:
    """Rotate the hue of image i by `shift[i]` (fraction of the circle, in [-0.5, 0.5]).

    x: (N, 3, H, W) float in [0, 1] -> same. Same result as torchvision's RGB -> HSV -> RGB
    round trip, without building HSV: a hue rotation keeps each pixel's max and min (V and S),
    so out = min + chroma * pure(h), pure(h) being the fully saturated colour of hue h:
    R = clamp(|6h - 3| - 1), G = clamp(2 - |6h - 2|), B = clamp(2 - |6h - 4|) (clamp to [0, 1]).
    Samples with shift 0 come back unchanged, bit for bit. inplace: write the result into x.
    """
    r, g, b = x.unbind(1)
    maxc = torch.maximum(r, g)
    torch.maximum(maxc, b, out=maxc)
    minc = torch.minimum(r, g)
    torch.minimum(minc, b, out=minc)
    chroma = torch.sub(maxc, minc)
    scratch = torch.empty_like(maxc)
    h6 = _hue_sixths(x, maxc, chroma, scratch)
    h6.add_(6.0 * shift.to(x.dtype).view(-1, 1, 1))
    h6.sub_(torch.div(h6, 6.0, out=scratch).floor_(), alpha=6.0)  # wrap into [0, 6)
    x = x if inplace else x.clone()
    keep = (shift == 0).to(x.dtype).view(-1, 1, 1)  # 1: that sample keeps its input exactly
    # Each channel: min + chroma * ramp, ramp = clamp(slope * |h6 - center| + offset, 0, 1);
    # written over the input channel (r, g, b are no longer needed) through an exact 0/1 lerp.
    for c, (center, slope, offset) in enumerate(_PURE_RAMPS):
        ramp = torch.sub(h6, center, out=scratch).abs_().mul_(slope).add_(offset).clamp_(0.0, 1.0)
        x[:, c].lerp_(ramp.mul_(chroma).add_(minc), 1.0 - keep)
    return x


@dataclass(frozen=True)
class JitterParams:
    """Per-sample colour-jitter parameters.

    factors: (N, 4) float: brightness, contrast, saturation factor and hue shift; the identity
        (1, 1, 1, 0) for samples that skip the jitter.
    order: (N, 4) long: each row a permutation of (BRIGHTNESS, CONTRAST, SATURATION, HUE).
    apply: (N,) bool: whether the sample's jitter is on (its coin with probability p).
    """

    factors: Tensor
    order: Tensor
    apply: Tensor

    def __getitem__(self, rows: slice) -> JitterParams:
        return JitterParams(self.factors[rows], self.order[rows], self.apply[rows])


def _factor_range(v: float | tuple[float, float], center: float) -> tuple[float, float]:
    if isinstance(v, tuple | list):
        return float(v[0]), float(v[1])
    return (max(0.0, center - v), center + v) if center else (-v, v)


def sample_jitter_params(
    n: int,
    brightness: float | tuple[float, float] = 0.4,
    contrast: float | tuple[float, float] = 0.4,
    saturation: float | tuple[float, float] = 0.4,
    hue: float | tuple[float, float] = 0.1,
    p: float = 0.8,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> JitterParams:
    """Draw `JitterParams` for n samples, with torchvision's ranges.

    A float strength v means factor ~ U(max(0, 1 - v), 1 + v) (hue: shift ~ U(-v, v), v <= 0.5);
    a pair is the range itself.
    """
    ranges = [_factor_range(v, 1.0) for v in (brightness, contrast, saturation)]
    ranges.append(_factor_range(hue, 0.0))
    lo, hi = (device_constant(r, torch.float32, device) for r in zip(*ranges, strict=True))
    u = torch.rand(n, 5, device=device, generator=generator)
    apply = u[:, 4] < p
    identity = device_constant([1.0, 1.0, 1.0, 0.0], torch.float32, device)
    factors = torch.where(apply.unsqueeze(1), lo + (hi - lo) * u[:, :4], identity)
    order = torch.rand(n, 4, device=device, generator=generator).argsort(dim=1)
    return JitterParams(factors=factors, order=order, apply=apply)


def _round_coefficients(params: JitterParams, dtype: torch.dtype) -> tuple[Tensor, ...]:
    """Per-round, per-sample blend coefficients for `apply_color_jitter`.

    Rounds 0-2 run before the hue shift, 3-5 after. A sample's blend op at position j of its
    order runs in round j if j < its hue position, else in round 3 + j; elsewhere it gets
    factor 1. Returns f, (1 - f) * [op is saturation], (1 - f) * [op is contrast], each
    (6, N, 1, 1, 1).
    """
    order, n = params.order, params.order.shape[0]
    hue_pos = (order == HUE).int().argmax(dim=1, keepdim=True)  # (N, 1)
    # The blend op ids in each sample's order: a stable sort moves hue to the end (no boolean
    # indexing, which would cost a device sync on GPUs).
    blends = order.gather(1, (order == HUE).long().argsort(dim=1, stable=True)[:, :3])
    f = params.factors.to(dtype).gather(1, blends)  # (N, 3)
    before = torch.arange(3, device=order.device) < hue_pos  # (N, 3)
    f = torch.cat((torch.where(before, f, 1.0), torch.where(before, 1.0, f)), dim=1)  # (N, 6)
    ops = blends.repeat(1, 2)
    w_gray = (1.0 - f) * (ops == SATURATION)
    w_mean = (1.0 - f) * (ops == CONTRAST)
    return tuple(t.T.reshape(6, n, 1, 1, 1) for t in (f, w_gray, w_mean))


def apply_color_jitter(x: Tensor, params: JitterParams, inplace: bool = False) -> Tensor:
    """Apply each sample's jitter ops in its own order. x: (N, 3, H, W) float in [0, 1].

    Each order is the three blend ops with the hue shift inserted somewhere. Hue, the costly op,
    runs once for the whole batch; the blend ops run in 3 rounds before it and 3 after it, with
    factor 1 (the exact identity) where a sample has nothing to do in that round. The blend ops
    are all clamp(f * x + (1 - f) * other), other = 0 (brightness), the grayscale mean
    (contrast) or the grayscale (saturation), so one round serves all three.
    inplace: overwrite x (else x is copied once first).
    """
    x = x if inplace else x.clone()
    f, w_gray, w_mean = _round_coefficients(params, x.dtype)
    for k in range(6):
        if k == 3:
            adjust_hue(x, params.factors[:, HUE], inplace=True)
        gray = rgb_to_grayscale(x)  # (N, 1, H, W)
        mean = gray.mean(dim=(1, 2, 3), keepdim=True)
        other = gray.mul_(w_gray[k]).add_(mean.mul_(w_mean[k]))  # (1 - f) * other
        x.mul_(f[k]).add_(other).clamp_(0.0, 1.0)
    return x


def color_jitter(
    x: Tensor,
    brightness: float | tuple[float, float] = 0.4,
    contrast: float | tuple[float, float] = 0.4,
    saturation: float | tuple[float, float] = 0.4,
    hue: float | tuple[float, float] = 0.1,
    p: float = 0.8,
    generator: torch.Generator | None = None,
    inplace: bool = False,
) -> Tensor:
    """Per-sample `RandomApply([ColorJitter(b, c, s, h)], p)`.

    Defaults are SimCLR's colour distortion at strength 0.5, the CIFAR-10 setting
    (Chen et al. 2020, App. A/B.9: 0.8s, 0.8s, 0.8s, 0.2s; p = 0.8).
    x: (N, 3, H, W) float in [0, 1] -> same shape, in [0, 1].
    """
    params = sample_jitter_params(
        x.shape[0], brightness, contrast, saturation, hue, p, x.device, generator
    )
    return apply_color_jitter(x, params, inplace=inplace)


def apply_grayscale(x: Tensor, pick: Tensor, inplace: bool = False) -> Tensor:
    """Replace image i by its luma (on every channel) where pick[i]. x: (N, 3, H, W) float;
    pick: (N,) bool."""
    w = _per_sample(pick.to(x.dtype))
    gray = rgb_to_grayscale(x)
    return x.lerp_(gray, w) if inplace else torch.lerp(x, gray.expand_as(x), w)


def random_grayscale(
    x: Tensor, p: float = 0.2, generator: torch.Generator | None = None, inplace: bool = False
) -> Tensor:
    """Replace each image by its luma (on all 3 channels) with probability p (0.2 in SimCLR).

    x: (N, 3, H, W) float -> same.
    """
    pick = torch.rand(x.shape[0], device=x.device, generator=generator) < p
    return apply_grayscale(x, pick, inplace)


def solarize(x: Tensor, threshold: float = 0.5, pick: Tensor | None = None) -> Tensor:
    """Invert pixels >= threshold (torchvision's `solarize`), only in images where pick[i]
    (all if None). x: (N, C, H, W) float in [0, 1] -> a new tensor."""
    hit = x >= threshold
    hit = hit if pick is None else hit & _per_sample(pick)
    return torch.where(hit, 1.0 - x, x)


def random_solarize(
    x: Tensor, threshold: float = 0.5, p: float = 0.2, generator: torch.Generator | None = None
) -> Tensor:
    """Solarize each image with probability p (BYOL, Grill et al. 2020: p = 0.2 on the second
    view, threshold 0.5). x: (N, C, H, W) float in [0, 1] -> same."""
    pick = torch.rand(x.shape[0], device=x.device, generator=generator) < p
    return solarize(x, threshold, pick)
