"""The encoder of the AtariARI benchmark (Anand et al. 2019, "Unsupervised State Representation
Learning in Atari", arXiv:1906.08226): the DQN "Nature" CNN (Mnih et al. 2015) with a 256-d
linear output, on frames scaled to [0, 1].

Two layouts, as the benchmark's `NatureCNN` (atariari/methods/encoders.py):
- 84 x 84 frames (the DQN preprocessing; the benchmark's `downsample`): conv 32x8x8/4, 64x4x4/2,
  32x3x3/1, each with ReLU, then Linear(32*7*7, 256). ST-DIM's local feature map is the last
  conv's (32, 7, 7).
- full 210 x 160 frames (`full_resolution=True`, the benchmark's default): conv 32x8x8/4,
  64x4x4/2, 128x4x4/2, 64x3x3/1, then Linear(64*9*6, 256); the local map is the third conv's
  (128, 11, 8), the last conv belonging to the global head.
Weights: orthogonal with ReLU gain, zero biases, as the benchmark initializes them.
"""

from __future__ import annotations

import torch
from torch import nn

from selfsup.encoders.registry import register_encoder

AGENT_ENCODERS = ("nature_cnn",)  # encoders of agents' frame stacks (their own tests)


def _conv(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride)
    nn.init.orthogonal_(conv.weight, gain=nn.init.calculate_gain("relu"))
    nn.init.zeros_(conv.bias)
    return nn.Sequential(conv, nn.ReLU())


def _out_size(size: int, layers: list[tuple[int, int]]) -> int:
    for kernel, stride in layers:
        size = (size - kernel) // stride + 1
    return size


class NatureCNN(nn.Module):
    """(N, in_chans, H, W) float frames in [0, 1] -> (N, feature_size).

    `forward_features(x)` -> (N, C_m, h, w): the local feature map ST-DIM contrasts;
    `forward_head(fmap)` -> (N, feature_size): the global feature from that map, so one pass
    serves both (forward = forward_head . forward_features).
    """

    def __init__(
        self, in_chans: int, frame_size: tuple[int, int], feature_size: int, full_resolution: bool
    ) -> None:
        super().__init__()
        if full_resolution:
            local = [(in_chans, 32, 8, 4), (32, 64, 4, 2), (64, 128, 4, 2)]
            top = [(128, 64, 3, 1)]
        else:
            local, top = [(in_chans, 32, 8, 4), (32, 64, 4, 2), (64, 32, 3, 1)], []
        shape = [_out_size(s, [(k, st) for _, _, k, st in local + top]) for s in frame_size]
        if min(shape) < 1:
            raise ValueError(
                f"frames of {frame_size[0]} x {frame_size[1]} are too small for the Nature CNN "
                f"({'210 x 160' if full_resolution else '84 x 84'} expected; at least 36 x 36)"
            )
        self.local = nn.Sequential(*(_conv(*spec) for spec in local))
        linear = nn.Linear((top[-1][1] if top else local[-1][1]) * shape[0] * shape[1],
                           feature_size)  # fmt: skip
        nn.init.orthogonal_(linear.weight, gain=nn.init.calculate_gain("relu"))
        nn.init.zeros_(linear.bias)
        self.head = nn.Sequential(*(_conv(*spec) for spec in top), nn.Flatten(), linear)
        self.in_chans, self.frame_size = in_chans, tuple(frame_size)
        self.num_features: int = feature_size
        self.local_channels: int = local[-1][1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_chans, H, W) -> (N, local_channels, h, w)."""
        return self.local(x)

    def forward_head(self, fmap: torch.Tensor) -> torch.Tensor:
        """(N, local_channels, h, w) -> (N, num_features)."""
        return self.head(fmap)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_encoder
def nature_cnn(
    in_chans: int = 1,
    frame_size: tuple[int, int] = (84, 84),
    feature_size: int = 256,
    full_resolution: bool = False,
) -> NatureCNN:
    """The AtariARI encoder (module docstring): 256-d features (the benchmark's `feature_size`),
    `in_chans` = frames stacked x colour channels (1: one grayscale frame, as the benchmark's
    probes read single frames)."""
    return NatureCNN(in_chans, tuple(frame_size), feature_size, full_resolution)
