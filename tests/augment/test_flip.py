"""Random horizontal flip: per sample, and equal to torchvision's hflip where it flips."""

from __future__ import annotations

import torch
import torchvision.transforms.functional as TF

from selfsup.augment.flip import random_horizontal_flip


def test_flip_matches_hflip_per_sample():
    x = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    out = random_horizontal_flip(x, p=0.5, generator=torch.Generator().manual_seed(1))
    flipped = torch.tensor([torch.equal(o, TF.hflip(xi)) for o, xi in zip(out, x, strict=True)])
    kept = torch.tensor([torch.equal(o, xi) for o, xi in zip(out, x, strict=True)])
    assert (flipped | kept).all()
    assert 15 < flipped.sum() < 49  # a coin per sample


def test_flip_extremes_dtypes_and_gray():
    x = torch.randint(0, 256, (4, 1, 5, 7), dtype=torch.uint8)
    assert torch.equal(random_horizontal_flip(x, p=0.0), x)
    assert torch.equal(random_horizontal_flip(x, p=1.0), x.flip(-1))
