"""ResNets (He et al. 2016, arXiv:1512.03385) with an ImageNet or a CIFAR stem and any base width.

The architecture is torchvision's (v1.5: the stride of a bottleneck sits on its 3x3 conv) and so are
the module names, so a torchvision `resnet18/34/50` state dict (minus `fc.*`) loads into the
ImageNet-stem encoders of the same depth, and `tests/encoders/test_resnet.py` checks it.

Two knobs on top of torchvision's:
  - `stem="cifar"`: a 3x3 stride-1 conv and no max-pool, for 32x32 images (SimCLR, Chen et al.
    2020, App. B.9; MoCo's CIFAR recipes; solo-learn). This is an ImageNet ResNet on small images,
    not He et al.'s 3-stage CIFAR ResNet-20/56.
  - `width`: the base width (64 in the paper); stage widths are `width * (1, 2, 4, 8)` (times 4 at a
    bottleneck's output), so `width=16` is a 4x narrower net that trains on a CPU.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from selfsup.encoders.registry import register_encoder

Stem = Literal["imagenet", "cifar"]


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False)


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module | None:
    """Projection shortcut (option B of He et al.) where the shape changes, identity elsewhere."""
    if stride == 1 and in_ch == out_ch:
        return None
    return nn.Sequential(_conv1x1(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch))


class BasicBlock(nn.Module):
    """Two 3x3 convs plus the input (ResNet-18/34).

    `x: (N, in_ch, H, W) -> (N, planes, H/s, W/s)`.
    """

    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_ch, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, planes, stride)

    def last_bn(self) -> nn.BatchNorm2d:
        """The BN that ends the residual branch (zeroed by `zero_init_residual`)."""
        return self.bn2

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carries the stride), 1x1 expand x4 (ResNet-50).

    `x: (N, in_ch, H, W) -> (N, 4 * planes, H/s, W/s)`.
    """

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.conv1 = _conv1x1(in_ch, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, out_ch)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, out_ch, stride)

    def last_bn(self) -> nn.BatchNorm2d:
        """The BN that ends the residual branch (zeroed by `zero_init_residual`)."""
        return self.bn3

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A ResNet trunk without its classifier.

    Args:
        block: `BasicBlock` (ResNet-18/34) or `Bottleneck` (ResNet-50).
        layers: blocks per stage, e.g. `(2, 2, 2, 2)` for ResNet-18.
        width: base width; stage `i` has `width * 2**i` planes (paper: 64).
        in_chans: input channels.
        stem: `"imagenet"` (7x7 stride-2 conv + 3x3 stride-2 max-pool, /4) or `"cifar"`
            (3x3 stride-1 conv, no pool, /1).
        zero_init_residual: start every residual branch's last BN at gamma = 0, so each block
            begins as the identity (Goyal et al. 2017, arXiv:1706.02677). Off by default, as in
            torchvision and the SSL papers' code.

    `num_features = 8 * width * block.expansion` (512 for ResNet-18, 2048 for ResNet-50).
    """

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: tuple[int, int, int, int],
        width: int = 64,
        in_chans: int = 3,
        stem: Stem = "imagenet",
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_chans, width, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.conv1 = _conv3x3(in_chans, width)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        in_ch = width
        for i, depth in enumerate(layers):
            stage, in_ch = _make_stage(block, in_ch, width * 2**i, depth, stride=1 if i == 0 else 2)
            self.add_module(f"layer{i + 1}", stage)
        self.num_features: int = in_ch
        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual: bool) -> None:
        # torchvision's init: He-normal fan_out convs (He et al. 2015), BN as the identity.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock | Bottleneck):
                    nn.init.zeros_(m.last_bn().weight)

    def forward_features(self, x: Tensor) -> Tensor:
        """`x: (N, in_chans, H, W)` -> `(N, num_features, H/s, W/s)`.

        s = 32 for the ImageNet stem, 8 for the CIFAR stem (rounded up: 32x32 -> 1x1 or 4x4).
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward(self, x: Tensor) -> Tensor:
        """`x: (N, in_chans, H, W)` -> `(N, num_features)`, global average pooled."""
        return torch.mean(self.forward_features(x), dim=(2, 3))


def _make_stage(
    block: type[BasicBlock | Bottleneck], in_ch: int, planes: int, depth: int, stride: int
) -> tuple[nn.Sequential, int]:
    """`depth` blocks; the first carries the stride. Returns the stage and its output width."""
    blocks = []
    for j in range(depth):
        blocks.append(block(in_ch, planes, stride if j == 0 else 1))
        in_ch = planes * block.expansion
    return nn.Sequential(*blocks), in_ch


_BASIC_18 = (2, 2, 2, 2)
_BASIC_34 = (3, 4, 6, 3)
_BOTTLENECK_50 = (3, 4, 6, 3)


@register_encoder
def resnet18(in_chans: int = 3, width: int = 64, zero_init_residual: bool = False) -> ResNet:
    """ResNet-18, ImageNet stem, random init. `num_features = 8 * width` (512)."""
    return ResNet(BasicBlock, _BASIC_18, width, in_chans, "imagenet", zero_init_residual)


@register_encoder
def resnet34(in_chans: int = 3, width: int = 64, zero_init_residual: bool = False) -> ResNet:
    """ResNet-34, ImageNet stem, random init. `num_features = 8 * width` (512)."""
    return ResNet(BasicBlock, _BASIC_34, width, in_chans, "imagenet", zero_init_residual)


@register_encoder
def resnet50(in_chans: int = 3, width: int = 64, zero_init_residual: bool = False) -> ResNet:
    """ResNet-50, ImageNet stem, random init. `num_features = 32 * width` (2048)."""
    return ResNet(Bottleneck, _BOTTLENECK_50, width, in_chans, "imagenet", zero_init_residual)


@register_encoder
def resnet18_cifar(in_chans: int = 3, width: int = 64, zero_init_residual: bool = False) -> ResNet:
    """ResNet-18 with the CIFAR stem (SimCLR App. B.9): 32x32 -> 4x4 features, 512-d."""
    return ResNet(BasicBlock, _BASIC_18, width, in_chans, "cifar", zero_init_residual)


@register_encoder
def resnet34_cifar(in_chans: int = 3, width: int = 64, zero_init_residual: bool = False) -> ResNet:
    """ResNet-34 with the CIFAR stem: 32x32 -> 4x4 features, 512-d."""
    return ResNet(BasicBlock, _BASIC_34, width, in_chans, "cifar", zero_init_residual)


@register_encoder
def resnet50_cifar(in_chans: int = 3, width: int = 64, zero_init_residual: bool = False) -> ResNet:
    """ResNet-50 with the CIFAR stem: 32x32 -> 4x4 features, 2048-d."""
    return ResNet(Bottleneck, _BOTTLENECK_50, width, in_chans, "cifar", zero_init_residual)


@register_encoder
def resnet18_cifar_w2(in_chans: int = 3, zero_init_residual: bool = False) -> ResNet:
    """`resnet18_cifar(width=32)`: stages 32..256, 256-d, ~1/4 of the FLOPs; for CPU runs."""
    return resnet18_cifar(in_chans, width=32, zero_init_residual=zero_init_residual)


@register_encoder
def resnet18_cifar_w4(in_chans: int = 3, zero_init_residual: bool = False) -> ResNet:
    """`resnet18_cifar(width=16)`: stages 16..128, 128-d, ~1/16 of the FLOPs; for CPU runs."""
    return resnet18_cifar(in_chans, width=16, zero_init_residual=zero_init_residual)
