"""normalize: torchvision's Normalize, with an optional output buffer."""

from __future__ import annotations

import torch
import torchvision.transforms.functional as TF

from selfsup.augment.normalize import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, normalize


def test_normalize_matches_torchvision_and_writes_out():
    x = torch.rand(4, 3, 8, 8)
    ref = TF.normalize(x, list(CIFAR10_MEAN), list(CIFAR10_STD))
    assert (normalize(x, CIFAR10_MEAN, CIFAR10_STD) - ref).abs().max() < 1e-6
    out = torch.empty_like(x)
    normalize(x, CIFAR10_MEAN, CIFAR10_STD, out=out)
    assert torch.equal(out, normalize(x, CIFAR10_MEAN, CIFAR10_STD))
    gray = torch.rand(2, 1, 4, 4)
    assert normalize(gray, IMAGENET_MEAN[:1], (0.5,)).shape == gray.shape
