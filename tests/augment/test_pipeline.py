"""ViewPipeline / EvalView / MultiView and the paper recipes."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

import selfsup.augment.pipeline as pipeline_module
from selfsup.augment import (
    CIFAR10_MEAN,
    IMAGENET_MEAN,
    EvalView,
    MultiView,
    ViewPipeline,
    byol_views,
    eval_view,
    moco_v2_views,
    multicrop_views,
    simclr_views,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _uint8(n: int = 16, c: int = 3, h: int = 32, w: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=_gen(0))


RAW = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # no normalization: pixels stay in [0, 1]
EVERYTHING = dict(blur_p=0.5, solarize_p=0.5, **RAW)


def test_shapes_dtypes_and_ranges_for_uint8_float_and_gray():
    pipe = ViewPipeline(size=24, **EVERYTHING)
    for images in (_uint8(), _uint8().float() / 255, _uint8(c=1), _uint8(h=40, w=28)):
        before = images.clone()
        out = pipe(images, _gen(1))
        assert out.shape == (16, 3, 24, 24) and out.dtype == torch.float32
        assert out.min() >= 0 and out.max() <= 1
        assert torch.equal(images, before)  # the input is never written


def test_uint8_and_float_inputs_give_the_same_views():
    images = _uint8()
    pipe = ViewPipeline(**EVERYTHING)
    a = pipe(images, _gen(2))
    b = pipe(images.float() / 255, _gen(2))
    assert (a - b).abs().max() < 1e-4


def test_normalization_uses_mean_and_std():
    images = _uint8()
    raw = ViewPipeline(**RAW)(images, _gen(3))
    norm = ViewPipeline()(images, _gen(3))
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor((0.2470, 0.2435, 0.2616)).view(1, 3, 1, 1)
    assert (norm - (raw - mean) / std).abs().max() < 1e-5


def test_seeds_reproduce_and_differ():
    images = _uint8()
    pipe = ViewPipeline(**EVERYTHING)
    assert torch.equal(pipe(images, _gen(4)), pipe(images, _gen(4)))
    assert not torch.equal(pipe(images, _gen(4)), pipe(images, _gen(5)))
    torch.manual_seed(0)
    a = pipe(images)
    torch.manual_seed(0)
    assert torch.equal(a, pipe(images))  # generator None: the global RNG


def test_views_of_copies_of_one_image_all_differ():
    images = _uint8(1).expand(64, 3, 32, 32)
    views = ViewPipeline()(images, _gen(6)).flatten(1)
    dist = torch.cdist(views, views)
    off_diagonal = dist[~torch.eye(64, dtype=torch.bool)]
    assert (off_diagonal > 1e-3).all()


def test_every_op_is_drawn_per_sample():
    params = ViewPipeline(**EVERYTHING).sample(256, 32, 32, generator=_gen(7))
    for coin in (params.flips, params.jitter.apply, params.gray, params.solarize):
        assert 0 < coin.float().mean() < 1
    assert 0 < (params.blur_sigma > 0).float().mean() < 1
    assert len(set(params.blur_sigma.tolist())) > 100


def test_sample_then_apply_equals_call_and_chunking_changes_nothing(monkeypatch):
    images = _uint8(40)
    pipe = ViewPipeline(**EVERYTHING)
    params = pipe.sample(40, 32, 32, generator=_gen(8))
    whole = pipe.apply(images, params)
    assert torch.equal(whole, pipe(images, _gen(8)))
    monkeypatch.setattr(pipeline_module, "_CPU_CHUNK_PIXELS", 7 * 32 * 32)  # chunks of 7
    assert torch.equal(pipe.apply(images, params), whole)


def test_pipeline_is_the_simclr_composition_of_the_ops():
    # crop -> flip -> jitter -> grayscale -> blur -> solarize -> normalize, with the drawn params.
    from selfsup.augment.blur import gaussian_blur
    from selfsup.augment.color import apply_color_jitter, apply_grayscale, solarize
    from selfsup.augment.crop import resized_crop
    from selfsup.augment.normalize import normalize

    images = _uint8()
    pipe = ViewPipeline(blur_p=0.5, solarize_p=0.5, gray_p=0.5)
    params = pipe.sample(16, 32, 32, generator=_gen(9))
    x = resized_crop(images, params.boxes, 32, hflip=params.flips)
    x = apply_grayscale(apply_color_jitter(x, params.jitter), params.gray)
    x = solarize(gaussian_blur(x, 3, params.blur_sigma), 0.5, params.solarize)
    assert torch.equal(pipe.apply(images, params), normalize(x, pipe.mean, pipe.std))
    raw_gray = ViewPipeline(jitter_p=0.0, gray_p=1.0, **RAW)(images, _gen(0))
    assert (raw_gray.amax(dim=1) - raw_gray.amin(dim=1)).max() == 0


def test_eval_view_is_deterministic():
    images = _uint8(h=40, w=36)
    view = EvalView(size=32, crop_fraction=0.875)
    out = view(images, _gen(0))
    assert out.shape == (16, 3, 32, 32)
    assert torch.equal(out, view(images, _gen(1)))
    same = EvalView(size=32, **RAW)(_uint8())
    assert torch.allclose(same, _uint8().float() / 255)


def test_multiview_and_describe():
    views = MultiView([ViewPipeline(size=32), ViewPipeline(size=16), EvalView(size=8)])
    out = views(_uint8(), _gen(0))
    assert [v.shape[-1] for v in out] == [32, 16, 8] and len(views) == 3
    desc = views.describe()
    assert desc["type"] == "MultiView" and desc["views"][1]["size"] == 16
    assert json.loads(json.dumps(desc)) == desc
    assert yaml.safe_load(yaml.safe_dump(desc)) == desc
    with pytest.raises(ValueError):
        MultiView([])


def test_recipes():
    simclr = simclr_views(32)
    assert len(simclr) == 2 and simclr.pipelines[0].blur_p == 0.0  # SimCLR: no blur on CIFAR
    assert simclr.pipelines[0].mean == CIFAR10_MEAN
    big = simclr_views(224)
    assert big.pipelines[0].blur_p == 0.5 and big.pipelines[0].mean == IMAGENET_MEAN
    assert simclr_views(32, blur=True).pipelines[0].blur_p == 0.5
    assert simclr_views(32, strength=1.0).pipelines[0].brightness == pytest.approx(0.8)

    moco = moco_v2_views(32).pipelines[0]
    assert moco.blur_p == 0.5 and moco.scale == (0.2, 1.0)

    b1, b2 = byol_views(96).pipelines
    assert (b1.blur_p, b2.blur_p, b1.solarize_p, b2.solarize_p) == (1.0, 0.1, 0.0, 0.2)
    assert b1.saturation == 0.2
    assert byol_views(32).pipelines[1].solarize_p == 0.2

    mc = multicrop_views(32, n_local=6)
    assert len(mc) == 8
    assert [p.size for p in mc.pipelines] == [32, 32] + [16] * 6
    assert mc.pipelines[2].scale == (0.05, 0.4) and mc.pipelines[0].scale == (0.4, 1.0)
    out = mc(_uint8(4), _gen(0))
    assert [v.shape for v in out] == [(4, 3, 32, 32)] * 2 + [(4, 3, 16, 16)] * 6
    assert not torch.equal(out[2], out[3])  # locals are independent draws

    ev = eval_view(224, crop_fraction=0.875)
    assert isinstance(ev, EvalView) and ev.mean == IMAGENET_MEAN
