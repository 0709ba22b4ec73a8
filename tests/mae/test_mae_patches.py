"""patchify / unpatchify: layout and round trip for any channel count."""

from __future__ import annotations

import pytest
import torch

from selfsup.encoders.patches import patchify, unpatchify


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("patch_size", [2, 4, 8])
def test_round_trip(channels, patch_size):
    imgs = torch.randn(3, channels, 32, 32)
    x = patchify(imgs, patch_size)
    assert x.shape == (3, (32 // patch_size) ** 2, patch_size**2 * channels)
    assert torch.equal(unpatchify(x, patch_size), imgs)


def test_non_square_grid_round_trip():
    imgs = torch.randn(2, 3, 16, 24)
    x = patchify(imgs, 4)
    assert x.shape == (2, 4 * 6, 48)
    assert torch.equal(unpatchify(x, 4, grid_size=(4, 6)), imgs)


def test_patch_layout_is_raster_order_rows_cols_channels():
    imgs = torch.arange(2 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4)
    x = patchify(imgs, 2)
    # Patch 1 is the top-right 2x2 block; values run (row, col, channel).
    top_right = imgs[0, :, 0:2, 2:4].permute(1, 2, 0).flatten()
    assert torch.equal(x[0, 1], top_right)


def test_bad_sizes_raise():
    with pytest.raises(ValueError, match="multiple of patch size"):
        patchify(torch.zeros(1, 3, 30, 32), 4)
    with pytest.raises(ValueError, match="cannot unpatchify"):
        unpatchify(torch.zeros(1, 10, 48), 4)
