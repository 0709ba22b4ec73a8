"""Colour ops against torchvision's single-image functions, per-sample parameters and order."""

from __future__ import annotations

import pytest
import torch
import torchvision.transforms.functional as TF

from selfsup.augment.color import (
    BRIGHTNESS,
    CONTRAST,
    HUE,
    SATURATION,
    JitterParams,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    apply_color_jitter,
    color_jitter,
    random_grayscale,
    random_solarize,
    rgb_to_grayscale,
    sample_jitter_params,
    solarize,
)

_TV_NAMES = {BRIGHTNESS: "brightness", CONTRAST: "contrast", SATURATION: "saturation", HUE: "hue"}
# torchvision's own HSV round trip is off by up to ~1e-6; the blends agree to ~1e-7.
HUE_TOL = 5e-6
BLEND_TOL = 1e-6


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(n: int = 8, seed: int = 0) -> torch.Tensor:
    """Random colours plus the edge cases of the hue formula: grays, ties, black, white."""
    x = torch.rand(max(n, 8), 3, 16, 16, generator=_gen(seed))
    x[0, :, :4] = 0.5  # gray: chroma 0
    x[1, 0, :4] = x[1, 1, :4]  # r == g
    x[2, 0, :4] = x[2, 2, :4]  # r == b
    x[3, 1, :4] = x[3, 2, :4]  # g == b
    x[4, :, :4] = 0.0
    x[5, :, :4] = 1.0
    x[6, :, :4] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)  # pure red: hue wraps at 0
    return x[:n]


def _copies(n: int) -> torch.Tensor:
    """n copies of one image (with an r == g patch)."""
    return _images()[1:2].expand(n, 3, 16, 16).contiguous()


def _tv_per_sample(name: str, x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    fn = getattr(TF, f"adjust_{name}")
    return torch.stack([fn(xi, fi.item()) for xi, fi in zip(x, factors, strict=True)])


@pytest.mark.parametrize(
    "ours,name",
    [
        (adjust_brightness, "brightness"),
        (adjust_contrast, "contrast"),
        (adjust_saturation, "saturation"),
    ],
)
def test_blend_ops_match_torchvision(ours, name):
    x = _images()
    factors = torch.tensor([0.0, 0.3, 0.6, 1.0, 1.2, 1.4, 1.8, 3.0])
    out = ours(x, factors)
    assert (out - _tv_per_sample(name, x, factors)).abs().max() < BLEND_TOL
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("shift", [0.1, -0.1, 0.25, -0.37, 0.5, -0.5, 0.05])
def test_hue_matches_torchvision(shift):
    x = _images()
    out = adjust_hue(x, torch.full((8,), shift))
    ref = torch.stack([TF.adjust_hue(xi, shift) for xi in x])
    assert (out - ref).abs().max() < HUE_TOL


def test_hue_per_sample_shifts_and_exact_identity_at_zero():
    x = _images()
    shifts = torch.tensor([0.1, 0.0, -0.2, 0.0, 0.3, 0.0, -0.45, 0.2])
    before = x.clone()
    out = adjust_hue(x, shifts)
    assert torch.equal(x, before)  # not in place by default
    assert torch.equal(out[shifts == 0], x[shifts == 0])
    assert (out - _tv_per_sample("hue", x, shifts)).abs().max() < HUE_TOL
    inplace = adjust_hue(x.clone(), shifts, inplace=True)
    assert torch.equal(inplace, out)


def test_grayscale_and_solarize_match_torchvision():
    x = _images()
    assert (rgb_to_grayscale(x) - TF.rgb_to_grayscale(x)).abs().max() < 1e-6
    assert torch.equal(solarize(x, 0.5), TF.solarize(x, 0.5))


def test_random_grayscale_per_sample():
    x = _images(64)
    out = random_grayscale(x, p=0.5, generator=_gen(1))
    gray = (out[:, 0] == out[:, 1]).all(dim=(1, 2)) & (out[:, 1] == out[:, 2]).all(dim=(1, 2))
    assert 15 < gray.sum() < 49  # about half, drawn per sample
    assert torch.equal(out[~gray], x[~gray])
    assert (out[gray][:, :1] - TF.rgb_to_grayscale(x[gray])).abs().max() < 1e-6
    assert torch.equal(random_grayscale(x, p=0.0), x)


def test_random_solarize_per_sample():
    x = _images(64)
    out = random_solarize(x, p=0.5, generator=_gen(2))
    hit = (out != x).flatten(1).any(dim=1)
    assert 15 < hit.sum() < 49
    assert torch.equal(out[hit], TF.solarize(x[hit], 0.5))


def _tv_jitter(x: torch.Tensor, params: JitterParams) -> torch.Tensor:
    """torchvision's ColorJitter semantics, replayed image by image with our draws."""
    outs = []
    for i, xi in enumerate(x):
        if params.apply[i]:
            for op in params.order[i].tolist():
                xi = getattr(TF, f"adjust_{_TV_NAMES[op]}")(xi, params.factors[i, op].item())
        outs.append(xi)
    return torch.stack(outs)


def test_jitter_equals_torchvision_in_each_samples_own_order():
    x = _copies(64)
    params = sample_jitter_params(64, 0.4, 0.4, 0.4, 0.1, p=0.8, generator=_gen(4))
    out = apply_color_jitter(x, params)
    assert (out - _tv_jitter(x, params)).abs().max() < HUE_TOL
    assert len({tuple(o) for o in params.order.tolist()}) >= 15  # orders vary per sample
    assert torch.equal(out[~params.apply], x[~params.apply])  # skipped samples: untouched
    flat = out[params.apply].flatten(1)
    assert (torch.cdist(flat, flat) > 1e-4).float().mean() > 0.95  # factors vary per sample


def test_jitter_order_matters_and_is_honoured():
    # Same factors, two orders: brightness x1.8 (clipping) then contrast x0.3, and the reverse.
    x = _copies(2)
    factors = torch.tensor([[1.8, 0.3, 1.0, 0.0]] * 2)
    order = torch.tensor(
        [[BRIGHTNESS, CONTRAST, SATURATION, HUE], [CONTRAST, BRIGHTNESS, HUE, SATURATION]]
    )
    params = JitterParams(factors, order, torch.ones(2, dtype=torch.bool))
    out = apply_color_jitter(x, params)
    assert (out[0] - out[1]).abs().max() > 0.05
    assert (out - _tv_jitter(x, params)).abs().max() < HUE_TOL


def test_jitter_hue_position_every_case():
    # Hue first, second, third, last: each with strong factors, compared with torchvision.
    x = _copies(4)
    factors = torch.tensor([[1.3, 0.6, 1.5, 0.2]] * 4)
    order = torch.tensor([[3, 0, 1, 2], [2, 3, 0, 1], [1, 0, 3, 2], [0, 2, 1, 3]])
    params = JitterParams(factors, order, torch.ones(4, dtype=torch.bool))
    out = apply_color_jitter(x, params)
    assert (out - _tv_jitter(x, params)).abs().max() < HUE_TOL


def test_color_jitter_seeds_ranges_and_input_untouched():
    x = _images(32)
    before = x.clone()
    a = color_jitter(x, generator=_gen(5))
    b = color_jitter(x, generator=_gen(5))
    c = color_jitter(x, generator=_gen(6))
    assert torch.equal(x, before)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(color_jitter(x, p=0.0), x)


def test_jitter_factor_ranges():
    params = sample_jitter_params(4096, 0.4, 0.3, (0.5, 0.9), 0.1, p=1.0, generator=_gen(7))
    f = params.factors
    for col, (lo, hi) in enumerate([(0.6, 1.4), (0.7, 1.3), (0.5, 0.9), (-0.1, 0.1)]):
        assert f[:, col].min() >= lo and f[:, col].max() <= hi
        assert f[:, col].min() < lo + 0.02 and f[:, col].max() > hi - 0.02
    assert torch.equal(params.order.sort(dim=1).values, torch.arange(4).expand(4096, 4))
