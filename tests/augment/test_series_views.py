"""Time-series views: shapes, per-sample draws, each transform's defining property, NaN padding,
TS2Vec's overlapping crops and the recipes."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from selfsup.augment.series_views import (
    RECIPES,
    SeriesViews,
    TS2VecCrops,
    channel_dropout,
    jitter,
    jitter_scale,
    magnitude_warp,
    permutation,
    random_crop,
    random_curves,
    scaling,
    time_warp,
    timestamp_masking,
    valid_lengths,
)

NAN = float("nan")

# Every transform that keeps the length T, with parameters that make its effect visible.
SAME_LENGTH = {
    "jitter": jitter,
    "scaling": scaling,
    "jitter_scale": jitter_scale,
    "magnitude_warp": magnitude_warp,
    "time_warp": time_warp,
    "permutation": permutation,
    "timestamp_masking": timestamp_masking,
    "channel_dropout": partial(channel_dropout, p=0.5),
}
ALL = {**SAME_LENGTH, "random_crop": partial(random_crop, length=24)}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _ramp(n: int, c: int, t: int) -> torch.Tensor:
    """x[i, ch, s] = 1000 i + 100 ch + s: every value names its sample, channel and step."""
    i = torch.arange(n, dtype=torch.float32)[:, None, None]
    ch = torch.arange(c, dtype=torch.float32)[None, :, None]
    return 1000 * i + 100 * ch + torch.arange(t, dtype=torch.float32)


def _padded(x: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """x with sample i's steps from lengths[i] on set to NaN (TS2Vec's end padding)."""
    pad = torch.arange(x.shape[-1]) >= torch.as_tensor(lengths)[:, None]  # (N, T)
    return x.masked_fill(pad[:, None], NAN)


def _smooth(x: torch.Tensor) -> torch.Tensor:
    """A smooth, positive multichannel signal (N, C, T)."""
    n, c, t = x.shape
    phase = torch.rand(n, c, 1, generator=_gen(9)) * 6.28
    return 2 + torch.sin(torch.linspace(0, 6.28, t) + phase)


# --- shapes, randomness, device ---------------------------------------------------------------


def test_valid_lengths_counts_to_the_last_observed_step():
    x = _padded(torch.randn(3, 2, 10), [10, 4, 0])
    x[0, :, 5] = NAN  # a missing step inside the series is not padding
    x[1, 0, 3] = NAN  # one channel missing at the last step still counts
    assert valid_lengths(x).tolist() == [10, 4, 0]


@pytest.mark.parametrize("name", ALL)
def test_shape_dtype_and_device(name):
    x = torch.randn(5, 3, 40)
    out = ALL[name](x, _gen())
    assert out.shape == (5, 3, 24 if name == "random_crop" else 40)
    assert out.dtype == torch.float32 and out.device == x.device


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_view_and_each_sample_its_own_draw(name):
    x = _smooth(torch.empty(1, 8, 64)).repeat(8, 1, 1)  # eight copies of one series
    a, b = ALL[name](x, _gen(3)), ALL[name](x, _gen(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)
    other = ALL[name](x, _gen(4))
    assert not torch.equal(a, other)  # the generator drives the draws
    # Equal inputs, different views: the parameters are drawn per sample, not per batch
    # (a permutation leaves a series as it is with probability 1/4, so not all 8 differ).
    assert len({tuple(a[i].flatten().tolist()) for i in range(8)}) >= 4


@pytest.mark.parametrize("name", ALL)
def test_a_large_batch_runs_in_one_vectorized_call(name):
    x = _padded(torch.randn(4096, 2, 64), [64] * 4095 + [20])
    out = ALL[name](x, _gen())
    assert out.shape[0] == 4096 and out[-1, :, 20:].isnan().all()


# --- NaN: missing stays missing, padding stays padding ------------------------------------------


@pytest.mark.parametrize("name", SAME_LENGTH)
def test_end_padding_stays_nan_and_valid_steps_stay_observed(name):
    lengths = [50, 31, 7, 50]
    x = _padded(_smooth(torch.empty(4, 3, 50)), lengths)
    out = SAME_LENGTH[name](x, _gen(1))
    for i, length in enumerate(lengths):
        assert out[i, :, length:].isnan().all()
        assert out[i, :, :length].isfinite().all()


@pytest.mark.parametrize(
    "name", ["jitter", "scaling", "jitter_scale", "magnitude_warp", "timestamp_masking"]
)
def test_pointwise_views_keep_missing_values_missing(name):
    x = torch.randn(4, 3, 30)
    x[torch.rand(x.shape, generator=_gen(2)) < 0.2] = NAN
    out = SAME_LENGTH[name](x, _gen(1))
    assert torch.equal(out.isnan(), x.isnan())


def test_channel_dropout_keeps_missing_values_missing():
    x = torch.randn(64, 4, 30)
    x[torch.rand(x.shape, generator=_gen(2)) < 0.2] = NAN
    out = channel_dropout(x, _gen(1), p=0.5)
    assert torch.equal(out.isnan(), x.isnan())
    assert (out == 0).any()  # and it did drop channels


def test_permutation_moves_missing_values_with_their_steps():
    x = _ramp(8, 2, 40)
    x[:, :, 13] = NAN
    out = permutation(x, _gen(0), max_segments=8)
    assert torch.equal(out.isnan().sum(-1), x.isnan().sum(-1))


# --- each transform's defining property -----------------------------------------------------------


def test_jitter_noise_has_the_requested_std():
    x = torch.randn(32, 2, 2000)
    noise = jitter(x, _gen(), sigma=0.3) - x
    per_sample = noise.flatten(1).std(1)
    assert (per_sample - 0.3).abs().max() < 0.02
    assert noise.mean().abs() < 0.01


def test_scaling_is_one_factor_per_sample_and_channel():
    x = torch.rand(256, 3, 50) + 0.5
    factor = scaling(x, _gen(), sigma=0.2) / x
    torch.testing.assert_close(factor, factor[..., :1].expand_as(factor))  # constant over time
    f = factor[..., 0]
    assert abs(f.mean() - 1) < 0.03 and abs(f.std() - 0.2) < 0.02
    assert (f[:, 0] != f[:, 1]).all()  # channels scaled independently


def test_jitter_scale_is_tstcc_per_step_factor_shared_by_channels():
    x = torch.ones(64, 3, 500)
    factor = jitter_scale(x, _gen())
    assert torch.equal(factor[:, 0], factor[:, 2])  # shared by the channels
    assert abs(factor.mean() - 2.0) < 0.03 and abs(factor.std() - 1.1) < 0.03


def _second_difference(x: torch.Tensor) -> torch.Tensor:
    return x.diff(dim=-1).diff(dim=-1).abs()


def test_magnitude_warp_is_a_smooth_curve_per_channel():
    x = torch.ones(64, 3, 200)
    curve = magnitude_warp(x, _gen(), sigma=0.2)
    assert _second_difference(curve).max() < 0.01  # jitter at 0.2 would give ~0.5
    assert curve.std(-1).mean() > 0.05  # but not a constant
    assert abs(curve.mean() - 1) < 0.05
    assert not torch.allclose(curve[:, 0], curve[:, 1])  # its own curve per channel


def test_random_curves_go_through_the_knot_values_over_the_valid_length():
    # With sigma 0 every knot is 1: the spline is the constant 1 on any valid length.
    x = _padded(torch.ones(2, 1, 30), [30, 11])
    torch.testing.assert_close(random_curves(x, 1, 0.0, 4, _gen()), torch.ones(2, 1, 30))
    # A curve stretched over L_i steps: the short sample's curve is its own, not a cut one.
    x = _padded(torch.ones(2, 1, 60), [60, 15])
    curve = random_curves(x, 1, 0.3, 4, _gen(5))
    assert _second_difference(curve[1, :, :15]).max() > _second_difference(curve[0]).max()


def test_time_warp_keeps_endpoints_is_monotone_and_smooth():
    lengths = [100, 100, 37]
    x = _padded(torch.arange(100.0).expand(3, 2, 100).clone(), lengths)
    x[:, 1] *= 3  # a second channel, 3x the first
    out = time_warp(x, _gen(), sigma=0.2)
    for i, length in enumerate(lengths):
        s = out[i, 0, :length]  # the input position each output step reads
        assert s[0] == 0 and s[-1] == length - 1  # endpoints stay
        assert (s.diff() > 0).all()  # time keeps moving forward
        assert _second_difference(s).max() < 0.1  # smoothly
        assert (s - torch.arange(length)).abs().max() > 0.5  # and it did warp
    torch.testing.assert_close(out[:, 1], 3 * out[:, 0], equal_nan=True)  # one warp for all


def test_time_warp_endpoints_are_exact_for_every_length():
    # Rounding in the rescaled time axis must not move the last valid step (reading past it
    # would read the NaN padding): many lengths, so a one-ulp slip would show.
    lengths = torch.randint(2, 200, (512,), generator=_gen(7))
    x = _padded(torch.arange(200.0).expand(512, 1, 200).clone(), lengths.tolist())
    out = time_warp(x, _gen(8))[:, 0]
    assert torch.equal(out.gather(1, (lengths - 1)[:, None])[:, 0], (lengths - 1).float())
    assert (out[:, 0] == 0).all() and out.isfinite().sum(1).eq(lengths).all()


def test_the_smoothness_bound_catches_a_permutation():
    # The smoothness bound above is meaningful: a permutation of the ramp breaks it.
    x = torch.arange(100.0).expand(8, 1, 100).clone()
    assert _second_difference(permutation(x, _gen(), max_segments=8)).max() > 0.1


def test_permutation_shuffles_whole_segments_of_all_channels():
    x = _ramp(64, 2, 60)
    out = permutation(x, _gen(), max_segments=5)
    assert torch.equal(out.sort(-1).values, x.sort(-1).values)  # same values per sample
    torch.testing.assert_close(out[:, 1] - out[:, 0], torch.full((64, 60), 100.0))  # in step
    jumps = (out[:, 0].diff() != 1).sum(1)
    assert jumps.max() <= 3  # at most 4 segments (k < max_segments): at most 3 joins
    assert (jumps > 0).float().mean() > 0.5  # most samples were permuted
    assert (jumps == 0).any()  # k = 1 leaves a series as it is


def test_permutation_keeps_padding_at_the_end():
    x = _padded(_ramp(16, 1, 40), [40] * 8 + [12] * 8)
    out = permutation(x, _gen(), max_segments=8)
    assert out[8:, :, 12:].isnan().all()
    assert torch.equal(out[8:, :, :12].sort(-1).values, x[8:, :, :12])


def test_timestamp_masking_zeroes_whole_steps_at_rate_p():
    x = torch.rand(128, 3, 200) + 1
    out = timestamp_masking(x, _gen(), p=0.3)
    zero = out == 0
    assert torch.equal(zero[:, 0], zero[:, 2])  # all channels of a step
    assert abs(zero.float().mean() - 0.3) < 0.02
    assert torch.equal(out[~zero], x[~zero])


def test_channel_dropout_zeroes_whole_channels_and_keeps_one():
    x = torch.rand(2000, 8, 20) + 1
    out = channel_dropout(x, _gen(), p=0.3)
    dropped = (out == 0).all(-1)
    assert torch.equal((out == 0).any(-1), dropped)  # whole channels
    assert abs(dropped.float().mean() - 0.3) < 0.02
    assert not channel_dropout(x, _gen(), p=1.0).eq(0).all(-1).all(-1).any()  # one survives
    single = torch.rand(50, 1, 20)
    assert torch.equal(channel_dropout(single, _gen(), p=1.0), single)


def test_random_crop_is_a_window_inside_the_valid_length():
    lengths = [80] * 32 + [40] * 32 + [10] * 4
    x = _padded(_ramp(68, 2, 80), lengths)
    out = random_crop(x, _gen(), length=30)
    start = out[:, 0, 0] - 1000 * torch.arange(68)
    torch.testing.assert_close(out[:64], x[:64, :, :30] + start[:64, None, None])  # contiguous
    assert (start[:32] <= 50).all() and (start[32:64] <= 10).all()
    assert len(set(start[:32].tolist())) > 10  # a start per sample
    assert (start[64:] == 0).all() and out[64:, :, 10:].isnan().all()  # short: padded with NaN


def test_random_crop_longer_than_the_batch_pads_with_nan():
    out = random_crop(torch.randn(3, 2, 10), _gen(), length=16)
    assert out[..., :10].isfinite().all() and out[..., 10:].isnan().all()


# --- TS2Vec's crops ---


def test_ts2vec_overlap_is_the_same_timestamps():
    x = _ramp(32, 3, 50)
    crops = TS2VecCrops()
    for seed in range(40):
        x1, x2, overlap = crops(x, _gen(seed))
        assert overlap.dtype == torch.long and overlap.dim() == 0
        o = int(overlap)
        assert 2 <= o <= min(x1.shape[-1], x2.shape[-1])
        assert torch.equal(x1[..., x1.shape[-1] - o :], x2[..., :o])
        assert x1.isfinite().all() and x2.isfinite().all()  # windows stay inside [0, T)
        steps = x1[:, 0] - 1000 * torch.arange(32)[:, None]
        assert (steps.diff() == 1).all()  # contiguous


def test_ts2vec_extents_follow_their_code():
    crops = TS2VecCrops(temporal_unit=1)
    seen = set()
    for seed in range(200):
        crop_l, left, right, eleft, eright = crops.extents(20, torch.device("cpu"), _gen(seed))
        assert 4 <= crop_l <= 20 and right == left + crop_l
        assert 0 <= eleft <= left and right <= eright <= 20
        seen.add(crop_l)
    assert {4, 20} <= seen  # both ends of U{2^(unit+1), ..., T} are drawn
    with pytest.raises(ValueError, match="T >= 4"):
        crops(torch.randn(2, 1, 3), _gen())


def test_ts2vec_offsets_are_drawn_per_sample():
    x = torch.arange(60.0).expand(64, 1, 60).contiguous()  # the same series 64 times
    for seed in range(5):
        x1, x2, overlap = TS2VecCrops()(x, _gen(seed))
        if x2.shape[-1] < 60:  # room to move: the samples take different windows
            assert len(set(x2[:, 0, 0].tolist())) > 3
        again = TS2VecCrops()(x, _gen(seed))
        assert torch.equal(again[0], x1) and torch.equal(again[1], x2) and again[2] == overlap


def test_ts2vec_crops_of_padding_are_nan():
    lengths = [50] * 8 + [20] * 24
    x = _padded(_ramp(32, 1, 50), lengths)
    step = _ramp(32, 1, 50) - 1000 * torch.arange(32.0)[:, None, None]
    for seed in range(20):
        x1 = TS2VecCrops()(x, _gen(seed))[0]
        t1 = TS2VecCrops()(step, _gen(seed))[0]  # the timestamps x1 holds
        assert torch.equal(x1.isnan(), t1 >= torch.tensor(lengths)[:, None, None])


# --- composition and recipes ---


def test_series_views_chains_in_order_per_view():
    def add(v):
        return lambda x, generator=None: x + v

    def double(x, generator=None):
        return 2 * x

    views = SeriesViews([[add(1), double], [double, add(1)], []])
    x = torch.ones(2, 1, 3)
    a, b, c = views(x, _gen())
    assert (a == 4).all() and (b == 3).all() and c is x
    with pytest.raises(ValueError):
        SeriesViews([])


@pytest.mark.parametrize("name", RECIPES)
def test_recipes_make_their_views(name):
    x = _padded(torch.randn(16, 3, 64), [64] * 12 + [30] * 4)
    views = RECIPES[name](64)(x, _gen())
    shapes = {
        "ts2vec_views": None,
        "tstcc_views": [(16, 3, 64)] * 2,
        "series_simclr_views": [(16, 3, 51)] * 2,
        "cpc_views": [(16, 3, 64)],
    }[name]
    if shapes is None:
        assert len(views) == 3 and views[2].dim() == 0
    else:
        assert [tuple(v.shape) for v in views] == shapes
        assert all(v.dtype == torch.float32 for v in views)


def test_tstcc_views_are_weak_and_strong():
    x = _ramp(32, 2, 60)
    weak, strong = RECIPES["tstcc_views"](60)(x, _gen())
    ratio = weak / x.clamp_min(1)
    torch.testing.assert_close(ratio[:, 0, 1:], ratio[:, 1, 1:])  # one factor per step
    # strong: permuted then jittered with sigma 0.8, so sorted values stay within a few sigma
    assert (strong.sort(-1).values - x.sort(-1).values).abs().mean() < 1.5


def test_cpc_views_are_the_series_or_a_crop():
    x = torch.randn(4, 2, 40)
    assert RECIPES["cpc_views"](40)(x, _gen())[0] is x
    (crop,) = RECIPES["cpc_views"](40, crop_length=16)(x, _gen())
    assert crop.shape == (4, 2, 16)
