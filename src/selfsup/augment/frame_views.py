"""Random shifts and crops of stacked agent frames, batched on the batch's device.

Frames are (N, C, H, W) with C a frame stack (or stack x colour channels), uint8 or float; the
output keeps the dtype. One window per sample, shared by all its C channels, so a stack stays
aligned (the frames of one observation move together); windows are independent across samples.
Every op is one index gather (no per-sample loop), and `generator` must live on the frames'
device.

  - `random_shift`: DrQ (Kostrikov, Yarats & Fergus 2021, "Image Augmentation Is All You Need",
    arXiv:2004.13649): replicate-pad `pad` (4 for 84 x 84) pixels on each side, then a random
    crop back to H x W, i.e. a shift by up to +-pad pixels with the edge pixels repeated.
  - `random_crop`: CURL (Laskin, Srinivas & Abbeel 2020, "CURL: Contrastive Unsupervised
    Representations for Reinforcement Learning", arXiv:2004.04136): render 100 x 100, crop
    84 x 84; `center_crop` is their evaluation-time crop.

`sample_offsets` draws the windows and `crop_at` applies them, so a caller (or a test) can draw
offsets from a seeded generator and reproduce a view exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _check_frames(frames: Tensor) -> tuple[int, int, int, int]:
    if frames.dim() != 4:
        raise ValueError(f"expected (N, C, H, W) frames, got shape {tuple(frames.shape)}")
    n, c, h, w = frames.shape
    return n, c, h, w


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def sample_offsets(
    n: int,
    max_top: int,
    max_left: int,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One window corner per sample: (n, 2) long [top, left], uniform integers in
    [0, max_top] x [0, max_left] (both ends included), drawn top first then left."""
    top = torch.randint(0, max_top + 1, (n,), device=device, generator=generator)
    left = torch.randint(0, max_left + 1, (n,), device=device, generator=generator)
    return torch.stack((top, left), dim=1)


def crop_at(frames: Tensor, offsets: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Sample i's (h, w) window whose top-left corner is offsets[i] = (top, left).

    frames: (N, C, H, W); offsets: (N, 2) long, may be negative or run past the frame: pixels
    outside it repeat the nearest edge pixel, the same as `nn.ReplicationPad2d` then a crop
    (clamping the indices is replicate padding, without materialising the padded batch).
    Returns (N, C, h, w), frames' dtype; all C channels of a sample share its window.
    """
    n, c, height, width = _check_frames(frames)
    h, w = _pair(size)
    if offsets.shape != (n, 2):
        raise ValueError(f"offsets must be (N, 2) = ({n}, 2), got {tuple(offsets.shape)}")
    offsets = offsets.to(device=frames.device, dtype=torch.long)
    rows = (offsets[:, :1] + torch.arange(h, device=frames.device)).clamp(0, height - 1)
    cols = (offsets[:, 1:] + torch.arange(w, device=frames.device)).clamp(0, width - 1)
    index = (rows[:, :, None] * width + cols[:, None, :]).flatten(1)  # (N, h * w) flat pixels
    # One gather over the flattened pixels; the index is expanded (not copied) over channels,
    # which is what keeps a stack aligned. gather works for uint8 too, unlike F.pad's replicate.
    out = frames.flatten(2).gather(2, index[:, None].expand(n, c, h * w))
    return out.view(n, c, h, w)


def random_shift(frames: Tensor, pad: int = 4, generator: torch.Generator | None = None) -> Tensor:
    """DrQ's random shift: (N, C, H, W) -> (N, C, H, W), same dtype.

    Replicate-pad `pad` pixels on each side and crop H x W at a uniform integer corner in
    [0, 2 pad]^2 per sample (DrQ: pad 4 for 84 x 84 frames, +-4 pixels; their code is
    `nn.ReplicationPad2d(4)` then kornia's `RandomCrop((84, 84))`). The corner drawn is
    `sample_offsets(N, 2 pad, 2 pad, device, generator)`; this equals
    `crop_at(frames, corner - pad, (H, W))`. pad 0 returns a copy of the frames.
    Only the integer shift: DrQ-v2's `RandomShiftsAug` (grid_sample, bilinear) samples its
    grid at pixel centres shifted by whole pixels, so it is this shift up to float rounding.
    """
    n, _, h, w = _check_frames(frames)
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    corner = sample_offsets(n, 2 * pad, 2 * pad, frames.device, generator)
    return crop_at(frames, corner - pad, (h, w))


def random_crop(
    frames: Tensor, size: int | tuple[int, int] = 84, generator: torch.Generator | None = None
) -> Tensor:
    """CURL's random crop: (N, C, H, W) -> (N, C, h, w), same dtype, one window per sample.

    The corner is uniform over every window inside the frame, [0, H - h] x [0, W - w]
    (`sample_offsets(N, H - h, W - w, device, generator)`). CURL: 100 x 100 renders cropped to
    84 x 84. Their `utils.random_crop` draws `np.random.randint(0, 100 - 84, n)`, which never
    picks the last corner (16); here it can.
    """
    n, _, height, width = _check_frames(frames)
    h, w = _pair(size)
    if not (0 < h <= height and 0 < w <= width):
        raise ValueError(f"crop size {(h, w)} must fit in the frames' {(height, width)}")
    corner = sample_offsets(n, height - h, width - w, frames.device, generator)
    return crop_at(frames, corner, (h, w))


def center_crop(frames: Tensor, size: int | tuple[int, int] = 84) -> Tensor:
    """The centred (h, w) window of every frame, (N, C, H, W) -> (N, C, h, w): CURL's
    evaluation-time crop (`center_crop_image`: top = (H - h) // 2, left = (W - w) // 2). A view
    of the frames, not a copy."""
    n, _, height, width = _check_frames(frames)
    h, w = _pair(size)
    if not (0 < h <= height and 0 < w <= width):
        raise ValueError(f"crop size {(h, w)} must fit in the frames' {(height, width)}")
    top, left = (height - h) // 2, (width - w) // 2
    return frames[:, :, top : top + h, left : left + w]


class FrameRecipe:
    """The views of an agent method: which two observations make a pair, and how each is
    augmented. Called on the pairs the data layer gathered:

        pairs (N, 2, C, H, W) uint8 (observation t, observation t + offset)
            -> [view_a, view_b], each (N, C, H, W) float in [0, 1]

    offset: steps between the pair's observations in one episode (0: the same one twice).
    pad: random shift of each view (`random_shift`), 0 for none; shift_prob: the share of
    samples shifted (per sample, the others are left as they are).
    """

    def __init__(self, offset: int, pad: int = 0, shift_prob: float = 1.0) -> None:
        self.offset, self.pad, self.shift_prob = offset, pad, shift_prob

    def _view(self, frames: Tensor, generator: torch.Generator | None) -> Tensor:
        x = frames.float() / 255.0  # (N, C, H, W) in [0, 1], as the Atari encoders read them
        if not self.pad:
            return x
        shifted = random_shift(x, self.pad, generator)
        if self.shift_prob >= 1.0:
            return shifted
        drawn = torch.rand(len(x), device=x.device, generator=generator)
        return torch.where((drawn < self.shift_prob)[:, None, None, None], shifted, x)

    def __call__(self, pairs: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        if pairs.dim() != 5 or pairs.shape[1] != 2:
            raise ValueError(f"expected pairs (N, 2, C, H, W), got {tuple(pairs.shape)}")
        return [self._view(pairs[:, 0], generator), self._view(pairs[:, 1], generator)]

    def __repr__(self) -> str:
        return f"FrameRecipe(offset={self.offset}, pad={self.pad}, shift_prob={self.shift_prob})"


# Agent recipes by the registered recipe name of each method (`register_method(views=...)`).
RECIPES: dict[str, FrameRecipe] = {
    # CURL: two crops of one observation. Frames here are collected at their final size
    # (84 x 84), so CURL's 100 -> 84 crop becomes DrQ's +-4 pixel shift, the same kind of
    # translation (Kostrikov et al. 2021 report the two on par, their Table 3 / Fig. 5).
    "curl_views": FrameRecipe(offset=0, pad=4),
    # ATC on Atari (rlpyt atari_ats.py): delta_T = 3, random_shift_pad 4, random_shift_prob 0.1.
    "atc_views": FrameRecipe(offset=3, pad=4, shift_prob=0.1),
    # ST-DIM: consecutive frames, no augmentation (atariari/methods/stdim.py).
    "stdim_views": FrameRecipe(offset=1),
    # The image methods on observations: two shifts of one observation (DrQ's augmentation).
    "simclr_views": FrameRecipe(offset=0, pad=4),
    "byol_views": FrameRecipe(offset=0, pad=4),
    "moco_v2_views": FrameRecipe(offset=0, pad=4),
}
