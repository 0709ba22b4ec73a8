"""The split recipe (crops in workers, the rest on the device) keeps the recipe's semantics."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from selfsup.augment.pipeline import EvalView, MultiView, ViewPipeline
from selfsup.augment.recipes import byol_views, simclr_views
from selfsup.augment.split import CropSpec, PrecroppedViews, WorkerCrops, split_views


def _image(h: int = 40, w: int = 56, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)


def test_worker_crops_shapes_dtype_and_seeding():
    ratio = (3 / 4, 4 / 3)
    crops = WorkerCrops([CropSpec(16, (0.08, 1.0), ratio), CropSpec(8, (0.05, 0.4), ratio)])
    a = crops(_image(), torch.Generator().manual_seed(1))
    b = crops(_image(), torch.Generator().manual_seed(1))
    c = crops(_image(), torch.Generator().manual_seed(2))
    assert [t.shape for t in a] == [(3, 16, 16), (3, 8, 8)]
    assert all(t.dtype == torch.uint8 for t in a)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])


def test_full_box_crop_is_the_image_and_a_constant_stays_constant():
    full = WorkerCrops([CropSpec(24, (1.0, 1.0), (40 / 24, 40 / 24))])
    img = _image(24, 40)
    # A box of the whole image at its own size returns the pixels unchanged.
    same = WorkerCrops([CropSpec(24, (1.0, 1.0), (1.0, 1.0))])(_image(24, 24), None)[0]
    assert torch.equal(same, _image(24, 24))
    flat = torch.full((3, 24, 40), 77, dtype=torch.uint8)
    assert (full(flat, None)[0] == 77).all()
    assert full(img, None)[0].shape == (3, 24, 24)


def test_crop_boxes_follow_the_scale_range():
    """A small-scale crop of a big smooth gradient covers a small range of it."""
    ramp = torch.linspace(0, 255, 200).round().to(torch.uint8).expand(3, 200, 200).contiguous()
    small = WorkerCrops([CropSpec(8, (0.05, 0.06), (1.0, 1.0))])
    large = WorkerCrops([CropSpec(8, (0.95, 1.0), (1.0, 1.0))])
    spans = []
    for crops in (small, large):
        out = [crops(ramp, torch.Generator().manual_seed(s))[0].float() for s in range(20)]
        spans.append(torch.stack([o.amax() - o.amin() for o in out]).mean())
    assert spans[0] < 0.35 * spans[1]


def test_precropped_views_equal_the_pipeline_on_whole_image_crops():
    """The device half is the pipeline minus its crop: on crops that are the whole image, the
    same generator state gives the views of the full pipeline with a whole-image crop."""
    view = ViewPipeline(size=16, blur_p=0.5, solarize_p=0.3)
    crops = [torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8) for _ in range(2)]
    device = PrecroppedViews(MultiView([view, view]))
    got = device(crops, torch.Generator().manual_seed(3))
    whole = dataclasses.replace(view, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    want = whole(torch.cat(crops), torch.Generator().manual_seed(3)).chunk(2)
    for g, w in zip(got, want, strict=True):
        assert g.shape == (6, 3, 16, 16) and g.dtype == torch.float32
        torch.testing.assert_close(g, w)
    # and the whole-image "crop" is the identity: with every other op off, only normalization
    off = dict(flip_p=0.0, jitter_p=0.0, gray_p=0.0, mean=(0.0,) * 3, std=(1.0,) * 3)
    plain = ViewPipeline(size=16, **off)
    out = PrecroppedViews(MultiView([plain]))([crops[0]], None)[0]
    torch.testing.assert_close(out, crops[0].float() / 255, atol=1e-6, rtol=0)


def test_split_views_keeps_every_views_crop_and_refuses_eval_views():
    crops, device = split_views(byol_views(24))
    assert [s.size for s in crops.specs] == [24, 24] and len(device) == 2
    assert crops.specs[0].scale == (0.08, 1.0)
    crops, _ = split_views(simclr_views(32))
    assert crops.specs[0] == CropSpec(32, (0.08, 1.0), (3 / 4, 4 / 3))
    with pytest.raises(ValueError, match="ViewPipeline"):
        split_views(MultiView([EvalView(16)]))
    with pytest.raises(ValueError, match="crops per image"):
        device([torch.zeros(2, 3, 24, 24, dtype=torch.uint8)], None)


def test_scalar_box_sampler_agrees_with_the_batched_one():
    """Same uniforms -> same box (up to a pixel where float32 and float64 round apart)."""
    from selfsup.augment import crop

    g = torch.Generator().manual_seed(0)
    n, h, w = 2000, 37, 53
    u = torch.rand(n, crop.ATTEMPTS, 2, generator=g)
    off = torch.rand(n, 2, generator=g)
    draws = iter([u, off])
    real_rand = torch.rand
    try:  # feed both samplers the same uniforms
        torch.rand = lambda *a, **k: next(draws)
        batched = crop.sample_crop_boxes(n, h, w, (0.08, 1.0), (3 / 4, 4 / 3))
    finally:
        torch.rand = real_rand
    flat = torch.cat([u.flatten(1), off], dim=1).tolist()
    scalar = torch.tensor(
        [crop.sample_crop_box(h, w, (0.08, 1.0), (3 / 4, 4 / 3), r) for r in flat]
    )
    diff = (scalar - batched).abs()
    assert diff.max() <= 1 and (diff.sum(1) > 0).float().mean() < 0.01
    # the fallback: no attempt fits a 1:10 strip with ratios near 1 -> centre crop
    box = crop.sample_crop_box(10, 100, (0.9, 1.0), (3 / 4, 4 / 3), [0.5] * 22)
    assert box == (0, 43, 10, 13)
