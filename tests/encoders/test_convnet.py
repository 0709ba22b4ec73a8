"""convnet_small: resolution per layer, widths, in_chans."""

from __future__ import annotations

import pytest
import torch

from selfsup.encoders import create_encoder


@pytest.mark.parametrize(("size", "side"), [(8, 1), (16, 2), (28, 4), (32, 4)])
def test_feature_map_side(size: int, side: int) -> None:
    enc = create_encoder("convnet_small")
    with torch.no_grad():
        assert enc.forward_features(torch.randn(2, 3, size, size)).shape == (2, 256, side, side)


def test_width_and_in_chans() -> None:
    enc = create_encoder("convnet_small", width=8, in_chans=1)
    assert enc.num_features == 64
    widths = [layer[0].out_channels for layer in enc.layers]
    assert widths == [8, 16, 32, 64]
    assert enc(torch.randn(3, 1, 8, 8)).shape == (3, 64)
