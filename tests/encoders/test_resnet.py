"""ResNets: torchvision's architecture exactly, the CIFAR stem, and the width knob."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from selfsup.encoders import create_encoder
from selfsup.encoders.resnet import ResNet


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _torchvision_trunk(name: str) -> nn.Module:
    tv = getattr(torchvision.models, name)(weights=None)  # random init: nothing downloads
    tv.fc = nn.Identity()
    return tv


@pytest.mark.parametrize(
    ("name", "expected"),
    [("resnet18", 11_176_512), ("resnet34", 21_284_672), ("resnet50", 23_508_032)],
)
def test_same_parameters_as_torchvision(name: str, expected: int) -> None:
    ours, tv = create_encoder(name), _torchvision_trunk(name)
    assert _n_params(ours) == _n_params(tv) == expected
    theirs = {k: v.shape for k, v in tv.state_dict().items()}
    assert {k: v.shape for k, v in ours.state_dict().items()} == theirs


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_weights_load_and_give_the_same_output(name: str) -> None:
    ours, tv = create_encoder(name).eval(), _torchvision_trunk(name).eval()
    ours.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x))


def test_cifar_stem_keeps_resolution() -> None:
    enc = create_encoder("resnet18_cifar")
    assert enc.conv1.kernel_size == (3, 3) and enc.conv1.stride == (1, 1)
    assert isinstance(enc.maxpool, nn.Identity)
    with torch.no_grad():
        assert enc.forward_features(torch.randn(2, 3, 32, 32)).shape == (2, 512, 4, 4)
        # ImageNet stem: 32 -> 1 on the same input
        assert create_encoder("resnet18").forward_features(torch.randn(2, 3, 32, 32)).shape == (
            2,
            512,
            1,
            1,
        )


def test_cifar_stem_changes_only_the_first_conv() -> None:
    # 7x7x3x64 -> 3x3x3x64 weights, everything else shared with the ImageNet ResNet-18.
    diff = _n_params(create_encoder("resnet18")) - _n_params(create_encoder("resnet18_cifar"))
    assert diff == (49 - 9) * 3 * 64


@pytest.mark.parametrize(("name", "width"), [("resnet18_cifar_w2", 32), ("resnet18_cifar_w4", 16)])
def test_narrow_variants_are_the_width_argument(name: str, width: int) -> None:
    torch.manual_seed(0)
    named = create_encoder(name)
    torch.manual_seed(0)
    by_width = create_encoder("resnet18_cifar", width=width)
    assert named.num_features == by_width.num_features == 8 * width
    widths = [named.layer1[0].conv1.out_channels, named.layer4[0].conv1.out_channels]
    assert widths == [width, 8 * width]
    for a, b in zip(named.state_dict().values(), by_width.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_any_width_and_bottleneck_width() -> None:
    assert create_encoder("resnet50_cifar", width=8).num_features == 8 * 8 * 4
    assert create_encoder("resnet34", width=24).num_features == 24 * 8


def test_in_chans() -> None:
    enc = create_encoder("resnet18", in_chans=1, width=16)
    assert enc.conv1.in_channels == 1
    assert enc(torch.randn(2, 1, 64, 64)).shape == (2, 128)


@pytest.mark.parametrize(("name", "last"), [("resnet18_cifar", "bn2"), ("resnet50_cifar", "bn3")])
def test_zero_init_residual(name: str, last: str) -> None:
    off = create_encoder(name, width=8)
    on = create_encoder(name, width=8, zero_init_residual=True)
    for stage in (on.layer1, on.layer2, on.layer3, on.layer4):
        for block in stage:
            assert torch.count_nonzero(getattr(block, last).weight) == 0
            assert torch.all(block.bn1.weight == 1)
    assert all(torch.all(getattr(b, last).weight == 1) for b in off.layer1)  # torchvision default


def test_bad_stem_is_an_error() -> None:
    from selfsup.encoders.resnet import BasicBlock

    with pytest.raises(ValueError, match="stem"):
        ResNet(BasicBlock, (2, 2, 2, 2), stem="tiny")  # type: ignore[arg-type]
