"""Per-channel normalization and the dataset statistics it is used with."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from selfsup.augment.constants import device_constant

# ImageNet statistics as used by torchvision / timm models (RGB, images in [0, 1]).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# CIFAR-10 training-set statistics (RGB, images in [0, 1]); the per-pixel std, as in most
# SSL codebases (solo-learn, lightly), not the std of per-image means (0.2023, 0.1994, 0.2010).
CIFAR10_MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
CIFAR10_STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)


def normalize(
    x: Tensor, mean: Sequence[float], std: Sequence[float], out: Tensor | None = None
) -> Tensor:
    """Return `(x - mean) / std` per channel.

    x: (N, C, H, W) float; mean, std: C values. out: write the result there (may be `x`
    itself, or a slice of a bigger output, which saves the view pipelines a copy).
    """
    shape = (1, -1, 1, 1)
    inv_std = device_constant([1.0 / s for s in std], x.dtype, x.device).view(shape)
    shift = [-m / s for m, s in zip(mean, std, strict=True)]
    shift = device_constant(shift, x.dtype, x.device).view(shape)
    # x * (1/std) + (-mean/std): one fused multiply-add pass instead of a subtract and a divide.
    return torch.addcmul(shift, x, inv_std, out=out)
