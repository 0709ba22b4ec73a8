"""Audio: the log-mel front end against a naive NumPy STFT and filterbank, the filterbank's shape,
each view's defining property (replaying its documented draws), NaN padding, and the recipes."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from selfsup.augment.audio_frontend import (
    LogMel,
    frontend_for,
    hz_to_mel,
    mel_edges,
    mel_filterbank,
    mel_to_hz,
)
from selfsup.augment.audio_views import (
    RECIPES,
    AudioViews,
    add_noise,
    centre_crop,
    clip_power,
    eval_view,
    gain,
    mixup_batch,
    random_crop,
    random_resized_crop_spec,
    rrc_boxes,
    spec_augment,
    time_shift,
)

NAN = float("nan")
NORM = (-5.0, 4.0)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _padded(x: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    """x (N, 1, S) with clip i's samples from lengths[i] on set to NaN (end padding)."""
    pad = torch.arange(x.shape[-1]) >= torch.as_tensor(lengths)[:, None]
    return x.masked_fill(pad[:, None], NAN)


def _ramp(n: int, s: int) -> torch.Tensor:
    """x[i, 0, t] = 100000 i + t: every sample names its clip and position."""
    return 100000 * torch.arange(n, dtype=torch.float32)[:, None, None] + torch.arange(s)


def _tone(freq: float, sample_rate: int, samples: int) -> torch.Tensor:
    t = torch.arange(samples, dtype=torch.float64) / sample_rate
    return torch.sin(2 * math.pi * freq * t).float()[None, None]


# --- the filterbank -----------------------------------------------------------------------------


def _naive_slaney_mel(hz: float) -> float:
    return hz / (200 / 3) if hz < 1000 else 15 + math.log(hz / 1000) * 27 / math.log(6.4)


def _naive_filterbank(sr: int, n_fft: int, n_mels: int, f_min: float, f_max: float) -> np.ndarray:
    """librosa.filters.mel's recipe written out with loops and Python floats."""
    lo, hi = _naive_slaney_mel(f_min), _naive_slaney_mel(f_max)
    mels = [lo + (hi - lo) * k / (n_mels + 1) for k in range(n_mels + 2)]
    edges = [
        m * 200 / 3 if m < 15 else 1000 * math.exp((m - 15) * math.log(6.4) / 27) for m in mels
    ]
    fb = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(n_mels):
        a, b, c = edges[m : m + 3]
        for k in range(n_fft // 2 + 1):
            f = k * sr / n_fft
            if a < f < c:
                fb[m, k] = (f - a) / (b - a) if f <= b else (c - f) / (c - b)
        fb[m] *= 2 / (c - a)
    return fb


def test_slaney_mel_scale():
    hz = torch.tensor([0.0, 200.0, 1000.0, 6400.0], dtype=torch.float64)
    assert hz_to_mel(hz).tolist() == pytest.approx([0.0, 3.0, 15.0, 42.0])
    assert mel_to_hz(hz_to_mel(hz)).tolist() == pytest.approx(hz.tolist())


@pytest.mark.parametrize(
    "sr,n_fft,n_mels,f_min,f_max", [(16000, 512, 64, 60, 7800), (8000, 256, 40, 60, 3900)]
)
def test_filterbank_equals_a_naive_loop(sr, n_fft, n_mels, f_min, f_max):
    fb = mel_filterbank(sr, n_fft, n_mels, f_min, f_max).numpy()
    np.testing.assert_allclose(fb, _naive_filterbank(sr, n_fft, n_mels, f_min, f_max), atol=1e-12)


def test_filterbank_triangles_peak_at_their_centres_inside_the_band():
    sr, n_fft, f_min, f_max = 16000, 8192, 100.0, 6000.0
    fb = mel_filterbank(sr, n_fft, 24, f_min, f_max)
    edges, freqs = mel_edges(24, f_min, f_max), torch.arange(n_fft // 2 + 1) * sr / n_fft
    assert edges[0].item() == pytest.approx(f_min) and edges[-1].item() == pytest.approx(f_max)
    for m, row in enumerate(fb):
        support = freqs[row > 0]
        assert edges[m] < support.min() and support.max() < edges[m + 2]  # zero outside
        assert freqs[row.argmax()].item() == pytest.approx(edges[m + 1].item(), abs=sr / n_fft)
    assert (fb.sum(0)[(freqs < f_min) | (freqs > f_max)] == 0).all()


def test_filterbank_rows_have_unit_area():
    """Slaney normalization: peak 2 / (upper - lower), so each triangle integrates to 1 over Hz;
    unnormalized, neighbouring triangles add up to 1 between the first and last centre."""
    sr, n_fft = 16000, 16384
    fb = mel_filterbank(sr, n_fft, 32, 60.0, 7800.0)
    edges, freqs = mel_edges(32, 60.0, 7800.0), torch.arange(n_fft // 2 + 1) * sr / n_fft
    widths = (edges[2:] - edges[:-2])[:, None]
    torch.testing.assert_close(
        fb.sum(1) * sr / n_fft, torch.ones(32, dtype=fb.dtype), atol=0.03, rtol=0
    )
    assert (fb.amax(1) <= (2 / widths[:, 0]) + 1e-12).all()
    inner = (freqs >= edges[1]) & (freqs <= edges[-2])
    cover = (fb * widths / 2).sum(0)[inner]
    torch.testing.assert_close(cover, torch.ones_like(cover))


def test_too_many_bands_for_the_fft_raises():
    with pytest.raises(ValueError, match="no FFT bin"):
        mel_filterbank(8000, 64, 64, 60, 3900)
    with pytest.raises(ValueError, match="f_max"):
        mel_filterbank(8000, 256, 40, 60, 5000)


# --- the front end ------------------------------------------------------------------------------


def test_frontend_for_defaults():
    fe16, fe8 = frontend_for(16000), frontend_for(8000)
    assert (fe16.n_fft, fe16.win_length, fe16.hop_length, fe16.n_mels) == (512, 400, 160, 64)
    assert (fe16.f_min, fe16.f_max) == (60.0, 7800.0)
    assert (fe8.n_fft, fe8.win_length, fe8.hop_length, fe8.n_mels) == (256, 200, 80, 40)
    assert fe8.f_max == 3900.0
    assert fe16(torch.zeros(2, 1, 16000)).shape == (2, 1, 64, fe16.frames(16000)) == (2, 1, 64, 101)
    assert list(fe16.parameters()) == [] and fe16.state_dict() == {}  # nothing to checkpoint


def _naive_logmel(x: np.ndarray, sr: int, n_fft: int, win: int, hop: int, n_mels: int, eps: float):
    """One clip (S,) -> (n_mels, F): reflect-padded frames, a periodic Hann window centred in
    n_fft, |rfft|^2, the naive filterbank, log(. + eps)."""
    padded = np.pad(x.astype(np.float64), n_fft // 2, mode="reflect")
    window = np.zeros(n_fft)
    left = (n_fft - win) // 2
    window[left : left + win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    frames = [padded[f * hop : f * hop + n_fft] for f in range(1 + len(x) // hop)]
    power = np.stack([np.abs(np.fft.rfft(fr * window)) ** 2 for fr in frames], 1)
    return np.log(_naive_filterbank(sr, n_fft, n_mels, 0.0, sr / 2) @ power + eps)


def test_frontend_equals_a_naive_numpy_stft_and_filterbank():
    fe = LogMel(sample_rate=1000, n_fft=32, hop_length=8, n_mels=6, win_length=24)
    x = torch.randn(3, 1, 100, generator=_gen())
    out = fe(x)
    assert out.shape == (3, 1, 6, 1 + 100 // 8)
    for i in range(3):
        ref = _naive_logmel(x[i, 0].numpy(), 1000, 32, 24, 8, 6, 1e-6)
        np.testing.assert_allclose(out[i, 0].numpy(), ref, atol=1e-4, rtol=0)


@pytest.mark.parametrize("sr", [8000, 16000])
def test_pure_tone_peaks_in_its_band(sr):
    fe = frontend_for(sr)
    edges = mel_edges(fe.n_mels, fe.f_min, fe.f_max)
    for band in (3, fe.n_mels // 2, fe.n_mels - 4):
        freq = edges[band + 1].item()  # the band's centre frequency
        lms = fe(_tone(freq, sr, sr // 2))[0, 0].mean(1)  # (M,) mean over frames
        assert lms.argmax().item() == band
        assert edges[band] < freq < edges[band + 2]


def test_silence_and_nan_padding():
    fe = frontend_for(8000)
    silent = fe(torch.stack([torch.zeros(1, 4000), torch.full((1, 4000), NAN)]))
    assert torch.equal(silent, torch.full_like(silent, math.log(1e-6)))
    clip = torch.randn(1, 1, 4000, generator=_gen())
    clip[..., 2500:] = 0.0
    padded = clip.clone()
    padded[..., 2500:] = NAN
    out = fe(padded)
    assert out.isfinite().all() and torch.equal(out, fe(clip))


def test_frontend_rejects_other_shapes():
    with pytest.raises(ValueError, match=r"\(N, 1, S\)"):
        frontend_for(8000)(torch.zeros(2, 8000))


# --- waveform views -----------------------------------------------------------------------------


def test_random_crop_stays_inside_the_valid_part():
    lengths = [300, 120, 50, 0]
    x = _padded(_ramp(4, 300), lengths).repeat(50, 1, 1)  # 50 draws of each clip
    out = random_crop(x, _gen(), length=100)
    assert out.shape == (200, 1, 100)
    for k, v in enumerate(out[:, 0]):
        i, n_valid = k % 4, lengths[k % 4]
        kept = v[~v.isnan()] - 100000 * i
        assert len(kept) == min(n_valid, 100)
        assert ((kept >= 0) & (kept < n_valid)).all()
        assert (kept.diff() == 1).all()  # one contiguous piece, in order
        if n_valid < 100:  # the whole clip, somewhere inside the window
            assert kept.tolist() == list(range(n_valid))
    starts = out[0::4, 0, 0].tolist()  # the long clip: start uniform in 0..200, per sample
    assert len(set(starts)) > 30 and min(starts) < 20 and max(starts) > 180
    offsets = (out[2::4, 0].isnan().cumprod(-1).sum(-1)).tolist()  # short clip: random offset
    assert len(set(offsets)) > 20 and max(offsets) <= 50


def test_centre_crop_and_byol_a_centring():
    x = _padded(_ramp(2, 20), [20, 7])
    out = centre_crop(x, 10)
    assert out[0, 0].tolist() == list(range(5, 15))
    assert out[1, 0, :1].isnan().all() and out[1, 0, 1:8].tolist() == list(range(100000, 100007))
    assert out[1, 0, 8:].isnan().all()  # 3 short: 1 before, 2 after (BYOL-A's half_adj)
    short = random_crop(x[1:].repeat(5, 1, 1), _gen(), length=10, centre_short=True)
    assert torch.equal(short.isnan(), out[1:].isnan().expand(5, 1, 10))


def test_gain_changes_rms_by_the_drawn_db():
    x = _padded(torch.randn(64, 1, 800, generator=_gen(1)), [800] * 32 + [400] * 32)
    out = gain(x, _gen(), max_db=6.0)
    drawn = -6 + 12 * torch.rand(64, generator=_gen())  # gain's one documented draw
    measured = 10 * torch.log10(clip_power(out) / clip_power(x)).flatten()
    torch.testing.assert_close(measured, drawn, atol=1e-4, rtol=0)
    assert measured.abs().max() <= 6 and measured.std() > 2  # per sample, spread over +-6 dB
    assert torch.equal(out.isnan(), x.isnan())


def test_noise_snr_is_the_drawn_one_relative_to_the_clip():
    lengths = [16000] * 15 + [8000]
    x = _padded(3 * torch.randn(16, 1, 16000, generator=_gen(1)), lengths)
    x[3] *= 0.01  # a quiet clip: SNR is relative to each clip's own power
    out = add_noise(x, _gen(), snr_min=5.0, snr_max=25.0)
    drawn = 5 + 20 * torch.rand(16, generator=_gen())
    measured = 10 * torch.log10(clip_power(x) / clip_power(out - x)).flatten()
    torch.testing.assert_close(measured, drawn, atol=0.3, rtol=0)
    assert torch.equal(out.isnan(), x.isnan())
    silent = add_noise(torch.zeros(2, 1, 100), _gen())
    assert torch.equal(silent, torch.zeros(2, 1, 100))


def test_time_shift_rolls_or_fills_inside_the_clip():
    x = _padded(_ramp(32, 50), [50, 30] * 16) + 1  # no zero values: 0 means filled
    rolled = time_shift(x, _gen(), max_fraction=0.5)
    filled = time_shift(x, _gen(), max_fraction=0.5, circular=False)
    assert torch.equal(rolled.isnan(), x.isnan()) and torch.equal(filled.isnan(), x.isnan())
    shifts = set()
    for i in range(32):
        n = 50 if i % 2 == 0 else 30
        valid, r, z = x[i, 0, :n], rolled[i, 0, :n], filled[i, 0, :n]
        s = (r == valid[0]).nonzero().item()  # where the first sample went
        shifts.add(s)
        assert torch.equal(r, valid.roll(s))
        kept = z != 0  # zero-filled: the same shift, vacated samples 0, the overflow dropped
        assert torch.equal(z[kept], valid.roll(s)[kept]) and (kept.sum() >= n - n // 2)
    assert len(shifts) > 5


# --- spectrogram views --------------------------------------------------------------------------


def test_mixup_is_log_mixup_exp_with_a_per_sample_ratio():
    x = torch.randn(40, 1, 8, 12, generator=_gen(1))
    out = mixup_batch(x, _gen(), ratio=0.4)
    g = _gen()  # replay: torch.rand(N), then torch.randint(1, N, (N,))
    lam = 0.4 * torch.rand(40, 1, 1, 1, generator=g)
    partner = (torch.arange(40) + torch.randint(1, 40, (40,), generator=g)) % 40
    assert (partner != torch.arange(40)).all() and lam.max() <= 0.4 and lam.std() > 0.05
    ref = torch.log(
        (1 - lam.double()) * x.double().exp() + lam.double() * x[partner].double().exp()
    )
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=0)
    plain = mixup_batch(x, _gen(), ratio=0.4, log_mixup_exp=False)
    torch.testing.assert_close(plain, (1 - lam) * x + lam * x[partner])
    assert torch.equal(mixup_batch(x[:1], _gen()), x[:1])


def _byol_a_rrc(lms: torch.Tensor, box: tuple[int, int, int, int], mode: str) -> torch.Tensor:
    """BYOL-A's RandomResizeCrop.forward for one (C, M, F) with its box given (their code)."""
    c, m, f = lms.shape
    canvas = torch.zeros(c, m, int(f * 1.5))
    left = (canvas.shape[-1] - f) // 2
    canvas[:, :, left : left + f] = lms
    i, j, h, w = box
    crop = canvas[:, i : i + h, j : j + w]
    return F.interpolate(crop[None], size=(m, f), mode=mode, align_corners=True)[0]


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
def test_rrc_equals_byol_a_per_sample(mode):
    x = torch.randn(16, 1, 32, 48, generator=_gen(1))
    out = random_resized_crop_spec(x, _gen(), mode=mode)
    boxes = torch.stack(rrc_boxes(16, (32, 48), (32, 72), (0.6, 1.5), (0.6, 1.5), x.device, _gen()))
    assert out.shape == x.shape
    inner = slice(None) if mode == "bilinear" else slice(2, -2)  # bicubic: edges differ (doc)
    for k in range(16):
        ref = _byol_a_rrc(x[k], tuple(boxes[:, k].tolist()), mode)
        torch.testing.assert_close(
            out[k][..., inner, inner], ref[..., inner, inner], atol=1e-4, rtol=0
        )


def test_rrc_boxes_follow_byol_a_ranges_and_differ_per_sample():
    i, j, h, w = rrc_boxes(
        4000, (64, 96), (64, 144), (0.6, 1.5), (0.6, 1.5), torch.device("cpu"), _gen()
    )
    assert h.min() == int(0.6 * 64) and h.max() == 64 and (i + h <= 64).all() and (i >= 0).all()
    assert w.min() == int(0.6 * 96) and w.max() == 143 and (j + w <= 144).all() and (j >= 0).all()
    out = random_resized_crop_spec(torch.randn(1, 1, 16, 24).expand(8, 1, 16, 24), _gen())
    assert out.shape == (8, 1, 16, 24)
    assert all(not torch.allclose(out[0], out[k]) for k in range(1, 8))


def _runs(mask: torch.Tensor) -> torch.Tensor:
    """Number of contiguous True runs along the last axis."""
    m = F.pad(mask.int(), (1, 0))
    return (m.diff(dim=-1) == 1).sum(-1)


def test_spec_augment_masks_whole_rows_and_columns_per_sample():
    x = torch.rand(64, 1, 20, 30, generator=_gen(1)) + 1  # no zeros before masking
    out = spec_augment(x, _gen(), freq_masks=2, freq_width=4, time_masks=2, time_width=5)
    masked = out == 0
    rows, cols = masked.all(3), masked.all(2)  # (N, 1, M), (N, 1, F): whole rows / columns
    assert torch.equal(masked, rows[..., None] | cols[..., None, :])
    assert (rows.sum(-1) <= 8).all() and (cols.sum(-1) <= 10).all()
    assert (_runs(rows) <= 2).all() and (_runs(cols) <= 2).all()  # bands: 2 contiguous masks each
    assert torch.equal(out[~masked], x[~masked])
    assert len({tuple(r.flatten().tolist()) for r in rows}) > 20  # per sample
    assert rows.any() and cols.any()


# --- recipes ------------------------------------------------------------------------------------


def _batch(n: int, sr: int, seconds: float, gen: int = 1) -> torch.Tensor:
    s = int(sr * seconds)
    lengths = torch.randint(s // 4, s + 1, (n,), generator=_gen(gen)).tolist()
    return _padded(torch.randn(n, 1, s, generator=_gen(gen)), lengths)


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_shapes_and_seeds(name):
    fe, clip = frontend_for(16000), 15200  # BYOL-A's 0.95 s -> 64 x 96
    views = RECIPES[name](fe, clip, NORM)
    x = _batch(6, 16000, 1.2)
    out = views(x, generator=_gen())
    assert len(out) == (1 if name == "mae_views" else 2) == len(views)
    for v in out:
        assert v.shape == (6, 1, 64, 96) and v.dtype == torch.float32 and v.isfinite().all()
    again = views(x, generator=_gen())
    other = views(x, generator=_gen(7))
    assert all(torch.equal(a, b) for a, b in zip(out, again, strict=True))
    assert not torch.equal(out[0], other[0])
    if len(out) == 2:
        assert not torch.equal(out[0], out[1])


def test_eval_view_is_the_normalized_centre_crop():
    fe = frontend_for(8000)
    x = _batch(5, 8000, 1.0)
    out = eval_view(fe, 6000, NORM)(x)
    assert out.shape == (5, 1, 40, fe.frames(6000))
    torch.testing.assert_close(out, (fe(centre_crop(x, 6000)) - NORM[0]) / NORM[1])
    assert torch.equal(out, eval_view(fe, 6000, NORM)(x, generator=_gen(3)))


def test_shared_waveform_views_run_once_for_all_views():
    fe, x = frontend_for(8000), _batch(4, 8000, 1.0)
    crop = partial(random_crop, length=4000)
    shared = AudioViews(fe, NORM, wave=[[], []], spec=[[], []], shared=[crop])(x, _gen())
    apart = AudioViews(fe, NORM, wave=[[crop], [crop]], spec=[[], []])(x, _gen())
    assert shared[0].shape == apart[0].shape == (4, 1, 40, fe.frames(4000))
    assert torch.equal(shared[0], shared[1]) and not torch.equal(apart[0], apart[1])


def test_a_512_clip_batch_in_one_call():
    fe = frontend_for(8000)
    x = _batch(512, 8000, 0.5)  # FSDD-like clips of 1 to 4000 samples
    for name in ("byol_views", "simclr_views"):
        out = RECIPES[name](fe, 3000, NORM)(x, generator=_gen())
        assert all(v.shape == (512, 1, 40, 38) and v.isfinite().all() for v in out)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_recipes_on_the_gpu_match_shapes():
    fe, x = frontend_for(16000), _batch(64, 16000, 1.0).cuda()
    g = torch.Generator(device="cuda").manual_seed(0)
    for name, recipe in RECIPES.items():
        for v in recipe(fe, 15200, NORM)(x, generator=g):
            assert v.device.type == "cuda" and v.shape == (64, 1, 64, 96), name
