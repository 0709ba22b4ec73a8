"""View recipes, one function per paper. Each returns the views one training step needs.

Normalization statistics: pass `mean`/`std`, or leave them None for the size rule
`default_stats`: CIFAR-10 statistics for images of side <= 64 (CIFAR, STL-10 at 64, Tiny
ImageNet), ImageNet statistics above.
Blur: on ImageNet-sized views the papers blur; SimCLR drops blur on CIFAR-10 (App. B.9) since
32-px images are already blurry. `blur=None` follows that: blur iff the (global) view side >= 96.
"""

from __future__ import annotations

from selfsup.augment.normalize import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD
from selfsup.augment.pipeline import EvalView, MultiView, ViewPipeline

Stats = tuple[float, ...] | None


def default_stats(size: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std): CIFAR-10 statistics for view side <= 64, ImageNet statistics above."""
    return (CIFAR10_MEAN, CIFAR10_STD) if size <= 64 else (IMAGENET_MEAN, IMAGENET_STD)


def _stats(size: int, mean: Stats, std: Stats) -> dict:
    d_mean, d_std = default_stats(size)
    return {"mean": tuple(mean or d_mean), "std": tuple(std or d_std)}


def _blur_on(blur: bool | None, size: int) -> bool:
    return size >= 96 if blur is None else blur


def simclr_views(
    size: int = 32,
    mean: Stats = None,
    std: Stats = None,
    blur: bool | None = None,
    strength: float = 0.5,
) -> MultiView:
    """SimCLR (Chen et al. 2020, App. A): two views from the same distribution.

    Crop scale (0.08, 1), flip 0.5, colour jitter (0.8s, 0.8s, 0.8s, 0.2s) with p 0.8 at
    strength s (1.0 on ImageNet, 0.5 on CIFAR-10 -> 0.4/0.4/0.4/0.1), grayscale 0.2,
    blur p 0.5 sigma (0.1, 2) kernel 10 % of the side (default: only for size >= 96).
    """
    view = ViewPipeline(
        size=size,
        brightness=0.8 * strength,
        contrast=0.8 * strength,
        saturation=0.8 * strength,
        hue=0.2 * strength,
        blur_p=0.5 if _blur_on(blur, size) else 0.0,
        **_stats(size, mean, std),
    )
    return MultiView([view, view])


def moco_v2_views(size: int = 32, mean: Stats = None, std: Stats = None) -> MultiView:
    """MoCo v2 (Chen et al. 2020, "Improved Baselines"): SimCLR's augmentation plus blur.

    As in the MoCo v2 code (main_moco.py, aug_plus): crop scale (0.2, 1), jitter
    0.4/0.4/0.4/0.1 p 0.8, grayscale 0.2, blur p 0.5 sigma (0.1, 2), flip 0.5.
    """
    view = ViewPipeline(size=size, scale=(0.2, 1.0), blur_p=0.5, **_stats(size, mean, std))
    return MultiView([view, view])


def byol_views(
    size: int = 32, mean: Stats = None, std: Stats = None, blur: bool | None = None
) -> MultiView:
    """BYOL (Grill et al. 2020, App. B, Table 6): two asymmetric views.

    Both: crop scale (0.08, 1), flip 0.5, jitter 0.4/0.4/0.2/0.1 p 0.8, grayscale 0.2.
    View 1: blur p 1.0, no solarize. View 2: blur p 0.1, solarize p 0.2.
    Blur default: only for size >= 96 (module docstring); solarize is kept at every size.
    """
    on = _blur_on(blur, size)
    common = dict(size=size, saturation=0.2, **_stats(size, mean, std))
    return MultiView(
        [
            ViewPipeline(blur_p=1.0 if on else 0.0, **common),
            ViewPipeline(blur_p=0.1 if on else 0.0, solarize_p=0.2, **common),
        ]
    )


def multicrop_views(
    global_size: int = 32,
    local_size: int | None = None,
    n_local: int = 6,
    global_scale: tuple[float, float] = (0.4, 1.0),
    local_scale: tuple[float, float] = (0.05, 0.4),
    mean: Stats = None,
    std: Stats = None,
    blur: bool | None = None,
) -> MultiView:
    """Multi-crop (SwAV, Caron et al. 2020; DINO, Caron et al. 2021): 2 global + n_local views.

    DINO's augmentation: global scale (0.4, 1), local scale (0.05, 0.4) (DINO defaults; ImageNet
    sizes 224 / 96, 8 local crops in DINO, 6 in SwAV), jitter 0.4/0.4/0.2/0.1 p 0.8, grayscale
    0.2; global 1: blur 1.0; global 2: blur 0.1 + solarize 0.2; locals: blur 0.5.
    local_size None: half the global side (16 for CIFAR's 32; DINO's ratio is 96/224 = 0.43).
    Blur default: only for global_size >= 96. Returns views in the order [g1, g2, l1 ... ln].
    """
    local_size = local_size or max(1, global_size // 2)
    on = _blur_on(blur, global_size)
    stats = _stats(global_size, mean, std)
    glob = dict(size=global_size, scale=global_scale, saturation=0.2, **stats)
    local = ViewPipeline(
        size=local_size, scale=local_scale, saturation=0.2, blur_p=0.5 if on else 0.0, **stats
    )
    return MultiView(
        [
            ViewPipeline(blur_p=1.0 if on else 0.0, **glob),
            ViewPipeline(blur_p=0.1 if on else 0.0, solarize_p=0.2, **glob),
            *[local] * n_local,
        ]
    )


def mae_views(size: int = 32, mean: Stats = None, std: Stats = None) -> MultiView:
    """MAE (He et al. 2022, App. A.1): one view, random resized crop scale (0.2, 1) + flip.

    No colour jitter, grayscale or blur: masking is the augmentation.
    """
    view = ViewPipeline(
        size=size, scale=(0.2, 1.0), jitter_p=0.0, gray_p=0.0, **_stats(size, mean, std)
    )
    return MultiView([view])


def eval_view(
    size: int = 32, mean: Stats = None, std: Stats = None, crop_fraction: float = 1.0
) -> EvalView:
    """Deterministic evaluation view (kNN, linear probe): centre crop + resize + normalize.

    crop_fraction 1.0 keeps the whole short side (CIFAR); use 0.875 for the ImageNet
    "resize 256, centre crop 224" protocol.
    """
    return EvalView(size=size, crop_fraction=crop_fraction, **_stats(size, mean, std))
