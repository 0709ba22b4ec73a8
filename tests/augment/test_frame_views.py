"""DrQ's random shift and CURL's random crop of frame stacks, against a per-sample loop."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from selfsup.augment.frame_views import (
    center_crop,
    crop_at,
    random_crop,
    random_shift,
    sample_offsets,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _frames(n: int, c: int, h: int, w: int, dtype=torch.float64, seed: int = 0) -> torch.Tensor:
    g = _gen(seed)
    if dtype == torch.uint8:
        return torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)
    return torch.rand(n, c, h, w, generator=g, dtype=dtype)


def _naive_shift(frames: torch.Tensor, corners: torch.Tensor, pad: int) -> torch.Tensor:
    """Per sample: replicate-pad (nn.ReplicationPad2d) then slice H x W at the drawn corner."""
    _, _, h, w = frames.shape
    out = []
    for frame, (top, left) in zip(frames, corners.tolist(), strict=True):
        padded = F.pad(frame[None].double(), (pad, pad, pad, pad), mode="replicate")[0]
        out.append(padded[:, top : top + h, left : left + w])
    return torch.stack(out).to(frames.dtype)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32, torch.float64])
def test_shift_equals_pad_then_slice_at_the_drawn_offsets(dtype: torch.dtype) -> None:
    frames = _frames(6, 3, 84, 84, dtype)
    got = random_shift(frames, pad=4, generator=_gen(1))
    corners = sample_offsets(6, 8, 8, generator=_gen(1))  # the same draws, same seed
    assert got.shape == frames.shape and got.dtype == dtype
    assert torch.equal(got, _naive_shift(frames, corners, 4))
    assert torch.equal(got, crop_at(frames, corners - 4, (84, 84)))


def test_shift_on_a_rectangular_frame_and_a_large_pad() -> None:
    frames = _frames(5, 2, 7, 11)
    got = random_shift(frames, pad=5, generator=_gen(2))  # pad near the frame's height
    corners = sample_offsets(5, 10, 10, generator=_gen(2))
    assert torch.equal(got, _naive_shift(frames, corners, 5))


def test_every_channel_of_a_stack_gets_the_same_shift() -> None:
    """Channels = one image + c: after the shift channel c - channel 0 is still c everywhere
    (replicate padding adds c to the edge values too)."""
    base = _frames(16, 1, 20, 24)
    stack = base + torch.arange(4, dtype=torch.float64)[None, :, None, None]
    for out in (
        random_shift(stack, pad=4, generator=_gen(3)),
        random_crop(stack, 12, generator=_gen(3)),
    ):
        diff = out - out[:, :1]
        want = torch.arange(4, dtype=torch.float64)[None, :, None, None].expand_as(out)
        torch.testing.assert_close(diff, want, rtol=0, atol=1e-12)


def test_shifts_differ_across_samples() -> None:
    """One image repeated N times: the outputs differ, as do the drawn corners."""
    frames = _frames(1, 3, 30, 30).expand(32, -1, -1, -1)
    out = random_shift(frames, pad=4, generator=_gen(4))
    distinct = {tuple(o.flatten().tolist()) for o in out}
    assert len(distinct) > 16
    corners = sample_offsets(1000, 8, 8, generator=_gen(4))
    assert corners.min() == 0 and corners.max() == 8  # both ends of [0, 2 pad] reached
    assert len({tuple(c) for c in corners.tolist()}) == 81


def test_the_generator_makes_views_reproducible() -> None:
    frames = _frames(8, 3, 16, 16)
    assert torch.equal(
        random_shift(frames, generator=_gen(5)), random_shift(frames, generator=_gen(5))
    )
    assert not torch.equal(
        random_shift(frames, generator=_gen(5)), random_shift(frames, generator=_gen(6))
    )


def test_pad_zero_is_the_identity() -> None:
    frames = _frames(4, 3, 9, 9, torch.uint8)
    out = random_shift(frames, pad=0, generator=_gen())
    assert torch.equal(out, frames) and out.data_ptr() != frames.data_ptr()


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_crop_equals_a_per_sample_slice(dtype: torch.dtype) -> None:
    frames = _frames(6, 9, 100, 100, dtype)  # CURL: a 3-frame stack of RGB, 100 -> 84
    got = random_crop(frames, 84, generator=_gen(7))
    corners = sample_offsets(6, 16, 16, generator=_gen(7))
    want = torch.stack(
        [f[:, t : t + 84, s : s + 84] for f, (t, s) in zip(frames, corners.tolist(), strict=True)]
    )
    assert got.shape == (6, 9, 84, 84) and got.dtype == dtype
    assert torch.equal(got, want)


def test_crop_with_a_rectangular_size_reaches_every_corner() -> None:
    frames = _frames(2000, 1, 6, 9)
    got = random_crop(frames, (4, 5), generator=_gen(8))
    corners = sample_offsets(2000, 2, 4, generator=_gen(8))
    assert got.shape == (2000, 1, 4, 5)
    assert corners[:, 0].max() == 2 and corners[:, 1].max() == 4  # the last corner too
    want = torch.stack(
        [f[:, t : t + 4, s : s + 5] for f, (t, s) in zip(frames, corners.tolist(), strict=True)]
    )
    assert torch.equal(got, want)


def test_full_size_crop_is_the_identity() -> None:
    frames = _frames(3, 2, 8, 8)
    assert torch.equal(random_crop(frames, (8, 8), generator=_gen()), frames)


def test_center_crop_is_curls_eval_crop() -> None:
    frames = _frames(2, 3, 100, 101)
    assert torch.equal(center_crop(frames, 84), frames[:, :, 8:92, 8:92])


def test_crop_larger_than_the_frame_raises() -> None:
    frames = _frames(2, 3, 84, 84)
    with pytest.raises(ValueError, match=r"crop size \(100, 100\) must fit.*\(84, 84\)"):
        random_crop(frames, 100)
    with pytest.raises(ValueError, match=r"crop size \(84, 85\) must fit"):
        random_crop(frames, (84, 85))
    with pytest.raises(ValueError, match="must fit"):
        center_crop(frames, 85)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match=r"\(N, C, H, W\) frames, got shape \(3, 84, 84\)"):
        random_shift(_frames(1, 3, 84, 84)[0])
    with pytest.raises(ValueError, match="pad must be >= 0"):
        random_shift(_frames(1, 3, 8, 8), pad=-1)
    with pytest.raises(ValueError, match=r"offsets must be \(N, 2\) = \(2, 2\)"):
        crop_at(_frames(2, 1, 8, 8), torch.zeros(3, 2, dtype=torch.long), 4)
