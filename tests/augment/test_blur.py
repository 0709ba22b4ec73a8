"""Gaussian blur: per-sample sigma, same numbers as torchvision's gaussian_blur."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.functional as TF

from selfsup.augment.blur import gaussian_blur, random_gaussian_blur, simclr_kernel_size


def test_blur_matches_torchvision_per_sample_sigma():
    x = torch.rand(6, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.1, 0.5, 1.0, 2.0, 0.0, 1.5])
    for k in (3, 9):
        out = gaussian_blur(x, k, sigma)
        ref = torch.stack(
            [
                TF.gaussian_blur(xi, [k, k], [s.item()] * 2) if s > 0 else xi
                for xi, s in zip(x, sigma, strict=True)
            ]
        )
        assert (out - ref).abs().max() < 1e-6
        assert torch.equal(out[4], x[4])  # sigma 0: exact identity


def test_random_blur_per_sample_and_gray_input():
    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0)).expand(32, 1, 16, 16)
    out = random_gaussian_blur(x, 5, p=0.5, generator=torch.Generator().manual_seed(1))
    assert out.shape == (32, 1, 16, 16)
    untouched = (out == x).flatten(1).all(dim=1)
    assert 5 < untouched.sum() < 27
    blurred = out[~untouched].flatten(1)
    assert (torch.cdist(blurred, blurred) > 1e-5).float().mean() > 0.9  # sigma per sample


def test_kernel_rule_and_even_kernel():
    assert [simclr_kernel_size(s) for s in (224, 96, 32)] == [23, 9, 3]
    with pytest.raises(ValueError):
        gaussian_blur(torch.rand(1, 3, 8, 8), 4, torch.ones(1))
    with pytest.raises(ValueError):  # reflect padding needs pad < side, as in torchvision
        gaussian_blur(torch.rand(1, 3, 8, 8), 17, torch.ones(1))


def test_blur_non_square_and_large_kernel():
    x = torch.rand(2, 3, 30, 45, generator=torch.Generator().manual_seed(2))
    sigma = torch.tensor([0.7, 1.9])
    ref = torch.stack(
        [TF.gaussian_blur(xi, [23, 23], [s.item()] * 2) for xi, s in zip(x, sigma, strict=True)]
    )
    assert (gaussian_blur(x, 23, sigma) - ref).abs().max() < 2e-6
