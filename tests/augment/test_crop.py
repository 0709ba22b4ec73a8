"""Random resized crop: boxes like torchvision's RandomResizedCrop, pixels like resized_crop."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.functional as TF

from selfsup.augment.crop import (
    center_crop_resize,
    random_resized_crop,
    resized_crop,
    sample_crop_boxes,
)

# Measured max |ours - torchvision| on [0, 1] images: 1.2e-7 at 32 px, 1.7e-5 at 300 px
# (grid_sample's normalized coordinates round to ~1e-7 of the image side). Far below 1/255.
TOL = 1e-4


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _tv_crops(x: torch.Tensor, boxes: torch.Tensor, size) -> torch.Tensor:
    return torch.stack(
        [
            TF.resized_crop(xi, *b.tolist(), list(size), antialias=False)
            for xi, b in zip(x, boxes, strict=True)
        ]
    )


def test_boxes_fit_and_follow_scale_and_ratio():
    h, w = 32, 40
    boxes = sample_crop_boxes(4096, h, w, (0.08, 1.0), (3 / 4, 4 / 3), generator=_gen())
    top, left, bh, bw = boxes.unbind(1)
    assert boxes.dtype == torch.long and boxes.shape == (4096, 4)
    assert (top >= 0).all() and (left >= 0).all() and (bh >= 1).all() and (bw >= 1).all()
    assert (top + bh <= h).all() and (left + bw <= w).all()
    area = (bh * bw).float() / (h * w)
    assert area.min() > 0.05 and area.max() <= 1.0
    # Rounding to whole pixels blurs the ratio a little on small boxes: check the big ones.
    big = area > 0.3
    ratio = bw[big].float() / bh[big].float()
    assert ratio.min() > 0.7 and ratio.max() < 1.45
    # Offsets are spread over the free range, not always centred.
    assert len(set(top.tolist())) > 10 and len(set(left.tolist())) > 10


def test_boxes_fallback_matches_torchvision_centre_crop():
    # A 10x100 strip cannot hold any box with aspect ratio <= 4/3 and area >= 90 %:
    # torchvision falls back to the centred box with the ratio clamped to 4/3.
    boxes = sample_crop_boxes(8, 10, 100, (0.9, 1.0), (3 / 4, 4 / 3), generator=_gen())
    w = int(round(10 * 4 / 3))
    assert boxes.tolist() == [[0, (100 - w) // 2, 10, w]] * 8


def test_boxes_differ_per_sample_and_follow_the_seed():
    a = sample_crop_boxes(64, 32, 32, generator=_gen(1))
    b = sample_crop_boxes(64, 32, 32, generator=_gen(1))
    c = sample_crop_boxes(64, 32, 32, generator=_gen(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert len({tuple(r) for r in a.tolist()}) > 50


@pytest.mark.parametrize(
    "hw,size",
    [((32, 32), (32, 32)), ((50, 70), (24, 20)), ((300, 200), (64, 64)), ((8, 8), (40, 40))],
)
def test_resized_crop_matches_torchvision(hw, size):
    x = torch.rand(16, 3, *hw, generator=_gen())
    boxes = sample_crop_boxes(16, *hw, generator=_gen(3))
    assert (resized_crop(x, boxes, size) - _tv_crops(x, boxes, size)).abs().max() < TOL


def test_resized_crop_uint8_is_float_over_255():
    xu = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=_gen())
    boxes = sample_crop_boxes(8, 32, 32, generator=_gen(4))
    out = resized_crop(xu, boxes, 32)
    assert out.dtype == torch.float32
    assert (out - _tv_crops(xu.float() / 255, boxes, (32, 32))).abs().max() < TOL


def test_resized_crop_fused_flip_equals_flipping_afterwards():
    x = torch.rand(16, 3, 32, 32, generator=_gen())
    boxes = sample_crop_boxes(16, 32, 32, generator=_gen(5))
    flip = torch.arange(16) % 2 == 0
    plain = resized_crop(x, boxes, 24)
    fused = resized_crop(x, boxes, 24, hflip=flip)
    assert torch.equal(fused[flip], TF.hflip(plain[flip]))
    assert torch.equal(fused[~flip], plain[~flip])


def test_random_resized_crop_shapes_ranges_and_per_sample_boxes():
    x = torch.rand(1, 3, 32, 32, generator=_gen()).expand(64, 3, 32, 32)
    out = random_resized_crop(x, 16, generator=_gen(6))
    assert out.shape == (64, 3, 16, 16) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    flat = out.flatten(1)
    assert (torch.cdist(flat, flat) > 1e-3).sum() >= 64 * 63 * 0.95  # the views differ
    gray = torch.randint(0, 256, (4, 1, 20, 30), dtype=torch.uint8)
    assert random_resized_crop(gray, (8, 12)).shape == (4, 1, 8, 12)


def test_full_box_at_same_size_is_the_identity():
    x = torch.rand(4, 3, 32, 32, generator=_gen())
    boxes = torch.tensor([[0, 0, 32, 32]] * 4)
    assert torch.allclose(resized_crop(x, boxes, 32), x, atol=1e-6)


def test_center_crop_resize():
    x = torch.rand(4, 3, 40, 60, generator=_gen())
    out = center_crop_resize(x, 32, crop_fraction=0.8)
    side = int(round(0.8 * 40))
    ref = TF.resize(TF.center_crop(x, [side, side]), [32, 32], antialias=True)
    assert out.shape == (4, 3, 32, 32)
    assert (out - ref).abs().max() < 1e-5
    same = torch.rand(2, 3, 32, 32)
    assert torch.equal(center_crop_resize(same, 32), same)
    xu = (same * 255).round().to(torch.uint8)
    assert torch.allclose(center_crop_resize(xu, 32), xu.float() / 255)
    assert center_crop_resize(xu[:, :1], 16).shape == (2, 1, 16, 16)
