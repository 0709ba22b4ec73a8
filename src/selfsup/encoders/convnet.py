"""A 4-layer conv net for tiny images (8x8 digits, 16x16, 28x28, 32x32) and quick CPU tests.

Four conv3x3-BN-ReLU layers of widths `width * (1, 2, 4, 8)` (32..256 by default); the first keeps
the resolution, the next three halve it, and a global average pool gives the representation.
Small enough that a CPU trains it in seconds; not from a paper, so its defaults are ours.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from selfsup.encoders.registry import register_encoder


def _conv_bn_relu(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    # No conv bias: the BN that follows subtracts it again.
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class ConvNet(nn.Module):
    """Conv3x3-BN-ReLU stack with stride-2 downsampling after the first layer.

    Args:
        widths: output channels per layer; layer 0 has stride 1, the others stride 2.
        in_chans: input channels.

    `num_features = widths[-1]`; the feature map is `H / 2**(len(widths) - 1)` on a side
    (rounded up: 8x8 -> 1x1, 32x32 -> 4x4).
    """

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), in_chans: int = 3) -> None:
        super().__init__()
        layers, in_ch = [], in_chans
        for i, out_ch in enumerate(widths):
            layers.append(_conv_bn_relu(in_ch, out_ch, stride=1 if i == 0 else 2))
            in_ch = out_ch
        self.layers = nn.Sequential(*layers)
        self.num_features: int = in_ch

    def forward_features(self, x: Tensor) -> Tensor:
        """`x: (N, in_chans, H, W)` -> `(N, num_features, ceil(H/8), ceil(W/8))`."""
        return self.layers(x)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (N, in_chans, H, W)` -> `(N, num_features)`, global average pooled."""
        return torch.mean(self.forward_features(x), dim=(2, 3))


@register_encoder
def convnet_small(in_chans: int = 3, width: int = 32) -> ConvNet:
    """4 layers of widths `width * (1, 2, 4, 8)`; `num_features = 8 * width` (256)."""
    return ConvNet(tuple(width * 2**i for i in range(4)), in_chans)
