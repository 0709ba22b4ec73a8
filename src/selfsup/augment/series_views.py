"""Views of time-series batches, made on the batch's device with per-sample random draws.

A batch is x (N, C, T) float. NaN marks missing values; a series shorter than T is padded at
the end with NaN in every channel (TS2Vec's convention), so sample i's *valid length* L_i is one
past its last step with any observed channel (`valid_lengths`). How each op treats NaN:

  - point-wise ops (jitter, scaling, jitter_scale, magnitude_warp, timestamp_masking,
    channel_dropout) keep every NaN a NaN: missing stays missing, the padding stays padding;
  - ops that move time (time_warp, permutation, random_crop) work inside [0, L_i) only and keep
    the padding at the end; a missing value moves with its timestamp (time_warp: an output step
    read from between a missing and an observed step is missing too);
  - TS2VecCrops draws its windows over the whole padded length T, as TS2Vec does; a window's
    steps past L_i are NaN.

Every transform is `fn(x (N, C, T), generator=None, **params) -> (N, C, T')`; the generator
must live on x's device. `SeriesViews` chains transforms into the engine's
`views(x, generator) -> list[Tensor]` callable and `RECIPES` names one per paper.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial

import torch
from torch import Tensor

Transform = Callable[..., Tensor]  # fn(x, generator=None) -> view; parameters bound by partial
Views = Callable[..., list[Tensor]]  # views(x, generator=None) -> list of views


def valid_lengths(x: Tensor) -> Tensor:
    """x: (N, C, T) -> (N,) long: one past each sample's last step with any observed channel."""
    observed = ~x.isnan().all(1)  # (N, T)
    steps = torch.arange(1, x.shape[-1] + 1, device=x.device)
    return (observed * steps).amax(1)


def _valid_steps(lengths: Tensor, t: int) -> Tensor:
    """(N,) lengths -> (N, T) bool, True before each sample's end padding."""
    return torch.arange(t, device=lengths.device) < lengths[:, None]


def _rand(x: Tensor, *shape: int, generator: torch.Generator | None) -> Tensor:
    return torch.rand(shape, device=x.device, dtype=x.dtype, generator=generator)


def _randn(x: Tensor, *shape: int, generator: torch.Generator | None) -> Tensor:
    return torch.randn(shape, device=x.device, dtype=x.dtype, generator=generator)


def _take(x: Tensor, start: Tensor, length: int) -> Tensor:
    """x[i, :, start_i : start_i + length] for every i: (N, C, T) -> (N, C, length).

    Positions outside [0, T) come out NaN (TS2Vec's pad-with-NaN convention).
    """
    n, c, t = x.shape
    idx = start[:, None] + torch.arange(length, device=x.device)  # (N, length)
    inside = (idx >= 0) & (idx < t)
    out = x.gather(2, idx.clamp(0, t - 1)[:, None].expand(n, c, length))
    return out.masked_fill(~inside[:, None], float("nan"))


# --- point-wise ops --------------------------------------------------------------------------


def jitter(x: Tensor, generator: torch.Generator | None = None, sigma: float = 0.05) -> Tensor:
    """Add N(0, sigma^2) noise to every value: (N, C, T) -> (N, C, T).

    Um et al. 2017 ("Data augmentation of wearable sensor data ...", ICMI), DA_Jitter:
    sigma 0.05. TS-TCC's strong view uses sigma 0.8 (HAR config, `jitter_ratio`).
    """
    return x + sigma * _randn(x, *x.shape, generator=generator)


def scaling(x: Tensor, generator: torch.Generator | None = None, sigma: float = 0.1) -> Tensor:
    """Multiply each sample's channel by its own factor ~ N(1, sigma^2), constant over time.

    Um et al. 2017, DA_Scaling: one factor per channel, sigma 0.1. (N, C, T) -> (N, C, T).
    """
    n, c, _ = x.shape
    return x * (1 + sigma * _randn(x, n, c, 1, generator=generator))


def jitter_scale(
    x: Tensor, generator: torch.Generator | None = None, sigma: float = 1.1, loc: float = 2.0
) -> Tensor:
    """TS-TCC's weak view (Eldele et al. 2021, Sec. 3.1 "jitter-and-scale"): multiply by a factor
    ~ N(loc, sigma^2) drawn per sample and per step, shared by the channels.

    Their code (dataloader/augmentations.py `scaling`, factor of shape (N, T), loc 2) is the
    jitter and the scale in one draw (the authors say so in TS-TCC issue #22); sigma is
    `jitter_scale_ratio`: 1.1 for HAR, 0.001 Epilepsy, 2 FD, 1.5 Sleep-EDF. (N, C, T) -> same.
    """
    n, _, t = x.shape
    return x * (loc + sigma * _randn(x, n, 1, t, generator=generator))


def timestamp_masking(
    x: Tensor, generator: torch.Generator | None = None, p: float = 0.5
) -> Tensor:
    """Set each time step (all channels) to 0 with probability p, per sample; NaN stays NaN.

    A view-level version of TS2Vec's timestamp masking (Yue et al. 2022, Sec. 3.2: a binomial
    mask with p 0.5 over time; they zero the *latent* vectors after the input projection, which
    a view cannot do, so here the observed input values are zeroed). (N, C, T) -> (N, C, T).
    """
    n, _, t = x.shape
    masked = _rand(x, n, 1, t, generator=generator) < p
    return x.masked_fill(masked & ~x.isnan(), 0.0)


def channel_dropout(x: Tensor, generator: torch.Generator | None = None, p: float = 0.2) -> Tensor:
    """Zero whole channels, each with probability p, per sample; NaN stays NaN.

    Ours (no paper default for p). The channel with a sample's largest draw is never dropped, so
    a view keeps some signal (a univariate series is returned as it is). (N, C, T) -> same.
    """
    n, c, _ = x.shape
    u = _rand(x, n, c, 1, generator=generator)
    drop = (u < p) & (u < u.amax(1, keepdim=True))
    return x.masked_fill(drop & ~x.isnan(), 0.0)


# --- smooth random curves (Um et al. 2017's GenerateRandomCurves) ---------------------------


@lru_cache(maxsize=8)
def _spline_basis(n_points: int) -> Tensor:
    """Cubic-spline coefficients (4, P-1, P) float64 through P points at 0, 1, ..., P-1.

    Entry [k, j, p] is the coefficient of (u - j)^(3-k) on interval j of the spline through the
    p-th unit vector; a spline through values y is linear in y, so one basis serves every curve.
    scipy's CubicSpline with its default not-a-knot ends, as in Um et al.'s code.
    """
    import numpy as np
    from scipy.interpolate import CubicSpline

    return torch.from_numpy(CubicSpline(np.arange(n_points), np.eye(n_points)).c.copy())


def random_curves(
    x: Tensor, channels: int, sigma: float, knots: int, generator: torch.Generator | None
) -> Tensor:
    """Smooth curves around 1: (N, channels, T), one per sample and channel.

    Um et al. 2017: a cubic spline through knots + 2 values ~ N(1, sigma^2) spread evenly over
    the series; here over each sample's valid length [0, L_i - 1] (flat past it).
    """
    n, _, t = x.shape
    n_points = knots + 2
    values = 1 + sigma * _randn(x, n, channels, n_points, generator=generator)
    basis = _spline_basis(n_points).to(x.device, x.dtype)
    coef = torch.einsum("kjp,ncp->nckj", basis, values)  # (N, channels, 4, P-1)
    span = (valid_lengths(x) - 1).clamp_min(1).to(x.dtype)
    u = torch.arange(t, device=x.device, dtype=x.dtype) * ((n_points - 1) / span[:, None])
    u = u.clamp(max=n_points - 1)  # knot units, (N, T)
    j = u.floor().clamp(max=n_points - 2)
    d = (u - j)[:, None]
    idx = j.long()[:, None].expand(n, channels, t)
    curve = torch.zeros(n, channels, t, device=x.device, dtype=x.dtype)
    for k in range(4):  # Horner over the 4 powers, not over samples
        curve = curve * d + coef[:, :, k].gather(2, idx)
    return curve


def magnitude_warp(
    x: Tensor, generator: torch.Generator | None = None, sigma: float = 0.2, knots: int = 4
) -> Tensor:
    """Multiply each channel by its own smooth random curve around 1 (Um et al. 2017,
    DA_MagWarp: sigma 0.2, 4 knots). The curve spans each sample's valid length; NaN stays NaN.
    (N, C, T) -> (N, C, T).
    """
    return x * random_curves(x, x.shape[1], sigma, knots, generator)


# --- ops that move time ----------------------------------------------------------------------


def _warped_times(speed: Tensor, lengths: Tensor) -> Tensor:
    """Where each input step lands: (N, T) speeds -> (N, T) increasing times.

    Um et al.'s DistortTimesteps: cumulative step sizes scaled so step 0 lands on 0 and the last
    valid step on L_i - 1 exactly; padding steps keep their own time (t), after L_i - 1.
    """
    t = speed.shape[1]
    grid = torch.arange(t, device=speed.device, dtype=speed.dtype).expand_as(speed)
    valid = _valid_steps(lengths, t)
    steps = torch.where(valid[:, 1:], speed[:, 1:], 1.0)
    times = torch.cat((torch.zeros_like(speed[:, :1]), steps.cumsum(1)), 1)
    last = (lengths - 1).clamp_min(0)[:, None]
    end = last.to(speed.dtype)
    times = torch.where(valid, times * (end / times.gather(1, last).clamp_min(1e-12)), grid)
    # Exactly L_i - 1: landing one ulp early would make the last step read the NaN padding.
    return times.scatter(1, last, end)


def _invert(times: Tensor) -> Tensor:
    """Input position read by each output step: the inverse of increasing `times` (N, T), by
    linear interpolation (np.interp in Um et al.); (N, T) fractional positions."""
    t = times.shape[1]
    grid = torch.arange(t, device=times.device, dtype=times.dtype).expand_as(times).contiguous()
    i = (torch.searchsorted(times.contiguous(), grid, right=True) - 1).clamp(0, t - 2)
    lo, hi = times.gather(1, i), times.gather(1, i + 1)
    return i + ((grid - lo) / (hi - lo)).clamp(0, 1)


def _read(x: Tensor, pos: Tensor) -> Tensor:
    """x (N, C, T) read at fractional positions pos (N, T') by linear interpolation.

    Whole positions read one value exactly, so a NaN neighbour spreads only to steps strictly
    between a missing and an observed value.
    """
    n, c, t = x.shape
    i0 = pos.floor().clamp(0, t - 2)
    w = (pos - i0)[:, None]
    i0 = i0.long()[:, None].expand(n, c, pos.shape[1])
    x0, x1 = x.gather(2, i0), x.gather(2, i0 + 1)
    return torch.where(w == 0, x0, torch.where(w == 1, x1, torch.lerp(x0, x1, w)))


def time_warp(
    x: Tensor,
    generator: torch.Generator | None = None,
    sigma: float = 0.2,
    knots: int = 4,
    min_speed: float = 0.05,
) -> Tensor:
    """Smoothly speed up and slow down time (Um et al. 2017, DA_TimeWarp: sigma 0.2, 4 knots).

    The step sizes are a random curve around 1; their running sum (scaled to end on L_i - 1) says
    where each input step lands, and each output step reads the input there (linear
    interpolation). Steps 0 and L_i - 1 stay where they are; the padding stays NaN.
    One warp per sample shared by all channels (Um et al. draw one per channel; channels of one
    recording share a clock). Speeds below min_speed (a knot 4.75 sigma low at sigma 0.2) are
    raised to it so time keeps moving forward. (N, C, T) -> (N, C, T).
    """
    if x.shape[-1] < 2:
        return x.clone()
    speed = random_curves(x, 1, sigma, knots, generator)[:, 0].clamp_min(min_speed)
    return _read(x, _invert(_warped_times(speed, valid_lengths(x))))


def _segment_starts(
    lengths: Tensor, cuts: Tensor, most: int, t: int, generator: torch.Generator | None
) -> Tensor:
    """(N, T) bool: cuts_i (<= most) distinct random steps in [1, L_i) that start a segment."""
    n = lengths.shape[0]
    noise = torch.rand(n, t - 1, device=lengths.device, generator=generator)
    noise = noise.masked_fill(~_valid_steps(lengths - 1, t - 1), 2.0)  # beyond L_i: never drawn
    most = min(most, t - 1)
    picks = noise.topk(most, dim=1, largest=False).indices  # (N, most) random distinct steps
    chosen = torch.arange(most, device=lengths.device) < cuts[:, None]
    starts = torch.zeros(n, t, dtype=torch.bool, device=lengths.device)
    return starts.scatter(1, picks + 1, chosen)


def permutation(
    x: Tensor, generator: torch.Generator | None = None, max_segments: int = 5
) -> Tensor:
    """Cut each series into k random segments and shuffle them (TS-TCC's strong view, Eldele et
    al. 2021; Um et al. 2017's DA_Permutation). (N, C, T) -> (N, C, T).

    As TS-TCC's `permutation` (seg_mode "random", default max_segments 5, HAR config 8): k is
    uniform in [1, max_segments) per sample, cut points distinct and uniform. Differences: cuts
    fall in [1, L_i) (no empty segment, padding stays at the end), and all channels move
    together (their code writes channel 0 into every channel: `ret[i] = pat[0, warp]`).
    """
    n, _, t = x.shape
    lengths = valid_lengths(x)
    most = max(max_segments, 2)
    k = torch.randint(1, most, (n,), device=x.device, generator=generator)
    k = torch.minimum(k, lengths.clamp_min(1))  # at most one segment per valid step
    segment = _segment_starts(lengths, k - 1, most - 2, t, generator).cumsum(1)  # (N, T) ids
    priority = torch.rand(n, most, device=x.device, generator=generator)
    key = priority.gather(1, segment).masked_fill(~_valid_steps(lengths, t), 2.0)
    order = key.sort(dim=1, stable=True).indices  # segments by priority, time order inside each
    return x.gather(2, order[:, None].expand_as(x))


def random_crop(x: Tensor, generator: torch.Generator | None = None, *, length: int) -> Tensor:
    """A random window of `length` steps per sample, inside its valid length: (N, C, T) ->
    (N, C, length). A series shorter than `length` starts at 0 and ends in NaN padding.

    The crop of CPC (van den Oord et al. 2018: fixed-length windows of each utterance) and of
    TS2Vec's long-series windows.
    """
    room = (valid_lengths(x) - length).clamp_min(0)
    start = (torch.rand(x.shape[0], device=x.device, generator=generator) * (room + 1)).long()
    return _take(x, torch.minimum(start, room), length)


# --- TS2Vec's contextual-consistency crops ---------------------------------------------------


def _below(u: float, n: int) -> int:
    """An integer uniform in [0, n) from u uniform in [0, 1)."""
    return min(int(u * n), n - 1)


@dataclass(frozen=True)
class TS2VecCrops:
    """TS2Vec's two overlapping crops (Yue et al. 2022, Sec. 3.2; ts2vec.py `TS2Vec.fit`).

    __call__(x (N, C, T), generator) -> [x1 (N, C, L1), x2 (N, C, L2), overlap]:

      - per batch (one draw, as their code): crop_l ~ U{2^(temporal_unit+1), ..., T};
        crop_left ~ U{0, ..., T - crop_l}; crop_right = crop_left + crop_l;
        crop_eleft ~ U{0, ..., crop_left}; crop_eright ~ U{crop_right, ..., T};
      - per sample: offset_i ~ U{-crop_eleft, ..., T - crop_eright};
      - x1 = x[i, :, offset_i + crop_eleft : offset_i + crop_right]  (L1 = crop_right - crop_eleft)
        x2 = x[i, :, offset_i + crop_left : offset_i + crop_eright]  (L2 = crop_eright - crop_left)
      - overlap: 0-d long tensor on the CPU = crop_l = crop_right - crop_left.

    Contract for the TS2Vec method: x1[..., L1 - overlap:] and x2[..., :overlap] are the same
    timestamps [offset_i + crop_left, offset_i + crop_right) of the same series. Encode each view
    whole (the context outside the overlap is what differs), then compare
    out1[:, -overlap:] with out2[:, :overlap] (their `out1[:, -crop_l:]`, `out2[:, :crop_l]`).
    The overlap lives on the CPU so `int(views[2])` costs no device sync (drawing the batch
    lengths costs one on an accelerator: they set the views' shapes). The offset bounds keep
    every window inside [0, T), so no step is out of range; windows run over the padded length T
    as theirs do, so a short series' crop may reach into (or lie wholly in) its NaN padding:
    the encoder must treat NaN steps as missing (TS2Vec zeroes them and centres short series
    first: `centerize_vary_length_series`). Views are (N, C, T); TS2Vec's encoder reads (N, T, C).
    Not done here: TS2Vec first splits series longer than max_train_length (3000) into sections
    and takes a random max_train_length window per batch; that belongs to the data layer.
    """

    temporal_unit: int = 0

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        n, _, t = x.shape
        crop_l, left, right, eleft, eright = self.extents(t, x.device, generator)
        offset = torch.randint(-eleft, t - eright + 1, (n,), device=x.device, generator=generator)
        x1 = _take(x, offset + eleft, right - eleft)
        x2 = _take(x, offset + left, eright - left)
        return [x1, x2, torch.tensor(crop_l)]

    def extents(
        self, t: int, device: torch.device, generator: torch.Generator | None = None
    ) -> tuple[int, int, int, int, int]:
        """The batch's (crop_l, crop_left, crop_right, crop_eleft, crop_eright), as ts2vec.py."""
        low = 2 ** (self.temporal_unit + 1)
        if t < low:
            raise ValueError(f"TS2Vec crops need T >= {low} (temporal_unit {self.temporal_unit})")
        u = torch.rand(4, device=device, generator=generator).tolist()  # one host sync
        crop_l = low + _below(u[0], t + 1 - low)
        left = _below(u[1], t - crop_l + 1)
        right = left + crop_l
        eleft = _below(u[2], left + 1)
        eright = right + _below(u[3], t + 1 - right)
        return crop_l, left, right, eleft, eright


# --- composition and recipes -----------------------------------------------------------------


class SeriesViews:
    """The engine's views callable for series: one chain of transforms per view.

    __call__(x (N, C, T), generator=None) -> [view_1, ..., view_V], each (N, C, T_v); every
    transform draws its own per-sample parameters.
    """

    def __init__(self, transforms_per_view: Sequence[Sequence[Transform]]) -> None:
        if not transforms_per_view:
            raise ValueError("SeriesViews needs at least one view")
        self.transforms_per_view = [list(chain) for chain in transforms_per_view]

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        views = []
        for chain in self.transforms_per_view:
            view = x
            for transform in chain:
                view = transform(view, generator)
            views.append(view)
        return views

    def __len__(self) -> int:
        return len(self.transforms_per_view)

    def __repr__(self) -> str:
        return f"SeriesViews({self.transforms_per_view!r})"


def ts2vec_views(length: int, temporal_unit: int = 0) -> TS2VecCrops:
    """TS2Vec (Yue et al. 2022): two overlapping crops per batch (`TS2VecCrops`); the timestamp
    masking happens inside their encoder, not in the views. `length` is not needed."""
    return TS2VecCrops(temporal_unit)


def tstcc_views(
    length: int,
    jitter_scale_ratio: float = 1.1,
    jitter_ratio: float = 0.8,
    max_seg: int = 8,
) -> SeriesViews:
    """TS-TCC (Eldele et al. 2021, Sec. 3.1; dataloader/augmentations.py `DataTransform`):
    weak = jitter-and-scale (`jitter_scale`, x * N(2, 1.1^2) per step), strong = permutation
    into up to max_seg - 1 segments, then jitter N(0, 0.8^2). Defaults: their HAR config
    (config_files/HAR_Configs.py); Sleep-EDF 1.5 / 2 / 12, Epilepsy 0.001 / 0.001 / 5, FD 2 / 0.1
    / 5. `length` is not needed: TS-TCC views keep the whole series.
    """
    weak = [partial(jitter_scale, sigma=jitter_scale_ratio)]
    strong = [partial(permutation, max_segments=max_seg), partial(jitter, sigma=jitter_ratio)]
    return SeriesViews([weak, strong])


def series_simclr_views(length: int, crop_fraction: float = 0.8) -> SeriesViews:
    """A generic two-view recipe for SimCLR / BYOL / ... on series (ours, not a paper's): per
    view a random crop of crop_fraction of the length, time warp, scaling, jitter, each with Um
    et al. 2017's defaults (sigma 0.2 / 4 knots, 0.1, 0.05). Views are (N, C, round(0.8 T))."""
    crop = max(2, round(crop_fraction * length))
    view = [partial(random_crop, length=crop), time_warp, scaling, jitter]
    return SeriesViews([view, view])


def cpc_views(length: int, crop_length: int | None = None) -> SeriesViews:
    """CPC (van den Oord et al. 2018): one view, the series itself (the model predicts its own
    future), or a random window of crop_length steps (their fixed-length audio windows)."""
    chain = [] if crop_length is None else [partial(random_crop, length=crop_length)]
    return SeriesViews([chain])


RECIPES: dict[str, Callable[[int], Views]] = {
    "ts2vec_views": ts2vec_views,
    "tstcc_views": tstcc_views,
    "series_simclr_views": series_simclr_views,
    "cpc_views": cpc_views,
}
