"""The encoder contract, checked on every registered encoder (timm's `@register_model` test style).

Contract (selfsup.encoders.registry): `num_features`, `forward(x) -> (N, num_features)`,
`forward_features(x) -> (N, D, h, w) | (N, L, D)`; trains in fp32, channels_last and bf16 autocast.
"""

from __future__ import annotations

import pytest
import torch

from selfsup.encoders import create_encoder, list_encoders
from selfsup.encoders.atari import AGENT_ENCODERS
from selfsup.encoders.audio import AUDIO_ENCODERS
from selfsup.encoders.sequence import SERIES_ENCODERS

# Text encoders take token ids (tests/text); hf_text needs a local model directory.
# Series, audio and agent encoders have their own files (test_sequence_encoders,
# test_audio_encoders, test_atari_encoder).
IMAGE_ENCODERS = [
    n
    for n in list_encoders()
    if not n.startswith(("text_", "hf_"))
    and n not in (*SERIES_ENCODERS, *AUDIO_ENCODERS, *AGENT_ENCODERS)
]
IMAGENET_STEMS = {"resnet18", "resnet34", "resnet50"}


def _batch(n: int, size: int) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0))


def _check_features(feats: torch.Tensor, n: int, num_features: int) -> None:
    if feats.ndim == 4:  # (N, D, h, w): conv nets
        assert feats.shape[:2] == (n, num_features)
    else:  # (N, L, D): token encoders
        assert feats.ndim == 3 and feats.shape[0] == n and feats.shape[2] == num_features


def test_the_expected_encoders_are_registered() -> None:
    expected = {
        "convnet_small",
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet18_cifar",
        "resnet34_cifar",
        "resnet50_cifar",
        "resnet18_cifar_w2",
        "resnet18_cifar_w4",
    }
    assert expected <= set(list_encoders())
    assert list_encoders("cifar_w") == ["resnet18_cifar_w2", "resnet18_cifar_w4"]


@pytest.mark.parametrize("name", IMAGE_ENCODERS)
def test_shapes_and_backward(name: str) -> None:
    enc = create_encoder(name)
    assert isinstance(enc.num_features, int)
    assert enc.encoder_name == name and enc.encoder_kwargs == {}
    # ImageNet stems downsample 32x: check them on 64x64 too.
    for size in (32, 64) if name in IMAGENET_STEMS else (32,):
        with torch.no_grad():
            _check_features(enc.forward_features(_batch(2, size)), 2, enc.num_features)
    out = enc(_batch(2, 32))
    assert out.shape == (2, enc.num_features)
    out.square().mean().backward()
    missing = [k for k, p in enc.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient for {missing}"
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", IMAGE_ENCODERS)
def test_channels_last_matches_contiguous(name: str) -> None:
    # eval mode: with a batch of 2 on a 1x1 map, train-mode BN turns rounding noise into +-1.
    enc = create_encoder(name).eval()
    x = _batch(2, 32)
    with torch.no_grad():
        ref = enc(x)
        enc = enc.to(memory_format=torch.channels_last)
        out = enc(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", IMAGE_ENCODERS)
def test_bf16_autocast_channels_last_trains(name: str) -> None:
    enc = create_encoder(name).to(memory_format=torch.channels_last)
    x = _batch(2, 32).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = enc(x)
    assert out.shape == (2, enc.num_features) and torch.isfinite(out).all()
    out.float().square().mean().backward()
    grads = [p.grad for p in enc.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_factory_kwargs_pass_through_and_are_recorded() -> None:
    enc = create_encoder("resnet18_cifar", width=16, in_chans=1)
    assert enc.num_features == 128
    assert enc(torch.randn(2, 1, 32, 32)).shape == (2, 128)
    assert enc.encoder_kwargs == {"width": 16, "in_chans": 1}


def test_unknown_name_lists_close_names() -> None:
    with pytest.raises(ValueError, match="resnet18_cifar") as err:
        create_encoder("resnet18_cifr")
    assert "Did you mean" in str(err.value)


def test_unknown_kwarg_is_an_error() -> None:
    with pytest.raises(TypeError):
        create_encoder("convnet_small", widht=8)
