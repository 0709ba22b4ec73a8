"""Views of audio batches, made on the batch's device with per-sample random draws.

A raw batch is waveforms x (N, 1, S) float32; a clip shorter than S ends in NaN padding (NaN = not
part of the clip), so clip i's valid length L_i is one past its last non-NaN sample. Waveform
views keep that convention and the front end (`audio_frontend.LogMel`) reads NaN as silence:

  - `random_crop` / `centre_crop` cut a window of `length` samples out of [0, L_i); a clip shorter
    than the window lies inside it and the rest of the window is NaN (silence for the front end),
    so the later waveform ops still see where the clip is;
  - `gain` and `add_noise` act on the clip only (NaN stays NaN); the SNR is relative to the
    clip's own power, not to a window half made of padding;
  - `time_shift` moves samples inside [0, L_i) and keeps the padding at the end.

Spectrogram views take normalized log-mels (N, 1, M, F) float and keep their shape.

Every view is `fn(x, generator=None, **params) -> Tensor`; the generator must live on x's device.
`AudioViews` chains waveform views, the front end, the normalization and spectrogram views into
the engine's `views(x, generator) -> list[Tensor]` callable; `RECIPES` names one per paper, each
built from `(frontend, clip_samples, norm)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor

from selfsup.augment.audio_frontend import LogMel
from selfsup.augment.series_views import valid_lengths

Transform = Callable[..., Tensor]  # fn(x, generator=None) -> view; parameters bound by partial
Views = Callable[..., list[Tensor]]  # views(x, generator=None) -> list of views
Norm = tuple[float, float]  # (mean, std) of the training set's log-mel values
Gen = torch.Generator | None


def _uniform(x: Tensor, shape: tuple[int, ...], low: float, high: float, generator: Gen) -> Tensor:
    """U(low, high) draws of `shape` on x's device and dtype."""
    u = torch.rand(shape, device=x.device, dtype=x.dtype, generator=generator)
    return low + (high - low) * u


def _below(u: Tensor, n: Tensor) -> Tensor:
    """Integers uniform in [0, n) from u uniform in [0, 1) (n >= 1, long)."""
    return torch.minimum((u * n).long(), n - 1)


# --- waveform views: (N, 1, S) -> (N, 1, S') -------------------------------------------------


def _window(x: Tensor, start: Tensor, length: int) -> Tensor:
    """x[i, :, start_i : start_i + length] for every i: (N, 1, S) -> (N, 1, length).

    Positions before 0 or past S are NaN; those in [L_i, S) already are (padding).
    """
    n, c, s = x.shape
    idx = start[:, None] + torch.arange(length, device=x.device)  # (N, length)
    out = x.gather(2, idx.clamp(0, s - 1)[:, None].expand(n, c, length))
    return out.masked_fill(((idx < 0) | (idx >= s))[:, None], float("nan"))


def random_crop(
    x: Tensor, generator: torch.Generator | None = None, *, length: int, centre_short: bool = False
) -> Tensor:
    """A random window of `length` samples per clip: (N, 1, S) -> (N, 1, length).

    A clip longer than the window: the window lies inside [0, L_i), start uniform. A shorter clip
    lies inside the window at a uniform offset (centre_short: in the middle, BYOL-A's "zero
    padding to both ends", byol_a/dataset.py), NaN around it. The random crops of COLA (Saeed et
    al. 2021) and BYOL-A (Niizumi et al. 2021).
    """
    room = valid_lengths(x) - length  # > 0: positions to spare; < 0: window longer than clip
    u = torch.rand(x.shape[0], device=x.device, generator=generator)
    start = room.clamp(max=0) + _below(u, room.abs() + 1)
    if centre_short:
        start = torch.where(room < 0, _centred(room), start)
    return _window(x, start, length)


def _centred(room: Tensor) -> Tensor:
    """Start of a centred window; a clip shorter by k gets k // 2 padding before it (BYOL-A)."""
    return torch.div(room, 2, rounding_mode="trunc")


def centre_crop(x: Tensor, length: int) -> Tensor:
    """The middle `length` samples of each clip, or the clip in the middle of a NaN (silent)
    window when shorter: (N, 1, S) -> (N, 1, length). Deterministic; the evaluation crop."""
    return _window(x, _centred(valid_lengths(x) - length), length)


def gain(x: Tensor, generator: torch.Generator | None = None, max_db: float = 6.0) -> Tensor:
    """Multiply each clip by 10^(g / 20), g ~ U(-max_db, max_db) dB per clip (ours; the brief's
    +-6 dB). RMS changes by exactly g dB; NaN stays NaN. (N, 1, S) -> (N, 1, S).

    Draws: one torch.rand(N).
    """
    db = _uniform(x, (x.shape[0], 1, 1), -max_db, max_db, generator)
    return x * torch.pow(10.0, db / 20)


def clip_power(x: Tensor) -> Tensor:
    """Mean square over each clip's non-NaN samples: (N, 1, S) -> (N, 1, 1); 0 for an empty clip."""
    count = (~x.isnan()).sum(-1, keepdim=True).clamp_min(1)
    return x.square().nansum(-1, keepdim=True) / count


def add_noise(
    x: Tensor,
    generator: torch.Generator | None = None,
    snr_min: float = 10.0,
    snr_max: float = 30.0,
) -> Tensor:
    """Add white Gaussian noise at an SNR ~ U(snr_min, snr_max) dB per clip, relative to the
    clip's own power (`clip_power`): noise variance = P_i / 10^(snr_i / 10). Range ours (the
    brief's white noise; no paper default). A silent clip gets no noise; NaN stays NaN.
    (N, 1, S) -> (N, 1, S). Draws: torch.rand(N), then torch.randn(N, 1, S).
    """
    snr = _uniform(x, (x.shape[0], 1, 1), snr_min, snr_max, generator)
    sigma = torch.sqrt(clip_power(x) / torch.pow(10.0, snr / 10))
    noise = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
    return x + sigma * noise


def time_shift(
    x: Tensor,
    generator: torch.Generator | None = None,
    max_fraction: float = 0.5,
    circular: bool = True,
) -> Tensor:
    """Shift each clip by s ~ U(-max_fraction, max_fraction) * L_i samples (rounded), inside its
    valid part: circular (a roll of [0, L_i)) or zero-filled (the vacated samples are silence,
    0, and what moves past L_i is dropped). Padding stays NaN at the end. Ours (no paper
    default). (N, 1, S) -> (N, 1, S). Draws: one torch.rand(N).
    """
    n, c, s = x.shape
    lengths = valid_lengths(x)
    frac = _uniform(x, (n,), -max_fraction, max_fraction, generator)
    shift = torch.round(frac * lengths).long()
    pos = torch.arange(s, device=x.device)
    src = pos - shift[:, None]  # output sample t reads input sample t - shift
    if circular:
        src = torch.remainder(src, lengths.clamp_min(1)[:, None])
    moved = x.gather(2, src.clamp(0, s - 1)[:, None].expand(n, c, s))
    inside = ((src >= 0) & (src < lengths[:, None]))[:, None]
    moved = torch.where(inside, moved, 0.0)
    return moved.masked_fill((pos >= lengths[:, None])[:, None], float("nan"))


# --- spectrogram views: (N, 1, M, F) -> (N, 1, M, F) -----------------------------------------


def mixup_batch(
    x: Tensor,
    generator: torch.Generator | None = None,
    ratio: float = 0.4,
    log_mixup_exp: bool = True,
) -> Tensor:
    """BYOL-A's mixup (Niizumi et al. 2021; byol_a/augmentations.py `MixupBYOLA`):
    mix each log-mel with another clip of the batch, lambda_i ~ U(0, ratio) per clip:

        log-mixup-exp:  log((1 - lambda_i) exp(x_i) + lambda_i exp(x_j))
        plain (ablation): (1 - lambda_i) x_i + lambda_i x_j

    x is the normalized log-mel (BYOL-A mixes after its pre-normalization). Differences: the
    partner j != i is drawn from the batch, not from BYOL-A's FIFO of the last 2048 inputs, and
    logaddexp replaces their log(. + float eps), which is stable as it is (values differ by less
    than eps * exp(-x), ~2e-5 for x >= -5). A batch of one is returned unchanged.
    (N, 1, M, F) -> same. Draws: torch.rand(N), then torch.randint(1, N, (N,)).
    """
    n = x.shape[0]
    lam = ratio * torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype, generator=generator)
    if n == 1:
        return x.clone()
    offset = torch.randint(1, n, (n,), device=x.device, generator=generator)
    other = x[(torch.arange(n, device=x.device) + offset) % n]  # uniform over the others
    if not log_mixup_exp:
        return torch.lerp(x, other, lam)
    return torch.logaddexp(x + torch.log1p(-lam), other + torch.log(lam))


def rrc_boxes(
    n: int,
    in_size: tuple[int, int],
    canvas: tuple[int, int],
    freq_scale: tuple[float, float],
    time_scale: tuple[float, float],
    device: torch.device,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """BYOL-A's crop boxes (`RandomResizeCrop.get_params`), one per sample: (i, j, h, w), each
    (N,) long, in canvas pixels: h = clip(int(U(freq_scale) * M), 1, canvas_h), w likewise over
    time, i ~ U{0..canvas_h - h}, j ~ U{0..canvas_w - w}. Draws: torch.rand(4, N).
    """
    u = torch.rand(4, n, device=device, generator=generator)
    (m, f), (ch, cw) = in_size, canvas
    h = ((freq_scale[0] + (freq_scale[1] - freq_scale[0]) * u[0]) * m).long().clamp(1, ch)
    w = ((time_scale[0] + (time_scale[1] - time_scale[0]) * u[1]) * f).long().clamp(1, cw)
    return _below(u[2], ch - h + 1), _below(u[3], cw - w + 1), h, w


def _grid_axis(start: Tensor, size: Tensor, out: int, canvas: int) -> Tensor:
    """Normalized sample positions (N, out) of a box [start, start + size) resized to `out`
    pixels, align_corners=True as BYOL-A's F.interpolate: pixel r reads start + r (size-1)/(out-1).
    """
    step = (size - 1).to(torch.float32) / max(out - 1, 1)
    pos = start[:, None] + torch.arange(out, device=start.device) * step[:, None]
    return 2 * pos / max(canvas - 1, 1) - 1


def random_resized_crop_spec(
    x: Tensor,
    generator: torch.Generator | None = None,
    virtual_crop_scale: tuple[float, float] = (1.0, 1.5),
    freq_scale: tuple[float, float] = (0.6, 1.5),
    time_scale: tuple[float, float] = (0.6, 1.5),
    mode: str = "bicubic",
) -> Tensor:
    """BYOL-A's random resize crop (Niizumi et al. 2021; byol_a `RandomResizeCrop`, defaults
    as theirs): place the log-mel in the middle of a zero canvas virtual_crop_scale times its
    size (M x 1.5 F), crop a random box (`rrc_boxes`: 0.6-1.5 of M and of F, clipped to the
    canvas) and resize it back to (M, F), bicubic with align_corners=True.

    One grid_sample over the batch with a per-sample grid. Where their F.interpolate on the
    cut-out box repeats the box's edge pixels, the bicubic taps here read the canvas beyond the
    box (equal inside, at most the two outer rows/columns differ; bilinear is identical).
    (N, C, M, F) -> same.
    """
    n, _, m, f = x.shape
    ch, cw = int(m * virtual_crop_scale[0]), int(f * virtual_crop_scale[1])
    top, left = (ch - m) // 2, (cw - f) // 2
    canvas = F.pad(x, (left, cw - f - left, top, ch - m - top))  # zeros: the normalized mean
    i, j, h, w = rrc_boxes(n, (m, f), (ch, cw), freq_scale, time_scale, x.device, generator)
    rows, cols = _grid_axis(i, h, m, ch), _grid_axis(j, w, f, cw)  # (N, M), (N, F)
    grid = torch.stack(torch.broadcast_tensors(cols[:, None, :], rows[:, :, None]), -1)
    # border: the canvas edge repeats as in F.interpolate; zeros past the clip come from the pad
    grid = grid.to(x.dtype)
    return F.grid_sample(canvas, grid, mode=mode, padding_mode="border", align_corners=True)


def _band_masks(
    n: int, size: int, count: int, width: int, device: torch.device, generator: Gen
) -> Tensor:
    """(N, size) bool: the union of `count` bands per sample, each of width ~ U{0..width} and
    start ~ U{0..size - width_k} (Park et al. 2019). Draws: torch.rand(2, N, count)."""
    u = torch.rand(2, n, count, device=device, generator=generator)
    widths = _below(u[0], torch.tensor(min(width, size) + 1, device=device))
    starts = _below(u[1], size - widths + 1)
    pos = torch.arange(size, device=device)
    inside = (pos >= starts[..., None]) & (pos < (starts + widths)[..., None])  # (N, count, size)
    return inside.any(1)


def spec_augment(
    x: Tensor,
    generator: torch.Generator | None = None,
    freq_masks: int = 2,
    freq_width: int = 8,
    time_masks: int = 2,
    time_width: int = 10,
    value: float = 0.0,
) -> Tensor:
    """SpecAugment's masking (Park et al. 2019, Sec. 2), per sample: `freq_masks` bands of whole
    mel rows, each f ~ U{0..freq_width} wide, and `time_masks` bands of whole frames, each
    t ~ U{0..time_width} wide, set to `value` (0: the mean of a normalized log-mel, as theirs).
    Time warping is left out (not a major factor in their ablation). Their LibriSpeech policies
    (masks x width): LB 1 x 27 bands + 1 x 100 frames, LD 2 x 27 + 2 x 100, over 80 bands of
    utterances seconds long. (N, C, M, F) -> same. Draws: torch.rand(2, N, freq_masks), then
    torch.rand(2, N, time_masks).
    """
    n, _, m, f = x.shape
    rows = _band_masks(n, m, freq_masks, freq_width, x.device, generator)
    cols = _band_masks(n, f, time_masks, time_width, x.device, generator)
    return x.masked_fill(rows[:, None, :, None] | cols[:, None, None, :], value)


# --- composition and recipes -----------------------------------------------------------------


def _chain(transforms: Sequence[Transform], x: Tensor, generator: Gen) -> Tensor:
    for transform in transforms:
        x = transform(x, generator)
    return x


class AudioViews:
    """The engine's views callable for audio.

    __call__(x (N, 1, S), generator=None) -> [view_1, ..., view_V], each (N, 1, M, F): the
    `shared` waveform views once (BYOL-A's single segment), then per view its own waveform chain,
    the front end, (lms - mean) / std, and its spectrogram chain. Views with no waveform chain of
    their own share one front-end pass.
    """

    def __init__(
        self,
        frontend: LogMel,
        norm: Norm,
        wave: Sequence[Sequence[Transform]],
        spec: Sequence[Sequence[Transform]],
        shared: Sequence[Transform] = (),
    ) -> None:
        if not wave or len(wave) != len(spec):
            raise ValueError("AudioViews needs one waveform and one spectrogram chain per view")
        self.frontend, self.norm, self.shared = frontend, norm, list(shared)
        self.wave, self.spec = [list(c) for c in wave], [list(c) for c in spec]

    def logmel(self, x: Tensor) -> Tensor:
        """Normalized log-mel: (N, 1, S) -> (N, 1, M, F)."""
        return (self.frontend(x) - self.norm[0]) / self.norm[1]

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        x = _chain(self.shared, x, generator)
        common: Tensor | None = None
        views = []
        for wave, spec in zip(self.wave, self.spec, strict=True):
            if wave:
                lms = self.logmel(_chain(wave, x, generator))
            else:
                common = self.logmel(x) if common is None else common
                lms = common
            views.append(_chain(spec, lms, generator))
        return views

    def __len__(self) -> int:
        return len(self.wave)

    def __repr__(self) -> str:
        chains = f"shared={self.shared}, wave={self.wave}, spec={self.spec}"
        return f"AudioViews({self.frontend!r}, norm={self.norm}, {chains})"


class AudioEvalView:
    """The evaluation transform: `centre_crop` of clip_samples, front end, normalize.
    __call__(x (N, 1, S), generator=None) -> (N, 1, M, F); the generator is ignored."""

    def __init__(self, frontend: LogMel, clip_samples: int, norm: Norm) -> None:
        self.frontend, self.clip_samples, self.norm = frontend, clip_samples, norm

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        lms = self.frontend(centre_crop(x, self.clip_samples))
        return (lms - self.norm[0]) / self.norm[1]


def byol_views(
    frontend: LogMel, clip_samples: int, norm: Norm, mixup_ratio: float = 0.4
) -> AudioViews:
    """BYOL-A (Niizumi et al. 2021; train.py `AugmentationModule`): one random crop of
    clip_samples per clip (theirs: 0.95 s at 16 kHz -> 96 frames; short clips centred), its
    normalized log-mel, then per view mixup (log-mixup-exp, ratio 0.4) and random resize crop
    (virtual crop (1.0, 1.5), freq and time scale (0.6, 1.5)). Two views. Not here: their
    post-normalization of each augmented batch (`NormalizeBatch`), a per-batch standardization.
    """
    crop = partial(random_crop, length=clip_samples, centre_short=True)
    spec = [partial(mixup_batch, ratio=mixup_ratio), random_resized_crop_spec]
    return AudioViews(frontend, norm, wave=[[], []], spec=[spec, spec], shared=[crop])


def simclr_views(
    frontend: LogMel,
    clip_samples: int,
    norm: Norm,
    max_db: float = 6.0,
    snr: tuple[float, float] = (10.0, 30.0),
    mask_fraction: float = 0.2,
) -> AudioViews:
    """SimCLR for audio (ours): per view an independent random crop, gain (+-6 dB), white noise
    (SNR 10-30 dB), normalized log-mel, SpecAugment with 2 frequency and 2 time masks each at
    most mask_fraction of its axis (64 mels x 101 frames: <= 13 bands, <= 20 frames). Two views.
    """
    m, f = frontend.n_mels, frontend.frames(clip_samples)
    wave = [
        partial(random_crop, length=clip_samples),
        partial(gain, max_db=max_db),
        partial(add_noise, snr_min=snr[0], snr_max=snr[1]),
    ]
    spec = [
        partial(
            spec_augment,
            freq_width=max(1, round(mask_fraction * m)),
            time_width=max(1, round(mask_fraction * f)),
        )
    ]
    return AudioViews(frontend, norm, wave=[wave, wave], spec=[spec, spec])


def cola_views(frontend: LogMel, clip_samples: int, norm: Norm) -> AudioViews:
    """COLA (Saeed et al. 2021): two random segments of the same clip (1 s each in the
    paper; clip_samples here), their normalized log-mels, no other augmentation."""
    crop = [partial(random_crop, length=clip_samples)]
    return AudioViews(frontend, norm, wave=[crop, crop], spec=[[], []])


def mae_views(frontend: LogMel, clip_samples: int, norm: Norm) -> AudioViews:
    """MAE on spectrograms (He et al. 2022; Audio-MAE, Huang et al. 2022): one view, a random
    crop and its normalized log-mel; the masking happens inside the model."""
    return AudioViews(frontend, norm, wave=[[partial(random_crop, length=clip_samples)]], spec=[[]])


def eval_view(frontend: LogMel, clip_samples: int, norm: Norm) -> AudioEvalView:
    """The evaluation transform: centre crop (or centred in silence) of clip_samples, normalized
    log-mel: (N, 1, S) -> (N, 1, M, F)."""
    return AudioEvalView(frontend, clip_samples, norm)


RECIPES: dict[str, Callable[..., Views]] = {
    "byol_views": byol_views,
    "simclr_views": simclr_views,
    "cola_views": cola_views,
    "mae_views": mae_views,
}
